"""Model files run alike: ``.keras`` (Keras), ``.tflite`` (LiteRT), ``.onnx`` (onnxruntime).

:func:`open_model` picks a runner by the file's suffix. Every runner has the interface of
``LiteRTModel``: ``predict(images)`` (float32 in, float32 scores out), ``latency(runs,
warmup, seed)`` -> ``Latency`` and ``input_shape`` (batch included), so
``export.time_in_rounds`` times any of them against each other.

Example:
    >>> from keras_mobilenets.export import runners, time_in_rounds
    >>> model = runners.open_model("run/model_int8.tflite", num_threads=2)
    >>> scores = model.predict(images)            # float32 pixels in [0, 255]
    >>> time_in_rounds({"int8": model}, rounds=7, runs=20).median_ms("int8")
    0.81
"""

import os

import numpy as np

from keras_mobilenets import _checks
from keras_mobilenets.export.litert import LiteRTModel, time_calls

#: The suffixes :func:`open_model` runs.
MODEL_SUFFIXES = (".keras", ".tflite", ".onnx")


class KerasRunner:
    """A ``.keras`` model with ``LiteRTModel``'s interface.

    The package's custom layers are registered before loading (``keras_mobilenets.layers``).
    :meth:`predict` calls the model eagerly (``training=False``: nothing is traced, whatever
    the batch sizes); :meth:`latency` times ``model.predict_on_batch`` (the backend's
    compiled predict function, traced once for its batch of 1). Both run with TensorFlow's
    own thread settings (``tf.config.threading``).

    Args:
        path: Path of the ``.keras`` file.

    Raises:
        ValueError: If the file cannot be loaded as a Keras model (the message names it).

    Example:
        >>> runner = KerasRunner("run/model.keras")
        >>> runner.input_shape, runner.predict(images).shape
        ((1, 224, 224, 3), (8, 5))
    """

    def __init__(self, path):
        import keras

        from keras_mobilenets import layers  # noqa: F401  (registers the custom layers)

        self.path = os.fspath(path)
        try:
            self.model = keras.saving.load_model(self.path, compile=False)
        except Exception as error:  # a damaged zip, a foreign config, an unknown layer
            raise ValueError(f"{self.path!r} cannot be loaded as a Keras model "
                             f"({type(error).__name__}: {error})") from None
        if len(self.model.inputs) != 1:
            raise ValueError(f"{self.path!r} has {len(self.model.inputs)} inputs; only "
                             "single-input models are supported.")

    @property
    def input_shape(self):
        """Shape of the input with a batch of 1, e.g. ``(1, 224, 224, 3)``."""
        return (1, *self.model.inputs[0].shape[1:])

    def predict(self, images):
        """Scores of a batch of images, as float32 numpy.

        Example:
            >>> runner.predict(np.zeros((2, 224, 224, 3), "float32")).shape
            (2, 5)
        """
        outputs = self.model(np.asarray(images, dtype="float32"), training=False)
        if isinstance(outputs, (list, tuple)):
            return [np.asarray(output, dtype="float32") for output in outputs]
        return np.asarray(outputs, dtype="float32")

    def latency(self, runs=50, warmup=5, seed=0):
        """Times ``predict_on_batch`` on one random image, as ``LiteRTModel.latency``.

        Example:
            >>> runner.latency(runs=20).median_ms
            9.7
        """
        _checks.check_positive_int("runs", runs)
        _checks.check_int("warmup", warmup, minimum=0)
        shape = tuple(1 if size is None else size for size in self.input_shape)
        image = np.random.default_rng(seed).uniform(0.0, 255.0, shape).astype("float32")
        return time_calls(lambda: self.model.predict_on_batch(image), runs, warmup)


def open_model(path, num_threads=2):
    """A runner for a model file, picked by its suffix.

    ``.keras`` -> :class:`KerasRunner`, ``.tflite`` -> ``LiteRTModel``, ``.onnx`` ->
    ``keras_mobilenets.export.OnnxModel`` (needs onnxruntime).

    Args:
        path: Path of the file.
        num_threads: CPU threads of LiteRT and onnxruntime (Keras models use TensorFlow's
            settings).

    Returns:
        The runner: ``predict``, ``latency`` and ``input_shape``.

    Raises:
        ValueError: If the suffix is none of :data:`MODEL_SUFFIXES`, or the file is not a
            model of its kind.
        FileNotFoundError: If there is no file at ``path``.
        ImportError: For ``.tflite`` without ai-edge-litert, or ``.onnx`` without the
            ONNX runner or onnxruntime.

    Example:
        >>> open_model("run/model.keras").input_shape
        (1, 224, 224, 3)
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in MODEL_SUFFIXES:
        raise ValueError(f"{path!r} is no model file this can run: the name must end in "
                         f"{', '.join(MODEL_SUFFIXES)}.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model file {path!r} does not exist.")
    if suffix == ".keras":
        return KerasRunner(path)
    if suffix == ".tflite":
        return LiteRTModel(path, num_threads=num_threads)
    try:
        from keras_mobilenets.export import OnnxModel
    except ImportError:
        raise ImportError(
            f"{path!r}: ONNX support needs keras_mobilenets.export.OnnxModel, which this "
            "version of keras-mobilenets does not have, and onnxruntime (pip install "
            "onnxruntime)."
        ) from None
    return OnnxModel(path, num_threads=num_threads)

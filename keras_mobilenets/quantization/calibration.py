"""Sets the quantization ranges of a QAT model from data, before (or instead of) training.

tfmot creates every activation range at [-6, 6] and moves it towards the data with an
exponential moving average of decay 0.999 during training, the model input's range at
[0, 0], and weight ranges at [-6, 6] until the first training step. A QAT model fine-tuned
for a few hundred steps therefore keeps ranges that are mostly the initial guess (0.999^200
= 0.82), and one exported without training has ranges unrelated to the data.

``calibrate`` runs the model in inference mode (batch norm uses its moving statistics,
dropout is off, no weight changes) on calibration batches while tfmot's range ops update
their variables as in training, with the moving average replaced by the plain mean over
the calibration batches: every activation range becomes the mean of the batch ranges (the
same statistic TFLite's post-training calibration uses), the input range the overall range
and each weight range that of the weight.

Mechanism: tfmot's quantizers (``quantizers.py``) call the functions of its ``quant_ops``
module with ``is_training`` and a fixed ``ema_decay``; during calibration these functions
are temporarily replaced by versions that always update the ranges, with decay
``k / (k + 1)`` for the ``k``-th batch. Only the calling thread's calls run in calibration
mode; the originals are restored afterwards, also on error.

Example:
    >>> qat = quantize_model(model)
    >>> calibrate(qat, train_images[:512])
"""

import contextlib
import threading

import numpy as np
import tensorflow as tf

_RANGE_OPS = ("AllValuesQuantize", "LastValueQuantize", "MovingAvgQuantize")
_patch_lock = threading.Lock()


@contextlib.contextmanager
def _calibration_mode(quant_ops, batch_index):
    """Makes tfmot's range ops update in any mode; moving averages become running means."""
    originals = {name: getattr(quant_ops, name) for name in _RANGE_OPS}

    def always_training(name):
        def op(*args, **kwargs):
            kwargs["is_training"] = True
            if name == "MovingAvgQuantize":
                kwargs["ema_decay"] = batch_index[0] / (batch_index[0] + 1.0)
            return originals[name](*args, **kwargs)

        return op

    with _patch_lock:
        for name in _RANGE_OPS:
            setattr(quant_ops, name, always_training(name))
        try:
            yield
        finally:
            for name, original in originals.items():
                setattr(quant_ops, name, original)


def _batches(data, batch_size, steps):
    """Float32 numpy batches from an array or an iterable of ``x`` / ``(x, y)`` batches."""
    if isinstance(data, np.ndarray) or tf.is_tensor(data):
        data = np.asarray(data, dtype="float32")
        iterator = (data[start:start + batch_size] for start in range(0, len(data), batch_size))
    else:
        iterator = iter(data.as_numpy_iterator() if hasattr(data, "as_numpy_iterator") else data)
    for count, batch in enumerate(iterator):
        if steps is not None and count >= steps:
            return
        if isinstance(batch, (tuple, list)):
            batch = batch[0]
        yield np.asarray(batch, dtype="float32")


def check_options(batch_size, steps=None, prefix=""):
    """Raises ``ValueError`` unless ``batch_size`` (and ``steps`` unless None) are ints >= 1."""
    for name, value in (("batch_size", batch_size), ("steps", steps)):
        if value is None and name == "steps":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"`{prefix}{name}` must be an int >= 1, got {value!r}.")


def calibrate(qat_model, data, batch_size=32, steps=None):
    """Sets every quantizer range of a QAT model from calibration data.

    Weights and batch-norm statistics are not changed; only the min/max variables of the
    fake-quant ops are (see the module docstring). Run it right after ``quantize_model``
    (``quantize_model(model, calibration_data=...)`` does), so that QAT fine-tuning starts
    from ranges that fit the data and a QAT model exports to a sensible int8 file even
    without training.

    Args:
        qat_model: A model returned by ``quantize_model``.
        data: Calibration inputs in the model's input range (e.g. raw [0, 255] pixels for
            models with ``include_preprocessing``): a numpy array (split into batches of
            ``batch_size``) or an iterable of batches such as a ``tf.data.Dataset``
            (elements ``x`` or ``(x, y)``). A few hundred training images are enough.
        batch_size: Batch size when ``data`` is an array (int >= 1).
        steps: Most batches to use (None: all).

    Returns:
        The number of batches used.

    Raises:
        ValueError: If ``qat_model`` is not a tfmot QAT model, on an invalid
            ``batch_size``/``steps``, or if ``data`` yields no batch or a batch of the
            wrong shape.

    Example:
        >>> qat = quantize_model(keras_mobilenets.MobileNetV3Small(input_shape=(64, 64, 3)))
        >>> calibrate(qat, images[:256])
        8
    """
    from keras_mobilenets.quantization._tf_keras import tf_keras, tfmot_keras  # noqa: F401
    from tensorflow_model_optimization.python.core.quantization.keras import quant_ops

    if not isinstance(qat_model, tf_keras.Model) or not any(
        type(layer).__name__ in ("QuantizeLayer", "QuantizeWrapperV2") for layer in qat_model.layers
    ):
        raise ValueError(
            "`qat_model` must be a QAT model returned by quantize_model, got "
            f"{type(qat_model).__name__} {getattr(qat_model, 'name', '')!r}."
        )
    check_options(batch_size, steps)
    if isinstance(data, (str, bytes)) or data is None:
        raise ValueError(
            f"`data` must be a numpy array or an iterable of batches, got {type(data).__name__}."
        )
    expected = tuple(qat_model.input_shape[1:])
    batch_index = [0]
    with _calibration_mode(quant_ops, batch_index):
        for batch in _batches(data, batch_size, steps):
            if batch.ndim != len(expected) + 1 or any(
                e is not None and e != s for e, s in zip(expected, batch.shape[1:])
            ):
                raise ValueError(
                    f"`data` batches must have shape (batch, {', '.join(map(str, expected))}), "
                    f"got {batch.shape}."
                )
            qat_model(batch, training=False)
            batch_index[0] += 1
    if not batch_index[0]:
        raise ValueError("`data` yielded no batch: calibration needs at least one input.")
    return batch_index[0]

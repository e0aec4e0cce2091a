"""quantize_model, save_qat_model, load_qat_model: the public QAT entry points.

tf_keras and tfmot are imported inside the functions, so importing this module (and
``keras_mobilenets``) works without the ``[qat]`` extra.
"""

import os
import warnings

import numpy as np

from keras_mobilenets import _checks
from keras_mobilenets.imagenet import expected_input_range


def quantize_model(model, calibration_data=None, calibration_batch_size=32):
    """Returns a quantization-aware (QAT) tf_keras copy of a Keras 3 functional model.

    The model is translated layer by layer into tf_keras (weights copied), then every
    layer is annotated (our layers with the QuantizeConfigs of
    ``keras_mobilenets.quantization.configs``, the rest with tfmot's default 8-bit
    configs) and ``tfmot.quantization.keras.quantize_apply`` inserts the fake-quant ops
    (BatchNormalization stays separate during training and folds into the convolution
    when converted to TFLite). The result is ready for ``compile`` / ``fit`` and for
    ``tf.lite.TFLiteConverter.from_keras_model``.

    Without ``calibration_data`` the quantization ranges are tfmot's initial guesses
    ([-6, 6] for activations, [0, 0] for the input), which training moves only slowly
    (moving average with decay 0.999); with it, they are set from the data first (see
    ``calibrate``), which is recommended before a short fine-tuning.

    Args:
        model: A Keras 3 functional ``keras.Model`` built by this package, optionally
            with a user's head of standard layers on top, or containing such a model as
            a layer (it is flattened). Layer types: ``translate.SUPPORTED_LAYERS``.
        calibration_data: Optional inputs for ``calibrate``: a numpy array or an iterable
            of batches (e.g. a ``tf.data.Dataset`` of ``(x, y)``), in the model's input
            range; a few hundred training images are enough.
        calibration_batch_size: Batch size for an array of ``calibration_data``.

    Returns:
        A ``tf_keras.Model`` wrapped by tfmot (layers named ``quant_<name>``).

    Raises:
        ImportError: If tf_keras or tensorflow-model-optimization is missing.
        ValueError: If ``model`` is not a Keras 3 functional model (Sequential and
            subclassed models are refused), contains an unsupported layer (the
            message names the layer and its type), holds NaN or inf in its variables
            (named), ``calibration_data`` does not fit the model's input (the message
            names it, what it got and the input shape: a wrong shape, a non-numeric
            dtype, NaN or inf, values outside [0, 255] or scaled to [0, 1] for a model
            with built-in preprocessing), or calibration gives non-finite ranges (named).
        RuntimeError: With another Keras backend than TensorFlow (QAT is tfmot's).

    Example:
        >>> model = keras_mobilenets.MobileNetV3Small(input_shape=(64, 64, 3), classes=4)
        >>> qat = quantize_model(model, calibration_data=train_images[:512])
        >>> qat.compile("adam", "sparse_categorical_crossentropy")
    """
    _checks.require_tensorflow_backend("quantization.quantize_model")
    from keras_mobilenets.export.validate import check_finite_weights
    from keras_mobilenets.quantization import calibration, configs, translate
    from keras_mobilenets.quantization.batch_norm import synchronized_qat_copy
    from keras_mobilenets.quantization._tf_keras import tf_keras, tfmot_keras
    from keras_mobilenets.training import batch_norm_layers

    if calibration_data is not None:
        calibration.check_options(calibration_batch_size, prefix="calibration_")
    translate.check_model(model)
    if isinstance(calibration_data, np.ndarray):  # checked before the slow translation
        _checks.check_input_batch(
            "calibration_data", calibration_data, tuple(model.inputs[0].shape[1:]),
            expected_input_range(model), element="an array",
        )
    check_finite_weights(model, "quantize")
    float_model = translate.to_tf_keras(model)
    registry = tfmot_keras.default_8bit.Default8BitQuantizeRegistry()

    def annotate(layer):
        if isinstance(layer, tf_keras.layers.InputLayer):
            return layer
        if isinstance(layer, tf_keras.layers.BatchNormalization):
            _check_batch_norm_input(layer, tf_keras)
        config = configs.config_for(layer)
        if config is None and not (
            registry.supports(layer) or isinstance(layer, tf_keras.layers.BatchNormalization)
        ):
            raise ValueError(
                f"Cannot quantize layer {layer.name!r} of type {type(layer).__name__}: tfmot's "
                "default 8-bit scheme has no QuantizeConfig for it."
            )
        return tfmot_keras.quantize_annotate_layer(layer, quantize_config=config)

    annotated = tf_keras.models.clone_model(float_model, clone_function=annotate)
    with tfmot_keras.quantize_scope(configs.custom_objects()):
        qat_model = tfmot_keras.quantize_apply(annotated, scheme=configs.QuantizeScheme())
    # The twins of synchronized batch norms are created synchronized (translate), but
    # tf_keras' BatchNormalization config has no `synchronized`, so tfmot's cloning drops
    # it: rebuild those wrappers with it.
    synchronized = [layer.name for layer in batch_norm_layers(model) if layer.synchronized]
    if synchronized:
        qat_model = synchronized_qat_copy(qat_model, synchronized)
    if calibration_data is not None:
        calibration.run_calibration(qat_model, calibration_data, calibration_batch_size,
                                    argument="calibration_data")
    calibration.check_finite_ranges(qat_model)
    return qat_model


def _check_batch_norm_input(layer, tf_keras):
    """tfmot folds BatchNormalization into a preceding conv / dense; it has no other config."""
    folding = (tf_keras.layers.Conv2D, tf_keras.layers.DepthwiseConv2D, tf_keras.layers.Dense)
    for node in layer.inbound_nodes:
        inbound_layers = node.inbound_layers
        if not isinstance(inbound_layers, list):
            inbound_layers = [inbound_layers]
        for inbound in inbound_layers:
            if not isinstance(inbound, folding):
                raise ValueError(
                    f"Cannot quantize BatchNormalization {layer.name!r}: it follows "
                    f"{inbound.name!r} ({type(inbound).__name__}); tfmot only quantizes a batch "
                    "norm right after a Conv2D, DepthwiseConv2D or Dense layer."
                )


def _check_path(path):
    path = os.fspath(path)
    if path.endswith(".keras"):
        raise ValueError(
            f"Cannot use {path!r}: tfmot QAT models do not load back from tf_keras' .keras "
            "format (its QuantizeLayer restores 3 of its 5 variables); use a .h5 path."
        )
    if not path.endswith(".h5"):
        raise ValueError(f"`path` must end with .h5 (tf_keras HDF5), got {path!r}.")
    return path


def save_qat_model(model, path):
    """Saves a QAT model from ``quantize_model`` as a tf_keras HDF5 (``.h5``) file.

    Architecture, float weights, quantizer ranges and (if compiled) the optimizer state
    are saved. tf_keras' ``.keras`` format is refused: with tfmot 0.8.1 a QAT model
    saved that way fails to load.

    Args:
        model: The ``tf_keras.Model`` returned by ``quantize_model`` (trained or not).
        path: File path ending in ``.h5``.

    Raises:
        ValueError: If ``path`` does not end in ``.h5`` or ``model`` is not a tf_keras
            model.

    Example:
        >>> save_qat_model(qat, "qat.h5")
    """
    from keras_mobilenets.quantization._tf_keras import tf_keras

    path = _check_path(path)
    if not isinstance(model, tf_keras.Model):
        raise ValueError(
            "save_qat_model expects the tf_keras model returned by quantize_model, got "
            f"{type(model).__name__}."
        )
    with warnings.catch_warnings():  # tf_keras recommends its .keras format, refused above
        warnings.filterwarnings("ignore", message="You are saving your model as an HDF5")
        model.save(path)


def load_qat_model(path, compile=True):
    """Loads a QAT model saved by ``save_qat_model``.

    Args:
        path: A ``.h5`` file written by ``save_qat_model``.
        compile: Whether to restore the training configuration, if one was saved.

    Returns:
        The QAT ``tf_keras.Model``.

    Raises:
        ValueError: If ``path`` does not end in ``.h5``.

    Example:
        >>> qat = load_qat_model("qat.h5")
    """
    from keras_mobilenets.quantization import configs
    from keras_mobilenets.quantization._tf_keras import tf_keras, tfmot_keras

    path = _check_path(path)
    with tfmot_keras.quantize_scope(configs.custom_objects()):
        return tf_keras.models.load_model(path, compile=compile)

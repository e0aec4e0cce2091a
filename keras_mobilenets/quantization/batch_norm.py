"""Batch norms of QAT (tf_keras) models: find them, and rebuild them synchronized.

``quantize_model`` keeps the synchronized batch norms of the Keras 3 model it quantizes,
and ``distribute.synchronize_batch_norm`` synchronizes those of a QAT model; both use
this module (it sits below ``distribute``, which imports it).

Example:
    >>> names = [layer.name for layer in qat_batch_norms(qat)]
    >>> synchronized = synchronized_qat_copy(qat, names[:2])
"""

from keras_mobilenets.quantization import configs
from keras_mobilenets.quantization._tf_keras import tf_keras, tfmot_keras


def qat_batch_norms(model):
    """The ``tf_keras`` BatchNormalization layers of a QAT model (inside tfmot's wrappers).

    Args:
        model: A ``tf_keras.Model`` (e.g. from ``quantization.quantize_model``).

    Returns:
        The BatchNormalization layers, in the model's layer order.

    Raises:
        ValueError: If ``model`` is not a tf_keras model.
    """
    _check_qat_model(model)
    layers = [getattr(layer, "layer", layer) for layer in model.layers]  # QAT wrappers
    return [layer for layer in layers if isinstance(layer, tf_keras.layers.BatchNormalization)]


def synchronized_qat_copy(model, names):
    """A copy of a QAT model whose batch norms called ``names`` are synchronized.

    Those layers are rebuilt with ``synchronized=True, fused=False`` (tf_keras' fused
    kernel cannot synchronize); the copy has ``model``'s weights. ``names`` are not
    checked here (``distribute.synchronize_batch_norm`` checks them).

    Args:
        model: A ``tf_keras.Model`` (e.g. from ``quantization.quantize_model``).
        names: Names of BatchNormalization layers of ``model``.

    Returns:
        The new ``tf_keras.Model``.

    Raises:
        ValueError: If ``model`` is not a tf_keras model.
    """
    _check_qat_model(model)
    names = set(names)

    def clone(layer):
        inner = getattr(layer, "layer", layer)
        config = layer.get_config()
        if isinstance(inner, tf_keras.layers.BatchNormalization) and inner.name in names:
            inner_config = config["layer"]["config"] if inner is not layer else config
            inner_config.update(synchronized=True, fused=False)
        return type(layer).from_config(config)

    with tfmot_keras.quantize_scope(configs.custom_objects()):
        copy = tf_keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def _check_qat_model(model):
    if not isinstance(model, tf_keras.Model):
        raise ValueError(
            "synchronize_batch_norm expects a Keras 3 model or a tf_keras QAT model, got "
            f"{type(model).__name__}."
        )

"""Training utilities that work on any model of the package.

Example:
    >>> reestimate_batch_norm(model, images)
"""

import keras
import numpy as np


def reestimate_batch_norm(model, images, batch_size=16):
    """Sets every BatchNormalization's moving statistics to those of ``images``.

    Useful after changing the input distribution or size, and to give an untrained model
    realistic activations (random kernels with unit moving variance make a deep network's
    activations vanish, which makes int8 calibration and latency measurements meaningless).
    Each layer's statistics become the mean over the batches of the batch statistics.

    Args:
        model: A Keras model.
        images: A numpy array of inputs (the model's input range).
        batch_size: Batch size of the statistics passes.

    Returns:
        The number of BatchNormalization layers updated.

    Example:
        >>> model = keras_mobilenets.MobileNetV3Small(input_shape=(224, 224, 3))
        >>> reestimate_batch_norm(model, images)
        34
    """
    images = np.asarray(images, dtype="float32")
    norms = batch_norm_layers(model)
    momenta = [layer.momentum for layer in norms]
    sums = None
    batches = range(0, len(images), batch_size)
    for count, start in enumerate(batches, start=1):
        for layer in norms:
            layer.momentum = 0.0  # moving statistics := this batch's statistics
        model(images[start:start + batch_size], training=True)
        stats = [(np.asarray(layer.moving_mean), np.asarray(layer.moving_variance))
                 for layer in norms]
        sums = stats if sums is None else [
            (m + sm, v + sv) for (m, v), (sm, sv) in zip(stats, sums)
        ]
    for layer, momentum, (mean, variance) in zip(norms, momenta, sums):
        layer.moving_mean.assign(mean / count)
        layer.moving_variance.assign(variance / count)
        layer.momentum = momentum
    return len(norms)


def batch_norm_layers(model):
    """The BatchNormalization layers of ``model``, nested models included, in order.

    Example:
        >>> len(batch_norm_layers(keras_mobilenets.MobileNetV3Small()))
        34
    """
    return [layer for layer in all_layers(model)
            if isinstance(layer, keras.layers.BatchNormalization)]


def all_layers(model):
    """Yields the layers of ``model``, with the layers of nested models instead of them.

    Example:
        >>> names = [layer.name for layer in all_layers(classifier)]  # backbone's included
    """
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)
        else:
            yield layer

"""tf_keras twins of the package's custom layers, and of Keras' Rescaling (QATRescaling).

tfmot builds QAT models in tf_keras (Keras 2), so ``quantize_model`` rebuilds each of our
Keras 3 layers (HardSigmoid, HardSwish, ChannelShuffle) as its twin here: same formula,
same config keys, registered for tf_keras serialization under the same
``keras_mobilenets>`` names.

HardSigmoid and Rescaling are two elementwise ops each (add then multiply, multiply then
add). An int8 TFLite graph needs a range for the tensor between the two, so their twins
pass it through ``self.inner``: the identity in the float model, replaced by a fake-quant
by their QuantizeConfig (see ``configs.InnerAndOutputQuantizeConfig``).
"""

import tensorflow as tf

from keras_mobilenets import _checks
from keras_mobilenets.quantization._tf_keras import tf_keras


@tf_keras.saving.register_keras_serializable(package="keras_mobilenets")
class HardSigmoid(tf_keras.layers.Layer):
    """tf_keras twin of ``keras_mobilenets.layers.HardSigmoid``: ``relu6(x + 3) / 6``.

    ``inner`` (identity until quantized) sees ``relu6(x + 3)``.

    Example:
        >>> HardSigmoid()(tf.constant([-4.0, 0.0, 4.0]))  # -> [0.0, 0.5, 1.0]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = tf_keras.activations.linear

    def call(self, inputs):
        return self.inner(tf.nn.relu6(inputs + 3.0)) * (1.0 / 6.0)

    def compute_output_shape(self, input_shape):
        return input_shape


@tf_keras.saving.register_keras_serializable(package="keras_mobilenets")
class HardSwish(tf_keras.layers.Layer):
    """tf_keras twin of ``keras_mobilenets.layers.HardSwish``: ``x * relu6(x + 3) / 6``.

    Example:
        >>> HardSwish()(tf.constant([-4.0, 1.0, 4.0]))  # -> [0.0, 0.6667, 4.0]
    """

    def call(self, inputs):
        return inputs * (tf.nn.relu6(inputs + 3.0) * (1.0 / 6.0))

    def compute_output_shape(self, input_shape):
        return input_shape


@tf_keras.saving.register_keras_serializable(package="keras_mobilenets")
class ChannelShuffle(tf_keras.layers.Layer):
    """tf_keras twin of ``keras_mobilenets.layers.ChannelShuffle``.

    Args:
        groups: Number of groups, a positive int dividing the channel count.

    Example:
        >>> ChannelShuffle(groups=2)(tf.reshape(tf.range(4.0), (1, 1, 1, 4)))  # [0, 2, 1, 3]
    """

    def __init__(self, groups, **kwargs):
        super().__init__(**kwargs)
        _checks.check_positive_int("groups", groups)
        self.groups = groups

    def call(self, inputs):
        shape = tf.shape(inputs)
        channels = inputs.shape[-1]
        x = tf.reshape(inputs, (-1, shape[1], shape[2], self.groups, channels // self.groups))
        x = tf.transpose(x, (0, 1, 2, 4, 3))
        return tf.reshape(x, (-1, shape[1], shape[2], channels))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


@tf_keras.saving.register_keras_serializable(package="keras_mobilenets")
class ChannelSplit(tf_keras.layers.Layer):
    """tf_keras twin of ``keras_mobilenets.layers.ChannelSplit``: part ``index`` of ``splits``.

    Example:
        >>> ChannelSplit(splits=2, index=1)(tf.reshape(tf.range(4.0), (1, 1, 1, 4)))  # [2, 3]
    """

    def __init__(self, splits=2, index=0, **kwargs):
        super().__init__(**kwargs)
        self.splits = splits
        self.index = index

    def call(self, inputs):
        width = inputs.shape[-1] // self.splits
        return inputs[..., self.index * width : (self.index + 1) * width]

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([*input_shape[:-1], input_shape[-1] // self.splits])

    def get_config(self):
        return {**super().get_config(), "splits": self.splits, "index": self.index}


def fake_quant_constant(values):
    """Fake-quantizes a constant operand as the TFLite converter stores it in an int8 file.

    The converter quantizes the constant of an int8 MUL or ADD (e.g. the per-channel scale
    of a Rescaling) per tensor: 8 bits, asymmetric, over ``[min(values, 0), max(values, 0)]``.
    A vector whose entries differ keeps only that precision (a channel 1/50 of the largest
    gets about 5 levels), which the QAT model would not see; with this fake quantization
    the QAT model computes with the same values as the int8 file (the converter takes the
    FakeQuant's range, the same one). A scalar is exactly representable and returned as is.

    Args:
        values: A float tensor (a constant of the graph, or computed from weights).

    Returns:
        ``values`` rounded to the 8-bit grid (straight-through gradient).

    Example:
        >>> fake_quant_constant(tf.constant([1.0, 0.013]))  # 0.013 -> 0.0118 (3 of 255 steps)
    """
    if values.shape.rank == 0 or values.shape.num_elements() == 1:
        return values
    low = tf.stop_gradient(tf.minimum(tf.reduce_min(values), 0.0))
    high = tf.stop_gradient(tf.maximum(tf.reduce_max(values), 0.0))
    return tf.quantization.fake_quant_with_min_max_vars(values, low, high, num_bits=8,
                                                        narrow_range=False)


@tf_keras.saving.register_keras_serializable(package="keras_mobilenets")
class QATRescaling(tf_keras.layers.Layer):
    """Twin of ``keras.layers.Rescaling`` for QAT: ``x * scale + offset``.

    Its own class name, so that loading a saved QAT model never confuses it with
    tf_keras' Rescaling. Same config as that layer; ``inner`` (identity until quantized) sees
    ``x * scale``. A per-channel scale and offset are rounded as the int8 file stores them
    (:func:`fake_quant_constant`).

    Args:
        scale: The factor, a float or a per-channel list.
        offset: The offset, a float or a per-channel list.

    Example:
        >>> QATRescaling(scale=1 / 127.5, offset=-1.0)(tf.constant([0.0, 255.0]))  # [-1, 1]
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        self.offset = offset
        self.inner = tf_keras.activations.linear

    def call(self, inputs):
        inputs = tf.cast(inputs, self.compute_dtype)
        scale = fake_quant_constant(tf.cast(self.scale, self.compute_dtype))
        offset = fake_quant_constant(tf.cast(self.offset, self.compute_dtype))
        return self.inner(inputs * scale) + offset

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}

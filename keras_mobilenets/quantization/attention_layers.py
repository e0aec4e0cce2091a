"""tf_keras twins of MobileNetV4's layers (arXiv:2404.10518) for QAT.

* ``MultiQueryAttention``: same formula as ``keras_mobilenets.layers.MultiQueryAttention``;
  the scaled query, the attention logits and the softmax weights pass through
  ``inner_query`` / ``inner_logits`` / ``inner_weights`` (identity until quantized), so
  every elementwise op and matrix product of the int8 graph has a range.
* ``GELU``: exact GELU, output quantized.
* ``StandaloneBatchNorm``: the Mobile MQA input norm, which follows no convolution and so
  cannot be folded by tfmot: a per-channel affine map with the moving statistics
  (``x * scale`` through ``inner``, then ``+ offset``), both vectors rounded as the int8
  file stores them (``layers.fake_quant_constant``).
"""

import tensorflow as tf

from keras_mobilenets.quantization._tf_keras import tf_keras
from keras_mobilenets.quantization.layers import fake_quant_constant

_identity = tf_keras.activations.linear


@tf_keras.saving.register_keras_serializable(package="keras_mobilenets")
class MultiQueryAttention(tf_keras.layers.Layer):
    """tf_keras twin of ``keras_mobilenets.layers.MultiQueryAttention``.

    Example:
        >>> MultiQueryAttention(num_heads=2)([q, k, v])  # (batch, rows, cols, 2 * dv)
    """

    def __init__(self, num_heads, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.inner_query = _identity
        self.inner_logits = _identity
        self.inner_weights = _identity

    def call(self, inputs):
        query, key, value = inputs
        key_dim, value_dim = key.shape[-1], value.shape[-1]
        shape = tf.shape(query)
        batch, rows, cols = shape[0], shape[1], shape[2]
        q = tf.reshape(query, (batch, -1, key_dim))
        k = tf.reshape(key, (batch, -1, key_dim))
        v = tf.reshape(value, (batch, -1, value_dim))
        q = self.inner_query(q * (float(key_dim) ** -0.5))
        logits = self.inner_logits(tf.matmul(q, k, transpose_b=True))
        weights = self.inner_weights(tf.nn.softmax(logits, axis=-1))
        out = tf.matmul(weights, v)
        return tf.reshape(out, (batch, rows, cols, self.num_heads * value_dim))

    def compute_output_shape(self, input_shape):
        query, _, value = input_shape
        return tf.TensorShape([*query[:-1], self.num_heads * value[-1]])

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads}


@tf_keras.saving.register_keras_serializable(package="keras_mobilenets")
class GELU(tf_keras.layers.Layer):
    """tf_keras twin of ``keras_mobilenets.layers.GELU`` (exact, erf form)."""

    def call(self, inputs):
        return tf.nn.gelu(inputs, approximate=False)

    def compute_output_shape(self, input_shape):
        return input_shape


@tf_keras.saving.register_keras_serializable(package="keras_mobilenets")
class StandaloneBatchNorm(tf_keras.layers.Layer):
    """Inference-mode batch norm for QAT: ``x * scale + offset`` from its statistics.

    Takes the Keras 3 layer's config (batch-norm keys; only ``epsilon`` matters) and its
    weights (gamma, beta, moving mean, moving variance). ``inner`` sees ``x * scale``.
    """

    def __init__(self, epsilon=1e-3, axis=-1, momentum=0.99, center=True, scale=True,
                 synchronized=False, beta_regularizer=None, gamma_regularizer=None,
                 beta_constraint=None, gamma_constraint=None, renorm=False,
                 renorm_clipping=None, renorm_momentum=0.99, **kwargs):
        super().__init__(**kwargs)
        if axis not in (-1, 3, [-1], [3]) or not center or not scale or renorm:
            raise ValueError(
                "StandaloneBatchNorm twin: only channels-last batch norm with center and "
                f"scale and without renorm is supported, got axis={axis!r}, "
                f"center={center!r}, scale={scale!r}, renorm={renorm!r}."
            )
        self.epsilon = epsilon
        self.momentum = momentum
        self.synchronized = synchronized
        self.inner = _identity

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")
        self.moving_mean = self.add_weight(
            name="moving_mean", shape=(channels,), initializer="zeros", trainable=False
        )
        self.moving_variance = self.add_weight(
            name="moving_variance", shape=(channels,), initializer="ones", trainable=False
        )
        super().build(input_shape)

    def call(self, inputs):
        scale = self.gamma * tf.math.rsqrt(self.moving_variance + self.epsilon)
        offset = self.beta - self.moving_mean * scale
        return self.inner(inputs * fake_quant_constant(scale)) + fake_quant_constant(offset)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "momentum": self.momentum,
                "synchronized": self.synchronized}

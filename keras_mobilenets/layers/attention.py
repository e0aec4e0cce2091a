"""Mobile multi-query attention core and GELU (MobileNetV4, Qin et al. 2024, arXiv:2404.10518).

MobileNetV4's Mobile MQA block (section 4 of the paper) projects the input to several query
heads but to a single key and a single value shared by all heads (optionally computed on a
spatially down-sampled input). The projections are ordinary 1x1 / depthwise convolutions;
:class:`MultiQueryAttention` is only the weightless core between them, so tfmot quantizes the
projections as any other convolution and the TFLite converter sees reshapes, two batched
matrix products and a softmax. :class:`StandaloneBatchNorm` is the block's input
normalisation: a batch norm that follows no convolution (so QAT cannot fold it).
"""

import keras
from keras import ops

from keras_mobilenets import _checks


@keras.saving.register_keras_serializable(package="keras_mobilenets")
class MultiQueryAttention(keras.layers.Layer):
    """Multi-query attention of channels-last maps: ``softmax(q k^T / sqrt(d)) v`` per head.

    Takes ``[query, key, value]``: ``query`` of shape ``(batch, rows, cols, heads * d)``
    (channel ``h * d + i`` is element ``i`` of head ``h``), ``key`` of shape
    ``(batch, rows', cols', d)`` and ``value`` of shape ``(batch, rows', cols', dv)``, one
    key and value shared by every head and possibly smaller (down-sampled) than the query.
    Returns ``(batch, rows, cols, heads * dv)``, head-major like the query.

    Args:
        num_heads: Number of query heads, a positive int dividing the query's channels.

    Raises:
        ValueError: If ``num_heads`` is not a positive int, or the shapes do not fit.

    Example:
        >>> q, k, v = np.ones((1, 4, 4, 8)), np.ones((1, 2, 2, 4)), np.ones((1, 2, 2, 4))
        >>> MultiQueryAttention(num_heads=2)([q, k, v]).shape
        (1, 4, 4, 8)
    """

    # stride_endpoints: the output has the resolution of input 0 (the query), not the
    # coarser one of a down-sampled key / value.
    STRIDE_SOURCE = 0

    def __init__(self, num_heads, **kwargs):
        super().__init__(**kwargs)
        _checks.check_positive_int("num_heads", num_heads)
        self.num_heads = num_heads

    def _dims(self, input_shape):
        query, key, value = input_shape
        key_dim = key[-1]
        if query[-1] != self.num_heads * key_dim:
            raise ValueError(
                f"MultiQueryAttention: the query has {query[-1]} channels, but `num_heads` "
                f"({self.num_heads}) x the key's {key_dim} channels is "
                f"{self.num_heads * key_dim}."
            )
        return key_dim, value[-1]

    def build(self, input_shape):
        self._dims(input_shape)
        super().build(input_shape)

    def call(self, inputs):
        query, key, value = inputs
        key_dim, value_dim = self._dims([t.shape for t in inputs])
        shape = ops.shape(query)
        batch, rows, cols = shape[0], shape[1], shape[2]
        q = ops.reshape(query, (batch, -1, key_dim))  # (batch, rows * cols * heads, d)
        k = ops.reshape(key, (batch, -1, key_dim))
        v = ops.reshape(value, (batch, -1, value_dim))
        logits = ops.matmul(q * (float(key_dim) ** -0.5), ops.transpose(k, (0, 2, 1)))
        weights = ops.softmax(logits, axis=-1)
        out = ops.matmul(weights, v)
        return ops.reshape(out, (batch, rows, cols, self.num_heads * value_dim))

    def compute_output_shape(self, input_shape):
        query, _, value = input_shape
        return (*query[:-1], self.num_heads * value[-1])

    def count_macs(self):
        """Multiply-adds of the two matrix products (``q k^T`` and ``weights v``) for the
        built input sizes (used by ``keras_mobilenets.profiling``; 0 if sizes are unknown)."""
        query, key, value = (tuple(t.shape) for t in self.input)
        if None in query[1:3] or None in key[1:3]:
            return 0
        rows = query[1] * query[2] * self.num_heads
        keys = key[1] * key[2]
        return rows * keys * (key[-1] + value[-1])

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads}


@keras.saving.register_keras_serializable(package="keras_mobilenets")
class GELU(keras.layers.Layer):
    """Gaussian error linear unit, exact (erf) form as PyTorch's ``nn.GELU()``.

    A layer of its own (not ``Activation("gelu")``) so that the QAT bridge can give it a
    twin and an output quantizer (MobileNetV4-Hybrid-Large uses it throughout).

    Example:
        >>> GELU()(np.array([-1.0, 0.0, 1.0]))  # -> [-0.1587, 0.0, 0.8413]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def call(self, inputs):
        return ops.gelu(inputs, approximate=False)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="keras_mobilenets")
class StandaloneBatchNorm(keras.layers.BatchNormalization):
    """``BatchNormalization`` that does not follow a convolution (Mobile MQA's input norm).

    Computes exactly what ``keras.layers.BatchNormalization`` computes; its own class
    tells the QAT bridge that this batch norm cannot be folded into a preceding
    convolution: there it becomes a per-channel affine map with its moving statistics
    (frozen, as batch norms usually are in QAT fine-tuning) and quantized output.

    Example:
        >>> StandaloneBatchNorm(epsilon=1e-5, momentum=0.9)(np.ones((1, 2, 2, 4))).shape
        (1, 2, 2, 4)
    """

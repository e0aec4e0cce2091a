"""Batch normalization that trains with TensorFlow's fused kernel.

Keras 3's ``BatchNormalization`` computes its training-mode statistics and normalisation
with separate ops (mean, squared difference, mean, multiply, add and their gradients):
about half of a ShuffleNet V1 training step on a CPU
(``benchmarks/grouped_conv.py --profile``). TensorFlow's fused batch-norm kernel does the
same work in one op each way, 1.7-2x faster forward + backward at ShuffleNet's shapes.

The class is called ``BatchNormalization`` on purpose, as ``layers.grouped_conv.Conv2D``
is: Keras 3 ``.weights.h5`` files key each layer by its snake-cased class name, so files
written with ``keras.layers.BatchNormalization`` load into models that use this layer, and
back. It is registered as ``keras_mobilenets>BatchNormalization``; ``.keras`` files tell
the two apart.
"""

import keras

#: Smallest epsilon the fused kernel takes on every device (cuDNN's limit); below it the
#: layer runs Keras' own code. (``tf.nn.fused_batch_norm`` would raise it to 1.001e-5.)
MIN_EPSILON = 1e-5


@keras.saving.register_keras_serializable(package="keras_mobilenets")
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` that trains with TensorFlow's fused kernel.

    Same arguments, config, weights and results as ``BatchNormalization`` (training-mode
    outputs, gradients and moving statistics equal up to float32 rounding; inference is
    Keras' own code). The fused kernel runs when Keras runs on TensorFlow, in training
    (``training=True`` and a trainable layer), for 4-D float32 channels-last inputs without
    a mask, renorm or ``synchronized``, with ``epsilon >= MIN_EPSILON``; everything else is
    ``BatchNormalization``'s own ``call``.

    Example:
        >>> layer = BatchNormalization(epsilon=1e-3, momentum=0.99)
        >>> layer(np.ones((2, 4, 4, 8), "float32"), training=True).shape
        (2, 4, 4, 8)
    """

    def _fused_applies(self, inputs, training, mask):
        # Keras before 3.14 has no batch renormalization (no ``renorm`` attribute).
        renorm = getattr(self, "renorm", False)
        return (
            bool(training) and self.trainable and mask is None and not renorm
            and not self.synchronized and keras.backend.backend() == "tensorflow"
            and len(inputs.shape) == 4 and self.axis in (-1, 3)
            and keras.backend.standardize_dtype(inputs.dtype) == "float32"
            and self.compute_dtype == "float32" and self.epsilon >= MIN_EPSILON
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fused_applies(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        gamma = self.gamma if self.scale else tf.ones(channels)
        beta = self.beta if self.center else tf.zeros(channels)
        empty = tf.constant([], "float32")
        outputs, mean, variance = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=tf.convert_to_tensor(gamma), offset=tf.convert_to_tensor(beta),
            mean=empty, variance=empty, epsilon=self.epsilon, data_format="NHWC",
            is_training=True,
        )[:3]
        # The kernel returns the Bessel-corrected variance; Keras' moving variance averages
        # the biased one (what the normalisation divides by).
        count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), "float32")
        variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
        )
        return outputs

"""Grouped convolution that trains at the cost of its multiply-adds, on every device.

ShuffleNet V1 (Zhang et al. 2017, arXiv:1707.01083, section 3.1) uses grouped 1x1
convolutions. Keras 3's ``Conv2D(groups=g)`` on the TensorFlow backend compiles every
grouped convolution with XLA (``jit_compile=True``, a workaround for old TensorFlow CPU
kernels), and the gradient of that compiled op is ~40x slower on CPUs than an ungrouped
convolution of the same size: a ShuffleNet g=8 training step took 17x the time of g=1 at
equal multiply-adds.

This layer runs one of two kernels, chosen once per process by what the running
TensorFlow can do (``native_grouped_gradient_supported``), never by the CPU's brand:

- **native**: TensorFlow's own grouped kernel (``tf.nn.convolution`` with an input
  ``groups`` times wider than the kernel), fast in both directions where it has a CPU
  gradient: TensorFlow's oneDNN kernels (on by default on x86 CPUs with AVX-512
  VNNI/BF16 or AMX, or with ``TF_ENABLE_ONEDNN_OPTS=1``).
- **split**: one convolution per group on its slice of the channels, concatenated (1x1
  convolutions with stride 1 as one matmul per group). Its gradient exists on every
  device. TensorFlow's Eigen kernels (oneDNN off: AVX2-only CPUs, ARM, or
  ``TF_ENABLE_ONEDNN_OPTS=0``) compute the native grouped convolution forward but have
  no gradient for it ("Gradients for grouped convolutions are not supported on CPU").

Both give the same outputs and gradients up to float32 rounding;
``benchmarks/grouped_conv.py`` measures them against other formulations and times
ShuffleNet training steps with each.

An exported file must not depend on the machine that wrote it: exporters trace the model
inside ``exporting()``, where every grouped convolution is TensorFlow's one native op
(the converters never run TensorFlow's kernels, and need no gradient), so a ShuffleNet's
TFLite file has the same ops with oneDNN on or off.

The class is called ``Conv2D`` on purpose: Keras 3 ``.weights.h5`` files key each layer by
its snake-cased class name and rank (``layers/conv2d_7``), so only this name lets files
written by builders that used ``keras.layers.Conv2D`` load into ShuffleNets that use this
layer (and back). It is registered as ``keras_mobilenets>Conv2D``; ``.keras`` files tell
the two apart.
"""

import contextlib
import contextvars
import functools

import keras

#: The two kernels ``Conv2D`` chooses between (see the module docstring).
KERNELS = ("native", "split")

_EXPORTING = contextvars.ContextVar("keras_mobilenets_grouped_conv_exporting", default=False)


@functools.cache
def native_grouped_gradient_supported():
    """Whether this TensorFlow computes the gradient of a grouped convolution on the CPU.

    Calls TensorFlow's two convolution backprop kernels (input and filter) for one tiny
    grouped convolution on ``/CPU:0``, eagerly, once per process (about a millisecond;
    later calls return the cached answer). True where
    TensorFlow's oneDNN kernels are on, False with its Eigen kernels. The CPU decides for
    every device: a model built on a GPU machine may still run its steps on the CPU.

    Returns:
        bool: True when ``tf.nn.convolution``'s grouped gradient runs on the CPU.

    Example:
        >>> native_grouped_gradient_supported() in (True, False)
        True
    """
    import tensorflow as tf

    # The backprop kernels are called directly: gradient tapes are paused in init_scope
    # (which lifts the probe out of a model's graph being traced).
    with tf.init_scope(), tf.device("/CPU:0"):
        inputs = tf.ones((1, 2, 2, 4))
        kernel = tf.ones((1, 1, 2, 4))
        try:
            tf.raw_ops.Conv2DBackpropInput(
                input_sizes=tf.shape(inputs), filter=kernel, out_backprop=inputs,
                strides=[1, 1, 1, 1], padding="VALID")
            tf.raw_ops.Conv2DBackpropFilter(
                input=inputs, filter_sizes=tf.shape(kernel), out_backprop=inputs,
                strides=[1, 1, 1, 1], padding="VALID")
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
            return False
    return True


@contextlib.contextmanager
def exporting():
    """Trace grouped convolutions as TensorFlow's native op, for a file converter.

    Inside this context ``grouped_kernel()`` is ``"native"`` on every machine, so a graph
    traced for export (TFLite, ONNX) holds one grouped ``Conv2D`` op per layer whatever
    TensorFlow's CPU kernels are. Only for graphs that a converter reads without running
    them in TensorFlow or taking their gradient: TensorFlow's Eigen kernels have no
    gradient for that op.

    Example:
        >>> with exporting():
        ...     grouped_kernel()
        'native'
    """
    token = _EXPORTING.set(True)
    try:
        yield
    finally:
        _EXPORTING.reset(token)


def grouped_kernel():
    """The kernel ``Conv2D`` runs for ``groups > 1`` on TensorFlow: ``"native"`` or ``"split"``.

    ``"native"`` where this TensorFlow has the native op's CPU gradient, or inside
    ``exporting()``; ``"split"`` otherwise.

    Example:
        >>> grouped_kernel() in KERNELS
        True
    """
    if _EXPORTING.get() or native_grouped_gradient_supported():
        return "native"
    return "split"


@keras.saving.register_keras_serializable(package="keras_mobilenets")
class Conv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` whose grouped convolution trains on every TensorFlow device.

    Same arguments, config, weights (``kernel`` of shape ``(rows, cols, in // groups,
    filters)``, then ``bias``) and outputs as ``Conv2D``, so weights move between the two
    by name. On the TensorFlow backend with ``groups > 1`` and channels-last data it runs
    TensorFlow's native grouped kernel where that has a gradient, else one convolution per
    group (``grouped_kernel()`` says which); everything else is ``Conv2D``'s own
    ``ops.conv``.

    Args:
        filters: Output channels, divisible by ``groups``.
        kernel_size: Kernel size (1 for ShuffleNet's pointwise convolutions).
        **kwargs: Any other ``keras.layers.Conv2D`` argument (``groups``, ``strides``,
            ``padding``, ``use_bias``, ...).

    Raises:
        ValueError: As ``Conv2D`` does, e.g. when ``filters`` or the input channels are not
            divisible by ``groups``.

    Example:
        >>> layer = Conv2D(12, 1, groups=3, use_bias=False)
        >>> layer(np.zeros((1, 8, 8, 6), "float32")).shape
        (1, 8, 8, 12)
    """

    def convolution_op(self, inputs, kernel):
        tensorflow_grouped = (
            self.groups > 1
            and self.data_format == "channels_last"
            and keras.backend.backend() == "tensorflow"
        )
        if not tensorflow_grouped:
            return super().convolution_op(inputs, kernel)
        if grouped_kernel() == "native":
            return self._convolve(inputs, kernel)  # the whole grouped convolution at once
        return self._split(inputs, kernel)

    def _convolve(self, inputs, kernel):
        """TensorFlow's convolution with this layer's strides, padding and dilation."""
        import tensorflow as tf

        return tf.nn.convolution(
            inputs, kernel, strides=list(self.strides), padding=self.padding.upper(),
            dilations=list(self.dilation_rate),
        )

    def _split(self, inputs, kernel):
        import tensorflow as tf

        pairs = zip(tf.split(inputs, self.groups, axis=-1),
                    tf.split(kernel, self.groups, axis=-1))
        pointwise = (tuple(self.kernel_size) == (1, 1) and tuple(self.strides) == (1, 1))
        if not pointwise:
            return tf.concat([self._convolve(x, k) for x, k in pairs], axis=-1)
        # A 1x1 convolution with stride 1 is a matmul over the pixels (padding and
        # dilation change nothing): Eigen's matmul and its gradient are faster than its
        # 1x1 convolution's.
        shape = tf.shape(inputs)
        outputs = tf.concat([
            tf.matmul(tf.reshape(x, (-1, x.shape[-1])), k[0, 0]) for x, k in pairs
        ], axis=-1)
        return tf.reshape(outputs, tf.concat([shape[:-1], [self.filters]], axis=0))

"""Grouped convolution that trains at the cost of its multiply-adds on CPUs.

ShuffleNet V1 (Zhang et al. 2017, arXiv:1707.01083, section 3.1) uses grouped 1x1
convolutions. Keras 3's ``Conv2D(groups=g)`` on the TensorFlow backend compiles every
grouped convolution with XLA (``jit_compile=True``, a workaround for old TensorFlow CPU
kernels), and the gradient of that compiled op is ~40x slower on CPUs than an ungrouped
convolution of the same size: a ShuffleNet g=8 training step took 17x the time of g=1 at
equal multiply-adds. TensorFlow's own grouped kernel (``tf.nn.convolution`` with an input
``groups`` times wider than the kernel, oneDNN on CPU) is correct and fast in both
directions; ``benchmarks/grouped_conv.py`` measures it against split + per-group
convolutions + concat, one einsum, per-group matmuls and a block-diagonal dense kernel.

The class is called ``Conv2D`` on purpose: Keras 3 ``.weights.h5`` files key each layer by
its snake-cased class name and rank (``layers/conv2d_7``), so only this name lets files
written by builders that used ``keras.layers.Conv2D`` load into ShuffleNets that use this
layer (and back). It is registered as ``keras_mobilenets>Conv2D``; ``.keras`` files tell
the two apart.
"""

import keras


@keras.saving.register_keras_serializable(package="keras_mobilenets")
class Conv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` whose grouped convolution runs TensorFlow's native kernel.

    Same arguments, config, weights (``kernel`` of shape ``(rows, cols, in // groups,
    filters)``, then ``bias``) and outputs as ``Conv2D``, so weights move between the two
    by name. Only the TensorFlow backend with ``groups > 1`` and channels-last data takes
    the native path; everything else is ``Conv2D``'s own ``ops.conv``.

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
        native = (
            self.groups > 1
            and self.data_format == "channels_last"
            and keras.backend.backend() == "tensorflow"
        )
        if not native:
            return super().convolution_op(inputs, kernel)
        import tensorflow as tf

        return tf.nn.convolution(
            inputs,
            kernel,
            strides=list(self.strides),
            padding=self.padding.upper(),
            dilations=list(self.dilation_rate),
        )

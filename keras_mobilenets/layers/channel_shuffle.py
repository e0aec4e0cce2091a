"""Channel shuffle (ShuffleNet, Zhang et al. 2017, arXiv:1707.01083, section 3.1)."""

import keras
from keras import ops

from keras_mobilenets import _checks


@keras.saving.register_keras_serializable(package="keras_mobilenets")
class ChannelShuffle(keras.layers.Layer):
    """Interleaves the channels of ``groups`` groups (channels-last input).

    Channels are viewed as ``(groups, channels // groups)``, transposed and flattened, so
    that channel ``g * n + j`` moves to ``j * groups + g``.

    Args:
        groups: Number of groups, a positive int dividing the channel count.

    Raises:
        ValueError: If ``groups`` is not a positive int, or the input's channel count is
            not divisible by ``groups``.

    Example:
        >>> ChannelShuffle(groups=2)(np.arange(4.0).reshape(1, 1, 1, 4))  # [0, 2, 1, 3]
    """

    def __init__(self, groups, **kwargs):
        super().__init__(**kwargs)
        _checks.check_positive_int("groups", groups)
        self.groups = int(groups)

    def build(self, input_shape):
        channels = input_shape[-1]
        if len(input_shape) != 4:
            raise ValueError(
                f"ChannelShuffle expects a 4D channels-last input, got shape {input_shape}."
            )
        if channels is None or channels % self.groups:
            raise ValueError(
                f"ChannelShuffle: the input's channel count ({channels}) must be divisible by "
                f"`groups` ({self.groups})."
            )
        self.built = True

    def call(self, inputs):
        shape = ops.shape(inputs)
        channels = inputs.shape[-1]
        x = ops.reshape(inputs, (-1, shape[1], shape[2], self.groups, channels // self.groups))
        x = ops.transpose(x, (0, 1, 2, 4, 3))
        return ops.reshape(x, (-1, shape[1], shape[2], channels))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}

"""Channel split (ShuffleNetV2, Ma et al. 2018, arXiv:1807.11164, section 4).

A ShuffleNetV2 basic unit splits its input's channels into two halves; each half is one
``ChannelSplit`` layer (a single-output layer, so every tensor of the graph comes from a
named layer and tools that walk the graph see a plain slice).
"""

import keras

from keras_mobilenets import _checks


@keras.saving.register_keras_serializable(package="keras_mobilenets")
class ChannelSplit(keras.layers.Layer):
    """Returns part ``index`` of the input's channels cut into ``splits`` equal parts.

    Args:
        splits: Number of equal parts, a positive int dividing the channel count.
        index: Which part to return, ``0 <= index < splits``.

    Raises:
        ValueError: If ``splits`` or ``index`` is out of range, or the input's channel
            count is not divisible by ``splits``.

    Example:
        >>> ChannelSplit(splits=2, index=1)(np.arange(4.0).reshape(1, 1, 1, 4))  # [2, 3]
    """

    def __init__(self, splits=2, index=0, **kwargs):
        super().__init__(**kwargs)
        _checks.check_positive_int("splits", splits)
        _checks.check_int("index", index, minimum=0, maximum=splits - 1)
        self.splits = int(splits)
        self.index = int(index)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % self.splits:
            raise ValueError(
                f"ChannelSplit: the input's channel count ({channels}) must be divisible by "
                f"`splits` ({self.splits})."
            )
        self.built = True

    def call(self, inputs):
        width = inputs.shape[-1] // self.splits
        return inputs[..., self.index * width : (self.index + 1) * width]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // self.splits)

    def get_config(self):
        return {**super().get_config(), "splits": self.splits, "index": self.index}

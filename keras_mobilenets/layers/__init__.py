"""Small registered custom layers."""

from keras_mobilenets.layers import grouped_conv
from keras_mobilenets.layers.activations import HardSigmoid, HardSwish
from keras_mobilenets.layers.attention import GELU, MultiQueryAttention, StandaloneBatchNorm
from keras_mobilenets.layers.batch_norm import BatchNormalization
from keras_mobilenets.layers.channel_shuffle import ChannelShuffle
from keras_mobilenets.layers.channel_split import ChannelSplit

__all__ = [
    "BatchNormalization", "ChannelShuffle", "ChannelSplit", "GELU", "HardSigmoid", "HardSwish",
    "MultiQueryAttention", "StandaloneBatchNorm", "grouped_conv",
]

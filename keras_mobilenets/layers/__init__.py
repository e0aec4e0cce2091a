"""Small registered custom layers."""

from keras_mobilenets.layers.activations import HardSigmoid, HardSwish
from keras_mobilenets.layers.channel_shuffle import ChannelShuffle

__all__ = ["ChannelShuffle", "HardSigmoid", "HardSwish"]

"""Public builders (validate arguments, take a spec, build backbone and top) and the
model registry that lists them with every variant's reference numbers and checkpoints."""

from keras_mobilenets.models.mobilenet_v1 import MobileNet
from keras_mobilenets.models.mobilenet_v2 import MobileNetV2
from keras_mobilenets.models.mobilenet_v3 import MobileNetV3Large, MobileNetV3Small
from keras_mobilenets.models.mobilenet_v4 import (
    MobileNetV4ConvLarge,
    MobileNetV4ConvMedium,
    MobileNetV4ConvSmall,
    MobileNetV4HybridLarge,
    MobileNetV4HybridMedium,
)
from keras_mobilenets.models.shufflenet import ShuffleNet, ShuffleNetV2
from keras_mobilenets.models import catalog  # noqa: F401  (registers every variant)

__all__ = [
    "MobileNet",
    "MobileNetV2",
    "MobileNetV3Large",
    "MobileNetV3Small",
    "MobileNetV4ConvLarge",
    "MobileNetV4ConvMedium",
    "MobileNetV4ConvSmall",
    "MobileNetV4HybridLarge",
    "MobileNetV4HybridMedium",
    "ShuffleNet",
    "ShuffleNetV2",
]

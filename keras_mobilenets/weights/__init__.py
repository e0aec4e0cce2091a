"""Pretrained weights: argument checks and loading.

``weights`` is ``None`` (random initialisation), ``"imagenet"`` or the path of a weights
file. Nothing here runs at import time.
"""

import dataclasses
import os
from typing import Optional


@dataclasses.dataclass(frozen=True)
class WeightsRequest:
    """The variant a builder is about to build, as the weights registry needs it.

    Attributes:
        family: "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", ...
        alpha: Width multiplier.
        rows: Input rows (None when the input size is not fixed).
        cols: Input columns.
        channels: Input channels.
        include_top: Whether the classification top is built.
        classes: Number of classes of the top.
        minimalistic: MobileNetV3's minimalistic variant.
        depth_multiplier: MobileNet V1's depthwise multiplier.
        classifier_activation: Activation of the top.
    """

    family: str
    alpha: float = 1.0
    rows: Optional[int] = None
    cols: Optional[int] = None
    channels: int = 3
    include_top: bool = True
    classes: int = 1000
    minimalistic: bool = False
    depth_multiplier: int = 1
    classifier_activation: object = "softmax"


def check_weights_argument(weights):
    """Raises ``ValueError`` unless ``weights`` is None, "imagenet" or an existing file."""
    if weights is None or weights == "imagenet":
        return
    if isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights):
        return
    raise ValueError(
        "`weights` must be None (random initialisation), 'imagenet' or the path of an "
        f"existing weights file, got {weights!r}."
    )


def check_request(weights, request):
    """Checks, before building, that ``weights`` can be loaded into ``request``'s variant."""
    if weights == "imagenet":
        raise NotImplementedError(
            "weights='imagenet' is not available yet in keras_mobilenets; build with "
            "weights=None, or pass the path of a weights file."
        )


def load_weights(model, weights, request):
    """Loads ``weights`` (a file path) into ``model``."""
    path = os.fspath(weights)
    if path.endswith(".weights.h5"):
        model.load_weights(path)
    else:
        model.load_weights(path, skip_mismatch=False)

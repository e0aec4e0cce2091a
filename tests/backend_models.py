"""The small models the backend tests build, shared by the parent test and its script.

Both sides build the same architectures from this table, so weights saved under one
backend load by position under another (``tests/scripts/backend_check.py``).
"""

import numpy as np

SIZE = 32
HEAD_SIZE = 64
NUM_CLASSES = 10
SSD_CLASSES = 3
SEG_CLASSES = 4
#: Small extra blocks for SSDLite (the default is 512/256/256/128).
SSD_EXTRA = (32, 16, 16, 8)
#: Models saved as ``.keras`` under TensorFlow and loaded on the other backend.
KERAS_FROM_TF = ("ssdlite",)
#: Models saved as ``.keras`` on the other backend and loaded under TensorFlow: every
#: custom layer (HardSwish, HardSigmoid, ChannelShuffle, ChannelSplit) and a resize.
KERAS_TO_TF = ("shufflenet_v1", "shufflenet_v2", "lraspp")


def builders():
    """``{name: zero-argument builder}`` of every family at a small size."""
    from keras_mobilenets import detection, models, segmentation

    image = (SIZE, SIZE, 3)
    head = (HEAD_SIZE, HEAD_SIZE, 3)
    small = {"alpha": 0.75}
    top = {"classes": NUM_CLASSES, "classifier_activation": None}  # logits: sharper checks
    return {
        "mobilenet_v1": lambda: models.MobileNet(image, alpha=0.25, **top),
        "mobilenet_v2": lambda: models.MobileNetV2(image, alpha=0.35, **top),
        "mobilenet_v3_small": lambda: models.MobileNetV3Small(image, alpha=0.75, **top),
        "mobilenet_v3_large": lambda: models.MobileNetV3Large(
            image, alpha=0.75, minimalistic=True, **top),
        "shufflenet_v1": lambda: models.ShuffleNet(image, groups=3, scale=0.25, **top),
        "shufflenet_v2": lambda: models.ShuffleNetV2(image, scale=0.5, **top),
        "ssdlite": lambda: detection.SSDLite(
            "MobileNetV3Small", num_classes=SSD_CLASSES, input_shape=head,
            backbone_kwargs=small, extra_channels=SSD_EXTRA),
        "lraspp": lambda: segmentation.LRASPP(
            "MobileNetV3Small", num_classes=SEG_CLASSES, input_shape=head, inter_channels=16,
            **small),
    }


def fit_builders():
    """``{name: builder}`` of the families only trained (one ``fit`` step) on each backend."""
    from keras_mobilenets import models

    image = (SIZE, SIZE, 3)
    top = {"classes": NUM_CLASSES, "classifier_activation": None}
    return {
        "shufflenet_v1_g1": lambda: models.ShuffleNet(image, groups=1, scale=0.25, **top),
        "shufflenet_v1_g8": lambda: models.ShuffleNet(image, groups=8, scale=0.25, **top),
        "mobilenet_v4_conv": lambda: models.MobileNetV4ConvSmall(image, **top),
        "mobilenet_v4_hybrid": lambda: models.MobileNetV4HybridMedium(image, **top),
    }


def inputs(name, batch=2, seed=0):
    """A float32 batch of [0, 255] images of the size model ``name`` takes."""
    size = HEAD_SIZE if name in ("ssdlite", "lraspp") else SIZE
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 255.0, size=(batch, size, size, 3)).astype("float32")

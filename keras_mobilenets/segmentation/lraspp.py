"""Lite Reduced Atrous Spatial Pyramid Pooling (LR-ASPP), a semantic segmentation head.

From "Searching for MobileNetV3" (Howard et al. 2019, arXiv:1905.02244), section 6.3: the
last stage of the backbone runs dilated (output stride 16); a 1x1 convolution + batch norm
+ ReLU branch on those features is gated by a squeeze-and-excitation-like branch (pooling,
1x1 convolution, sigmoid); the product is upsampled bilinearly to output stride 8,
classified by a 1x1 convolution and added to a 1x1 classifier of the stride-8 features;
the sum is upsampled bilinearly to the input size.

The paper pools with a large kernel (49x49 with strides 16x20 at 1024x2048); torchvision's
``lraspp_mobilenet_v3_large`` pools globally, which is the default here
(``pooling="global"``). Built like torchvision's (MobileNetV3Large, 21 classes) the model has
the same 3,221,538 trainable parameters.

torchvision's checkpoint (``lraspp_mobilenet_v3_large-d234d4ea.pth``, 21 VOC classes, 57.9
mIoU) loads with ``weights="voc"``, and any torchvision LR-ASPP state dict with
``weights="<file>.pth"``: the backbone is then built with torchvision's layout
(``layout="torchvision"``: symmetric padding, ImageNet mean / std normalisation of [0, 255]
pixels inside) and "low" is the first block output at stride 8 (``low_tap="first"``,
MobileNetV3-Large's ``expanded_conv_3_project_bn``), as torchvision taps it.

The head knows the backbone only through ``backbone.stride_endpoints``: "low" is the last
block output at stride 8 (MobileNetV3-Large's 40-channel ``expanded_conv_5_add``), "high"
the last layer at stride 16 (its 960-channel ``conv_1_act``). The result is one flat
functional graph of named standard layers, so ``quantization.quantize_model`` and
``export.to_tflite`` take it as they take the classifiers.
"""

import os

import keras

from keras_mobilenets import _checks
from keras_mobilenets.backbone import headless_backbone, stride_endpoints
from keras_mobilenets.weights import torch_checkpoint

OUTPUT_STRIDE = 16
LOW_STRIDE = 8
DEFAULT_INPUT_SHAPE = (512, 512, 3)
# torchvision's head uses PyTorch's BatchNorm2d defaults: eps 1e-5, momentum 0.1 (0.9 in
# Keras' convention).
_BN_EPSILON = 1e-5
_BN_MOMENTUM = 0.9


def check_pooling(pooling):
    """Validates ``pooling``; returns None (global) or ``(kernel, strides)`` as int pairs.

    Raises:
        ValueError: Unless ``pooling`` is "global" or ``(kernel, strides)`` with each an
            int >= 1 or a pair of them.

    Example:
        >>> check_pooling((49, (16, 20)))
        ((49, 49), (16, 20))
    """
    if isinstance(pooling, str) and pooling == "global":
        return None
    if isinstance(pooling, (tuple, list)) and len(pooling) == 2:
        kernel, strides = _checks.int_pair(pooling[0]), _checks.int_pair(pooling[1])
        if kernel is not None and strides is not None:
            return kernel, strides
    raise ValueError(
        "`pooling` must be 'global' or (kernel, strides) with kernel and strides each an "
        f"int >= 1 or a pair of ints >= 1, e.g. (49, (16, 20)); got {pooling!r}."
    )


def _static_input_shape(backbone, input_shape):
    """The head's (rows, cols, channels); the spatial sizes must be known."""
    if input_shape is None:
        input_shape = (
            tuple(backbone.input_shape[1:]) if isinstance(backbone, keras.Model)
            else DEFAULT_INPUT_SHAPE
        )
    _checks.check_input_shape(input_shape)
    if input_shape[0] is None or input_shape[1] is None:
        raise ValueError(
            "LRASPP needs a static input size (its bilinear upsampling resizes to the exact "
            "stride-8 and input sizes), got input_shape="
            f"{tuple(input_shape)!r}. Pass e.g. input_shape=(512, 512, 3); to run at another "
            "size, build a second LRASPP there and copy the weights (`set_weights`)."
        )
    return tuple(input_shape)


def _gate(high, pooling, channels):
    """pool -> 1x1 conv (no bias) -> sigmoid; a pooled (not global) gate is resized back."""
    size = tuple(high.shape[1:3])
    if pooling is None:
        x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="lraspp_gate_pool")(high)
    else:
        kernel, strides = pooling
        if kernel[0] > size[0] or kernel[1] > size[1]:
            raise ValueError(
                f"`pooling` kernel {kernel} is larger than the stride-{OUTPUT_STRIDE} feature "
                f"map {size} of this input size; pick a kernel of at most {size} (got "
                f"pooling={(kernel, strides)!r})."
            )
        x = keras.layers.AveragePooling2D(
            kernel, strides=strides, padding="valid", name="lraspp_gate_pool"
        )(high)
    x = keras.layers.Conv2D(channels, 1, use_bias=False, name="lraspp_gate_conv")(x)
    x = keras.layers.Activation("sigmoid", name="lraspp_gate_sigmoid")(x)
    if pooling is not None:
        x = keras.layers.Resizing(*size, interpolation="bilinear", name="lraspp_gate_resize")(x)
    return x


LOW_TAPS = ("last", "first")
#: ``weights`` keyword -> torchvision checkpoint of the whole model.
WEIGHTS_KEYWORDS = ("voc",)
TORCHVISION_FAMILY = "lraspp_mobilenet_v3_large"


def _model_weights(weights, backbone, num_classes):
    """The torchvision checkpoint (or state dict file) of the whole model, or None when
    ``weights`` (None, "imagenet", a Keras file, ...) is the backbone's."""
    from keras_mobilenets.models import catalog

    if isinstance(weights, str) and weights in WEIGHTS_KEYWORDS:
        found = catalog.HEAD_CHECKPOINTS[("lraspp", weights)]
        if num_classes != 21:
            raise ValueError(
                f"`num_classes` must be 21 (VOC) with weights={weights!r}, got {num_classes!r}."
            )
    elif isinstance(weights, (str, os.PathLike)) and os.fspath(weights).endswith(
            torch_checkpoint.TORCH_SUFFIXES):
        found = os.fspath(weights)
    else:
        return None
    if not (isinstance(backbone, str) and backbone == "MobileNetV3Large"):
        raise ValueError(
            f"`backbone` must be 'MobileNetV3Large' with torchvision's LR-ASPP weights "
            f"(weights={weights!r}), got {backbone!r}."
        )
    return found


def _load_model_weights(model, found):
    from keras_mobilenets.weights import torchvision

    if isinstance(found, str):
        torchvision.load_file(model, found, TORCHVISION_FAMILY)
    else:
        torchvision.load_checkpoint(model, found, include_top=True)


def LRASPP(
    backbone="MobileNetV3Large",
    *,
    num_classes=21,
    input_shape=None,
    inter_channels=128,
    pooling="global",
    name=None,
    weights=None,
    low_tap=None,
    **backbone_kwargs,
):
    """Builds an LR-ASPP segmentation model on a backbone of this package.

    Args:
        backbone: A builder name (``backbone.BACKBONES``: "MobileNetV3Large",
            "MobileNetV3Small", "MobileNetV2", "ShuffleNetV2", ...), built here without its
            top and with ``output_stride=16``; or such a model built by this package with
            ``include_top=False, output_stride=16``.
        num_classes: Number of segmentation classes (>= 1), background included.
        input_shape: ``(rows, cols, channels)`` with static sizes >= 32 (any sizes, also
            not divisible by 32). None (the default) takes the input shape of a backbone
            model, and ``(512, 512, 3)`` for a builder name.
        inter_channels: Channels of the stride-16 branch (>= 1); 128 in the paper.
        pooling: "global" (global average pooling, as torchvision) or ``(kernel, strides)``
            (average pooling with that kernel and strides, each an int or a pair, resized
            back bilinearly, as the paper's 49x49 / 16x20 at 1024x2048).
        name: Model name; default ``"lraspp_<backbone name>"``.
        weights: Weights of the whole model: "voc" (torchvision's
            ``lraspp_mobilenet_v3_large`` checkpoint, downloaded and converted) or the path
            of a torchvision LR-ASPP state dict (``.pth``, ``.safetensors``); both need
            ``backbone="MobileNetV3Large"``. Any other value (None, "imagenet", a Keras
            weights file) is the backbone's ``weights``.
        low_tap: Which stride-8 block output is "low": "last" (the stage's last block)
            or "first" (its first block, torchvision's tap). None (default): "first" with
            torchvision's weights, else "last".
        **backbone_kwargs: Builder arguments for a backbone name (``alpha``,
            ``minimalistic``, ``include_preprocessing``, ``layout``, ...).

    Returns:
        A functional ``keras.Model`` from images (the backbone's input range, [0, 255]
        with the default ``include_preprocessing=True``) to logits
        ``(batch, rows, cols, num_classes)``.

    Raises:
        ValueError: On an invalid argument (the message names it, the value and what is
            allowed), an unknown backbone, a backbone model without output stride 16, an
            input size that is not static, a pooling kernel larger than the stride-16
            feature map, or torchvision weights that do not fit.

    Example:
        >>> model = LRASPP("MobileNetV3Large", num_classes=21, input_shape=(512, 512, 3))
        >>> model.output_shape
        (None, 512, 512, 21)
    """
    _checks.check_positive_int("num_classes", num_classes)
    _checks.check_positive_int("inter_channels", inter_channels)
    _checks.check_choice("low_tap", low_tap, (None,) + LOW_TAPS)
    pooling = check_pooling(pooling)
    input_shape = _static_input_shape(backbone, input_shape)
    found = _model_weights(weights, backbone, num_classes)
    if found is not None:
        backbone_kwargs = {**backbone_kwargs, "layout": "torchvision"}
        low_tap = low_tap or "first"
    elif weights is not None:
        backbone_kwargs = {**backbone_kwargs, "weights": weights}
    features = headless_backbone(
        backbone, input_shape=input_shape, output_stride=OUTPUT_STRIDE, **backbone_kwargs
    )
    endpoints = stride_endpoints(features)
    if LOW_STRIDE not in endpoints:
        raise ValueError(
            f"`backbone` {features.name!r} has no block output at stride {LOW_STRIDE} "
            f"(strides found: {sorted(endpoints)})."
        )
    tap = endpoints[LOW_STRIDE]
    low = features.get_layer(tap.first_block if low_tap == "first" else tap.block).output
    high = features.get_layer(endpoints[OUTPUT_STRIDE].last).output
    L = keras.layers

    x = L.Conv2D(inter_channels, 1, use_bias=False, name="lraspp_cbr_conv")(high)
    x = L.BatchNormalization(epsilon=_BN_EPSILON, momentum=_BN_MOMENTUM, name="lraspp_cbr_bn")(x)
    x = L.ReLU(name="lraspp_cbr_relu")(x)
    x = L.Multiply(name="lraspp_gate_multiply")([x, _gate(high, pooling, inter_channels)])
    x = L.Resizing(*low.shape[1:3], interpolation="bilinear", name="lraspp_high_resize")(x)
    x = L.Conv2D(num_classes, 1, name="lraspp_high_classifier")(x)
    y = L.Conv2D(num_classes, 1, name="lraspp_low_classifier")(low)
    x = L.Add(name="lraspp_add")([y, x])
    logits = L.Resizing(*input_shape[:2], interpolation="bilinear", name="lraspp_logits")(x)
    model = keras.Model(features.input, logits, name=name or f"lraspp_{features.name}")
    if found is not None:
        _load_model_weights(model, found)
    return model

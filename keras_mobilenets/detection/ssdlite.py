"""SSDLite: SSD with depthwise separable prediction layers on a mobile backbone.

SSDLite is SSD (Liu et al. 2016, arXiv:1512.02325) with every regular convolution of the
prediction layers replaced by a depthwise separable one (MobileNetV2, Sandler et al.
2018, arXiv:1801.04381, Section 6.2). The MobileNetV3 paper (Howard et al. 2019,
arXiv:1905.02244, Section 6.3) attaches it to the expansion layer of the last stride-16
block and to the last stride-32 layer, with the last stage at half width ("reduced
tail"). The layout follows torchvision's ``ssdlite320_mobilenet_v3_large``:

* taps: the backbone's ``stride_endpoints(...)[16].last`` and ``[32].last`` (for
  MobileNetV3-Large the 672-channel C4 expansion and the last 1x1 convolution);
* four extra blocks (1x1 conv to half width -> 3x3 depthwise stride 2 -> 1x1 conv, each
  with batch norm and ReLU6) of 512, 256, 256 and 128 channels;
* on each of the 6 maps a box head and a class head: 3x3 depthwise + batch norm + ReLU6,
  then a 1x1 convolution with bias; convolutions initialised N(0, 0.03), biases 0;
* batch norm epsilon 0.001 and momentum 0.97 (torchvision's momentum 0.03).

The model is one flat functional graph on the backbone's input (every node a named
standard layer), so ``quantization.quantize_model`` and ``export.to_tflite`` take it as it
is. It outputs the raw predictions, a dict:

* ``"boxes"``: float32 ``(batch, num_boxes, 4)`` box deltas to the default boxes
  (``boxes.BoxCoder``);
* ``"classes"``: float32 ``(batch, num_boxes, num_classes + 1)`` class logits, index 0 the
  background.

``postprocess.SSDPostprocess`` turns them into detections (``inference_model`` attaches it).

torchvision's COCO checkpoint (``ssdlite320_mobilenet_v3_large_coco-a79551df.pth``, 21.3
box mAP) loads with ``weights="coco"``, any torchvision SSDLite state dict with
``weights="<file>.pth"``: MobileNetV3-Large is then built with torchvision's layout and
``reduced_tail=True``, the extra blocks pad their strided depthwise convolutions
symmetrically, and the model maps [0, 255] pixels to [-1, 1] first, as torchvision does.

Example:
    >>> model = SSDLite("MobileNetV3Large", num_classes=90,
    ...                 backbone_kwargs={"reduced_tail": True})   # torchvision's config
    >>> model.output_shape   # outputs in key order: "boxes", "classes"
    [(None, 3234, 4), (None, 3234, 91)]
"""

import os

import keras

from keras_mobilenets import _checks
from keras_mobilenets.backbone import headless_backbone, stride_endpoints
from keras_mobilenets.detection.anchors import DEFAULT_ASPECT_RATIOS, DefaultBoxes
from keras_mobilenets.detection.heads import PREFIX, head_layers  # noqa: F401  (re-exported)
from keras_mobilenets.weights import torch_checkpoint

EXTRA_CHANNELS = (512, 256, 256, 128)
TAP_STRIDES = (16, 32)
MIN_INPUT_SIZE = _checks.MIN_INPUT_SIZE
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.97
INIT_STDDEV = 0.03
#: ``weights`` keyword -> torchvision checkpoint of the whole model.
WEIGHTS_KEYWORDS = ("coco",)
TORCHVISION_FAMILY = "ssdlite320_mobilenet_v3_large"


def _check_input_shape(input_shape, backbone):
    if input_shape is None and isinstance(backbone, keras.Model):
        input_shape = tuple(backbone.input_shape[1:])
    if (
        not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3
        or not all(_checks.is_int(v) for v in input_shape)
        or min(input_shape[:2]) < MIN_INPUT_SIZE or input_shape[2] < 1
    ):
        raise ValueError(
            "SSDLite lays its default boxes on feature maps of a fixed size: `input_shape` must "
            f"be (rows, cols, channels) with rows and cols ints >= {MIN_INPUT_SIZE} (the stride-32 "
            "map then has at least 1x1 cells and each extra block halves it, rounding up) and "
            f"channels >= 1, got {input_shape!r}."
        )
    return tuple(int(v) for v in input_shape)


def _check_extra_channels(extra_channels):
    if not isinstance(extra_channels, (tuple, list)) or not all(
        _checks.is_int(c) and c >= 2 for c in extra_channels
    ):
        raise ValueError(
            "`extra_channels` must be a sequence of ints >= 2 (the outputs of the extra "
            f"blocks, e.g. {EXTRA_CHANNELS}), got {extra_channels!r}."
        )
    return tuple(int(c) for c in extra_channels)


def _conv_init():
    return keras.initializers.RandomNormal(stddev=INIT_STDDEV)


def _bn_relu6(x, name, bn_epsilon, bn_momentum):
    x = keras.layers.BatchNormalization(
        epsilon=bn_epsilon, momentum=bn_momentum, name=f"{name}_bn"
    )(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu6")(x)


def extra_block(x, filters, name, bn_epsilon=BN_EPSILON, bn_momentum=BN_MOMENTUM,
                symmetric=False):
    """1x1 conv to ``filters // 2`` -> 3x3 depthwise stride 2 -> 1x1 conv to ``filters``.

    Each convolution (no bias) is followed by batch norm and ReLU6. Layer names start
    with ``name`` (``{name}_expand``, ``{name}_depthwise``, ``{name}_project``). With
    ``symmetric`` the depthwise convolution pads one zero on every side (layer
    ``{name}_depthwise_pad``, torchvision's padding) instead of TF's "same".

    Example:
        >>> extra_block(keras.Input((10, 10, 480)), 512, "ssdlite_extra_1").shape
        (None, 5, 5, 512)
    """
    x = keras.layers.Conv2D(
        filters // 2, 1, use_bias=False, kernel_initializer=_conv_init(), name=f"{name}_expand"
    )(x)
    x = _bn_relu6(x, f"{name}_expand", bn_epsilon, bn_momentum)
    if symmetric:
        x = keras.layers.ZeroPadding2D(1, name=f"{name}_depthwise_pad")(x)
    x = keras.layers.DepthwiseConv2D(
        3, strides=2, padding="valid" if symmetric else "same", use_bias=False,
        depthwise_initializer=_conv_init(), name=f"{name}_depthwise",
    )(x)
    x = _bn_relu6(x, f"{name}_depthwise", bn_epsilon, bn_momentum)
    x = keras.layers.Conv2D(
        filters, 1, use_bias=False, kernel_initializer=_conv_init(), name=f"{name}_project"
    )(x)
    return _bn_relu6(x, f"{name}_project", bn_epsilon, bn_momentum)


def prediction_block(x, boxes, values, name, bn_epsilon=BN_EPSILON, bn_momentum=BN_MOMENTUM):
    """3x3 depthwise + batch norm + ReLU6, 1x1 conv (with bias), reshaped to ``(cells * boxes, values)``.

    Example:
        >>> prediction_block(keras.Input((5, 5, 256)), 6, 4, "ssdlite_box_2").shape
        (None, 150, 4)
    """
    rows, cols = x.shape[1:3]
    x = keras.layers.DepthwiseConv2D(
        3, padding="same", use_bias=False, depthwise_initializer=_conv_init(),
        name=f"{name}_depthwise",
    )(x)
    x = _bn_relu6(x, f"{name}_depthwise", bn_epsilon, bn_momentum)
    x = keras.layers.Conv2D(
        boxes * values, 1, kernel_initializer=_conv_init(), bias_initializer="zeros",
        name=f"{name}_conv",
    )(x)
    return keras.layers.Reshape((rows * cols * boxes, values), name=f"{name}_reshape")(x)


def _model_weights(weights, backbone, num_classes):
    """The torchvision checkpoint (or state dict file) of the whole model, or None."""
    from keras_mobilenets.models import catalog

    if weights is None:
        return None
    if isinstance(weights, str) and weights in WEIGHTS_KEYWORDS:
        found = catalog.HEAD_CHECKPOINTS[("ssdlite", weights)]
        if num_classes != 90:
            raise ValueError(
                f"`num_classes` must be 90 (COCO, background not counted) with "
                f"weights={weights!r}, got {num_classes!r}."
            )
    elif isinstance(weights, (str, os.PathLike)) and os.fspath(weights).endswith(
            torch_checkpoint.TORCH_SUFFIXES) and os.path.isfile(os.fspath(weights)):
        found = os.fspath(weights)
    else:
        raise ValueError(
            f"`weights` must be None, one of {WEIGHTS_KEYWORDS} or the path of an existing "
            f"torchvision SSDLite state dict (.pth, .safetensors), got {weights!r}. Backbone "
            "weights go in `backbone_kwargs`."
        )
    if not (isinstance(backbone, str) and backbone == "MobileNetV3Large"):
        raise ValueError(
            f"`backbone` must be 'MobileNetV3Large' with torchvision's SSDLite weights "
            f"(weights={weights!r}), got {backbone!r}."
        )
    return found


def _torchvision_backbone_kwargs(backbone_kwargs, input_shape):
    """Backbone arguments for torchvision's layout: [0, 255] -> [-1, 1] in front of a
    MobileNetV3-Large with torchvision's layout and (by default) the reduced tail."""
    image = keras.Input(shape=input_shape, name="input_layer")
    scale, offset = 1.0 / 127.5, -1.0
    scaled = keras.layers.Rescaling(scale=scale, offset=offset, name="rescaling")(image)
    return {"reduced_tail": True, **backbone_kwargs, "layout": "torchvision",
            "include_preprocessing": False, "input_tensor": scaled}


def _load_model_weights(model, found):
    from keras_mobilenets.weights import torchvision

    if isinstance(found, str):
        torchvision.load_file(model, found, TORCHVISION_FAMILY)
    else:
        torchvision.load_checkpoint(model, found, include_top=True)


def SSDLite(
    backbone="MobileNetV3Large",
    num_classes=90,
    input_shape=(320, 320, 3),
    *,
    backbone_kwargs=None,
    extra_channels=EXTRA_CHANNELS,
    aspect_ratios=DEFAULT_ASPECT_RATIOS,
    bn_epsilon=BN_EPSILON,
    bn_momentum=BN_MOMENTUM,
    name=None,
    weights=None,
):
    """Builds an SSDLite detector (raw predictions) on a backbone of this package.

    Args:
        backbone: A builder name (``"MobileNetV3Large"``, ``"MobileNetV3Small"``,
            ``"MobileNetV2"``, ``"ShuffleNetV2"``, ... see ``backbone.BACKBONES``) or a
            model built by one of them with ``include_top=False`` (any weights).
        num_classes: Number of object classes (>= 1), background not counted: the class
            head predicts ``num_classes + 1`` logits. torchvision's COCO model
            (``num_classes=91`` there, background included) is ``num_classes=90`` here.
        input_shape: ``(rows, cols, channels)``, fixed sizes >= 32 (the default boxes
            depend on the feature map sizes); None takes a backbone model's own.
        backbone_kwargs: Builder arguments for a backbone name, e.g.
            ``{"alpha": 0.75, "reduced_tail": True, "weights": "imagenet"}``.
        extra_channels: Outputs of the extra blocks after the stride-32 map; their
            number + 2 is the number of prediction maps.
        aspect_ratios: Aspect ratios of the default boxes, one sequence for every map or
            one per map (see ``DefaultBoxes``); ``(2, 3)`` gives 6 boxes per location.
        bn_epsilon: Batch-norm epsilon of the extra blocks and heads.
        bn_momentum: Batch-norm momentum (Keras convention) of the extra blocks and heads.
        name: Model name (default ``"ssdlite_<backbone name>"``).
        weights: Weights of the whole model: None, "coco" (torchvision's
            ``ssdlite320_mobilenet_v3_large`` COCO checkpoint, downloaded and converted;
            ``num_classes=90``) or the path of a torchvision SSDLite state dict (``.pth``,
            ``.safetensors``). Both need ``backbone="MobileNetV3Large"``; the model then
            takes [0, 255] pixels and normalises them to [-1, 1] inside.

    Returns:
        A functional ``keras.Model`` with outputs ``{"boxes": (batch, num_boxes, 4),
        "classes": (batch, num_boxes, num_classes + 1)}``.

    Raises:
        ValueError: On an invalid argument (e.g. ``num_classes < 1``, an ``input_shape``
            without fixed sizes >= 32, a backbone that is not one of the package's);
            the message names it, its value and what is allowed.

    Example:
        >>> model = SSDLite("MobileNetV3Small", num_classes=5, input_shape=(128, 128, 3),
        ...                 backbone_kwargs={"minimalistic": True})
        >>> DefaultBoxes.from_model(model).feature_map_shapes
        ((8, 8), (4, 4), (2, 2), (1, 1), (1, 1), (1, 1))
    """
    _checks.check_positive_int("num_classes", num_classes)
    input_shape = _check_input_shape(input_shape, backbone)
    extra_channels = _check_extra_channels(extra_channels)
    for argument, value in (("bn_epsilon", bn_epsilon), ("bn_momentum", bn_momentum)):
        _checks.check_positive_number(argument, value)
    if backbone_kwargs is not None and not isinstance(backbone_kwargs, dict):
        raise ValueError(f"`backbone_kwargs` must be None or a dict, got {backbone_kwargs!r}.")
    found = _model_weights(weights, backbone, num_classes)
    if found is not None:
        backbone_kwargs = _torchvision_backbone_kwargs(backbone_kwargs or {}, input_shape)
    num_maps = len(TAP_STRIDES) + len(extra_channels)
    # Validates the aspect ratios before anything is built (shapes are placeholders).
    DefaultBoxes(((1, 1),) * num_maps, aspect_ratios)
    base = headless_backbone(backbone, input_shape=input_shape, **(backbone_kwargs or {}))
    endpoints = stride_endpoints(base)
    missing = [s for s in TAP_STRIDES if s not in endpoints]
    if missing:
        raise ValueError(
            f"`backbone` {base.name!r} has no feature map at output stride(s) {missing}; "
            f"SSDLite taps strides {TAP_STRIDES}."
        )
    maps = [base.get_layer(endpoints[s].last).output for s in TAP_STRIDES]
    x = maps[-1]
    for index, filters in enumerate(extra_channels, start=1):
        x = extra_block(x, filters, f"{PREFIX}_extra_{index}", bn_epsilon, bn_momentum,
                        symmetric=found is not None)
        maps.append(x)
    boxes = DefaultBoxes(tuple(tuple(m.shape[1:3]) for m in maps), aspect_ratios)
    box_outputs, class_outputs = [], []
    for k, (feature, count) in enumerate(zip(maps, boxes.boxes_per_location)):
        box_outputs.append(
            prediction_block(feature, count, 4, f"{PREFIX}_box_{k}", bn_epsilon, bn_momentum)
        )
        class_outputs.append(prediction_block(
            feature, count, num_classes + 1, f"{PREFIX}_class_{k}", bn_epsilon, bn_momentum
        ))
    outputs = {
        "boxes": keras.layers.Concatenate(axis=1, name=f"{PREFIX}_boxes")(box_outputs),
        "classes": keras.layers.Concatenate(axis=1, name=f"{PREFIX}_classes")(class_outputs),
    }
    inputs = base.inputs[0] if len(base.inputs) == 1 else base.inputs
    model = keras.Model(inputs, outputs, name=name or f"{PREFIX}_{base.name}")
    if found is not None:
        _load_model_weights(model, found)
    return model

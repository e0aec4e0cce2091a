"""ShuffleNet V1 (Zhang et al. 2017, arXiv:1707.01083) and ShuffleNetV2 (Ma et al. 2018,
arXiv:1807.11164) builders.

Both follow the papers' (and torchvision's, for V2) layer arrangement with PyTorch-style
symmetric padding and batch norm epsilon 1e-5, momentum 0.9 (PyTorch's 0.1), so
checkpoints trained in PyTorch carry over. The models expect ImageNet mean / standard
deviation normalised inputs: call :func:`preprocess_input` on [0, 255] images, or build
with ``include_preprocessing=True`` to get one Rescaling layer doing the same (off by
default, as for MobileNet V1/V2, so the graph holds only the network). ShuffleNetV2 with
torchvision's ImageNet weights (``weights="imagenet"``, converted from
``shufflenetv2_x*.pth``) or a torchvision state dict includes that layer by default, so it
takes [0, 255] RGB pixels like the MobileNetV3 models.
"""

import functools

from keras_mobilenets import imagenet, registry, specs
from keras_mobilenets import weights as weights_lib
from keras_mobilenets.models import common

DEFAULT_SIZE = 224

_ARGS_DOC = """
        include_top: Whether to add the classification top (global average pooling and a
            fully connected layer with bias, ``"predictions"``).
        weights: None, "imagenet" or the path of a weights file (Keras weights, or a
            torchvision state dict ``.pth`` / ``.safetensors``, converted). "imagenet" and
            state dicts exist for ShuffleNetV2 only (torchvision's ``shufflenet_v2_x*``).
        input_tensor: Optional Keras tensor to build the model on.
        pooling: None, "avg" or "max": global pooling when ``include_top=False``.
        classes: Number of classes of the top.
        classifier_activation: Activation of the top (None returns logits).
        include_preprocessing: Add a Rescaling layer that maps [0, 255] RGB pixels to
            ImageNet mean / standard deviation normalised values (``preprocess_input``).
            ShuffleNetV2's default None adds it with torchvision's weights only.
        output_stride: 8, 16 or 32; below 32 the last stages run dilated.
        name: Model name; defaults to {default_name}.

    Returns:
        A functional ``keras.Model``. Without the top and pooling, its output is the last
        feature map (stride 32); ``keras_mobilenets.stride_endpoints(model)`` gives the
        feature maps at strides 4, 8, 16 and 32 for detection and segmentation heads.

    Raises:
        ValueError: On an invalid argument (the message names it and the allowed values).
"""


def _build(spec, variant, default_name, *, input_shape, include_top, weights, input_tensor,
           pooling, classes, classifier_activation, include_preprocessing, output_stride, name):
    return common.build_model(
        spec(),
        variant=variant,
        input_shape=input_shape,
        default_shape=(DEFAULT_SIZE, DEFAULT_SIZE, 3) if include_top else (None, None, 3),
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        include_preprocessing=include_preprocessing,
        dropout_rate=0.0,
        output_stride=output_stride,
        name=name,
        default_name=default_name,
        preprocessing="torch",
    )


@registry.register_builder
def ShuffleNet(
    input_shape=None,
    groups=3,
    scale=1.0,
    include_top=True,
    weights=None,
    input_tensor=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    include_preprocessing=False,
    output_stride=32,
    name=None,
):
    common.check_choice("groups", groups, specs.shufflenet_v1.GROUPS)
    common.check_choice("scale", scale, specs.shufflenet_v1.SCALES)
    return _build(
        functools.partial(specs.shufflenet_v1.spec, groups, scale),
        dict(family=f"shufflenet_v1_g{groups}", alpha=scale),
        f"shufflenet_{scale:g}x_g{groups}",
        input_shape=input_shape, include_top=include_top, weights=weights,
        input_tensor=input_tensor, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation,
        include_preprocessing=include_preprocessing, output_stride=output_stride, name=name,
    )


@registry.register_builder
def ShuffleNetV2(
    input_shape=None,
    scale=1.0,
    include_top=True,
    weights=None,
    input_tensor=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    include_preprocessing=None,
    output_stride=32,
    name=None,
):
    common.check_choice("scale", scale, specs.shufflenet_v2.SCALES)
    if include_preprocessing is None:
        include_preprocessing = weights_lib.layout_for(weights, "shufflenet_v2") == "torchvision"
    return _build(
        functools.partial(specs.shufflenet_v2.spec, scale),
        dict(family="shufflenet_v2", alpha=scale),
        f"shufflenet_v2_{scale:g}x",
        input_shape=input_shape, include_top=include_top, weights=weights,
        input_tensor=input_tensor, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation,
        include_preprocessing=include_preprocessing, output_stride=output_stride, name=name,
    )


ShuffleNet.__doc__ = (
    """Builds ShuffleNet V1 (arXiv:1707.01083, Table 1): grouped 1x1 convolutions + shuffle.

    Args:
        input_shape: ``(rows, cols, channels)``, sizes >= 32 or None. Defaults to
            ``(224, 224, 3)`` with the top and ``(None, None, 3)`` without.
        groups: Groups of the 1x1 convolutions: 1, 2, 3, 4 or 8 (Table 1's columns).
        scale: Width multiplier ``s`` of "ShuffleNet s x": 0.25, 0.5, 1.0, 1.5 or 2.0."""
    + _ARGS_DOC.format(default_name="``shufflenet_{scale}x_g{groups}``")
    + """
    Example:
        >>> model = ShuffleNet(groups=3, scale=1.0, weights=None)
        >>> model.count_params()  # about 1.9M, 140M multiply-adds at 224
"""
)

ShuffleNetV2.__doc__ = (
    """Builds ShuffleNetV2 (arXiv:1807.11164, Table 5) with torchvision's layer arrangement.

    Args:
        input_shape: ``(rows, cols, channels)``, sizes >= 32 or None. Defaults to
            ``(224, 224, 3)`` with the top and ``(None, None, 3)`` without.
        scale: Width of "ShuffleNet v2 s x": 0.5, 1.0, 1.5 or 2.0 (Table 5's columns)."""
    + _ARGS_DOC.format(default_name="``shufflenet_v2_{scale}x``")
    + """
    Example:
        >>> model = ShuffleNetV2(scale=1.0, weights=None)
        >>> sum(w.numpy().size for w in model.trainable_weights)  # torchvision's count
        2278604
"""
)

preprocess_input = functools.partial(imagenet.preprocess_input, mode="torch")
preprocess_input.__doc__ = (
    "Maps [0, 255] RGB pixels to [0, 1], then normalises with the ImageNet mean / std."
)
decode_predictions = imagenet.decode_predictions

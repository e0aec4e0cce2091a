"""MobileNetV2 builder (Sandler et al. 2018, arXiv:1801.04381)."""

import functools

from keras_mobilenets import imagenet, registry, specs
from keras_mobilenets import weights as weights_lib
from keras_mobilenets.models import common

DEFAULT_SIZE = 224


@registry.register_builder
def MobileNetV2(
    input_shape=None,
    alpha=1.0,
    include_top=True,
    weights=None,
    input_tensor=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    include_preprocessing=None,
    output_stride=32,
    name=None,
    layout=None,
):
    """Builds MobileNetV2 with keras.applications' layer names and weight order.

    Args:
        input_shape: ``(rows, cols, channels)``, sizes >= 32 or None. Defaults to
            ``(224, 224, 3)`` with the top and ``(None, None, 3)`` without.
        alpha: Width multiplier (> 0); 0.35/0.5/0.75/1.0/1.3/1.4 have published checkpoints.
            Above 1.0 the last 1x1 convolution widens too.
        include_top: Whether to add the classification top.
        weights: None, "imagenet" (keras.applications' checkpoints),
            "imagenet_torchvision" (torchvision's, converted) or the path of a weights file:
            Keras, or a torchvision ``mobilenet_v2`` state dict (``.pth``, ``.safetensors``;
            the model is then built with torchvision's layout: symmetric padding, batch-norm
            epsilon 1e-5).
        input_tensor: Optional Keras tensor to build the model on.
        pooling: None, "avg" or "max": global pooling when ``include_top=False``.
        classes: Number of classes of the top.
        classifier_activation: Activation of the top (None returns logits).
        include_preprocessing: Add a Rescaling layer mapping [0, 255] pixels to what the
            weights expect: [-1, 1], or the ImageNet mean / std normalisation for
            torchvision's weights. None (default): only with torchvision's layout.
        output_stride: 8, 16 or 32; below 32 the last stages run dilated.
        name: Model name; defaults to ``mobilenetv2_{alpha:.2f}_{rows}``.
        layout: "keras" (keras.applications' padding and epsilon), "torchvision"
            (torchvision's ``mobilenet_v2``, see ``specs.mobilenet_v2.spec``) or None (the
            default): "torchvision" for torchvision weights, else "keras".

    Returns:
        A functional ``keras.Model``.

    Raises:
        ValueError: On an invalid argument (the message names it).

    Example:
        >>> model = MobileNetV2(input_shape=(160, 160, 3), include_top=False, pooling="avg")
        >>> model.output_shape
        (None, 1280)
    """
    common.check_positive_number("alpha", alpha)
    layout = weights_lib.resolve_layout(layout, weights, "mobilenet_v2")
    if include_preprocessing is None:
        include_preprocessing = layout == "torchvision"
    return common.build_model(
        specs.mobilenet_v2.spec(alpha, layout=layout),
        variant=dict(family="mobilenet_v2", alpha=alpha),
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
        default_name=f"mobilenetv2_{alpha:0.2f}_{{rows}}",
        preprocessing="torch" if layout == "torchvision" else "tf",
    )


preprocess_input = functools.partial(imagenet.preprocess_input, mode="tf")
preprocess_input.__doc__ = "Maps [0, 255] pixels to [-1, 1], as MobileNetV2 checkpoints expect."
decode_predictions = imagenet.decode_predictions

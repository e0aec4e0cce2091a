"""MobileNetV3 Small and Large builders (Howard et al. 2019, arXiv:1905.02244)."""

import functools

from keras_mobilenets import imagenet, registry, specs
from keras_mobilenets import weights as weights_lib
from keras_mobilenets.models import common


def _mobilenet_v3(
    size, input_shape, alpha, minimalistic, include_top, weights, input_tensor, classes,
    pooling, dropout_rate, classifier_activation, include_preprocessing, output_stride, name,
    reduced_tail, layout,
):
    common.check_positive_number("alpha", alpha)
    common.check_bool("minimalistic", minimalistic)
    common.check_rate("dropout_rate", dropout_rate)
    common.check_bool("reduced_tail", reduced_tail)
    if reduced_tail and isinstance(weights, str) and weights in weights_lib.KEYWORDS:
        raise ValueError(
            "`reduced_tail=True` halves the last stage, which the ImageNet checkpoints do not "
            "have; use weights=None (or a path to weights of a reduced-tail model), got "
            f"weights={weights!r}."
        )
    layout = weights_lib.resolve_layout(layout, weights, f"mobilenet_v3_{size}")
    return common.build_model(
        specs.mobilenet_v3.spec(size, alpha, minimalistic, reduced_tail, layout=layout),
        variant=dict(family=f"mobilenet_v3_{size}", alpha=alpha, minimalistic=minimalistic),
        input_shape=input_shape,
        default_shape=(None, None, 3),
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        include_preprocessing=include_preprocessing,
        dropout_rate=dropout_rate,
        output_stride=output_stride,
        name=name,
        default_name=f"MobileNetV3{size.capitalize()}",
        preprocessing="torch" if layout == "torchvision" else "tf",
    )


_ARGS_DOC = """
    Args:
        input_shape: ``(rows, cols, channels)``, sizes >= 32 or None (the default,
            ``(None, None, 3)``).
        alpha: Width multiplier (> 0); 0.75 and 1.0 have published checkpoints.
        minimalistic: The variant without squeeze-and-excitation, hard-swish and 5x5
            kernels (fast int8 on CPUs).
        include_top: Whether to add the classification top.
        weights: None, "imagenet" (keras.applications' checkpoints),
            "imagenet_torchvision" (torchvision's, converted) or the path of a weights file:
            Keras, or a torchvision ``mobilenet_v3_*`` state dict (``.pth``,
            ``.safetensors``; the model is then built with torchvision's layout: symmetric
            padding and torchvision's widths).
        input_tensor: Optional Keras tensor to build the model on.
        classes: Number of classes of the top.
        pooling: None, "avg" or "max": global pooling when ``include_top=False``.
        dropout_rate: Dropout before the logits, in [0, 1).
        classifier_activation: Activation of the top (None returns logits).
        include_preprocessing: Add a Rescaling layer mapping [0, 255] to [-1, 1] (the
            published checkpoints expect it, so it is on by default), or, for torchvision's
            weights, to the ImageNet mean / std normalisation they expect.
        output_stride: 8, 16 or 32; below 32 the last stages run dilated (segmentation).
        name: Model name.
        reduced_tail: Halve the channels of the last stage (and of the top), as the
            MobileNetV3 paper (Section 6.3) and torchvision do for detection and
            segmentation; no ImageNet weights exist for it. Layer names are unchanged.
        layout: "keras" (keras.applications' padding, widths below alpha 1), "torchvision"
            (torchvision's ``mobilenet_v3_*``, see ``specs.mobilenet_v3.spec``) or None (the
            default): "torchvision" for torchvision weights, else "keras".

    Returns:
        A functional ``keras.Model``.

    Raises:
        ValueError: On an invalid argument (the message names it).
"""


@registry.register_builder
def MobileNetV3Small(
    input_shape=None,
    alpha=1.0,
    minimalistic=False,
    include_top=True,
    weights=None,
    input_tensor=None,
    classes=1000,
    pooling=None,
    dropout_rate=0.2,
    classifier_activation="softmax",
    include_preprocessing=True,
    output_stride=32,
    name=None,
    reduced_tail=False,
    layout=None,
):
    return _mobilenet_v3(
        "small", input_shape, alpha, minimalistic, include_top, weights, input_tensor,
        classes, pooling, dropout_rate, classifier_activation, include_preprocessing,
        output_stride, name, reduced_tail, layout,
    )


@registry.register_builder
def MobileNetV3Large(
    input_shape=None,
    alpha=1.0,
    minimalistic=False,
    include_top=True,
    weights=None,
    input_tensor=None,
    classes=1000,
    pooling=None,
    dropout_rate=0.2,
    classifier_activation="softmax",
    include_preprocessing=True,
    output_stride=32,
    name=None,
    reduced_tail=False,
    layout=None,
):
    return _mobilenet_v3(
        "large", input_shape, alpha, minimalistic, include_top, weights, input_tensor,
        classes, pooling, dropout_rate, classifier_activation, include_preprocessing,
        output_stride, name, reduced_tail, layout,
    )


MobileNetV3Small.__doc__ = (
    "Builds MobileNetV3-Small with keras.applications' layer names and weight order.\n"
    + _ARGS_DOC
    + """
    Example:
        >>> model = MobileNetV3Small(input_shape=(96, 96, 3), classes=10, weights=None)
        >>> model.output_shape
        (None, 10)
"""
)
MobileNetV3Large.__doc__ = (
    "Builds MobileNetV3-Large with keras.applications' layer names and weight order.\n"
    + _ARGS_DOC
    + """
    Example:
        >>> backbone = MobileNetV3Large(include_top=False, output_stride=16, weights=None)
"""
)

preprocess_input = functools.partial(imagenet.preprocess_input, mode="none")
preprocess_input.__doc__ = "Returns the input unchanged: MobileNetV3 rescales inside the model."
decode_predictions = imagenet.decode_predictions

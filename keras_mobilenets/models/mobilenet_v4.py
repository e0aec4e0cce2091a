"""MobileNetV4 builders (Qin et al. 2024, arXiv:2404.10518): Conv-Small, Conv-Medium,
Conv-Large, Hybrid-Medium and Hybrid-Large.

The architectures are timm's ``mobilenetv4_*`` (same blocks, widths, batch norm settings
and trainable parameter counts), with layer names following timm's module paths, so the
published timm checkpoints load with ``weights="imagenet"`` or ``weights="model.safetensors"``
(see :mod:`keras_mobilenets.weights.timm`). The models take [0, 255] RGB pixels: a Rescaling
layer normalises them with the ImageNet mean / standard deviation, as timm's checkpoints
expect (built with ``include_preprocessing=False``, a model wants
``imagenet.preprocess_input(x, mode="torch")``; :func:`preprocess_input` is the identity,
for the default models).
"""

import functools
import os

from keras_mobilenets import imagenet, registry, specs
from keras_mobilenets.models import common
from keras_mobilenets.weights import timm


def _timm_file(weights):
    """``(weights for build_model, timm file path or None)``."""
    if isinstance(weights, (str, os.PathLike)) and os.fspath(weights).endswith(
        timm.TIMM_SUFFIXES
    ):
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise ValueError(
                "`weights` must be None, 'imagenet' or the path of an existing weights file, "
                f"got {path!r} (no such file)."
            )
        return None, path
    return weights, None


def _mobilenet_v4(
    variant, *, input_shape, include_top, weights, input_tensor, pooling, classes,
    classifier_activation, include_preprocessing, dropout_rate, output_stride, name,
):
    common.check_rate("dropout_rate", dropout_rate)
    weights, timm_path = _timm_file(weights)
    size = specs.mobilenet_v4.DEFAULT_SIZES[variant]
    title = "".join(part.capitalize() for part in variant.split("_"))
    model = common.build_model(
        specs.mobilenet_v4.spec(variant),
        variant=dict(family=f"mobilenet_v4_{variant}"),
        input_shape=input_shape,
        default_shape=(size, size, 3) if include_top else (None, None, 3),
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
        default_name=f"MobileNetV4{title}",
        preprocessing="torch",
    )
    if timm_path is not None:
        timm.load_timm_weights(model, timm_path)
    return model


_ARGS_DOC = """
    Args:
        input_shape: ``(rows, cols, channels)`` with sizes >= 32, or None: ``({size},
            {size}, 3)`` with the top, ``(None, None, 3)`` without.
        include_top: Whether to add the classification top (global pooling, 1x1
            convolution to 1280 channels, batch norm, activation, ``"classifier"``).
        weights: None, "imagenet" (timm's published checkpoint) or the path of a weights
            file: Keras (``.weights.h5``, ``.keras``) or timm (``.safetensors``,
            ``.pth``, ``.bin``).
        input_tensor: Optional Keras tensor to build the model on.
        pooling: None, "avg" or "max": global pooling when ``include_top=False``.
        classes: Number of classes of the top.
        classifier_activation: Activation of the top (None returns logits).
        include_preprocessing: Add a Rescaling layer that maps [0, 255] RGB pixels to
            ImageNet mean / standard deviation normalised values.
        dropout_rate: Dropout before the classifier, in [0, 1).
        output_stride: 8, 16 or 32; below 32 the last stages run dilated.
        name: Model name; defaults to ``"{default_name}"``.

    Returns:
        A functional ``keras.Model``. Without the top and pooling, its output is the last
        feature map (960 channels, stride 32); ``keras_mobilenets.stride_endpoints(model)``
        gives the feature maps at strides 2 to 32 for detection and segmentation heads.

    Raises:
        ValueError: On an invalid argument (the message names it and the allowed values).

    Example:
        >>> model = {builder}(input_shape=(96, 96, 3), classes=10)
        >>> model.output_shape
        (None, 10)
"""


def _builder(variant, default_dropout=0.2):
    def builder(
        input_shape=None,
        include_top=True,
        weights=None,
        input_tensor=None,
        pooling=None,
        classes=1000,
        classifier_activation="softmax",
        include_preprocessing=True,
        dropout_rate=default_dropout,
        output_stride=32,
        name=None,
    ):
        return _mobilenet_v4(
            variant, input_shape=input_shape, include_top=include_top, weights=weights,
            input_tensor=input_tensor, pooling=pooling, classes=classes,
            classifier_activation=classifier_activation,
            include_preprocessing=include_preprocessing, dropout_rate=dropout_rate,
            output_stride=output_stride, name=name,
        )

    title = "".join(part.capitalize() for part in variant.split("_"))
    builder.__name__ = builder.__qualname__ = f"MobileNetV4{title}"
    words = variant.replace("_", "-").title()
    builder.__doc__ = f"Builds MobileNetV4-{words} (arXiv:2404.10518, timm's layout).\n" + (
        _ARGS_DOC.format(
            size=specs.mobilenet_v4.DEFAULT_SIZES[variant], default_name=builder.__name__,
            builder=builder.__name__,
        )
    )
    return registry.register_builder(builder)


MobileNetV4ConvSmall = _builder("conv_small")
MobileNetV4ConvMedium = _builder("conv_medium")
MobileNetV4ConvLarge = _builder("conv_large")
MobileNetV4HybridMedium = _builder("hybrid_medium")
MobileNetV4HybridLarge = _builder("hybrid_large")

preprocess_input = functools.partial(imagenet.preprocess_input, mode="none")
preprocess_input.__doc__ = (
    "Returns the input unchanged: MobileNetV4 normalises inside the model (built with "
    "``include_preprocessing=True``, the default)."
)
decode_predictions = imagenet.decode_predictions

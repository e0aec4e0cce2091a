"""A backbone of the package under a new classification head, and freezing it by phase.

Example:
    >>> from keras_mobilenets.finetune import classifier
    >>> model = classifier.build_classifier(5, "MobileNetV3Small", image_size=224)
    >>> classifier.set_backbone_trainable(model, False)   # phase 1: only the head trains
    2
"""

import inspect

import keras

from keras_mobilenets import _checks, registry
from keras_mobilenets import models as _models  # noqa: F401  (registers the builders)
from keras_mobilenets.backbone import headless_backbone
from keras_mobilenets.training import batch_norm_layers

# Builder arguments the classifier sets itself.
_RESERVED = {"input_shape", "include_top", "weights", "input_tensor"}


def builder_accepts(backbone, argument):
    """Whether the builder called ``backbone`` (``registry.builder_names()``) has ``argument``.

    Raises:
        ValueError: If ``backbone`` is no registered builder.

    Example:
        >>> builder_accepts("ShuffleNetV2", "alpha")
        False
    """
    builder = registry.get_builder(backbone, argument="backbone")
    return argument in inspect.signature(builder).parameters


def check_backbone_kwargs(backbone, kwargs):
    """Raises ``ValueError`` if ``kwargs`` are no arguments of builder ``backbone``.

    Example:
        >>> check_backbone_kwargs("ShuffleNetV2", {"alpha": 0.5})
        Traceback (most recent call last):
        ValueError: `backbone_kwargs` ['alpha']: ShuffleNetV2 has no argument(s) ['alpha'].
    """
    if not isinstance(kwargs, dict):
        raise ValueError(f"`backbone_kwargs` must be a dict, got {type(kwargs).__name__}.")
    if backbone not in registry.builder_names():
        return  # headless_backbone names the allowed backbones
    reserved = sorted(set(kwargs) & _RESERVED)
    if reserved:
        raise ValueError(f"`backbone_kwargs` must not set {reserved}: the classifier sets them.")
    unknown = sorted(name for name in kwargs if not builder_accepts(backbone, name))
    if unknown:
        raise ValueError(
            f"`backbone_kwargs` {sorted(kwargs)}: {backbone} has no argument(s) {unknown}."
        )


def build_classifier(num_classes, backbone="MobileNetV3Small", image_size=224,
                     weights="imagenet", dropout_rate=0.2, **backbone_kwargs):
    """A backbone without its top under a new classification head.

    ``inputs (image_size, image_size, 3) in [0, 255] -> backbone -> global average pooling
    -> dropout -> dense softmax``. The backbone is one nested layer (see
    :func:`backbone_of`), built with ``include_preprocessing=True`` so the model takes raw
    pixels whatever the family's preprocessing.

    Args:
        num_classes: Number of classes (>= 2).
        backbone: A registered builder name (``registry.builder_names()``) or a model
            built by this package with ``include_top=False``.
        image_size: Square input size (>= 32).
        weights: Backbone weights: ``"imagenet"``, None or a weights file (for a name).
        dropout_rate: Dropout before the dense layer, in [0, 1).
        **backbone_kwargs: More builder arguments for a name (``alpha``,
            ``minimalistic``, ``scale``, ...).

    Returns:
        A functional ``keras.Model`` named ``"<backbone>_classifier"``.

    Raises:
        ValueError: On an invalid argument (the message names it).

    Example:
        >>> model = build_classifier(5, "MobileNetV3Small", image_size=224, weights="imagenet")
        >>> model.output_shape
        (None, 5)
    """
    _checks.check_int("num_classes", num_classes, minimum=2)
    _checks.check_int("image_size", image_size, minimum=32)
    _checks.check_rate("dropout_rate", dropout_rate)
    input_shape = (image_size, image_size, 3)
    if isinstance(backbone, str):
        check_backbone_kwargs(backbone, backbone_kwargs)
        backbone_kwargs = {"include_preprocessing": True, "weights": weights, **backbone_kwargs}
    base = headless_backbone(backbone, input_shape=input_shape, argument="backbone",
                             **backbone_kwargs)
    inputs = keras.Input(input_shape, name="image")
    x = base(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = keras.layers.Dropout(dropout_rate, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="head_predictions")(x)
    return keras.Model(inputs, outputs, name=f"{base.name}_classifier")


def backbone_of(model):
    """The nested backbone of a model from :func:`build_classifier`.

    Raises:
        ValueError: If ``model`` has no nested model.

    Example:
        >>> backbone_of(model).name
        'MobileNetV3Small'
    """
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError(
            f"`model` {model.name!r} must hold exactly one nested backbone model (as "
            f"build_classifier makes), found {len(nested)}."
        )
    return nested[0]


def set_backbone_trainable(model, trainable, freeze_batch_norm=True):
    """Freezes or unfreezes the backbone of a :func:`build_classifier` model.

    Compile the model again afterwards (``fit_phase`` does).

    Args:
        model: A model from :func:`build_classifier`.
        trainable: Whether the backbone's weights train.
        freeze_batch_norm: With ``trainable=True``, keep the batch norms frozen (they run
            in inference mode with their current statistics and their scale and offset
            do not change). Recommended with pretrained weights.

    Returns:
        The number of trainable weights of the model.

    Example:
        >>> set_backbone_trainable(model, False)   # phase 1: only the head trains
        2
    """
    base = backbone_of(model)
    base.trainable = bool(trainable)
    for layer in batch_norm_layers(base):  # set each: Keras skips a value set before
        layer.trainable = bool(trainable) and not freeze_batch_norm
    return len(model.trainable_weights)

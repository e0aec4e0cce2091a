"""What every public builder shares: argument validation, the input, the top, weights.

Builders validate their arguments first and raise ``ValueError`` naming the argument, the
value and what is allowed, before any layer is created.
"""

import keras

from keras_mobilenets import imagenet
from keras_mobilenets._checks import (  # noqa: F401  (re-exported: older import path)
    MIN_INPUT_SIZE,
    check_bool,
    check_choice,
    check_input_shape,
    check_positive_int,
    check_positive_number,
    check_rate,
)
from keras_mobilenets import weights as weights_lib
from keras_mobilenets.backbone import OUTPUT_STRIDES, apply_backbone

POOLING = (None, "avg", "max")


def check_classifier_activation(classifier_activation):
    """Raises ``ValueError`` unless the activation is None, callable or a Keras name."""
    if classifier_activation is None or callable(classifier_activation):
        return
    try:
        keras.activations.get(classifier_activation)
    except (ValueError, TypeError):
        raise ValueError(
            "`classifier_activation` must be None, a callable or the name of a Keras "
            f"activation such as 'softmax', got {classifier_activation!r}."
        ) from None


def check_common_arguments(
    *, input_shape, include_top, weights, input_tensor, pooling, classes,
    classifier_activation, include_preprocessing, output_stride,
):
    """Validates the keras.applications-style arguments shared by every builder."""
    check_input_shape(input_shape)
    check_bool("include_top", include_top)
    check_bool("include_preprocessing", include_preprocessing)
    check_choice("pooling", pooling, POOLING)
    check_positive_int("classes", classes)
    check_classifier_activation(classifier_activation)
    check_choice("output_stride", output_stride, OUTPUT_STRIDES)
    weights_lib.check_weights_argument(weights)
    if input_tensor is not None and not keras.backend.is_keras_tensor(input_tensor):
        raise ValueError(
            "`input_tensor` must be a Keras tensor (e.g. `keras.Input(shape=(224, 224, 3))` "
            f"or a layer's output), got {type(input_tensor).__name__}."
        )
    if input_tensor is not None:
        if len(input_tensor.shape) != 4:
            raise ValueError(
                f"`input_tensor` must be 4D (batch, rows, cols, channels), got shape "
                f"{tuple(input_tensor.shape)}."
            )
        check_input_shape(tuple(input_tensor.shape[1:]))
        if input_shape is not None and tuple(input_shape) != tuple(input_tensor.shape[1:]):
            raise ValueError(
                f"`input_shape` {tuple(input_shape)} does not match `input_tensor`'s shape "
                f"{tuple(input_tensor.shape[1:])}."
            )


def make_input(input_shape, input_tensor, default_shape):
    """Returns ``(model_inputs, image_tensor)`` for the builder.

    ``input_tensor`` may be the output of other layers; the model's inputs are then the
    graph's source inputs, as in keras.applications.
    """
    if input_tensor is not None:
        sources = keras.utils.get_source_inputs(input_tensor)
        return (sources[0] if len(sources) == 1 else sources), input_tensor
    image = keras.Input(shape=tuple(input_shape or default_shape), name="input_layer")
    return image, image


def classification_top(x, top, *, classes, classifier_activation, dropout_rate, bn=None):
    """The family's classification top (``TopSpec``) on the last feature map.

    ``bn`` (a ``BatchNormSpec``) is needed by the ``"norm_conv"`` top only.
    """
    if top.kind == "norm_conv":
        from keras_mobilenets.blocks import activation, batch_norm

        x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
        x = keras.layers.Conv2D(top.hidden, 1, use_bias=False, name=top.hidden_name)(x)
        x = batch_norm(bn, top.hidden_norm_name)(x)
        x = activation(top.hidden_act, f"{top.hidden_name}_act")(x)
        x = keras.layers.Flatten(name=top.reshape_name)(x)
        if dropout_rate > 0:
            x = keras.layers.Dropout(dropout_rate, name=top.dropout_name)(x)
        return keras.layers.Dense(
            classes, activation=classifier_activation, name=top.logits_name
        )(x)
    if top.kind == "dense":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return keras.layers.Dense(
            classes, activation=classifier_activation, name=top.logits_name
        )(x)
    from keras_mobilenets.blocks import activation

    x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
    if top.hidden:
        x = keras.layers.Conv2D(top.hidden, 1, padding="same", name=top.hidden_name)(x)
        x = activation(top.hidden_act, f"{top.hidden_name}_act")(x)
    if dropout_rate > 0:
        x = keras.layers.Dropout(dropout_rate, name=top.dropout_name)(x)
    x = keras.layers.Conv2D(classes, 1, padding="same", name=top.logits_name)(x)
    x = keras.layers.Reshape((classes,), name=top.reshape_name)(x)
    return keras.layers.Activation(classifier_activation, name="predictions")(x)


def global_pooling(x, pooling):
    """Applies ``pooling`` ("avg", "max" or None) to a backbone output."""
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def build_model(
    spec, *, variant, input_shape, default_shape, include_top, weights, input_tensor, pooling,
    classes, classifier_activation, include_preprocessing, dropout_rate, output_stride, name,
    default_name, preprocessing="tf",
):
    """Assembles input, optional preprocessing, backbone and top into a ``keras.Model``.

    Args:
        spec: The ``BackboneSpec`` to build.
        variant: Family fields of the ``WeightsRequest`` (family, alpha, ...); the weights
            request is checked before any layer is built.
        default_shape: Input shape used when neither ``input_shape`` nor ``input_tensor``
            is given.
        default_name: Model name used when ``name`` is None; may contain ``{rows}``.
        preprocessing: What ``include_preprocessing`` adds, as a
            ``imagenet.preprocess_input`` mode: ``"tf"`` ([0, 255] -> [-1, 1]) or
            ``"torch"`` (ImageNet mean / standard deviation); one Rescaling layer either way.
        (the other arguments are the builders' own; the ones every builder shares are
        validated here, before anything is built, by ``check_common_arguments``.)

    Returns:
        A functional ``keras.Model``.

    Raises:
        ValueError: On an invalid shared argument (the message names it).
    """
    check_common_arguments(
        input_shape=input_shape, include_top=include_top, weights=weights,
        input_tensor=input_tensor, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation,
        include_preprocessing=include_preprocessing, output_stride=output_stride,
    )
    shape = tuple(input_tensor.shape[1:]) if input_tensor is not None else (
        tuple(input_shape or default_shape)
    )
    request = weights_lib.WeightsRequest(
        **variant, rows=shape[0], cols=shape[1], channels=shape[2], include_top=include_top,
        classes=classes, classifier_activation=classifier_activation,
    )
    to_load = weights_lib.check_request(weights, request)
    inputs, x = make_input(input_shape, input_tensor, default_shape)
    if include_preprocessing:
        scale, offset = imagenet.rescaling_arguments(preprocessing)
        x = keras.layers.Rescaling(scale=scale, offset=offset, name="rescaling")(x)
    x = apply_backbone(x, spec, output_stride=output_stride)
    if include_top:
        x = classification_top(
            x, spec.top, classes=classes, classifier_activation=classifier_activation,
            dropout_rate=dropout_rate, bn=spec.bn,
        )
    else:
        x = global_pooling(x, pooling)
    model = keras.Model(inputs, x, name=name or default_name.format(rows=shape[0] or 224))
    if to_load is not None:
        weights_lib.load_weights(model, to_load, request)
    return model

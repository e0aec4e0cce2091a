"""Keras 3 functional graph -> equivalent tf_keras functional model, same weights.

The graph is walked node by node in topological order (deepest nodes first, as Keras'
functional models store them). Each Keras 3 layer is recreated once in tf_keras from its
``get_config()`` (with the few key differences between the two Keras versions fixed) and
called on the translated inputs of each of its nodes; then its weights are copied with
``set_weights``. A functional model used as a layer (e.g. a backbone inside a user's
model) is flattened: its layers join the outer graph under their own names.

Only the layer types in ``SUPPORTED_LAYERS`` are translated; anything else raises a
``ValueError`` naming the layer, its class and the supported types.

Example:
    >>> model = keras_mobilenets.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35)
    >>> twin = to_tf_keras(model)  # tf_keras.Model, same outputs and weights
"""

import keras

from keras_mobilenets import layers as km_layers
from keras_mobilenets.quantization import attention_layers
from keras_mobilenets.quantization import layers as twin_layers
from keras_mobilenets.quantization._tf_keras import tf_keras

# Keras 3 layer class -> tf_keras class of its twin. Exact types only: a subclass (or a
# Lambda) may compute something else, so it is refused rather than guessed.
_STANDARD = (
    "Activation", "Add", "AveragePooling2D", "BatchNormalization", "Concatenate", "Conv2D",
    "Dense", "DepthwiseConv2D", "Dropout", "Flatten", "GlobalAveragePooling2D",
    "GlobalMaxPooling2D", "MaxPooling2D", "Multiply", "ReLU", "Rescaling", "Reshape",
    "Resizing", "Softmax", "ZeroPadding2D",
)
_OURS = ("ChannelShuffle", "ChannelSplit", "HardSigmoid", "HardSwish")
_TWINS = {
    **{getattr(keras.layers, name): getattr(tf_keras.layers, name) for name in _STANDARD},
    **{getattr(km_layers, name): getattr(twin_layers, name) for name in _OURS},
    # Rescaling needs a quantization point between its multiply and add (see layers.py).
    keras.layers.Rescaling: twin_layers.QATRescaling,
    # keras_mobilenets' Conv2D: keras' Conv2D (same config, weights) with a faster kernel.
    km_layers.grouped_conv.Conv2D: tf_keras.layers.Conv2D,
}
# MobileNetV4's layers (twins in attention_layers.py).
_MOBILENET_V4 = ("GELU", "MultiQueryAttention", "StandaloneBatchNorm")
_TWINS.update(
    {getattr(km_layers, name): getattr(attention_layers, name) for name in _MOBILENET_V4}
)
SUPPORTED_LAYERS = tuple(sorted(_STANDARD + _OURS + _MOBILENET_V4))

# Activations that tfmot's default 8-bit scheme can quantize both in Activation layers and
# as the `activation` of Conv2D / DepthwiseConv2D / Dense (for ReLU6 use ReLU(6.0)).
SUPPORTED_ACTIVATIONS = ("linear", "relu", "sigmoid", "softmax", "tanh")

# Config keys that only Keras 3 has, with the value meaning "feature not used"; any other
# value (a LoRA rank, a Keras 3 quantization config) has no tf_keras equivalent.
_KERAS3_ONLY_KEYS = {"quantization_config": None, "lora_rank": None, "lora_alpha": None}
# The same, for the options only one layer type has in Keras 3 (tf_keras' Resizing takes
# neither a data format nor padding to the aspect ratio, nor antialiasing).
_KERAS3_ONLY_KEYS_BY_TYPE = {
    keras.layers.Resizing: {
        "data_format": "channels_last", "pad_to_aspect_ratio": False, "fill_mode": "constant",
        "fill_value": 0.0, "antialias": False,
    },
}


def _unsupported(layer, what):
    return ValueError(
        f"Cannot quantize layer {layer.name!r} of type {type(layer).__name__}: {what}. "
        f"Supported layer types: {', '.join(SUPPORTED_LAYERS)} (and functional models "
        "made of them)."
    )


def _check_supported(layer):
    if isinstance(layer, keras.Model):
        if not _is_functional(layer):
            raise _unsupported(layer, "a nested model must be functional")
    elif type(layer) not in _TWINS:
        raise _unsupported(layer, "no tf_keras twin / QuantizeConfig for this type")


def _translate_config(layer):
    """Layer config as tf_keras expects it."""
    config = dict(layer.get_config())
    policy = keras.dtype_policies.get(config.pop("dtype", "float32"))
    if policy.name != "float32":
        raise _unsupported(layer, f"dtype policy {policy.name!r} (QAT needs float32)")
    config["dtype"] = "float32"
    keras3_only = {**_KERAS3_ONLY_KEYS, **_KERAS3_ONLY_KEYS_BY_TYPE.get(type(layer), {})}
    for key, unused in keras3_only.items():
        if key in config and config.pop(key) != unused:
            raise _unsupported(layer, f"Keras 3 only option {key!r} is set")
    # Initializers only matter for fresh weights; every weight is copied over afterwards.
    for key in [k for k in config if k.endswith("_initializer")]:
        del config[key]
    for key in [k for k in config if k.endswith(("_regularizer", "_constraint"))]:
        value = config[key]
        if isinstance(value, dict):
            config[key] = {"class_name": value["class_name"], "config": value["config"]}
    activation = config.get("activation", "linear")
    if activation is None:
        config["activation"] = activation = "linear"
    if not isinstance(activation, str) or activation not in SUPPORTED_ACTIVATIONS:
        raise _unsupported(
            layer, f"activation {activation!r}; supported: {', '.join(SUPPORTED_ACTIVATIONS)}"
        )
    return config


def _twin(layer):
    """Creates the tf_keras twin of one Keras 3 layer (unbuilt, no weights yet)."""
    config = _translate_config(layer)
    try:
        return _TWINS[type(layer)].from_config(config)
    except (TypeError, ValueError) as error:
        raise _unsupported(layer, f"its config does not translate to tf_keras ({error})")


def _is_functional(model):
    # Keras 3 keeps a functional model's graph as nodes grouped by depth; Sequential and
    # subclassed models have no such graph.
    return (
        isinstance(model, keras.Model)
        and not isinstance(model, keras.Sequential)
        and hasattr(model, "_nodes_by_depth")
    )


def check_model(model):
    """Raises ``ValueError`` unless ``model`` is a Keras 3 functional model.

    Example:
        >>> check_model(keras_mobilenets.MobileNet(input_shape=(64, 64, 3), alpha=0.25))
    """
    if isinstance(model, tf_keras.Model):
        raise ValueError(
            "quantize_model expects a Keras 3 functional model; got a tf_keras model "
            f"({type(model).__name__}). Use tfmot.quantization.keras.quantize_model for it."
        )
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"quantize_model expects a Keras 3 functional keras.Model, got {type(model).__name__}."
        )
    if not _is_functional(model):
        raise ValueError(
            f"quantize_model expects a functional keras.Model; {model.name!r} is a "
            f"{type(model).__name__} (Sequential or subclassed). Rebuild it with the functional "
            "API: keras.Model(inputs, outputs)."
        )


def _walk(model, tensors, twins, copies):
    """Translates the nodes of ``model``; ``tensors`` maps Keras 3 tensors to tf_keras ones."""
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            layer = node.operation
            if isinstance(layer, keras.layers.InputLayer):
                continue
            _check_supported(layer)
            args, kwargs = keras.tree.map_structure(
                lambda value: tensors[id(value)] if isinstance(value, keras.KerasTensor) else value,
                (node.arguments.args, node.arguments.kwargs),
            )
            kwargs = {key: value for key, value in kwargs.items() if value is not None}
            if isinstance(layer, keras.Model):
                inner_inputs = keras.tree.flatten(layer.inputs)
                outer_inputs = keras.tree.flatten(args)
                for inner, outer in zip(inner_inputs, outer_inputs):
                    tensors[id(inner)] = outer
                _walk(layer, tensors, twins, copies)
                outputs = [tensors[id(t)] for t in keras.tree.flatten(layer.outputs)]
            else:
                if id(layer) not in twins:
                    twins[id(layer)] = _twin(layer)
                    copies.append((layer, twins[id(layer)]))
                outputs = keras.tree.flatten(twins[id(layer)](*args, **kwargs))
            for k3_tensor, tf_tensor in zip(keras.tree.flatten(node.outputs), outputs):
                tensors[id(k3_tensor)] = tf_tensor


def to_tf_keras(model):
    """Rebuilds a Keras 3 functional model as a tf_keras functional model, same weights.

    Args:
        model: A Keras 3 functional ``keras.Model`` made of ``SUPPORTED_LAYERS`` (nested
            functional models are flattened).

    Returns:
        A float ``tf_keras.Model`` with the same layer names, outputs and weights.

    Raises:
        ValueError: If ``model`` is not a Keras 3 functional model, or contains a layer
            that cannot be translated (the message names it and its type).

    Example:
        >>> twin = to_tf_keras(keras_mobilenets.MobileNet(input_shape=(64, 64, 3), alpha=0.25))
    """
    check_model(model)
    tensors = {}
    inputs = []
    for tensor in model.inputs:
        layer = tensor._keras_history.operation
        tf_input = tf_keras.Input(
            batch_shape=tensor.shape, dtype=tensor.dtype, name=layer.name
        )
        tensors[id(tensor)] = tf_input
        inputs.append(tf_input)
    twins = {}
    copies = []
    _walk(model, tensors, twins, copies)
    outputs = [tensors[id(t)] for t in model.outputs]
    twin_model = tf_keras.Model(
        inputs if len(inputs) > 1 else inputs[0],
        outputs if len(outputs) > 1 else outputs[0],
        name=model.name,
    )
    for layer, twin in copies:
        twin.set_weights(layer.get_weights())
    return twin_model


def copy_weights_from_tf_keras(twin, model):
    """Copies the weights of a :func:`to_tf_keras` twin back into the Keras 3 ``model``.

    Layers are matched by name (the twin keeps every layer's name; nested models are
    flattened), so training the twin and copying back trains ``model``.

    Args:
        twin: The tf_keras model :func:`to_tf_keras` made from ``model``.
        model: The Keras 3 model.

    Returns:
        The number of layers whose weights were copied.

    Raises:
        ValueError: If a layer of ``model`` with weights has no twin of the same name.

    Example:
        >>> twin = to_tf_keras(model)
        >>> twin.fit(data)  # e.g. under a strategy Keras 3 cannot train with
        >>> copy_weights_from_tf_keras(twin, model)
    """
    from keras_mobilenets.training import all_layers

    twins = {layer.name: layer for layer in twin.layers}
    copied = 0
    for layer in all_layers(model):
        if not layer.weights:
            continue
        if layer.name not in twins:
            raise ValueError(
                f"Layer {layer.name!r} of {model.name!r} has no twin in {twin.name!r}; pass "
                "the tf_keras model to_tf_keras made from this model."
            )
        layer.set_weights(twins[layer.name].get_weights())
        copied += 1
    return copied

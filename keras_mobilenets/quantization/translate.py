"""Keras 3 functional model -> equivalent tf_keras functional model, same weights.

The translation reads the model's serialized config, the format a ``.keras`` file
stores (``get_config()``: ``layers`` with their ``inbound_nodes``, ``input_layers``,
``output_layers``), not Keras' private graph attributes. Each layer entry becomes a
tf_keras twin built from its layer config (with the few key differences between the two
Keras versions fixed), called on the translated tensors its inbound nodes name; then its
weights are copied by layer name (``model.get_layer(name).get_weights()``). A functional
model used as a layer (e.g. a backbone inside a user's model) is flattened: its layers
join the outer graph under their own names.

Only the layer types in ``SUPPORTED_LAYERS`` are translated; anything else raises a
``ValueError`` naming the layer, its class and the supported types.

Example:
    >>> model = keras_mobilenets.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35)
    >>> twin = to_tf_keras(model)  # tf_keras.Model, same outputs and weights
"""

import keras

from keras_mobilenets.quantization import attention_layers
from keras_mobilenets.quantization import layers as twin_layers
from keras_mobilenets.quantization._tf_keras import tf_keras

# Serialized class name -> tf_keras class of its twin. Keras' own layers serialize with
# module "keras.layers" and no registered name; ours with "keras_mobilenets>Name". Exact
# types only: a subclass (or a Lambda) may compute something else, so it is refused.
_STANDARD = (
    "Activation", "Add", "AveragePooling2D", "BatchNormalization", "Concatenate", "Conv2D",
    "Dense", "DepthwiseConv2D", "Dropout", "Flatten", "GlobalAveragePooling2D",
    "GlobalMaxPooling2D", "MaxPooling2D", "Multiply", "ReLU", "Rescaling", "Reshape",
    "Resizing", "Softmax", "ZeroPadding2D",
)
_OURS = ("ChannelShuffle", "ChannelSplit", "HardSigmoid", "HardSwish")
_STANDARD_TWINS = {
    **{name: getattr(tf_keras.layers, name) for name in _STANDARD},
    # Rescaling needs a quantization point between its multiply and add (see layers.py).
    "Rescaling": twin_layers.QATRescaling,
}
_OUR_TWINS = {f"keras_mobilenets>{name}": getattr(twin_layers, name) for name in _OURS}
# keras_mobilenets' Conv2D: keras' Conv2D (same config and weights) with a faster grouped
# kernel; its twin is tf_keras' Conv2D.
_OUR_TWINS["keras_mobilenets>Conv2D"] = tf_keras.layers.Conv2D
# keras_mobilenets' BatchNormalization: keras' layer (same config and weights) that trains
# with TensorFlow's fused kernel; its twin is tf_keras' BatchNormalization.
_OUR_TWINS["keras_mobilenets>BatchNormalization"] = tf_keras.layers.BatchNormalization
# MobileNetV4's layers (twins in attention_layers.py).
_MOBILENET_V4 = ("GELU", "MultiQueryAttention", "StandaloneBatchNorm")
_OUR_TWINS.update(
    {f"keras_mobilenets>{name}": getattr(attention_layers, name) for name in _MOBILENET_V4}
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
    "Resizing": {
        "data_format": "channels_last", "pad_to_aspect_ratio": False, "fill_mode": "constant",
        "fill_value": 0.0, "antialias": False,
    },
}


def _unsupported(name, type_name, what):
    return ValueError(
        f"Cannot quantize layer {name!r} of type {type_name}: {what}. "
        f"Supported layer types: {', '.join(SUPPORTED_LAYERS)} (and functional models "
        "made of them)."
    )


def _twin_class(entry):
    """tf_keras class of the twin of a serialized layer entry, or None."""
    class_name = entry["class_name"]
    if entry.get("module") == "keras.layers" and entry.get("registered_name") in (
        None, class_name
    ):
        return _STANDARD_TWINS.get(class_name)
    return _OUR_TWINS.get(entry.get("registered_name"))


def _translate_config(entry):
    """The layer config of a serialized entry as tf_keras expects it."""
    name, type_name = entry["name"], entry["class_name"]
    config = dict(entry["config"])
    policy = keras.dtype_policies.get(config.pop("dtype", "float32"))
    if policy.name != "float32":
        raise _unsupported(name, type_name, f"dtype policy {policy.name!r} (QAT needs float32)")
    config["dtype"] = "float32"
    keras3_only = {**_KERAS3_ONLY_KEYS, **_KERAS3_ONLY_KEYS_BY_TYPE.get(type_name, {})}
    for key, unused in keras3_only.items():
        if key in config and config.pop(key) != unused:
            raise _unsupported(name, type_name, f"Keras 3 only option {key!r} is set")
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
            name, type_name,
            f"activation {activation!r}; supported: {', '.join(SUPPORTED_ACTIVATIONS)}",
        )
    if type_name == "BatchNormalization" and config.get("synchronized"):
        # tf_keras' fused kernel cannot synchronize the statistics over replicas.
        config["fused"] = False
    return config


def _twin(entry):
    """Creates the tf_keras twin of one serialized Keras 3 layer (unbuilt, no weights)."""
    twin_class = _twin_class(entry)
    if twin_class is None:
        raise _unsupported(
            entry["name"], entry["class_name"], "no tf_keras twin / QuantizeConfig for this type"
        )
    config = _translate_config(entry)
    try:
        return twin_class.from_config(config)
    except (TypeError, ValueError) as error:
        raise _unsupported(
            entry["name"], entry["class_name"],
            f"its config does not translate to tf_keras ({error})",
        )


def _functional_config(model):
    """The serialized graph of a functional ``model``, or None for any other model."""
    if not isinstance(model, keras.Model) or isinstance(model, keras.Sequential):
        return None
    try:
        config = model.get_config()
    except NotImplementedError:  # subclassed models without a config
        return None
    if not isinstance(config, dict) or not {"layers", "input_layers", "output_layers"} <= set(
        config
    ):
        return None
    return config


def _is_functional(model):
    # A functional model serializes its graph; Sequential and subclassed models do not.
    return _functional_config(model) is not None


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


def _references(value):
    """The ``[layer, node_index, tensor_index]`` triples of a config's input/output spec."""
    if isinstance(value, dict):
        return [ref for item in value.values() for ref in _references(item)]
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
        return [tuple(value)]
    return [ref for item in value for ref in _references(item)]


def _map_tensors(value, tensors):
    """Replaces the serialized Keras tensors in node arguments by translated tensors."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return tensors[tuple(value["config"]["keras_history"])]
        return {key: _map_tensors(item, tensors) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_map_tensors(item, tensors) for item in value)
    return value


def _needs(value):
    """Keras tensor references a node's arguments use."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return [tuple(value["config"]["keras_history"])]
        return [ref for item in value.values() for ref in _needs(item)]
    if isinstance(value, (list, tuple)):
        return [ref for item in value for ref in _needs(item)]
    return []


def _walk(model, config, inputs, twins, copies):
    """Translates the graph of ``config`` (the config of ``model``).

    ``inputs`` are the tf_keras tensors standing for ``config``'s input layers; returns
    those of its output layers. ``twins`` maps ``(id(model), layer name)`` to created
    twins (a layer called twice is one twin); ``copies`` collects (Keras 3 layer, twin).
    """
    tensors = {}  # (layer name, node index, tensor index) -> tf_keras tensor
    for ref, tensor in zip(_references(config["input_layers"]), inputs):
        tensors[ref] = tensor
    pending = [
        (entry, index, node)
        for entry in config["layers"]
        if entry["class_name"] != "InputLayer"
        for index, node in enumerate(entry["inbound_nodes"])
    ]
    while pending:
        ready = [item for item in pending if all(ref in tensors for ref in _needs(item[2]))]
        if not ready:
            names = sorted({entry["name"] for entry, _, _ in pending})
            raise ValueError(f"The config of {model.name!r} does not connect layers {names}.")
        for item in ready:
            pending.remove(item)
            entry, index, node = item
            outputs = _call(model, entry, node, tensors, twins, copies)
            for position, tensor in enumerate(outputs):
                tensors[(entry["name"], index, position)] = tensor
    return [tensors[ref] for ref in _references(config["output_layers"])]


def _call(model, entry, node, tensors, twins, copies):
    """Translates one inbound node of a layer entry; returns its flat output tensors."""
    layer = model.get_layer(entry["name"])
    args = _map_tensors(node.get("args", []), tensors)
    kwargs = {k: v for k, v in _map_tensors(node.get("kwargs", {}), tensors).items()
              if v is not None}
    if isinstance(layer, keras.Model):
        inner = _functional_config(layer)
        if inner is None:
            raise _unsupported(layer.name, entry["class_name"], "a nested model must be functional")
        flat_args = keras.tree.flatten(args)
        return _walk(layer, inner, flat_args, twins, copies)
    key = (id(model), entry["name"])
    if key not in twins:
        twins[key] = _twin(entry)
        copies.append((layer, twins[key]))
    return keras.tree.flatten(twins[key](*args, **kwargs))


def to_tf_keras(model):
    """Rebuilds a Keras 3 functional model as a tf_keras functional model, same weights.

    The graph comes from ``model.get_config()`` (so a model loaded from a ``.keras`` file
    translates like the one that was saved), the weights from ``get_layer(name)``.

    Args:
        model: A Keras 3 functional ``keras.Model`` made of ``SUPPORTED_LAYERS`` (nested
            functional models are flattened).

    Returns:
        A float ``tf_keras.Model`` with the same layer names, outputs and weights.
        BatchNormalization layers with ``synchronized=True`` get twins created with
        ``synchronized=True, fused=False``.

    Raises:
        ValueError: If ``model`` is not a Keras 3 functional model, or contains a layer
            that cannot be translated (the message names it and its type).

    Example:
        >>> twin = to_tf_keras(keras_mobilenets.MobileNet(input_shape=(64, 64, 3), alpha=0.25))
    """
    check_model(model)
    config = _functional_config(model)
    entries = {entry["name"]: entry for entry in config["layers"]}
    inputs = []
    for name, _, _ in _references(config["input_layers"]):
        input_config = entries[name]["config"]
        inputs.append(tf_keras.Input(
            batch_shape=tuple(input_config["batch_shape"]), dtype=input_config["dtype"],
            name=name,
        ))
    twins = {}
    copies = []
    outputs = _walk(model, config, inputs, twins, copies)
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

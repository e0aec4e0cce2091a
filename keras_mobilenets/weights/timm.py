"""timm checkpoints -> our models (MobileNetV4, Qin et al. 2024, arXiv:2404.10518).

Our MobileNetV4 layers are named after timm's module paths with ``.`` replaced by ``_``
(``blocks.2.4.attn.key.down_conv`` -> ``blocks_2_4_attn_key_down_conv``), so a timm state
dict (``{key: numpy array}``) maps onto the model by name; only the layouts differ:
PyTorch's ``(out, in, rows, cols)`` kernels become Keras' ``(rows, cols, in, out)``
(depthwise ``(rows, cols, channels, 1)``), linear weights are transposed, a layer scale's
``gamma`` becomes the kernel of its 1x1 depthwise convolution and batch norm's
``num_batches_tracked`` is dropped.

Files: ``.safetensors`` (timm's published format, read with the ``safetensors`` numpy API,
no code execution) and ``.pth`` / ``.bin`` (read by
:mod:`keras_mobilenets.weights.torch_checkpoint`, without unpickling code).

Example:
    >>> model = keras_mobilenets.MobileNetV4ConvSmall()
    >>> load_timm_weights(model, "mobilenetv4_conv_small/model.safetensors")
"""

import os

import keras
import numpy as np

TIMM_SUFFIXES = (".safetensors", ".pth", ".bin")
# Modules of timm's classification top, absent from a model built without it.
HEAD_MODULES = ("conv_head", "norm_head", "classifier")
_BN_PARAMS = ("weight", "bias", "running_mean", "running_var")


def read_state_dict(path):
    """``{key: numpy array}`` of a timm checkpoint file (``TIMM_SUFFIXES``).

    Raises:
        ValueError: If the file is missing, of another kind or unreadable.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"`weights`: no such file {path!r}.")
    if path.endswith(".safetensors"):
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise ValueError(
                "Reading `.safetensors` weights needs the `safetensors` package "
                "(pip install safetensors)."
            ) from None
        try:
            return dict(load_file(path))
        except Exception as error:  # safetensors raises its own error types
            raise ValueError(f"`weights` file {path!r} is not a readable safetensors file "
                             f"({error}).") from None
    if path.endswith((".pth", ".bin")):
        try:
            from keras_mobilenets.weights import torch_checkpoint
        except ImportError:
            raise ValueError(
                f"`weights` file {path!r}: reading PyTorch .pth / .bin files needs "
                "keras_mobilenets.weights.torch_checkpoint; use the .safetensors file."
            ) from None
        return dict(torch_checkpoint.read_state_dict(path))
    raise ValueError(f"`weights` file {path!r} must end in one of {TIMM_SUFFIXES}.")


def layer_name(module):
    """Our layer name for a timm module path, e.g. ``blocks.2.0.pw_exp.conv``."""
    return module.replace(".", "_")


def _group(state_dict):
    modules = {}
    for key, value in state_dict.items():
        module, _, param = key.rpartition(".")
        modules.setdefault(module, {})[param] = np.asarray(value)
    return modules


def _keras_weights(layer, params):
    """The layer's weight list from one timm module's parameters."""
    if isinstance(layer, keras.layers.BatchNormalization):
        return [params[name] for name in _BN_PARAMS]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        if "gamma" in params:  # layer scale
            return [params["gamma"].reshape(1, 1, -1, 1)]
        return [params["weight"].transpose(2, 3, 0, 1)]
    if isinstance(layer, keras.layers.Conv2D):
        return [params["weight"].transpose(2, 3, 1, 0)] + (
            [params["bias"]] if "bias" in params else []
        )
    if isinstance(layer, keras.layers.Dense):
        return [params["weight"].T, params["bias"]]
    raise ValueError(f"No timm conversion for layer {layer.name!r} ({type(layer).__name__}).")


def convert_state_dict(model, state_dict):
    """Loads a timm state dict into ``model`` (layers matched by name).

    Args:
        model: A MobileNetV4 model built by this package (with or without its top).
        state_dict: ``{key: numpy array}`` of the matching timm model.

    Returns:
        The number of layers loaded.

    Raises:
        ValueError: If layers of the model have no parameters in the state dict, the
            state dict has parameters the model lacks (other than timm's classification
            top when the model has none), or shapes differ; the message lists them.
    """
    modules = _group(state_dict)
    layers = {layer.name: layer for layer in model.layers if layer.weights}
    missing = sorted(set(layers) - {layer_name(m) for m in modules})
    extra = sorted(
        m for m in modules if layer_name(m) not in layers
        and not (m in HEAD_MODULES and m not in layers)
    )
    if missing or extra:
        raise ValueError(
            f"The timm weights do not fit {model.name!r}: layers without weights in the "
            f"file {missing[:10]}{' ...' if len(missing) > 10 else ''}; file modules "
            f"without a layer {extra[:10]}{' ...' if len(extra) > 10 else ''}. Build the "
            "variant the checkpoint was trained as."
        )
    loaded = 0
    for module, params in modules.items():
        layer = layers.get(layer_name(module))
        if layer is None:
            continue
        values = _keras_weights(layer, params)
        expected = [tuple(w.shape) for w in layer.weights]
        if [v.shape for v in values] != expected:
            raise ValueError(
                f"Layer {layer.name!r} of {model.name!r} has weight shapes {expected}, the "
                f"timm module {module!r} gives {[v.shape for v in values]} (e.g. `classes` "
                "differs from the checkpoint's)."
            )
        layer.set_weights(values)
        loaded += 1
    return loaded


def load_timm_weights(model, path):
    """Reads a timm checkpoint file and loads it into ``model``; returns the layer count.

    Example:
        >>> load_timm_weights(model, "model.safetensors")
        213
    """
    return convert_state_dict(model, read_state_dict(path))

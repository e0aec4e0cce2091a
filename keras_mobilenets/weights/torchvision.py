"""Converting torchvision state dicts into the package's models, keyed by family.

torchvision's ``shufflenet_v2_x*``, ``mobilenet_v2`` and ``mobilenet_v3_small/large`` hold
the same layers as our builders' torchvision layout (``layout="torchvision"`` in the specs:
symmetric padding, torchvision's batch-norm epsilon and widths). Each family has a rule
that names, for each of our weighted layers, the torchvision module it comes from (e.g.
``block_3_expand`` <- ``features.4.conv.0.0``); the weights then move by layer type:

* ``Conv2D``: PyTorch ``(out, in / groups, kh, kw)`` -> Keras ``(kh, kw, in / groups, out)``;
  a ``Linear`` ``(out, in)`` feeding our 1x1 convolution top becomes ``(1, 1, in, out)``;
* ``DepthwiseConv2D``: ``(channels, 1, kh, kw)`` -> ``(kh, kw, channels, 1)``;
* ``BatchNormalization``: weight, bias, running mean, running variance
  (``num_batches_tracked`` is not used);
* ``Dense``: the transposed weight and the bias.

A state dict that does not fit raises a ``ValueError`` listing the missing and unexpected
keys and the shapes that differ.

Example:
    >>> from keras_mobilenets.weights import torch_checkpoint, torchvision
    >>> model = keras_mobilenets.ShuffleNetV2(scale=0.5, weights=None, include_preprocessing=True)
    >>> state = torch_checkpoint.read_state_dict("shufflenetv2_x0.5-f707e7126e.pth")
    >>> torchvision.load_state_dict(model, state, "shufflenet_v2")
"""

import logging
import os
import re

import keras
import numpy as np

logger = logging.getLogger(__name__)

# Keys of the classification top, ignored when a model is built without it.
_TOP_PREFIXES = ("fc.", "classifier.")
_UNUSED_SUFFIXES = (".num_batches_tracked",)


def _shufflenet_v2(names):
    """Our layer -> torchvision module prefix, for ShuffleNetV2 (``shufflenet_v2_x*``)."""
    branches = {
        "shortcut_depthwise": "branch1.0", "shortcut_depthwise_bn": "branch1.1",
        "shortcut_project": "branch1.2", "shortcut_project_bn": "branch1.3",
        "expand": "branch2.0", "expand_bn": "branch2.1", "depthwise": "branch2.3",
        "depthwise_bn": "branch2.4", "project": "branch2.5", "project_bn": "branch2.6",
    }
    fixed = {"conv1": "conv1.0", "conv1_bn": "conv1.1", "conv5": "conv5.0",
             "conv5_bn": "conv5.1", "predictions": "fc"}
    prefixes = {}
    for name in names:
        match = re.fullmatch(r"stage(\d+)_(\d+)_(\w+)", name)
        if name in fixed:
            prefixes[name] = fixed[name]
        elif match and match.group(3) in branches:
            stage, unit, op = match.groups()
            prefixes[name] = f"stage{stage}.{int(unit) - 1}.{branches[op]}"
    return prefixes


def _blocks(names, pattern):
    """``{block index: {op: layer name}}`` of the layers matching ``pattern``."""
    blocks = {}
    for name in names:
        match = re.fullmatch(pattern, name)
        if match:
            index = int(match.group(1) or 0)
            blocks.setdefault(index, {})[match.group(2)] = name
    return blocks


def _mobilenet_v2(names):
    """Our layer -> torchvision module prefix, for ``mobilenet_v2``."""
    pattern = r"(?:expanded_conv|block_(\d+))_(expand|expand_BN|depthwise|depthwise_BN|" \
              r"project|project_BN)"
    blocks = _blocks(names, pattern)
    prefixes = {"Conv1": "features.0.0", "bn_Conv1": "features.0.1",
                "Conv_1": f"features.{len(blocks) + 1}.0",
                "Conv_1_bn": f"features.{len(blocks) + 1}.1", "predictions": "classifier.1"}
    for index, ops in blocks.items():
        offset = 1 if "expand" in ops else 0
        places = {"expand": "0.0", "expand_BN": "0.1", "depthwise": f"{offset}.0",
                  "depthwise_BN": f"{offset}.1", "project": f"{offset + 1}",
                  "project_BN": f"{offset + 2}"}
        for op, name in ops.items():
            prefixes[name] = f"features.{index + 1}.conv.{places[op]}"
    return prefixes


def _mobilenet_v3(names):
    """Our layer -> torchvision module prefix, for ``mobilenet_v3_small/large``."""
    pattern = r"expanded_conv_(?:(\d+)_)?(expand|expand_bn|depthwise|depthwise_bn|" \
              r"squeeze_excite_conv|squeeze_excite_conv_1|project|project_bn)"
    blocks = _blocks(names, pattern)
    last = f"features.{len(blocks) + 1}"
    prefixes = {"conv": "features.0.0", "conv_bn": "features.0.1", "conv_1": f"{last}.0",
                "conv_1_bn": f"{last}.1", "conv_2": "classifier.0", "logits": "classifier.3"}
    for index, ops in blocks.items():
        depthwise = 1 if "expand" in ops else 0
        project = depthwise + (2 if "squeeze_excite_conv" in ops else 1)
        places = {"expand": "0.0", "expand_bn": "0.1", "depthwise": f"{depthwise}.0",
                  "depthwise_bn": f"{depthwise}.1",
                  "squeeze_excite_conv": f"{depthwise + 1}.fc1",
                  "squeeze_excite_conv_1": f"{depthwise + 1}.fc2",
                  "project": f"{project}.0", "project_bn": f"{project}.1"}
        for op, name in ops.items():
            prefixes[name] = f"features.{index + 1}.block.{places[op]}"
    return prefixes


def _lraspp(names):
    """Our layer -> torchvision module prefix, for ``lraspp_mobilenet_v3_large``: the
    backbone's ``features.`` are ``backbone.`` there, the head is ``classifier.``."""
    prefixes = {name: prefix.replace("features.", "backbone.", 1)
                for name, prefix in _mobilenet_v3(names).items()
                if prefix.startswith("features.")}
    prefixes.update({
        "lraspp_cbr_conv": "classifier.cbr.0", "lraspp_cbr_bn": "classifier.cbr.1",
        "lraspp_gate_conv": "classifier.scale.1",
        "lraspp_low_classifier": "classifier.low_classifier",
        "lraspp_high_classifier": "classifier.high_classifier",
    })
    return prefixes


def _ssdlite_backbone(prefix, c4):
    """A MobileNetV3 ``features.`` prefix as torchvision's SSDLite extractor names it: the
    features up to block ``c4``'s expansion are ``features.0``, the rest ``features.1``."""
    index, _, rest = prefix[len("features."):].partition(".")
    index = int(index)
    if index < c4:
        return f"backbone.features.0.{index}.{rest}"
    if index == c4:
        part, _, tail = rest[len("block."):].partition(".")
        if part == "0":
            return f"backbone.features.0.{c4}.{tail}"
        return f"backbone.features.1.0.{part}.{tail}"
    return f"backbone.features.1.{index - c4}.{rest}"


def _ssdlite(names):
    """Our layer -> torchvision module prefix, for ``ssdlite320_mobilenet_v3_large``:
    C4 is the expansion of the last strided block (the last with a ``depthwise_pad``)."""
    strided = [int(m.group(1)) for m in map(
        re.compile(r"expanded_conv_(\d+)_depthwise_pad").fullmatch, names) if m]
    c4 = max(strided, default=0) + 1
    prefixes = {name: _ssdlite_backbone(prefix, c4)
                for name, prefix in _mobilenet_v3(names).items()
                if prefix.startswith("features.")}
    parts = {"expand": "0.0", "expand_bn": "0.1", "depthwise": "1.0", "depthwise_bn": "1.1",
             "project": "2.0", "project_bn": "2.1"}
    heads = {"box": "regression_head", "class": "classification_head"}
    for name in names:
        extra = re.fullmatch(r"ssdlite_extra_(\d+)_(\w+)", name)
        head = re.fullmatch(r"ssdlite_(box|class)_(\d+)_(depthwise|depthwise_bn|conv)", name)
        if extra and extra.group(2) in parts:
            prefixes[name] = f"backbone.extra.{int(extra.group(1)) - 1}.{parts[extra.group(2)]}"
        elif head:
            kind, k, op = head.groups()
            part = {"depthwise": "0.0", "depthwise_bn": "0.1", "conv": "1"}[op]
            prefixes[name] = f"head.{heads[kind]}.module_list.{k}.{part}"
    return prefixes


#: family -> rule giving, for our layer names, the torchvision module prefixes.
CONVERTERS = {
    "shufflenet_v2": _shufflenet_v2,
    "mobilenet_v2": _mobilenet_v2,
    "mobilenet_v3_small": _mobilenet_v3,
    "mobilenet_v3_large": _mobilenet_v3,
    "lraspp_mobilenet_v3_large": _lraspp,
    "ssdlite320_mobilenet_v3_large": _ssdlite,
}


def _conv_kernel(array):
    if array.ndim == 2:  # a Linear layer feeding a 1x1 convolution on the pooled map
        return array.T[None, None]
    return array.transpose(2, 3, 1, 0)


def _layer_keys(layer, prefix):
    """``[(torch key, conversion)]`` for the weights of ``layer``, in Keras' order."""
    if isinstance(layer, keras.layers.BatchNormalization):
        return [(f"{prefix}.{k}", np.asarray)
                for k in ("weight", "bias", "running_mean", "running_var")]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        keys = [(f"{prefix}.weight", lambda a: a.transpose(2, 3, 0, 1))]
    elif isinstance(layer, keras.layers.Conv2D):
        keys = [(f"{prefix}.weight", _conv_kernel)]
    elif isinstance(layer, keras.layers.Dense):
        keys = [(f"{prefix}.weight", lambda a: a.T)]
    else:
        raise ValueError(f"No torchvision conversion for layer {layer.name!r} "
                         f"({type(layer).__name__}).")
    if getattr(layer, "use_bias", False):
        keys.append((f"{prefix}.bias", np.asarray))
    return keys


def _listing(title, items):
    items = list(items)
    shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
    return f"{title}: {shown}"


def converted_weights(model, state_dict, family, source="the state dict"):
    """``{layer name: [numpy arrays]}``: ``state_dict`` converted for ``model``'s layers.

    Args:
        model: A model built with torchvision's layout (the builders do this when given a
            torchvision checkpoint).
        state_dict: ``{key: numpy array}`` (see ``torch_checkpoint.read_state_dict``).
        family: One of ``CONVERTERS``.
        source: How error messages name the state dict (e.g. the file).

    Raises:
        ValueError: If the family has no converter, or the state dict does not fit: the
            message lists missing keys, unexpected keys and shapes that differ. Keys of the
            classification top are ignored when ``model`` has no top.
    """
    if family not in CONVERTERS:
        raise ValueError(
            f"There is no torchvision conversion for {family!r} ({model.name!r}); families "
            f"with one: {sorted(CONVERTERS)}."
        )
    weighted = [layer for layer in model.layers if layer.weights]
    prefixes = CONVERTERS[family]([layer.name for layer in model.layers])
    unmapped = [layer.name for layer in weighted if layer.name not in prefixes]
    if unmapped:
        raise ValueError(
            f"{model.name!r} has layers without a torchvision counterpart: "
            f"{', '.join(unmapped)}; is it a {family} model built by keras_mobilenets?"
        )
    expected, converted, differ = set(), {}, []
    for layer in weighted:
        arrays = []
        for (key, convert), variable in zip(
                _layer_keys(layer, prefixes[layer.name]), layer.weights):
            expected.add(key)
            if key not in state_dict:
                continue
            value = np.asarray(state_dict[key])
            try:
                array = convert(value)
            except ValueError:  # a tensor of another rank
                array = value
            if tuple(array.shape) != tuple(variable.shape):
                differ.append(f"{key} (file {tuple(value.shape)}, {layer.name} needs "
                              f"{tuple(variable.shape)})")
            arrays.append(array.astype(np.float32))
        converted[layer.name] = arrays
    has_top = any((prefixes[layer.name] + ".").startswith(_TOP_PREFIXES) for layer in weighted)
    missing = sorted(expected - set(state_dict))
    unexpected = [
        key for key in state_dict
        if key not in expected and not key.endswith(_UNUSED_SUFFIXES)
        and (has_top or not key.startswith(_TOP_PREFIXES))
    ]
    parts = []
    if differ:
        parts.append(_listing("tensors of another shape", differ))
    if missing:
        parts.append(_listing("keys missing from the file", missing))
    if unexpected:
        parts.append(_listing("keys the model does not have", unexpected))
    if parts:
        raise ValueError(
            f"{source} does not fit {model.name!r} (torchvision's {family} layout): "
            f"{'; '.join(parts)}."
        )
    return converted


def load_state_dict(model, state_dict, family, source="the state dict"):
    """Sets ``model``'s weights from a torchvision ``state_dict`` (see
    :func:`converted_weights` for the arguments and errors).

    Example:
        >>> load_state_dict(model, read_state_dict("mobilenet_v2-7ebf99e0.pth"), "mobilenet_v2")
    """
    converted = converted_weights(model, state_dict, family, source)
    for layer in model.layers:
        if layer.name in converted:
            layer.set_weights(converted[layer.name])


def load_file(model, path, family):
    """Loads a torchvision state dict file (``.pth``, ``.pt``, ``.bin``, ``.safetensors``)
    into ``model``, read without running code from the file.

    Raises:
        ValueError: If the file cannot be read or does not fit (see
            :func:`converted_weights`).

    Example:
        >>> load_file(model, "mobilenet_v3_small-047dcff4.pth", "mobilenet_v3_small")
    """
    from keras_mobilenets.weights import torch_checkpoint

    state_dict = torch_checkpoint.read_state_dict(path)
    load_state_dict(model, state_dict, family, source=f"`weights` file {path!r}")


def converted_cache_path(checkpoint, include_top):
    """Where the converted Keras weights of a torchvision ``checkpoint`` are cached."""
    from keras_mobilenets.weights import download

    stem = checkpoint.file_name.rsplit(".", 1)[0]
    name = f"{stem}_keras{'' if include_top else '_no_top'}.weights.h5"
    return os.path.join(download.cache_dir(), download.CACHE_SUBDIR, name)


def load_checkpoint(model, checkpoint, include_top):
    """Loads a published torchvision ``checkpoint`` into ``model``: the converted Keras
    weights from the cache, else the ``.pth`` (downloaded and hash-checked if needed),
    converted, with the result cached as ``<file>_keras[_no_top].weights.h5``.

    Raises:
        WeightsDownloadError: If the ``.pth`` is neither cached nor downloadable (the
            message names the file).
        ValueError: If the file fails verification or does not fit.
    """
    from keras_mobilenets.weights import download, files

    cached = converted_cache_path(checkpoint, include_top)
    if os.path.exists(cached):
        try:
            files.load_weights_file(model, cached)
            logger.debug("Using the converted weights %s", cached)
            return
        except (ValueError, OSError) as error:
            logger.warning("The converted weights %s are unusable (%s); converting %s again.",
                           cached, error, checkpoint.file_name)
            os.remove(cached)
    path = download.fetch(checkpoint)
    load_file(model, path, checkpoint.family)
    partial = f"{cached}.part{os.getpid()}.weights.h5"
    try:
        model.save_weights(partial)
        os.replace(partial, cached)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    logger.info("Converted %s to %s", path, cached)

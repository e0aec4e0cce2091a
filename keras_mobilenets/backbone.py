"""Specs -> layers, and the features API (feature maps by output stride).

``apply_backbone`` stacks a ``BackboneSpec`` on a tensor, turning strides beyond
``output_stride`` into dilation (as torchvision does for its dilated MobileNetV3: the
whole stage that would exceed the output stride runs at stride 1 with dilation).

``stride_endpoints`` finds, in any model built by this package (also after save/load),
the layers a detection or segmentation head taps: for each output stride, the last block
output and the last layer computed at that stride (e.g. the expansion of the next block,
or the final 1x1 convolution at the deepest stride).
"""

import dataclasses
import re

import keras

from keras_mobilenets import registry
from keras_mobilenets.blocks import build_block, conv_bn_act, stem_pool
from keras_mobilenets.specs import BLOCK_OUTPUT_PATTERNS

OUTPUT_STRIDES = (8, 16, 32)
_BLOCK_OUTPUT = re.compile("|".join(f"(?:{p})" for p in BLOCK_OUTPUT_PATTERNS))


def dilate(blocks, stem_stride, output_stride):
    """Replaces strides that would exceed ``output_stride`` by dilation.

    Args:
        blocks: Block rows (each with ``stride`` and ``dilation`` fields).
        stem_stride: Stride of the stem before the first block.
        output_stride: Largest output stride wanted: 8, 16 or 32.

    Returns:
        The rows, with the excess stride moved into dilation of all later rows.
    """
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"`output_stride` must be one of {OUTPUT_STRIDES}, got {output_stride!r}.")
    stride, dilation, rows = stem_stride, 1, []
    for row in blocks:
        if stride * row.stride > output_stride:
            dilation *= row.stride
            row = dataclasses.replace(row, stride=1)
        else:
            stride *= row.stride
        rows.append(dataclasses.replace(row, dilation=dilation) if dilation > 1 else row)
    return tuple(rows)


def apply_backbone(x, spec, output_stride=32):
    """Applies stem, blocks and last conv of ``spec`` to ``x``; returns the feature tensor.

    Example:
        >>> from keras_mobilenets import specs
        >>> y = apply_backbone(keras.Input((224, 224, 3)), specs.mobilenet_v2.spec(1.0))
        >>> y.shape
        (None, 7, 7, 1280)
    """
    x = conv_bn_act(x, spec.stem, spec.bn)
    if spec.stem_pool is not None:
        x = stem_pool(x, spec.stem_pool)
    blocks = dilate(spec.blocks, spec.stem_stride, output_stride)
    prefixes = spec.block_prefixes or (None,) * len(blocks)
    for index, (row, prefix) in enumerate(zip(blocks, prefixes), start=spec.first_block_index):
        x = build_block(x, row, spec.names.resolve(index, prefix), spec.bn)
    if spec.last_conv is not None:
        x = conv_bn_act(x, spec.last_conv, spec.bn)
    return x


@dataclasses.dataclass(frozen=True)
class StrideEndpoint:
    """Layer names a head can tap at one output stride.

    Attributes:
        stride: Output stride of the feature map (2, 4, 8, 16, 32).
        block: The last block output at this stride (e.g. MobileNetV3-Large's 40-channel
            ``expanded_conv_5_add`` at stride 8).
        last: The last layer computed at this stride (the next block's expansion, or the
            final 1x1 convolution at the deepest stride); zero-padding layers are skipped.
        first_block: The first block output at this stride (e.g. MobileNetV3-Large's
            ``expanded_conv_3_project_bn`` at stride 8, the output torchvision's LR-ASPP
            taps); equals ``block`` where one block has the stride.
    """

    stride: int
    block: str
    last: str
    first_block: str = ""


_GLOBAL_POOLING = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)


def _layer_stride(layer):
    """Stride factor of one layer; 0 marks a global pooling (no spatial map any more)."""
    if isinstance(layer, _GLOBAL_POOLING):
        return 0
    strides = getattr(layer, "strides", None)
    if strides is None:
        return 1
    return int(strides[0]) if isinstance(strides, (tuple, list)) else int(strides)


def stride_endpoints(model):
    """Feature endpoints by output stride of a model built by this package.

    Strides are found by walking the graph (products of layer strides), so this works
    for any input size, with or without dilation, and after ``.keras`` save/load.

    Args:
        model: A functional model from one of the package's builders (``include_top``
            either way), or any functional model containing such a backbone's layers.

    Returns:
        ``{stride: StrideEndpoint}`` for every stride that has a block output.

    Raises:
        ValueError: If no block output of a known family is found.

    Example:
        >>> model = keras_mobilenets.MobileNetV3Large(include_top=False, weights=None)
        >>> stride_endpoints(model)[8].block
        'expanded_conv_5_add'
    """
    stride_of = {}
    endpoints = {}
    first = {}
    last = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            stride_of[id(layer.output)] = 1
            continue
        inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        source = getattr(layer, "STRIDE_SOURCE", None)
        if source is not None:
            # E.g. attention: the output has the query's resolution, not the key's.
            inputs = inputs[source:source + 1]
        stride = max(stride_of.get(id(t), 0) for t in inputs) * _layer_stride(layer)
        output = layer.output
        if not isinstance(output, keras.KerasTensor) or len(output.shape) != 4 or not stride:
            continue
        stride_of[id(output)] = stride
        if not isinstance(layer, keras.layers.ZeroPadding2D):
            # A padded map (before a strided convolution) is never what a head taps.
            last[stride] = layer.name
        if _BLOCK_OUTPUT.fullmatch(layer.name):
            endpoints[stride] = layer.name
            first.setdefault(stride, layer.name)
    if not endpoints:
        raise ValueError(
            f"Model {model.name!r} has no block outputs of a keras_mobilenets backbone "
            "(layer names such as 'expanded_conv_5_add' or 'block_3_project_BN')."
        )
    return {s: StrideEndpoint(s, endpoints[s], last[s], first[s]) for s in sorted(endpoints)}


def __getattr__(name):
    # ``BACKBONES``: the registered builder names, read from the model registry on access
    # (the builders register when ``keras_mobilenets.models`` is imported).
    if name == "BACKBONES":
        return registry.builder_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def headless_backbone(backbone, *, input_shape, output_stride=32, argument="backbone", **kwargs):
    """The backbone a detection or segmentation head is built on.

    Heads take either a builder name (built here without its top) or a model built by
    this package (``include_top=False``, any weights); either way they find their taps
    only through ``stride_endpoints``.

    Args:
        backbone: A registered builder name (``registry.builder_names()``) or a functional
            model from one of those builders.
        input_shape: ``(rows, cols, channels)`` of the head's input; for a model it must
            equal (or be None where) the model's own input shape is.
        output_stride: 8, 16 or 32 (dilated last stages below 32); for a model it must
            be the stride the model was built with.
        argument: The argument name used in error messages.
        **kwargs: Builder arguments (e.g. ``alpha``, ``weights``) for a builder name.

    Returns:
        A functional ``keras.Model`` whose endpoints include ``output_stride``.

    Raises:
        ValueError: For an unknown name, a model that is not one of the package's
            backbones, or a model whose input shape or output stride does not match.

    Example:
        >>> model = headless_backbone("MobileNetV3Large", input_shape=(320, 320, 3))
        >>> stride_endpoints(model)[16].last
        'expanded_conv_12_expand_act'
    """
    names = registry.builder_names()
    if isinstance(backbone, str):
        if backbone not in names:
            raise ValueError(
                f"`{argument}` must be one of {names} or a model built by keras_mobilenets, "
                f"got {backbone!r}."
            )
        builder = registry.get_builder(backbone, argument)
        return builder(
            input_shape=input_shape, include_top=False, output_stride=output_stride, **kwargs
        )
    if not isinstance(backbone, keras.Model):
        raise ValueError(
            f"`{argument}` must be one of {names} or a keras.Model built by keras_mobilenets, "
            f"got {type(backbone).__name__}."
        )
    if kwargs:
        raise ValueError(
            f"Builder arguments {sorted(kwargs)} only apply when `{argument}` is a name; "
            f"build the model {backbone.name!r} with them instead."
        )
    try:
        endpoints = stride_endpoints(backbone)
    except ValueError as error:
        raise ValueError(f"`{argument}` is not a keras_mobilenets backbone: {error}") from None
    model_shape = tuple(backbone.input_shape[1:])
    if input_shape is not None and any(
        want is not None and have is not None and want != have
        for want, have in zip(input_shape, model_shape)
    ) or input_shape is not None and len(input_shape) != len(model_shape):
        raise ValueError(
            f"`input_shape` {tuple(input_shape)!r} does not match the input shape "
            f"{model_shape!r} of `{argument}` {backbone.name!r}."
        )
    if max(endpoints) != output_stride:
        raise ValueError(
            f"`{argument}` {backbone.name!r} has output stride {max(endpoints)}, but "
            f"output_stride={output_stride!r} is needed; build it with "
            f"output_stride={output_stride}."
        )
    return backbone

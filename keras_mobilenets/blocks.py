"""One function per block kind: ``(x, row, names, bn) -> x``, built from named layers only.

A block knows nothing of the variant it belongs to: widths, strides, activations and layer
names all come from its spec row and the resolved name dict (see ``specs.BlockNames``).
"""

import keras

from keras_mobilenets.layers import (
    ChannelShuffle,
    ChannelSplit,
    HardSigmoid,
    HardSwish,
    grouped_conv,
)
from keras_mobilenets.specs import make_divisible


def activation(act, name):
    """Returns the activation layer for ``act`` ("relu", "relu6" or "hard_swish")."""
    if act == "relu":
        return keras.layers.ReLU(name=name)
    if act == "relu6":
        return keras.layers.ReLU(6.0, name=name)
    if act == "hard_swish":
        return HardSwish(name=name)
    raise ValueError(f"Unknown activation {act!r}; expected 'relu', 'relu6' or 'hard_swish'.")


def batch_norm(bn, name):
    """A BatchNormalization layer with the family's explicit epsilon and momentum."""
    return keras.layers.BatchNormalization(
        axis=-1, epsilon=bn.epsilon, momentum=bn.momentum, name=name
    )


def stride_padding(x, kernel):
    """Zero padding that makes a 'valid' stride-2 convolution match TF-slim's 'same'.

    Pads one row/column less at the top/left when the input size is even (or unknown).
    """
    padding = []
    for size in x.shape[1:3]:
        adjust = 1 if size is None else 1 - size % 2
        padding.append((kernel // 2 - adjust, kernel // 2))
    return tuple(padding)


def conv_bn_act(x, spec, bn):
    """Convolution + batch norm + activation from a ``ConvSpec`` (stems, last 1x1 conv)."""
    conv_name, bn_name, act_name = spec.names
    padding = "same"
    if spec.pad_name and spec.stride > 1:
        x = keras.layers.ZeroPadding2D(spec.kernel // 2, name=spec.pad_name)(x)
        padding = "valid"
    x = keras.layers.Conv2D(
        spec.filters,
        spec.kernel,
        strides=spec.stride,
        padding=padding,
        use_bias=False,
        name=conv_name,
    )(x)
    x = batch_norm(bn, bn_name)(x)
    return activation(spec.act, act_name)(x)


def stem_pool(x, spec):
    """Symmetric zero padding + "valid" max-pool from a ``PoolSpec`` (after a ReLU stem)."""
    pad_name, pool_name = spec.names
    x = keras.layers.ZeroPadding2D(spec.pool // 2, name=pad_name)(x)
    return keras.layers.MaxPooling2D(spec.pool, strides=spec.stride, name=pool_name)(x)


def _depthwise(x, kernel, stride, dilation, depth_multiplier, names, pad):
    """Depthwise conv; stride 2 uses explicit zero padding then 'valid' (TF-slim style)."""
    if stride > 1:
        x = keras.layers.ZeroPadding2D(pad, name=names["pad"])(x)
    return keras.layers.DepthwiseConv2D(
        kernel,
        strides=stride,
        padding="valid" if stride > 1 else "same",
        dilation_rate=dilation,
        depth_multiplier=depth_multiplier,
        use_bias=False,
        name=names["depthwise"],
    )(x)


def separable_block(x, row, names, bn):
    """MobileNet V1 depthwise separable block (``SeparableSpec``)."""
    pad = ((0, row.kernel // 2), (0, row.kernel // 2))
    x = _depthwise(x, row.kernel, row.stride, row.dilation, row.depth_multiplier, names, pad)
    x = batch_norm(bn, names["depthwise_bn"])(x)
    x = activation(row.act, names["depthwise_act"])(x)
    x = keras.layers.Conv2D(row.out, 1, padding="same", use_bias=False, name=names["project"])(x)
    x = batch_norm(bn, names["project_bn"])(x)
    return activation(row.act, names["project_act"])(x)


def squeeze_excite(x, channels, se_ratio, names):
    """Squeeze-and-excitation gate (MobileNetV3 form: ReLU then hard-sigmoid)."""
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True, name=names["se_pool"])(x)
    gate = keras.layers.Conv2D(
        make_divisible(channels * se_ratio), 1, padding="same", name=names["se_reduce"]
    )(gate)
    gate = keras.layers.ReLU(name=names["se_reduce_act"])(gate)
    gate = keras.layers.Conv2D(channels, 1, padding="same", name=names["se_expand"])(gate)
    gate = HardSigmoid(name=names["se_gate"])(gate)
    return keras.layers.Multiply(name=names["se_multiply"])([x, gate])


def inverted_residual_block(x, row, names, bn):
    """Inverted residual with linear bottleneck (``InvertedResidualSpec``)."""
    shortcut = x
    in_channels = x.shape[-1]
    if row.exp != in_channels:
        x = keras.layers.Conv2D(
            row.exp, 1, padding="same", use_bias=False, name=names["expand"]
        )(x)
        x = batch_norm(bn, names["expand_bn"])(x)
        x = activation(row.act, names["expand_act"])(x)
    pad = stride_padding(x, row.kernel) if row.padding == "tf" else row.kernel // 2
    x = _depthwise(x, row.kernel, row.stride, row.dilation, 1, names, pad)
    x = batch_norm(bn, names["depthwise_bn"])(x)
    x = activation(row.act, names["depthwise_act"])(x)
    if row.se_ratio:
        x = squeeze_excite(x, row.exp, row.se_ratio, names)
    x = keras.layers.Conv2D(row.out, 1, padding="same", use_bias=False, name=names["project"])(x)
    x = batch_norm(bn, names["project_bn"])(x)
    if row.stride == 1 and in_channels == row.out:
        x = keras.layers.Add(name=names["add"])([shortcut, x])
    return x


def _symmetric_depthwise(x, kernel, stride, dilation, pad_name, name):
    """Depthwise conv with PyTorch-style symmetric padding (``dilation * (kernel // 2)``).

    Stride 2 pads explicitly (layer ``pad_name``) and convolves "valid"; stride 1 uses
    "same", which pads symmetrically for odd kernels.
    """
    padding = "same"
    if stride > 1:
        x = keras.layers.ZeroPadding2D(dilation * (kernel // 2), name=pad_name)(x)
        padding = "valid"
    return keras.layers.DepthwiseConv2D(
        kernel, strides=stride, padding=padding, dilation_rate=dilation, use_bias=False,
        name=name,
    )(x)


def _pointwise(x, filters, names, key, bn, groups=1):
    """1x1 (grouped) convolution + batch norm, layers ``names[key]`` and ``names[key_bn]``.

    A grouped one is a ``layers.grouped_conv.Conv2D`` (keras' Conv2D with TensorFlow's
    native grouped kernel: same weights, trains at the cost of its multiply-adds on CPUs);
    an ungrouped one stays a plain ``keras.layers.Conv2D``.
    """
    conv = grouped_conv.Conv2D if groups > 1 else keras.layers.Conv2D
    x = conv(filters, 1, groups=groups, use_bias=False, name=names[key])(x)
    return batch_norm(bn, names[f"{key}_bn"])(x)


def shuffle_unit_block(x, row, names, bn):
    """ShuffleNet V1 unit (``ShuffleUnitSpec``, arXiv:1707.01083 Figure 2 b/c)."""
    shortcut = x
    in_channels = x.shape[-1]
    if not row.downsample and in_channels != row.out:
        raise ValueError(
            f"ShuffleUnitSpec: a unit without `downsample` needs as many input as output "
            f"channels, got {in_channels} -> {row.out}."
        )
    first_groups = row.groups if row.group_first else 1
    x = _pointwise(x, row.bottleneck, names, "expand", bn, groups=first_groups)
    x = activation("relu", names["expand_act"])(x)
    if first_groups > 1:
        x = ChannelShuffle(first_groups, name=names["shuffle"])(x)
    x = _symmetric_depthwise(
        x, row.kernel, row.stride, row.dilation, names["pad"], names["depthwise"]
    )
    x = batch_norm(bn, names["depthwise_bn"])(x)
    branch_out = row.out - in_channels if row.downsample else row.out
    x = _pointwise(x, branch_out, names, "project", bn, groups=row.groups)
    if row.downsample:
        # 3x3 average pool counting the zero padding (PyTorch's count_include_pad).
        shortcut = keras.layers.ZeroPadding2D(1, name=names["shortcut_pad"])(shortcut)
        shortcut = keras.layers.AveragePooling2D(
            3, strides=row.stride, name=names["shortcut_pool"]
        )(shortcut)
        x = keras.layers.Concatenate(name=names["concat"])([shortcut, x])
    else:
        x = keras.layers.Add(name=names["add"])([shortcut, x])
    return activation("relu", names["output_act"])(x)


def shuffle_v2_unit_block(x, row, names, bn):
    """ShuffleNetV2 unit (``ShuffleV2UnitSpec``, arXiv:1807.11164 Figure 3 c/d)."""
    in_channels = x.shape[-1]
    branch_out = row.out // 2
    if row.split:
        if in_channels != row.out:
            raise ValueError(
                f"ShuffleV2UnitSpec: a `split` unit needs as many input as output channels, "
                f"got {in_channels} -> {row.out}."
            )
        shortcut = ChannelSplit(2, 0, name=names["split_identity"])(x)
        x = ChannelSplit(2, 1, name=names["split"])(x)
    else:
        shortcut = _symmetric_depthwise(
            x, row.kernel, row.stride, row.dilation, names["shortcut_pad"],
            names["shortcut_depthwise"],
        )
        shortcut = batch_norm(bn, names["shortcut_depthwise_bn"])(shortcut)
        shortcut = _pointwise(shortcut, branch_out, names, "shortcut_project", bn)
        shortcut = activation("relu", names["shortcut_project_act"])(shortcut)
    x = _pointwise(x, branch_out, names, "expand", bn)
    x = activation("relu", names["expand_act"])(x)
    x = _symmetric_depthwise(
        x, row.kernel, row.stride, row.dilation, names["pad"], names["depthwise"]
    )
    x = batch_norm(bn, names["depthwise_bn"])(x)
    x = _pointwise(x, branch_out, names, "project", bn)
    x = activation("relu", names["project_act"])(x)
    x = keras.layers.Concatenate(name=names["concat"])([shortcut, x])
    return ChannelShuffle(2, name=names["shuffle"])(x)


BLOCK_BUILDERS = {
    "SeparableSpec": separable_block,
    "InvertedResidualSpec": inverted_residual_block,
    "ShuffleUnitSpec": shuffle_unit_block,
    "ShuffleV2UnitSpec": shuffle_v2_unit_block,
}


def build_block(x, row, names, bn):
    """Dispatches ``row`` to the builder of its kind."""
    kind = type(row).__name__
    if kind not in BLOCK_BUILDERS:
        raise TypeError(f"No block builder for {kind}; known: {sorted(BLOCK_BUILDERS)}.")
    return BLOCK_BUILDERS[kind](x, row, names, bn)

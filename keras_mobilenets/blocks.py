"""One function per block kind: ``(x, row, names, bn) -> x``, built from named layers only.

A block knows nothing of the variant it belongs to: widths, strides, activations and layer
names all come from its spec row and the resolved name dict (see ``specs.BlockNames``).
"""

import keras

from keras_mobilenets.layers import (
    GELU,
    BatchNormalization,
    ChannelShuffle,
    ChannelSplit,
    HardSigmoid,
    HardSwish,
    grouped_conv,
    MultiQueryAttention,
    StandaloneBatchNorm,
)
from keras_mobilenets.specs import make_divisible


def activation(act, name):
    """Returns the activation layer for ``act`` ("relu", "relu6", "hard_swish", "gelu")."""
    if act == "relu":
        return keras.layers.ReLU(name=name)
    if act == "relu6":
        return keras.layers.ReLU(6.0, name=name)
    if act == "hard_swish":
        return HardSwish(name=name)
    if act == "gelu":
        return GELU(name=name)
    raise ValueError(
        f"Unknown activation {act!r}; expected 'relu', 'relu6', 'hard_swish' or 'gelu'."
    )


def batch_norm(bn, name):
    """A BatchNormalization layer with the family's explicit epsilon and momentum.

    The package's ``layers.batch_norm.BatchNormalization``: keras' layer (same config and
    weights) that trains with TensorFlow's fused kernel.
    """
    return BatchNormalization(axis=-1, epsilon=bn.epsilon, momentum=bn.momentum, name=name)


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


def _symmetric_conv(x, filters, kernel, stride, dilation, pad_name, name):
    """Convolution without bias, PyTorch-style symmetric padding (see _symmetric_depthwise)."""
    padding = "same"
    if stride > 1:
        x = keras.layers.ZeroPadding2D(dilation * (kernel // 2), name=pad_name)(x)
        padding = "valid"
    return keras.layers.Conv2D(
        filters, kernel, strides=stride, padding=padding, dilation_rate=dilation,
        use_bias=False, name=name,
    )(x)


def _layer_scale(x, base):
    """MobileNetV4 layer scale: a learned per-channel factor (initially 1e-5).

    Built as a 1x1 depthwise convolution without bias, which tfmot and the TFLite
    converter handle like any other depthwise convolution (per-channel int8 weights).
    """
    return keras.layers.DepthwiseConv2D(
        1, use_bias=False, depthwise_initializer=keras.initializers.Constant(1e-5),
        name=f"{base}layer_scale",
    )(x)


def conv_block(x, row, names, bn):
    """MobileNetV4 convolution block (``ConvBlockSpec``): conv, batch norm, activation."""
    base = names["base"]
    x = _symmetric_conv(
        x, row.out, row.kernel, row.stride, row.dilation, f"{base}pad", f"{base}conv"
    )
    x = batch_norm(bn, f"{base}bn1")(x)
    return activation(row.act, f"{base}bn1_act")(x)


def fused_ib_block(x, row, names, bn):
    """Fused inverted bottleneck (``FusedIBSpec``, arXiv:2404.10518 Figure 4)."""
    base, shortcut, in_channels = names["base"], x, x.shape[-1]
    x = _symmetric_conv(
        x, row.exp, row.kernel, row.stride, row.dilation, f"{base}conv_exp_pad",
        f"{base}conv_exp",
    )
    x = batch_norm(bn, f"{base}bn1")(x)
    x = activation(row.act, f"{base}bn1_act")(x)
    x = keras.layers.Conv2D(row.out, 1, use_bias=False, name=f"{base}conv_pwl")(x)
    x = batch_norm(bn, f"{base}bn2")(x)
    if row.stride == 1 and in_channels == row.out:
        x = keras.layers.Add(name=names["add"])([shortcut, x])
    return x


def _uib_depthwise(x, row, part, kernel, stride, bn, base, act):
    x = _symmetric_depthwise(
        x, kernel, stride, row.dilation, f"{base}{part}_pad", f"{base}{part}_conv"
    )
    x = batch_norm(bn, f"{base}{part}_bn")(x)
    return activation(row.act, f"{base}{part}_act")(x) if act else x


def uib_block(x, row, names, bn):
    """Universal inverted bottleneck (``UIBSpec``, arXiv:2404.10518 Figure 4).

    Optional ``start`` depthwise (no activation), 1x1 expansion, optional ``mid``
    depthwise, 1x1 linear projection, optional ``end`` depthwise, optional layer scale,
    residual add when the shape is kept. The stride goes to the first depthwise there is.
    """
    base, shortcut, in_channels = names["base"], x, x.shape[-1]
    if row.start:
        stride = 1 if row.mid else row.stride
        x = _uib_depthwise(x, row, "dw_start", row.start, stride, bn, base, act=False)
    x = keras.layers.Conv2D(row.exp, 1, use_bias=False, name=f"{base}pw_exp_conv")(x)
    x = batch_norm(bn, f"{base}pw_exp_bn")(x)
    x = activation(row.act, f"{base}pw_exp_act")(x)
    if row.mid:
        x = _uib_depthwise(x, row, "dw_mid", row.mid, row.stride, bn, base, act=True)
    x = keras.layers.Conv2D(row.out, 1, use_bias=False, name=f"{base}pw_proj_conv")(x)
    x = batch_norm(bn, f"{base}pw_proj_bn")(x)
    if row.end:
        stride = 1 if row.start or row.mid else row.stride
        x = _uib_depthwise(x, row, "dw_end", row.end, stride, bn, base, act=False)
    if row.layer_scale:
        x = _layer_scale(x, base)
    if row.stride == 1 and in_channels == row.out:
        x = keras.layers.Add(name=names["add"])([shortcut, x])
    return x


def mobile_mqa_block(x, row, names, bn):
    """Mobile MQA block (``MobileMQASpec``, arXiv:2404.10518 section 4).

    Batch norm, then ``heads`` query projections and one shared key and value projection
    (from a ``kv_stride`` depthwise down-sampling + BN each when ``kv_stride`` > 1),
    :class:`~keras_mobilenets.layers.MultiQueryAttention`, output projection, optional
    layer scale, residual add. The key / value down-sampling is never dilated.
    """
    base, shortcut, in_channels = names["base"], x, x.shape[-1]
    x = StandaloneBatchNorm(epsilon=bn.epsilon, momentum=bn.momentum, name=f"{base}norm")(x)
    query = keras.layers.Conv2D(
        row.heads * row.key_dim, 1, use_bias=False, name=f"{base}attn_query_proj"
    )(x)
    key_value = []
    for part in ("key", "value"):
        y = x
        if row.kv_stride > 1:
            y = _symmetric_depthwise(
                y, row.kernel, row.kv_stride, 1, f"{base}attn_{part}_down_pad",
                f"{base}attn_{part}_down_conv",
            )
            y = batch_norm(bn, f"{base}attn_{part}_norm")(y)
        y = keras.layers.Conv2D(
            row.key_dim, 1, use_bias=False, name=f"{base}attn_{part}_proj"
        )(y)
        key_value.append(y)
    x = MultiQueryAttention(row.heads, name=f"{base}attn")([query, *key_value])
    x = keras.layers.Conv2D(row.out, 1, use_bias=False, name=f"{base}attn_output_proj")(x)
    if row.layer_scale:
        x = _layer_scale(x, base)
    if in_channels == row.out:
        x = keras.layers.Add(name=names["add"])([shortcut, x])
    return x


BLOCK_BUILDERS = {
    "ConvBlockSpec": conv_block,
    "FusedIBSpec": fused_ib_block,
    "UIBSpec": uib_block,
    "MobileMQASpec": mobile_mqa_block,
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

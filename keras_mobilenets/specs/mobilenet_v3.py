"""MobileNetV3 Small and Large (Howard et al. 2019, arXiv:1905.02244), Tables 1 and 2.

Rows transcribe the paper's tables (kernel, exp size, out, SE, activation, stride).
``minimalistic`` is the TF-slim variant without squeeze-and-excitation, hard-swish or
5x5 kernels. ``reduced_tail`` halves the channels of the last stage (Section 6.3 of the
paper, "reduced tail" for detection and segmentation; torchvision's ``reduced_tail``,
used by ``ssdlite320_mobilenet_v3_large``). Layer names follow
keras.applications.MobileNetV3Small/Large.
"""

import dataclasses

from keras_mobilenets.specs.block_spec import (
    BackboneSpec,
    BatchNormSpec,
    BlockNames,
    TopSpec,
    check_layout,
    conv,
    ir,
    symmetric_padding,
)
from keras_mobilenets.specs.scaling import make_divisible, scale_inverted_residuals

STEM_FILTERS = 16
HS = "hard_swish"

# Table 2: MobileNetV3-Small.
SMALL_BLOCKS = (
    ir(k=3, exp=16, out=16, se=True, act="relu", s=2),
    ir(k=3, exp=72, out=24, act="relu", s=2),
    ir(k=3, exp=88, out=24, act="relu"),
    ir(k=5, exp=96, out=40, se=True, act=HS, s=2),
    ir(k=5, exp=240, out=40, se=True, act=HS),
    ir(k=5, exp=240, out=40, se=True, act=HS),
    ir(k=5, exp=120, out=48, se=True, act=HS),
    ir(k=5, exp=144, out=48, se=True, act=HS),
    ir(k=5, exp=288, out=96, se=True, act=HS, s=2),
    ir(k=5, exp=576, out=96, se=True, act=HS),
    ir(k=5, exp=576, out=96, se=True, act=HS),
)
SMALL_TOP_FILTERS = 1024

# Table 1: MobileNetV3-Large.
LARGE_BLOCKS = (
    ir(k=3, exp=16, out=16, act="relu"),
    ir(k=3, exp=64, out=24, act="relu", s=2),
    ir(k=3, exp=72, out=24, act="relu"),
    ir(k=5, exp=72, out=40, se=True, act="relu", s=2),
    ir(k=5, exp=120, out=40, se=True, act="relu"),
    ir(k=5, exp=120, out=40, se=True, act="relu"),
    ir(k=3, exp=240, out=80, act=HS, s=2),
    ir(k=3, exp=200, out=80, act=HS),
    ir(k=3, exp=184, out=80, act=HS),
    ir(k=3, exp=184, out=80, act=HS),
    ir(k=3, exp=480, out=112, se=True, act=HS),
    ir(k=3, exp=672, out=112, se=True, act=HS),
    ir(k=5, exp=672, out=160, se=True, act=HS, s=2),
    ir(k=5, exp=960, out=160, se=True, act=HS),
    ir(k=5, exp=960, out=160, se=True, act=HS),
)
LARGE_TOP_FILTERS = 1280

LAST_CONV_EXPANSION = 6
TAIL_DIVIDER = 2



NAMES = BlockNames(
    first_prefix="expanded_conv_",
    prefix="expanded_conv_{i}_",
    expand="{prefix}expand",
    expand_bn="{prefix}expand_bn",
    expand_act="{prefix}expand_act",
    pad="{prefix}depthwise_pad",
    depthwise="{prefix}depthwise",
    depthwise_bn="{prefix}depthwise_bn",
    depthwise_act="{prefix}depthwise_act",
    se_pool="{prefix}squeeze_excite_avg_pool",
    se_reduce="{prefix}squeeze_excite_conv",
    se_reduce_act="{prefix}squeeze_excite_relu",
    se_expand="{prefix}squeeze_excite_conv_1",
    se_gate="{prefix}squeeze_excite_hard_sigmoid",
    se_multiply="{prefix}squeeze_excite_mul",
    project="{prefix}project",
    project_bn="{prefix}project_bn",
    add="{prefix}add",
)

BLOCK_OUTPUT_PATTERN = r"expanded_conv(_\d+)?_(project_bn|add)"


def _minimalistic(row):
    return dataclasses.replace(row, kernel=3, act="relu", se_ratio=0.0)


def _reduce_tail(rows, divider):
    """Divides the widths of the last stage by ``divider``.

    The last stride-2 row keeps its expansion (it reads the previous stage) and divides
    its output; every later row divides both its expansion and its output.
    """
    first = max(i for i, row in enumerate(rows) if row.stride > 1)
    reduced = []
    for i, row in enumerate(rows):
        if i == first:
            row = dataclasses.replace(row, out=row.out // divider)
        elif i > first:
            row = dataclasses.replace(row, exp=row.exp // divider, out=row.out // divider)
        reduced.append(row)
    return tuple(reduced)


def spec(size, alpha=1.0, minimalistic=False, reduced_tail=False, layout="keras"):
    """MobileNetV3 ``size`` ("small" or "large") at width ``alpha``.

    ``layout="torchvision"`` builds torchvision's ``mobilenet_v3_{size}(width_mult=alpha)``:
    the same layers and names, with symmetric padding of the strided convolutions (stem
    layer ``conv_pad``), batch-norm momentum 0.99 (PyTorch's 0.01) and torchvision's width
    rounding (stem, exp sizes and the top's hidden width scaled with ``alpha`` too; the
    same as keras.applications at ``alpha=1``).

    Example:
        >>> spec("large").last_conv.filters
        960
        >>> spec("large", reduced_tail=True).last_conv.filters
        480
    """
    if size not in ("small", "large"):
        raise ValueError(f"`size` must be 'small' or 'large', got {size!r}.")
    rows = SMALL_BLOCKS if size == "small" else LARGE_BLOCKS
    top_filters = SMALL_TOP_FILTERS if size == "small" else LARGE_TOP_FILTERS
    if reduced_tail:
        rows = _reduce_tail(rows, TAIL_DIVIDER)
        top_filters //= TAIL_DIVIDER
    torch = check_layout(layout)
    act = "relu" if minimalistic else HS
    if minimalistic:
        rows = tuple(_minimalistic(row) for row in rows)
    stem_filters = make_divisible(STEM_FILTERS * alpha) if torch else STEM_FILTERS
    blocks = scale_inverted_residuals(
        rows, (STEM_FILTERS, stem_filters), alpha, "divisible", "scaled" if torch else "ratio"
    )
    if alpha > 1.0 or torch:
        top_filters = make_divisible(top_filters * alpha)
    return BackboneSpec(
        family=f"mobilenet_v3_{size}",
        stem=conv(stem_filters, k=3, s=2, act=act, names=("conv", "conv_bn", "conv_act"),
                  pad_name="conv_pad" if torch else ""),
        blocks=symmetric_padding(blocks) if torch else blocks,
        names=NAMES,
        bn=BatchNormSpec(epsilon=1e-3, momentum=0.99 if torch else 0.999),
        top=TopSpec(
            kind="conv",
            logits_name="logits",
            hidden=top_filters,
            hidden_act=act,
            hidden_name="conv_2",
            reshape_name="flatten",
        ),
        last_conv=conv(
            make_divisible(blocks[-1].out * LAST_CONV_EXPANSION),
            k=1,
            act=act,
            names=("conv_1", "conv_1_bn", "conv_1_act"),
        ),
    )

"""MobileNetV2 (Sandler et al. 2018, arXiv:1801.04381), Table 2.

Rows give the paper's bottleneck table one block per row: expanded width (t x input
width), output width, stride. Layer names follow keras.applications.MobileNetV2.
"""

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

STEM_FILTERS = 32
LAST_CONV_FILTERS = 1280


def _stage(t, c, n, s, c_in):
    """Rows of one Table 2 line: expansion t, output c, repeats n, first stride s."""
    return tuple(
        ir(k=3, exp=t * (c_in if i == 0 else c), out=c, act="relu6", s=s if i == 0 else 1)
        for i in range(n)
    )


# Table 2 (t, c, n, s).
BLOCKS = (
    _stage(1, 16, 1, 1, c_in=32)
    + _stage(6, 24, 2, 2, c_in=16)
    + _stage(6, 32, 3, 2, c_in=24)
    + _stage(6, 64, 4, 2, c_in=32)
    + _stage(6, 96, 3, 1, c_in=64)
    + _stage(6, 160, 3, 2, c_in=96)
    + _stage(6, 320, 1, 1, c_in=160)
)

NAMES = BlockNames(
    first_prefix="expanded_conv_",
    prefix="block_{i}_",
    expand="{prefix}expand",
    expand_bn="{prefix}expand_BN",
    expand_act="{prefix}expand_relu",
    pad="{prefix}pad",
    depthwise="{prefix}depthwise",
    depthwise_bn="{prefix}depthwise_BN",
    depthwise_act="{prefix}depthwise_relu",
    project="{prefix}project",
    project_bn="{prefix}project_BN",
    add="{prefix}add",
)

BLOCK_OUTPUT_PATTERN = r"(expanded_conv|block_\d+)_(project_BN|add)"


def spec(alpha=1.0, layout="keras"):
    """MobileNetV2 at width ``alpha``.

    ``layout="torchvision"`` builds torchvision's ``mobilenet_v2(width_mult=alpha)``: the
    same layers and names, with symmetric padding of the strided convolutions (stem layer
    ``Conv1_pad``), batch-norm epsilon 1e-5 (momentum 0.9, PyTorch's 0.1) and widths
    rounded from ``c * alpha`` (keras.applications truncates ``c * alpha`` first).

    Example:
        >>> spec(1.4).last_conv.filters
        1792
        >>> spec(layout="torchvision").bn.epsilon
        1e-05
    """
    torch = check_layout(layout)
    stem_filters = make_divisible(STEM_FILTERS * alpha)
    last_filters = make_divisible(LAST_CONV_FILTERS * alpha) if alpha > 1.0 else LAST_CONV_FILTERS
    blocks = scale_inverted_residuals(
        BLOCKS, (STEM_FILTERS, stem_filters), alpha,
        "divisible" if torch else "truncate_then_divisible",
    )
    return BackboneSpec(
        family="mobilenet_v2",
        stem=conv(stem_filters, k=3, s=2, act="relu6", names=("Conv1", "bn_Conv1", "Conv1_relu"),
                  pad_name="Conv1_pad" if torch else ""),
        blocks=symmetric_padding(blocks) if torch else blocks,
        names=NAMES,
        bn=BatchNormSpec(epsilon=1e-5, momentum=0.9) if torch else BatchNormSpec(
            epsilon=1e-3, momentum=0.999),
        top=TopSpec(kind="dense", logits_name="predictions"),
        last_conv=conv(last_filters, k=1, act="relu6", names=("Conv_1", "Conv_1_bn", "out_relu")),
    )

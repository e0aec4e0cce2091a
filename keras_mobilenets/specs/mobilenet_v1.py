"""MobileNet V1 (Howard et al. 2017, arXiv:1704.04861), Table 1.

Layer names follow keras.applications.MobileNet, so its ImageNet checkpoints load by name.
"""

import dataclasses

from keras_mobilenets.specs.block_spec import (
    BackboneSpec,
    BatchNormSpec,
    BlockNames,
    TopSpec,
    conv,
    dws,
)
from keras_mobilenets.specs.scaling import scale_width

STEM_FILTERS = 32

# Table 1: depthwise separable blocks (pointwise width, stride), at width 1.0.
BLOCKS = (
    dws(64),
    dws(128, s=2),
    dws(128),
    dws(256, s=2),
    dws(256),
    dws(512, s=2),
    dws(512),
    dws(512),
    dws(512),
    dws(512),
    dws(512),
    dws(1024, s=2),
    dws(1024),
)

NAMES = BlockNames(
    first_prefix="",
    prefix="",
    pad="conv_pad_{i}",
    depthwise="conv_dw_{i}",
    depthwise_bn="conv_dw_{i}_bn",
    depthwise_act="conv_dw_{i}_relu",
    project="conv_pw_{i}",
    project_bn="conv_pw_{i}_bn",
    project_act="conv_pw_{i}_relu",
)

# Every block output (the pointwise activation) matches this; used by the features API.
BLOCK_OUTPUT_PATTERN = r"conv_pw_\d+_relu"


def spec(alpha=1.0, depth_multiplier=1):
    """MobileNet V1 at width ``alpha`` (channels truncated, as keras.applications does).

    Example:
        >>> spec(0.25).blocks[-1].out
        256
    """
    blocks = tuple(
        dataclasses.replace(
            row, out=scale_width(row.out, alpha, "truncate"), depth_multiplier=depth_multiplier
        )
        for row in BLOCKS
    )
    return BackboneSpec(
        family="mobilenet_v1",
        stem=conv(
            scale_width(STEM_FILTERS, alpha, "truncate"),
            k=3,
            s=2,
            act="relu6",
            names=("conv1", "conv1_bn", "conv1_relu"),
        ),
        blocks=blocks,
        names=NAMES,
        bn=BatchNormSpec(epsilon=1e-3, momentum=0.99),
        top=TopSpec(kind="conv", logits_name="conv_preds", reshape_name="reshape_2"),
        first_block_index=1,
    )

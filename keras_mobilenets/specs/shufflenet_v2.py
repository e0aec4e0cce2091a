"""ShuffleNetV2 (Ma et al. 2018, arXiv:1807.11164), Table 5.

Conv1 (3x3, stride 2, 24 channels) and a 3x3 stride-2 max-pool, stages 2-4 of 1 + 3,
1 + 7 and 1 + 3 units (the first, stride 2, without channel split), Conv5 (1x1), global
pooling and a fully connected layer with bias: the arrangement of the paper and of
torchvision's ``shufflenet_v2_x*``, whose trainable parameter counts it reproduces.
The widths per scale are Table 5's, not computed by rounding.

Layer names: ``conv1*``, ``maxpool*``, ``stage{2,3,4}_{unit}_{op}`` (units counted from 1
in each stage), ``conv5*``, ``avg_pool``, ``predictions``.
"""

from keras_mobilenets.specs.block_spec import (
    BackboneSpec,
    BatchNormSpec,
    BlockNames,
    PoolSpec,
    TopSpec,
    conv,
    shuffle_v2,
)

SCALES = (0.5, 1.0, 1.5, 2.0)

STEM_FILTERS = 24

# Table 5: output channels of stages 2, 3, 4 and Conv5 per scale.
STAGE_CHANNELS = {
    0.5: (48, 96, 192, 1024),
    1.0: (116, 232, 464, 1024),
    1.5: (176, 352, 704, 1024),
    2.0: (244, 488, 976, 2048),
}

# Table 5 "Repeat": (stage, units); the first unit of each stage has stride 2.
STAGE_REPEATS = ((2, 4), (3, 8), (4, 4))

# Table 5 "FLOPs" (multiply-adds) in millions.
COMPLEXITY_MILLIONS = {0.5: 41, 1.0: 146, 1.5: 299, 2.0: 591}

NAMES = BlockNames(
    first_prefix="",
    prefix="",
    split_identity="{prefix}split_identity",
    split="{prefix}split",
    shortcut_pad="{prefix}shortcut_pad",
    shortcut_depthwise="{prefix}shortcut_depthwise",
    shortcut_depthwise_bn="{prefix}shortcut_depthwise_bn",
    shortcut_project="{prefix}shortcut_project",
    shortcut_project_bn="{prefix}shortcut_project_bn",
    shortcut_project_act="{prefix}shortcut_project_relu",
    expand="{prefix}expand",
    expand_bn="{prefix}expand_bn",
    expand_act="{prefix}expand_relu",
    pad="{prefix}pad",
    depthwise="{prefix}depthwise",
    depthwise_bn="{prefix}depthwise_bn",
    project="{prefix}project",
    project_bn="{prefix}project_bn",
    project_act="{prefix}project_relu",
    concat="{prefix}concat",
    shuffle="{prefix}concat_shuffle",
)

# Block outputs (a unit's final shuffle) and the stride-4 max-pool; read by the features API.
# (``_concat_shuffle``, not ``_shuffle``: V1's inner shuffle is ``stage{s}_{u}_shuffle``.)
BLOCK_OUTPUT_PATTERN = r"maxpool|stage\d+_\d+_concat_shuffle"


def rows(scale=1.0):
    """The unit rows and their name prefixes for ShuffleNetV2 ``scale`` x.

    Returns:
        ``(rows, prefixes)``: tuples of ``ShuffleV2UnitSpec`` rows and ``"stage{s}_{u}_"``.
    """
    if scale not in SCALES:
        raise ValueError(f"`scale` must be one of {SCALES}, got {scale!r}.")
    blocks, prefixes = [], []
    for (stage, repeats), width in zip(STAGE_REPEATS, STAGE_CHANNELS[scale]):
        for unit in range(1, repeats + 1):
            blocks.append(shuffle_v2(width, s=2 if unit == 1 else 1))
            prefixes.append(f"stage{stage}_{unit}_")
    return tuple(blocks), tuple(prefixes)


def spec(scale=1.0):
    """ShuffleNetV2 ``scale`` x.

    Raises:
        ValueError: If ``scale`` is not one of the paper's values.

    Example:
        >>> spec(2.0).last_conv.filters
        2048
    """
    blocks, prefixes = rows(scale)
    return BackboneSpec(
        family="shufflenet_v2",
        stem=conv(
            STEM_FILTERS,
            k=3,
            s=2,
            act="relu",
            names=("conv1", "conv1_bn", "conv1_relu"),
            pad_name="conv1_pad",
        ),
        stem_pool=PoolSpec(pool=3, stride=2, names=("maxpool_pad", "maxpool")),
        blocks=blocks,
        block_prefixes=prefixes,
        names=NAMES,
        bn=BatchNormSpec(epsilon=1e-5, momentum=0.9),
        top=TopSpec(kind="dense", logits_name="predictions"),
        last_conv=conv(
            STAGE_CHANNELS[scale][3], k=1, act="relu", names=("conv5", "conv5_bn", "conv5_relu")
        ),
    )

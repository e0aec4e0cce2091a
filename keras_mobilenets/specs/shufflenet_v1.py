"""ShuffleNet V1 (Zhang et al. 2017, arXiv:1707.01083), Table 1.

Conv1 (3x3, stride 2, 24 channels) and a 3x3 stride-2 max-pool, then stages 2-4 of
1 + 3, 1 + 7 and 1 + 3 units; the first unit of each stage has stride 2 and concatenates
an average-pooled shortcut. Stage 2's output width depends on the number of groups
(Table 1); stages 3 and 4 double it. ``ShuffleNet s x`` scales every width by ``s``
(section 4.1.1). There is no Conv5: global pooling follows stage 4.

Layer names: ``conv1*``, ``maxpool*``, then ``stage{2,3,4}_{unit}_{op}`` (units counted
from 1 in each stage), then ``avg_pool`` and ``predictions``.
"""

from keras_mobilenets.specs.block_spec import (
    BackboneSpec,
    BatchNormSpec,
    BlockNames,
    PoolSpec,
    TopSpec,
    conv,
    shuffle_v1,
)
from keras_mobilenets.specs.scaling import make_divisible, scale_width

GROUPS = (1, 2, 3, 4, 8)
SCALES = (0.25, 0.5, 1.0, 1.5, 2.0)

STEM_FILTERS = 24
# Conv1 keeps at least 12 channels: with 24 x 0.25 = 6, ShuffleNet 0.25x (g = 3) would
# count 11M multiply-adds; with 12 it counts Table 2's 13M (0.5x: 12 channels, 38M).
STEM_MIN_FILTERS = 12

# Table 1: output channels of stage 2 per number of groups g (stages 3, 4: x2, x4).
STAGE2_CHANNELS = {1: 144, 2: 200, 3: 240, 4: 272, 8: 384}

# Table 1 "Repeat": (stage, units); the first unit of each stage has stride 2.
STAGE_REPEATS = ((2, 4), (3, 8), (4, 4))

# Table 1 "Complexity" (MFLOPs = multiply-adds) of ShuffleNet 1x per g, and Table 2's
# 140M for ShuffleNet 1x (g = 3).
COMPLEXITY_MILLIONS = {1: 143, 2: 140, 3: 137, 4: 133, 8: 137}

NAMES = BlockNames(
    first_prefix="",
    prefix="",
    expand="{prefix}expand",
    expand_bn="{prefix}expand_bn",
    expand_act="{prefix}expand_relu",
    shuffle="{prefix}shuffle",
    pad="{prefix}pad",
    depthwise="{prefix}depthwise",
    depthwise_bn="{prefix}depthwise_bn",
    project="{prefix}project",
    project_bn="{prefix}project_bn",
    shortcut_pad="{prefix}shortcut_pad",
    shortcut_pool="{prefix}shortcut_pool",
    add="{prefix}add",
    concat="{prefix}concat",
    output_act="{prefix}relu",
)

# Block outputs (a unit's final ReLU) and the stride-4 max-pool; read by the features API.
BLOCK_OUTPUT_PATTERN = r"maxpool|stage\d+_\d+_relu"


def _check(groups, scale):
    if groups not in GROUPS:
        raise ValueError(f"`groups` must be one of {GROUPS}, got {groups!r}.")
    if scale not in SCALES:
        raise ValueError(f"`scale` must be one of {SCALES}, got {scale!r}.")


def stage_width(stage, groups, scale):
    """Output width of ``stage`` (2, 3 or 4): Table 1 x ``scale``, a multiple of 4 g.

    A multiple of 4 g keeps the bottleneck (1/4 of it) divisible by the groups.

    Example:
        >>> stage_width(2, 8, 0.25)
        96
    """
    return scale_width(STAGE2_CHANNELS[groups] * 2 ** (stage - 2), scale, "divisible", 4 * groups)


def stem_width(groups, scale):
    """Conv1 width: 24 x ``scale``, at least 12, a multiple of g.

    A multiple of g keeps the first unit's branch (its width minus conv1's) divisible
    by the groups.

    Example:
        >>> stem_width(8, 0.25)
        16
    """
    return make_divisible(max(STEM_FILTERS * scale, STEM_MIN_FILTERS), groups)


def rows(groups=3, scale=1.0):
    """The unit rows and their name prefixes for ``ShuffleNet scale x (g = groups)``.

    Returns:
        ``(rows, prefixes)``: tuples of ``ShuffleUnitSpec`` rows and ``"stage{s}_{u}_"``.
    """
    _check(groups, scale)
    blocks, prefixes = [], []
    for stage, repeats in STAGE_REPEATS:
        width = stage_width(stage, groups, scale)
        for unit in range(1, repeats + 1):
            blocks.append(
                shuffle_v1(
                    width,
                    g=groups,
                    s=2 if unit == 1 else 1,
                    group_first=not (stage == 2 and unit == 1),
                )
            )
            prefixes.append(f"stage{stage}_{unit}_")
    return tuple(blocks), tuple(prefixes)


def spec(groups=3, scale=1.0):
    """ShuffleNet ``scale`` x with ``groups`` groups.

    Raises:
        ValueError: If ``groups`` or ``scale`` is not one of the paper's values.

    Example:
        >>> spec(3, 1.0).blocks[-1].out
        960
    """
    blocks, prefixes = rows(groups, scale)
    return BackboneSpec(
        family="shufflenet_v1",
        stem=conv(
            stem_width(groups, scale),
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
    )

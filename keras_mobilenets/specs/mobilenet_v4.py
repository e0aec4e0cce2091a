"""MobileNetV4 (Qin et al. 2024, "MobileNetV4: Universal Models for the Mobile Ecosystem",
arXiv:2404.10518): Conv-Small, Conv-Medium, Conv-Large, Hybrid-Medium and Hybrid-Large.

Rows transcribe the architecture tables of the paper's appendix in the arrangement of
timm's ``mobilenetv4_*`` models (whose trainable parameter counts they reproduce): a 3x3
stride-2 stem, stages of ``cn`` / ``fused_ib`` / ``uib`` / ``mqa`` rows (see
:mod:`.uib_spec`), a 1x1 convolution to 960 channels as the last block, and the
classification top: global pooling, 1x1 convolution to 1280 channels without bias, batch
norm, activation, fully connected layer.
The hybrids add layer scale (a learned per-channel factor on each UIB / MQA residual
branch) and Mobile MQA blocks; Hybrid-Large uses GELU where the others use ReLU. Batch
norm: epsilon 1e-5, momentum 0.9 (PyTorch's 0.1), as the timm checkpoints were trained.

Layer names are timm's module paths with ``.`` replaced by ``_`` (``conv_stem``, ``bn1``,
``blocks_2_0_dw_start_conv``, ``blocks_2_4_attn_query_proj``, ``conv_head``,
``norm_head``, ``classifier``), the weight contract of the timm converter
(:mod:`keras_mobilenets.weights.timm`).
"""

import dataclasses

from keras_mobilenets.specs.block_spec import (
    BackboneSpec,
    BatchNormSpec,
    BlockNames,
    TopSpec,
    conv,
)
from keras_mobilenets.specs.scaling import make_divisible
from keras_mobilenets.specs.uib_spec import cn, fused_ib, mqa, uib

VARIANTS = ("conv_small", "conv_medium", "conv_large", "hybrid_medium", "hybrid_large")
# Input size of each variant's reference numbers and checkpoints (timm's default).
DEFAULT_SIZES = {
    "conv_small": 224, "conv_medium": 256, "conv_large": 384, "hybrid_medium": 256,
    "hybrid_large": 384,
}
STEM_FILTERS = {
    "conv_small": 32, "conv_medium": 32, "conv_large": 24, "hybrid_medium": 32,
    "hybrid_large": 24,
}
LAST_FILTERS = 960
HEAD_FILTERS = 1280


def _r(times, row):
    return (row,) * times


# MNv4-Conv-S.
CONV_SMALL = (
    (cn(32, k=3, s=2), cn(32, k=1)),
    (cn(96, k=3, s=2), cn(64, k=1)),
    (
        uib(96, start=5, mid=5, e=3, s=2),
        *_r(4, uib(96, start=0, mid=3, e=2)),
        uib(96, start=3, mid=0, e=4),
    ),
    (
        uib(128, start=3, mid=3, e=6, s=2),
        uib(128, start=5, mid=5, e=4),
        uib(128, start=0, mid=5, e=4),
        uib(128, start=0, mid=5, e=3),
        *_r(2, uib(128, start=0, mid=3, e=4)),
    ),
)

# MNv4-Conv-M.
CONV_MEDIUM = (
    (fused_ib(48, k=3, e=4, s=2),),
    (uib(80, start=3, mid=5, e=4, s=2), uib(80, start=3, mid=3, e=2)),
    (
        uib(160, start=3, mid=5, e=6, s=2),
        *_r(2, uib(160, start=3, mid=3, e=4)),
        uib(160, start=3, mid=5, e=4),
        uib(160, start=3, mid=3, e=4),
        uib(160, start=3, mid=0, e=4),
        uib(160, start=0, mid=0, e=2),
        uib(160, start=3, mid=0, e=4),
    ),
    (
        uib(256, start=5, mid=5, e=6, s=2),
        uib(256, start=5, mid=5, e=4),
        *_r(2, uib(256, start=3, mid=5, e=4)),
        uib(256, start=0, mid=0, e=4),
        uib(256, start=3, mid=0, e=4),
        uib(256, start=3, mid=5, e=2),
        uib(256, start=5, mid=5, e=4),
        *_r(2, uib(256, start=0, mid=0, e=4)),
        uib(256, start=5, mid=0, e=2),
    ),
)

# MNv4-Conv-L.
_LARGE_STAGES_01 = (
    (fused_ib(48, k=3, e=4, s=2),),
    (uib(96, start=3, mid=5, e=4, s=2), uib(96, start=3, mid=3, e=4)),
)
_LARGE_STAGE_3_HEAD = (
    *_r(4, uib(512, start=5, mid=5, e=4)),
    uib(512, start=5, mid=0, e=4),
    uib(512, start=5, mid=3, e=4),
    *_r(2, uib(512, start=5, mid=0, e=4)),
    uib(512, start=5, mid=3, e=4),
    uib(512, start=5, mid=5, e=4),
)
CONV_LARGE = (
    *_LARGE_STAGES_01,
    (
        uib(192, start=3, mid=5, e=4, s=2),
        *_r(3, uib(192, start=3, mid=3, e=4)),
        uib(192, start=3, mid=5, e=4),
        *_r(5, uib(192, start=5, mid=3, e=4)),
        uib(192, start=3, mid=0, e=4),
    ),
    (
        dataclasses.replace(_LARGE_STAGE_3_HEAD[0], stride=2),
        *_LARGE_STAGE_3_HEAD[1:],
        *_r(3, uib(512, start=5, mid=0, e=4)),
    ),
)

# MNv4-Hybrid-M: Conv-M's first stages with Mobile MQA blocks in the last two stages.
_MQA_M16 = mqa(160, heads=4, key_dim=64, kv_stride=2)
_MQA_M32 = mqa(256, heads=4, key_dim=64)
HYBRID_MEDIUM = (
    *CONV_MEDIUM[:2],
    (
        uib(160, start=3, mid=5, e=6, s=2),
        uib(160, start=0, mid=0, e=2),
        uib(160, start=3, mid=3, e=4),
        uib(160, start=3, mid=5, e=4),
        _MQA_M16,
        uib(160, start=3, mid=3, e=4),
        _MQA_M16,
        uib(160, start=3, mid=0, e=4),
        _MQA_M16,
        uib(160, start=3, mid=3, e=4),
        _MQA_M16,
        uib(160, start=3, mid=0, e=4),
    ),
    (
        uib(256, start=5, mid=5, e=6, s=2),
        uib(256, start=5, mid=5, e=4),
        *_r(2, uib(256, start=3, mid=5, e=4)),
        uib(256, start=0, mid=0, e=2),
        uib(256, start=3, mid=5, e=2),
        uib(256, start=0, mid=0, e=2),
        uib(256, start=0, mid=0, e=4),
        _MQA_M32,
        uib(256, start=3, mid=0, e=4),
        _MQA_M32,
        uib(256, start=5, mid=5, e=4),
        _MQA_M32,
        uib(256, start=5, mid=0, e=4),
        _MQA_M32,
        uib(256, start=5, mid=0, e=4),
    ),
)

# MNv4-Hybrid-L: Conv-L's first stages with Mobile MQA blocks in the last two stages.
_MQA_L16 = mqa(192, heads=8, key_dim=48, kv_stride=2)
_MQA_L32 = mqa(512, heads=8, key_dim=64)
HYBRID_LARGE = (
    *_LARGE_STAGES_01,
    (
        uib(192, start=3, mid=5, e=4, s=2),
        *_r(3, uib(192, start=3, mid=3, e=4)),
        uib(192, start=3, mid=5, e=4),
        *_r(2, uib(192, start=5, mid=3, e=4)),
        _MQA_L16,
        uib(192, start=5, mid=3, e=4),
        _MQA_L16,
        uib(192, start=5, mid=3, e=4),
        _MQA_L16,
        uib(192, start=5, mid=3, e=4),
        _MQA_L16,
        uib(192, start=3, mid=0, e=4),
    ),
    (
        dataclasses.replace(_LARGE_STAGE_3_HEAD[0], stride=2),
        *_LARGE_STAGE_3_HEAD[1:],
        _MQA_L32,
        uib(512, start=5, mid=0, e=4),
        _MQA_L32,
        uib(512, start=5, mid=0, e=4),
        _MQA_L32,
        uib(512, start=5, mid=0, e=4),
        _MQA_L32,
        uib(512, start=5, mid=0, e=4),
    ),
)

STAGES = {
    "conv_small": CONV_SMALL, "conv_medium": CONV_MEDIUM, "conv_large": CONV_LARGE,
    "hybrid_medium": HYBRID_MEDIUM, "hybrid_large": HYBRID_LARGE,
}

NAMES = BlockNames(first_prefix="", prefix="", base="{prefix}", add="{prefix}add")

# Block outputs: the residual add, else the block's last layer (conv block activation,
# fused-IB projection BN, UIB projection / end BN, layer scale).
BLOCK_OUTPUT_PATTERN = (
    r"blocks_\d+_\d+_(add|bn1_act|bn2|pw_proj_bn|dw_end_bn|layer_scale)"
)


def _resolve(row, in_channels, act, hybrid):
    """Fills in the expanded width, the activation and layer scale of one row."""
    updates = {"act": act}
    if hasattr(row, "exp_ratio"):
        updates["exp"] = make_divisible(in_channels * row.exp_ratio)
    if hasattr(row, "layer_scale"):
        updates["layer_scale"] = hybrid
    return dataclasses.replace(row, **updates)


def spec(variant):
    """The :class:`BackboneSpec` of MobileNetV4 ``variant`` (one of :data:`VARIANTS`).

    Example:
        >>> spec("conv_small").blocks[4].exp  # first UIB: 64 input channels x 3
        192
        >>> spec("hybrid_medium").blocks[10].heads
        4
    """
    if variant not in VARIANTS:
        raise ValueError(f"`variant` must be one of {VARIANTS}, got {variant!r}.")
    hybrid = variant.startswith("hybrid")
    act = "gelu" if variant == "hybrid_large" else "relu"
    channels = STEM_FILTERS[variant]
    blocks, prefixes = [], []
    for stage, rows in enumerate(STAGES[variant]):
        for index, row in enumerate(rows):
            blocks.append(_resolve(row, channels, act, hybrid))
            prefixes.append(f"blocks_{stage}_{index}_")
            channels = row.out
    blocks.append(cn(LAST_FILTERS, k=1, act=act))
    prefixes.append(f"blocks_{len(STAGES[variant])}_0_")
    return BackboneSpec(
        family=f"mobilenet_v4_{variant}",
        stem=conv(
            STEM_FILTERS[variant], k=3, s=2, act=act, names=("conv_stem", "bn1", "bn1_act"),
            pad_name="conv_stem_pad",
        ),
        blocks=tuple(blocks),
        names=NAMES,
        bn=BatchNormSpec(epsilon=1e-5, momentum=0.9),
        top=TopSpec(
            kind="norm_conv", logits_name="classifier", hidden=HEAD_FILTERS, hidden_act=act,
            hidden_name="conv_head", hidden_norm_name="norm_head", reshape_name="flatten",
        ),
        block_prefixes=tuple(prefixes),
    )

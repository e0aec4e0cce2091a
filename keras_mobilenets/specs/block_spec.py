"""Architecture rows as frozen dataclasses, built with keyword helpers.

A backbone is described by a :class:`BackboneSpec`: a stem convolution, a tuple of block
rows, an optional last 1x1 convolution, the layer-naming scheme and the classification
top. Family modules (``mobilenet_v1.py`` ...) transcribe a paper table into rows at width
1.0 and scale them; the rows handed to the block builder hold absolute channel counts.
Nothing here imports Keras.
"""

import dataclasses
from typing import Optional

from keras_mobilenets._checks import check_choice, check_positive_int, check_rate

ACTIVATIONS = ("relu", "relu6", "hard_swish", "gelu")
#: How strided convolutions pad: "tf" (TF-slim "same": one row/column less at the top/left
#: for even sizes, keras.applications' layout) or "symmetric" (``kernel // 2`` on every
#: side, PyTorch's layout, e.g. torchvision's checkpoints).
PADDINGS = ("tf", "symmetric")
#: Layouts of the MobileNetV2/V3 specs: "keras" (keras.applications: TF padding, its
#: batch-norm epsilon and width rounding) or "torchvision" (symmetric padding, torchvision's
#: epsilon and width rounding), so that either framework's checkpoints load exactly.
LAYOUTS = ("keras", "torchvision")


def check_layout(layout):
    """Raises ``ValueError`` unless ``layout`` is one of ``LAYOUTS``; True for torchvision."""
    if layout not in LAYOUTS:
        raise ValueError(f"`layout` must be one of {LAYOUTS}, got {layout!r}.")
    return layout == "torchvision"


def symmetric_padding(rows):
    """The rows with PyTorch-style symmetric padding of their strided convolutions."""
    return tuple(dataclasses.replace(row, padding="symmetric") for row in rows)


def _check_positive_ints(spec, *fields):
    """Checks that each named field of ``spec`` is an int >= 1 (named ``Owner.field``)."""
    for field in fields:
        check_positive_int(f"{type(spec).__name__}.{field}", getattr(spec, field))


def _check_activation(spec):
    check_choice(f"{type(spec).__name__}.act", spec.act, ACTIVATIONS)


@dataclasses.dataclass(frozen=True)
class BatchNormSpec:
    """Batch-norm hyper-parameters, always passed explicitly to the layers."""

    epsilon: float = 1e-3
    momentum: float = 0.99


@dataclasses.dataclass(frozen=True)
class ConvSpec:
    """A convolution + batch norm + activation (stems and last 1x1 convolutions).

    ``names`` are the three layer names (convolution, batch norm, activation).
    ``pad_name`` set: a strided convolution pads ``kernel // 2`` on every side with a
    ZeroPadding2D of that name, then convolves "valid" (PyTorch-style symmetric padding,
    as the ShuffleNet checkpoints expect); empty: "same" padding (TF-style).
    """

    filters: int
    kernel: int
    stride: int
    act: str
    names: tuple
    pad_name: str = ""

    def __post_init__(self):
        _check_positive_ints(self, "filters", "kernel", "stride")
        _check_activation(self)
        if len(self.names) != 3:
            raise ValueError(f"ConvSpec: `names` must hold 3 layer names, got {self.names!r}.")


@dataclasses.dataclass(frozen=True)
class SeparableSpec:
    """MobileNet V1 depthwise separable block: 3x3 depthwise then 1x1 pointwise.

    ``out`` is the pointwise width; ``depth_multiplier`` the depthwise channel multiplier.
    """

    out: int
    stride: int = 1
    kernel: int = 3
    depth_multiplier: int = 1
    act: str = "relu6"
    dilation: int = 1

    def __post_init__(self):
        _check_positive_ints(self, "out", "stride", "kernel", "depth_multiplier", "dilation")
        _check_activation(self)
        if self.stride > 1 and self.dilation > 1:
            raise ValueError("SeparableSpec: `stride` and `dilation` cannot both exceed 1.")


@dataclasses.dataclass(frozen=True)
class InvertedResidualSpec:
    """Inverted residual block (MobileNetV2/V3): expand 1x1, depthwise, [SE], project 1x1.

    ``exp`` is the expanded width (the paper's "exp size"); when it equals the block's
    input width there is no expansion convolution. ``se_ratio`` > 0 adds
    squeeze-and-excitation with ``make_divisible(exp * se_ratio)`` squeeze channels.
    ``padding`` (one of ``PADDINGS``) is how a strided depthwise convolution pads.
    """

    kernel: int
    exp: int
    out: int
    act: str
    stride: int = 1
    se_ratio: float = 0.0
    dilation: int = 1
    padding: str = "tf"

    def __post_init__(self):
        _check_positive_ints(self, "kernel", "exp", "out", "stride", "dilation")
        _check_activation(self)
        check_rate("InvertedResidualSpec.se_ratio", self.se_ratio)
        if self.stride > 1 and self.dilation > 1:
            raise ValueError("InvertedResidualSpec: `stride` and `dilation` cannot both exceed 1.")
        if self.padding not in PADDINGS:
            raise ValueError(
                f"InvertedResidualSpec: `padding` must be one of {PADDINGS}, got {self.padding!r}."
            )


@dataclasses.dataclass(frozen=True)
class PoolSpec:
    """A stem pooling after the stem convolution (ShuffleNet's 3x3 stride-2 max-pool).

    Pads ``pool // 2`` zeros on every side (layer ``names[0]``), then max-pools "valid"
    (layer ``names[1]``). Zero padding equals PyTorch's -inf padding because the stem ends
    with a ReLU (non-negative values).
    """

    pool: int
    stride: int
    names: tuple

    def __post_init__(self):
        _check_positive_ints(self, "pool", "stride")
        if len(self.names) != 2:
            raise ValueError(f"PoolSpec: `names` must hold 2 layer names, got {self.names!r}.")


@dataclasses.dataclass(frozen=True)
class ShuffleUnitSpec:
    """ShuffleNet V1 unit (arXiv:1707.01083, Figure 2 b/c).

    Grouped 1x1 (``bottleneck`` channels, BN, ReLU) -> channel shuffle -> 3x3 depthwise
    (BN, no ReLU) -> grouped 1x1 (BN). A plain unit adds the input and applies ReLU; a
    ``downsample`` unit concatenates a 3x3 average-pooled shortcut (the unit's 1x1 then
    produces ``out`` minus the input channels) and applies ReLU. ``group_first=False``
    makes the first 1x1 a dense convolution (the first unit of stage 2, whose input is
    narrow); the shuffle is then skipped, as there is nothing to mix. ``out`` is the
    unit's total output width.
    """

    out: int
    groups: int
    bottleneck: int
    stride: int = 1
    downsample: bool = False
    group_first: bool = True
    kernel: int = 3
    dilation: int = 1

    def __post_init__(self):
        _check_positive_ints(self, "out", "groups", "bottleneck", "stride", "kernel", "dilation")
        for field in ("out", "bottleneck"):
            if getattr(self, field) % self.groups:
                raise ValueError(
                    f"ShuffleUnitSpec: `{field}` ({getattr(self, field)}) must be divisible by "
                    f"`groups` ({self.groups})."
                )
        if self.stride > 1 and not self.downsample:
            raise ValueError("ShuffleUnitSpec: a unit with `stride` > 1 must be `downsample`.")
        if self.stride > 1 and self.dilation > 1:
            raise ValueError("ShuffleUnitSpec: `stride` and `dilation` cannot both exceed 1.")


@dataclasses.dataclass(frozen=True)
class ShuffleV2UnitSpec:
    """ShuffleNetV2 unit (arXiv:1807.11164, Figure 3 c/d).

    ``split=True`` (basic unit): the input's first half passes unchanged, the second half
    goes through 1x1 (BN, ReLU) -> 3x3 depthwise (BN) -> 1x1 (BN, ReLU); the halves are
    concatenated and shuffled with 2 groups. ``split=False`` (the stride-2 unit): no
    split; a second branch 3x3 depthwise (BN) -> 1x1 (BN, ReLU) replaces the identity,
    so the unit can change the width. Each branch produces ``out // 2`` channels.
    """

    out: int
    stride: int = 1
    split: bool = True
    kernel: int = 3
    dilation: int = 1

    def __post_init__(self):
        _check_positive_ints(self, "out", "stride", "kernel", "dilation")
        if self.out % 2:
            raise ValueError(f"ShuffleV2UnitSpec: `out` must be even, got {self.out!r}.")
        if self.stride > 1 and self.split:
            raise ValueError("ShuffleV2UnitSpec: a unit with `stride` > 1 cannot `split`.")
        if self.stride > 1 and self.dilation > 1:
            raise ValueError("ShuffleV2UnitSpec: `stride` and `dilation` cannot both exceed 1.")


@dataclasses.dataclass(frozen=True)
class TopSpec:
    """Classification top, as keras.applications builds it for the family.

    ``kind="conv"``: global pool (kept 4D) -> optional hidden 1x1 conv + activation ->
    dropout -> 1x1 conv logits -> reshape to 2D -> activation layer ``"predictions"``.
    ``kind="dense"``: global pool -> Dense ``"predictions"`` with the activation fused.
    ``kind="norm_conv"`` (MobileNetV4): global pool (kept 4D) -> 1x1 conv ``hidden_name``
    without bias -> batch norm ``hidden_norm_name`` -> activation -> flatten
    (``reshape_name``) -> dropout -> Dense ``logits_name`` with the activation fused.
    """

    kind: str
    logits_name: str
    hidden: Optional[int] = None
    hidden_act: str = "relu"
    hidden_name: str = ""
    reshape_name: str = ""
    dropout_name: str = "dropout"
    hidden_norm_name: str = ""

    def __post_init__(self):
        check_choice("TopSpec.kind", self.kind, ("conv", "dense", "norm_conv"))


@dataclasses.dataclass(frozen=True)
class BlockNames:
    """Layer-naming scheme of a family's blocks.

    Every field is a format string with ``{prefix}`` (the block prefix) and ``{i}`` (the
    block index). ``first_prefix`` is used for block 0, ``prefix`` for the others.
    Unused fields stay empty. Names are the weight contract: do not change them.
    ``base`` (usually ``"{prefix}"``) serves block kinds whose layers are named after a
    reference implementation's module paths (MobileNetV4 follows timm): the block appends
    its fixed sub-module names to it.
    """

    first_prefix: str
    prefix: str
    base: str = ""
    expand: str = ""
    expand_bn: str = ""
    expand_act: str = ""
    pad: str = ""
    depthwise: str = ""
    depthwise_bn: str = ""
    depthwise_act: str = ""
    se_pool: str = ""
    se_reduce: str = ""
    se_reduce_act: str = ""
    se_expand: str = ""
    se_gate: str = ""
    se_multiply: str = ""
    project: str = ""
    project_bn: str = ""
    project_act: str = ""
    add: str = ""
    split: str = ""
    split_identity: str = ""
    shortcut_pad: str = ""
    shortcut_pool: str = ""
    shortcut_depthwise: str = ""
    shortcut_depthwise_bn: str = ""
    shortcut_project: str = ""
    shortcut_project_bn: str = ""
    shortcut_project_act: str = ""
    concat: str = ""
    shuffle: str = ""
    output_act: str = ""

    def resolve(self, index, prefix=None):
        """Returns ``{field: layer name}`` for block ``index``.

        ``prefix``, when given, replaces ``first_prefix`` / ``prefix`` (families whose
        block names count per stage, e.g. ``stage3_2_``).
        """
        if prefix is None:
            prefix = (self.first_prefix if index == 0 else self.prefix).format(i=index)
        return {
            field.name: getattr(self, field.name).format(prefix=prefix, i=index)
            for field in dataclasses.fields(self)
            if field.name not in ("first_prefix", "prefix")
        }


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """A whole backbone: stem, blocks (absolute widths), last conv, naming and top.

    ``stem_pool`` is an optional pooling after the stem convolution. ``block_prefixes``,
    when set, holds one name prefix per block (see ``BlockNames.resolve``).
    """

    family: str
    stem: ConvSpec
    blocks: tuple
    names: BlockNames
    bn: BatchNormSpec
    top: TopSpec
    last_conv: Optional[ConvSpec] = None
    first_block_index: int = 0
    stem_pool: Optional[PoolSpec] = None
    block_prefixes: Optional[tuple] = None

    def __post_init__(self):
        if self.block_prefixes is not None and len(self.block_prefixes) != len(self.blocks):
            raise ValueError(
                f"BackboneSpec: `block_prefixes` holds {len(self.block_prefixes)} prefixes for "
                f"{len(self.blocks)} blocks."
            )

    @property
    def stem_stride(self):
        """Output stride of the stem (convolution and optional pooling)."""
        return self.stem.stride * (self.stem_pool.stride if self.stem_pool else 1)


def conv(filters, *, k=3, s=1, act="relu6", names, pad_name=""):
    """Keyword helper for a :class:`ConvSpec` row."""
    return ConvSpec(
        filters=filters, kernel=k, stride=s, act=act, names=tuple(names), pad_name=pad_name
    )


def dws(out, *, s=1, k=3):
    """Keyword helper for a MobileNet V1 :class:`SeparableSpec` row."""
    return SeparableSpec(out=out, stride=s, kernel=k)


def ir(*, k, exp, out, act, s=1, se=False):
    """Keyword helper for an :class:`InvertedResidualSpec` row (paper-table columns).

    Example:
        >>> ir(k=5, exp=72, out=40, se=True, act="relu", s=2).se_ratio
        0.25
    """
    return InvertedResidualSpec(
        kernel=k, exp=exp, out=out, act=act, stride=s, se_ratio=0.25 if se else 0.0
    )


def shuffle_v1(out, *, g, s=1, group_first=True):
    """Keyword helper for a ShuffleNet V1 :class:`ShuffleUnitSpec` row.

    The bottleneck is 1/4 of the unit's output width (arXiv:1707.01083, section 3.3);
    stride-2 units are the concatenating ``downsample`` units.

    Example:
        >>> shuffle_v1(240, g=3, s=2).bottleneck
        60
    """
    return ShuffleUnitSpec(
        out=out, groups=g, bottleneck=out // 4, stride=s, downsample=s > 1,
        group_first=group_first,
    )


def shuffle_v2(out, *, s=1):
    """Keyword helper for a :class:`ShuffleV2UnitSpec` row; stride-2 units do not split.

    Example:
        >>> shuffle_v2(116, s=2).split
        False
    """
    return ShuffleV2UnitSpec(out=out, stride=s, split=s == 1)

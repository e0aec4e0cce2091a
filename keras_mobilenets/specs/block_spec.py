"""Architecture rows as frozen dataclasses, built with keyword helpers.

A backbone is described by a :class:`BackboneSpec`: a stem convolution, a tuple of block
rows, an optional last 1x1 convolution, the layer-naming scheme and the classification
top. Family modules (``mobilenet_v1.py`` ...) transcribe a paper table into rows at width
1.0 and scale them; the rows handed to the block builder hold absolute channel counts.
Nothing here imports Keras.
"""

import dataclasses
from typing import Optional

ACTIVATIONS = ("relu", "relu6", "hard_swish")


def _check_positive_int(owner, field, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{owner}: `{field}` must be a positive int, got {value!r}.")


def _check_activation(owner, value):
    if value not in ACTIVATIONS:
        raise ValueError(f"{owner}: `act` must be one of {ACTIVATIONS}, got {value!r}.")


@dataclasses.dataclass(frozen=True)
class BatchNormSpec:
    """Batch-norm hyper-parameters, always passed explicitly to the layers."""

    epsilon: float = 1e-3
    momentum: float = 0.99


@dataclasses.dataclass(frozen=True)
class ConvSpec:
    """A convolution + batch norm + activation (stems and last 1x1 convolutions).

    ``names`` are the three layer names (convolution, batch norm, activation).
    """

    filters: int
    kernel: int
    stride: int
    act: str
    names: tuple

    def __post_init__(self):
        for field in ("filters", "kernel", "stride"):
            _check_positive_int("ConvSpec", field, getattr(self, field))
        _check_activation("ConvSpec", self.act)
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
        for field in ("out", "stride", "kernel", "depth_multiplier", "dilation"):
            _check_positive_int("SeparableSpec", field, getattr(self, field))
        _check_activation("SeparableSpec", self.act)
        if self.stride > 1 and self.dilation > 1:
            raise ValueError("SeparableSpec: `stride` and `dilation` cannot both exceed 1.")


@dataclasses.dataclass(frozen=True)
class InvertedResidualSpec:
    """Inverted residual block (MobileNetV2/V3): expand 1x1, depthwise, [SE], project 1x1.

    ``exp`` is the expanded width (the paper's "exp size"); when it equals the block's
    input width there is no expansion convolution. ``se_ratio`` > 0 adds
    squeeze-and-excitation with ``make_divisible(exp * se_ratio)`` squeeze channels.
    """

    kernel: int
    exp: int
    out: int
    act: str
    stride: int = 1
    se_ratio: float = 0.0
    dilation: int = 1

    def __post_init__(self):
        for field in ("kernel", "exp", "out", "stride", "dilation"):
            _check_positive_int("InvertedResidualSpec", field, getattr(self, field))
        _check_activation("InvertedResidualSpec", self.act)
        if not 0.0 <= self.se_ratio < 1.0:
            raise ValueError(
                f"InvertedResidualSpec: `se_ratio` must be in [0, 1), got {self.se_ratio!r}."
            )
        if self.stride > 1 and self.dilation > 1:
            raise ValueError("InvertedResidualSpec: `stride` and `dilation` cannot both exceed 1.")


@dataclasses.dataclass(frozen=True)
class TopSpec:
    """Classification top, as keras.applications builds it for the family.

    ``kind="conv"``: global pool (kept 4D) -> optional hidden 1x1 conv + activation ->
    dropout -> 1x1 conv logits -> reshape to 2D -> activation layer ``"predictions"``.
    ``kind="dense"``: global pool -> Dense ``"predictions"`` with the activation fused.
    """

    kind: str
    logits_name: str
    hidden: Optional[int] = None
    hidden_act: str = "relu"
    hidden_name: str = ""
    reshape_name: str = ""
    dropout_name: str = "dropout"

    def __post_init__(self):
        if self.kind not in ("conv", "dense"):
            raise ValueError(f"TopSpec: `kind` must be 'conv' or 'dense', got {self.kind!r}.")


@dataclasses.dataclass(frozen=True)
class BlockNames:
    """Layer-naming scheme of a family's blocks.

    Every field is a format string with ``{prefix}`` (the block prefix) and ``{i}`` (the
    block index). ``first_prefix`` is used for block 0, ``prefix`` for the others.
    Unused fields stay empty. Names are the weight contract: do not change them.
    """

    first_prefix: str
    prefix: str
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

    def resolve(self, index):
        """Returns ``{field: layer name}`` for block ``index``."""
        prefix = (self.first_prefix if index == 0 else self.prefix).format(i=index)
        return {
            field.name: getattr(self, field.name).format(prefix=prefix, i=index)
            for field in dataclasses.fields(self)
            if field.name not in ("first_prefix", "prefix")
        }


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """A whole backbone: stem, blocks (absolute widths), last conv, naming and top."""

    family: str
    stem: ConvSpec
    blocks: tuple
    names: BlockNames
    bn: BatchNormSpec
    top: TopSpec
    last_conv: Optional[ConvSpec] = None
    first_block_index: int = 0


def conv(filters, *, k=3, s=1, act="relu6", names):
    """Keyword helper for a :class:`ConvSpec` row."""
    return ConvSpec(filters=filters, kernel=k, stride=s, act=act, names=tuple(names))


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

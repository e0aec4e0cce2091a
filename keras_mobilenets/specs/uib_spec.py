"""MobileNetV4 block rows (Qin et al. 2024, arXiv:2404.10518, section 3 and Figure 4).

Four block kinds, each a frozen dataclass built with a keyword helper named like the
columns of the paper's tables (and timm's block strings):

* :class:`ConvBlockSpec` (``cn``): one convolution + batch norm + activation.
* :class:`FusedIBSpec` (``fused_ib``): Fused Inverted Bottleneck, a full kxk expansion
  convolution then a linear 1x1 projection.
* :class:`UIBSpec` (``uib``): Universal Inverted Bottleneck, an inverted bottleneck with
  two *optional* depthwise convolutions: ``start`` before the expansion, ``mid`` between
  expansion and projection. ``start=0, mid=k`` is the classic inverted bottleneck (IB),
  ``start=k, mid=0`` the ConvNext-like block, ``start=k, mid=k'`` ExtraDW and
  ``start=mid=0`` the FFN. (``end``, a depthwise convolution after the projection, exists
  in the UIB definition but no published variant uses it.)
* :class:`MobileMQASpec` (``mqa``): Mobile MQA attention, many query heads sharing one key
  and one value, optionally computed on a ``kv_stride`` down-sampled input.

``exp_ratio`` is the paper's expansion ratio; the absolute expanded width ``exp``
(``make_divisible(in_channels * exp_ratio)``) is filled in by the family module, which
knows the input widths. Nothing here imports Keras.
"""

import dataclasses

from keras_mobilenets._checks import check_choice, check_positive_int
from keras_mobilenets.specs.block_spec import ACTIVATIONS


def _check_positive_int(owner, field, value):
    check_positive_int(f"{owner}.{field}", value)


def _check_activation(owner, act):
    check_choice(f"{owner}.act", act, ACTIVATIONS)


def _check_kernel(owner, field, value, allow_zero):
    if value == 0 and allow_zero:
        return
    _check_positive_int(owner, field, value)
    if value % 2 == 0:
        raise ValueError(f"{owner}: `{field}` must be odd (or 0 for none), got {value!r}.")


def _check_common(owner, row):
    for field in ("out", "stride", "dilation"):
        _check_positive_int(owner, field, getattr(row, field))
    _check_activation(owner, row.act)
    if row.stride > 1 and row.dilation > 1:
        raise ValueError(f"{owner}: `stride` and `dilation` cannot both exceed 1.")


@dataclasses.dataclass(frozen=True)
class ConvBlockSpec:
    """A ``kernel`` x ``kernel`` convolution + batch norm + activation block."""

    out: int
    kernel: int
    stride: int = 1
    act: str = "relu"
    dilation: int = 1

    def __post_init__(self):
        _check_common("ConvBlockSpec", self)
        _check_kernel("ConvBlockSpec", "kernel", self.kernel, allow_zero=False)


@dataclasses.dataclass(frozen=True)
class FusedIBSpec:
    """Fused inverted bottleneck: kxk conv to ``exp`` (BN, act), 1x1 conv to ``out`` (BN)."""

    out: int
    kernel: int
    exp_ratio: float
    stride: int = 1
    act: str = "relu"
    exp: int = 0
    dilation: int = 1

    def __post_init__(self):
        _check_common("FusedIBSpec", self)
        _check_kernel("FusedIBSpec", "kernel", self.kernel, allow_zero=False)
        if not self.exp_ratio > 0:
            raise ValueError(f"FusedIBSpec: `exp_ratio` must be > 0, got {self.exp_ratio!r}.")


@dataclasses.dataclass(frozen=True)
class UIBSpec:
    """Universal inverted bottleneck (see the module docstring for its four forms).

    Order: [``start`` depthwise (BN)] -> 1x1 expansion to ``exp`` (BN, act) -> [``mid``
    depthwise (BN, act)] -> 1x1 projection to ``out`` (BN) -> [``end`` depthwise (BN)] ->
    [layer scale] -> [+ input]. The stride goes to the first depthwise convolution there is.
    """

    out: int
    start: int
    mid: int
    exp_ratio: float
    stride: int = 1
    act: str = "relu"
    end: int = 0
    layer_scale: bool = False
    exp: int = 0
    dilation: int = 1

    def __post_init__(self):
        _check_common("UIBSpec", self)
        for field in ("start", "mid", "end"):
            _check_kernel("UIBSpec", field, getattr(self, field), allow_zero=True)
        if not self.exp_ratio > 0:
            raise ValueError(f"UIBSpec: `exp_ratio` must be > 0, got {self.exp_ratio!r}.")
        if self.stride > 1 and not (self.start or self.mid or self.end):
            raise ValueError(
                "UIBSpec: a block with `stride` > 1 needs a depthwise convolution "
                "(`start`, `mid` or `end`)."
            )


@dataclasses.dataclass(frozen=True)
class MobileMQASpec:
    """Mobile MQA block: BN -> multi-query attention -> [layer scale] -> + input.

    ``heads`` query heads of ``key_dim`` channels share one key and one value of
    ``key_dim`` channels each; with ``kv_stride`` 2, key and value are computed from a
    ``kernel`` x ``kernel`` stride-2 depthwise convolution (BN) of the input.
    """

    out: int
    heads: int
    key_dim: int
    kv_stride: int = 1
    kernel: int = 3
    layer_scale: bool = True
    stride: int = 1
    act: str = "relu"
    dilation: int = 1

    def __post_init__(self):
        _check_common("MobileMQASpec", self)
        for field in ("heads", "key_dim", "kv_stride"):
            _check_positive_int("MobileMQASpec", field, getattr(self, field))
        _check_kernel("MobileMQASpec", "kernel", self.kernel, allow_zero=False)
        if self.stride != 1:
            raise ValueError(f"MobileMQASpec: `stride` must be 1, got {self.stride!r}.")


def cn(out, *, k, s=1, act="relu"):
    """Keyword helper for a :class:`ConvBlockSpec` row.

    Example:
        >>> cn(32, k=3, s=2).kernel
        3
    """
    return ConvBlockSpec(out=out, kernel=k, stride=s, act=act)


def fused_ib(out, *, k, e, s=1, act="relu"):
    """Keyword helper for a :class:`FusedIBSpec` row (``e``: expansion ratio).

    Example:
        >>> fused_ib(48, k=3, e=4, s=2).exp_ratio
        4
    """
    return FusedIBSpec(out=out, kernel=k, exp_ratio=e, stride=s, act=act)


def uib(out, *, start, mid, e, s=1, act="relu", layer_scale=False):
    """Keyword helper for a :class:`UIBSpec` row: ``start`` / ``mid`` depthwise kernels
    (0 for none) and expansion ratio ``e``, as the paper's tables list them.

    Example:
        >>> uib(96, start=5, mid=5, e=3, s=2).mid  # ExtraDW
        5
    """
    return UIBSpec(
        out=out, start=start, mid=mid, exp_ratio=e, stride=s, act=act, layer_scale=layer_scale
    )


def mqa(out, *, heads, key_dim, kv_stride=1, k=3, act="relu", layer_scale=True):
    """Keyword helper for a :class:`MobileMQASpec` row.

    Example:
        >>> mqa(160, heads=4, key_dim=64, kv_stride=2).kv_stride
        2
    """
    return MobileMQASpec(
        out=out, heads=heads, key_dim=key_dim, kv_stride=kv_stride, kernel=k, act=act,
        layer_scale=layer_scale,
    )

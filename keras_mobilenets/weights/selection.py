"""Choosing the published checkpoint that fits the model a builder is about to build.

The checkpoints are the registry's (:mod:`keras_mobilenets.registry`): each model
entry lists its published files. A builder describes what it builds as a
:class:`WeightsRequest`; :func:`check_request` (before any layer is built) picks the file
or raises a ``ValueError`` that names the argument that does not fit.

Example:
    >>> request = WeightsRequest("mobilenet_v3_small", rows=224, cols=224)
    >>> select_checkpoint(request).file_name
    'weights_mobilenet_v3_small_224_1.0_float.h5'
"""

import dataclasses
import inspect
import os
import warnings
from typing import Optional

from keras_mobilenets import registry

WEIGHTS_SUFFIXES = (".weights.h5", ".keras", ".h5", ".hdf5")
DEFAULT_ROWS = 224


@dataclasses.dataclass(frozen=True)
class WeightsRequest:
    """The variant a builder is about to build, as the weights registry needs it.

    Attributes:
        family: "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", ...
        alpha: Width multiplier.
        rows: Input rows (None when the input size is not fixed).
        cols: Input columns.
        channels: Input channels.
        include_top: Whether the classification top is built.
        classes: Number of classes of the top.
        minimalistic: MobileNetV3's minimalistic variant.
        depth_multiplier: MobileNet V1's depthwise multiplier.
        classifier_activation: Activation of the top.
    """

    family: str
    alpha: float = 1.0
    rows: Optional[int] = None
    cols: Optional[int] = None
    channels: int = 3
    include_top: bool = True
    classes: int = 1000
    minimalistic: bool = False
    depth_multiplier: int = 1
    classifier_activation: object = "softmax"


def check_weights_argument(weights):
    """Raises ``ValueError`` unless ``weights`` is None, "imagenet" or a weights file.

    Example:
        >>> check_weights_argument("imagenet")
    """
    if weights is None or weights == "imagenet":
        return
    if isinstance(weights, (str, os.PathLike)):
        path = os.fspath(weights)
        if os.path.isfile(path):
            if path.endswith(WEIGHTS_SUFFIXES):
                return
            raise ValueError(
                f"`weights` must be a weights file ending in one of {WEIGHTS_SUFFIXES}, "
                f"got {path!r}."
            )
    raise ValueError(
        "`weights` must be None (random initialisation), 'imagenet' or the path of an "
        f"existing weights file, got {weights!r}."
    )


def _same_alpha(a, b):
    return abs(float(a) - float(b)) < 1e-6


def available_checkpoints(family=None):
    """The published checkpoints (all, or one family's), from the model registry.

    Example:
        >>> len(available_checkpoints("mobilenet_v3_small"))
        6
    """
    return list(registry.checkpoints(family))


def _describe_available():
    """One line per family with published weights: its alphas, sizes, variants."""
    lines = []
    families = sorted({c.family for c in registry.checkpoints()})
    for family in families:
        entries = available_checkpoints(family)
        builder = registry.family_builder(family)
        alphas = sorted({c.alpha for c in entries if not c.minimalistic})
        minimal = sorted({c.alpha for c in entries if c.minimalistic})
        sizes = sorted({c.rows for c in entries})
        text = f"{builder} (alpha {'/'.join(f'{a:g}' for a in alphas)}"
        if minimal:
            text += f"; minimalistic=True with alpha {'/'.join(f'{a:g}' for a in minimal)}"
        text += f"; input sizes {'/'.join(str(s) for s in sizes)})"
        lines.append(text)
    return "; ".join(lines)


def _is_softmax_or_none(activation):
    import keras

    if activation is None or activation == "softmax":
        return True
    try:
        return keras.activations.get(activation) in (
            keras.activations.get("softmax"), keras.activations.get(None)
        )
    except (ValueError, TypeError):
        return False


def _caller_stacklevel():
    """``stacklevel`` for warnings.warn in our caller that points at the user's code."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = inspect.currentframe().f_back, 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def select_checkpoint(request, warn=True):
    """Chooses the published checkpoint for ``request`` or explains why there is none.

    Input sizes without a checkpoint of their own use the 224 file (the weights do not
    depend on the input size), with a warning when a size was asked for.

    Args:
        request: The :class:`WeightsRequest` of the model being built.
        warn: Whether to warn when falling back to the 224 checkpoint.

    Returns:
        The :class:`~keras_mobilenets.registry.Checkpoint` to load.

    Raises:
        ValueError: If the family has no published weights (the message lists the
            variants that have), or the arguments do not fit a checkpoint (``alpha``,
            ``minimalistic``, ``classes``, ``classifier_activation``, input channels,
            ``depth_multiplier``).

    Example:
        >>> select_checkpoint(WeightsRequest("mobilenet_v3_small", rows=224, cols=224)).file_name
        'weights_mobilenet_v3_small_224_1.0_float.h5'
    """
    entries = available_checkpoints(request.family)
    builder = registry.family_builder(request.family)
    if not entries:
        raise ValueError(
            f"`weights='imagenet'`: there are no published ImageNet weights for "
            f"{request.family!r}. Use weights=None or the path of a weights file. Variants "
            f"with published weights: {_describe_available()}."
        )
    if request.include_top and request.classes != 1000:
        raise ValueError(
            "`classes` must be 1000 with `weights='imagenet'` and `include_top=True`, got "
            f"{request.classes!r}. Use include_top=False to put your own top on the "
            "pretrained backbone."
        )
    if request.include_top and not _is_softmax_or_none(request.classifier_activation):
        raise ValueError(
            "`classifier_activation` must be 'softmax' or None with `weights='imagenet'` "
            f"and `include_top=True`, got {request.classifier_activation!r}."
        )
    if request.channels != 3:
        raise ValueError(
            "`input_shape` must have 3 channels with `weights='imagenet'` (RGB), got "
            f"{request.channels!r} channels."
        )
    if request.depth_multiplier != 1:
        raise ValueError(
            "`depth_multiplier` must be 1 with `weights='imagenet'`, got "
            f"{request.depth_multiplier!r}."
        )
    matching = [
        c for c in entries
        if _same_alpha(c.alpha, request.alpha) and c.minimalistic == request.minimalistic
        and c.include_top == request.include_top
    ]
    if not matching:
        same_kind = [c for c in entries if c.minimalistic == request.minimalistic]
        alphas = sorted({c.alpha for c in same_kind})
        kind = " with minimalistic=True" if request.minimalistic else ""
        if not alphas:
            raise ValueError(
                f"`minimalistic` must be False with `weights='imagenet'` for {builder}, "
                f"got {request.minimalistic!r}."
            )
        raise ValueError(
            f"`alpha` must be one of {alphas} for {builder}{kind} with "
            f"`weights='imagenet'`, got {request.alpha!r}. Published variants: "
            f"{_describe_available()}."
        )
    by_rows = {c.rows: c for c in matching}
    if request.rows is not None and request.rows == request.cols and request.rows in by_rows:
        return by_rows[request.rows]
    fallback = by_rows.get(DEFAULT_ROWS) or by_rows[max(by_rows)]
    if warn and (request.rows is not None or request.cols is not None):
        warnings.warn(
            f"There is no {builder} ImageNet checkpoint for input size "
            f"{request.rows}x{request.cols} (published: "
            f"{', '.join(f'{r}x{r}' for r in sorted(by_rows))}); loading the weights for "
            f"{fallback.rows}x{fallback.rows}.",
            stacklevel=_caller_stacklevel(),
        )
    return fallback


def check_request(weights, request):
    """Checks, before building, that ``weights`` can be loaded into ``request``'s variant.

    Returns:
        What :func:`load_weights` should load: the selected ``Checkpoint`` for
        ``"imagenet"``, else ``weights`` unchanged.

    Raises:
        ValueError: See :func:`select_checkpoint`.
    """
    if weights == "imagenet":
        return select_checkpoint(request)
    return weights

"""Pretrained weights: argument checks, checkpoint selection and loading.

``weights`` is ``None`` (random initialisation), ``"imagenet"`` (the published Keras
ImageNet checkpoint that fits the variant, see :mod:`.registry`) or the path of a weights
file: ``.weights.h5`` / ``.keras`` (Keras 3) or a legacy ``.h5`` / ``.hdf5`` file, loaded by
layer name like the published checkpoints. Nothing here runs at import time.

Example:
    >>> import keras_mobilenets
    >>> model = keras_mobilenets.MobileNetV3Small(weights="imagenet")
"""

import dataclasses
import logging
import os
import tempfile
import warnings
from typing import Optional

from keras_mobilenets.weights import download, registry
from keras_mobilenets.weights.download import WeightsDownloadError
from keras_mobilenets.weights.registry import Checkpoint

logger = logging.getLogger(__name__)

WEIGHTS_SUFFIXES = (".weights.h5", ".keras", ".h5", ".hdf5")
DEFAULT_ROWS = 224

__all__ = [
    "Checkpoint",
    "WeightsDownloadError",
    "WeightsRequest",
    "available_checkpoints",
    "check_request",
    "check_weights_argument",
    "load_weights",
    "load_weights_file",
    "registry",
    "select_checkpoint",
]


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
    """The published checkpoints (all, or one family's), as registry entries.

    Example:
        >>> len(available_checkpoints("mobilenet_v3_small"))
        6
    """
    return [c for c in registry.CHECKPOINTS if family is None or c.family == family]


def _describe_available():
    """One line per family with published weights: its alphas, sizes, variants."""
    lines = []
    families = sorted({c.family for c in registry.CHECKPOINTS})
    for family in families:
        entries = available_checkpoints(family)
        builder = registry.FAMILY_BUILDERS.get(family, family)
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
    import inspect

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
        The :class:`~keras_mobilenets.weights.registry.Checkpoint` to load.

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
    builder = registry.FAMILY_BUILDERS.get(request.family, request.family)
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


def load_weights(model, weights, request=None):
    """Loads ``weights`` into ``model``.

    Args:
        model: The freshly built model.
        weights: A ``Checkpoint`` (from :func:`check_request`), ``"imagenet"`` (then
            ``request`` selects the checkpoint) or the path of a weights file.
        request: The model's :class:`WeightsRequest`.

    Raises:
        ValueError: If the file does not fit the model (the message lists the layers that
            differ) or a download fails verification.
        WeightsDownloadError: If a checkpoint cannot be downloaded.
    """
    if weights is None:
        return
    if isinstance(weights, str) and weights == "imagenet":
        if request is None:
            raise ValueError("`request` is needed to load weights='imagenet'.")
        weights = select_checkpoint(request, warn=False)
    allow_extra = request is not None and not request.include_top
    if isinstance(weights, Checkpoint):
        path = download.fetch(weights)
        load_weights_file(model, path, allow_extra_layers=False)
        return
    load_weights_file(model, os.fspath(weights), allow_extra_layers=allow_extra)


# --------------------------------------------------------------------------------------
# Loading files, with a readable report when a file does not fit the model.


def _decode(value):
    return value.decode("utf8") if hasattr(value, "decode") else str(value)


def _h5_attribute_list(group, name):
    """A list attribute of a legacy Keras HDF5 group (Keras splits long ones in chunks)."""
    if name in group.attrs:
        return [_decode(v) for v in group.attrs[name]]
    values, chunk = [], 0
    while f"{name}{chunk}" in group.attrs:
        values.extend(_decode(v) for v in group.attrs[f"{name}{chunk}"])
        chunk += 1
    return values


def _legacy_file_layers(path):
    """``{layer name: [weight shapes]}`` of a legacy Keras ``.h5`` weights file, in the
    file's layer order, for the layers that have weights."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"`weights` file {path!r} is not a readable HDF5 file: {error}") from None
    with f:
        group = f
        if not any(k.startswith("layer_names") for k in f.attrs) and "model_weights" in f:
            group = f["model_weights"]
        names = _h5_attribute_list(group, "layer_names")
        if not names:
            raise ValueError(
                f"`weights` file {path!r} is HDF5 but not a Keras legacy weights file (no "
                "layer_names); save weights with model.save_weights('name.weights.h5')."
            )
        layers = {}
        for name in names:
            layer_group = group[name]
            weight_names = _h5_attribute_list(layer_group, "weight_names")
            if weight_names:
                layers[name] = [tuple(layer_group[w].shape) for w in weight_names]
        return layers


def _model_layers(model):
    """``{layer name: [weight shapes]}`` of ``model``'s weighted layers, in layer order
    and the legacy (h5) weight order."""
    return {
        layer.name: [tuple(w.shape) for w in layer.trainable_weights + layer.non_trainable_weights]
        for layer in model.layers if layer.weights
    }


def _mismatch_report(file_layers, model_layers, allow_extra_layers):
    missing = [name for name in model_layers if name not in file_layers]
    extra = [name for name in file_layers if name not in model_layers]
    differ = [
        f"{name} (file {file_layers[name]}, model {model_layers[name]})"
        for name in model_layers if name in file_layers and file_layers[name] != model_layers[name]
    ]
    parts = []

    def listing(title, names):
        shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
        parts.append(f"{title}: {shown}")

    if differ:
        listing("weights of another shape", differ)
    if missing:
        listing("layers missing from the file", missing)
    if extra and not allow_extra_layers:
        listing("layers the model does not have", extra)
    return parts, extra


def _order_report(file_layers, model_layers):
    """Why the file's weighted layers, in order, do not fit the model's (or None)."""
    file_items, model_items = list(file_layers.items()), list(model_layers.items())
    if len(file_items) != len(model_items):
        return (f"by order: the file has {len(file_items)} layers with weights, the model "
                f"{len(model_items)}")
    for k, ((file_name, file_shapes), (name, shapes)) in enumerate(zip(file_items, model_items)):
        if file_shapes != shapes:
            return (f"by order: layer #{k} is {file_name} {file_shapes} in the file and "
                    f"{name} {shapes} in the model")
    return None


def load_weights_file(model, path, allow_extra_layers=False):
    """Loads a weights file into ``model``, checking first that it fits.

    Legacy ``.h5``/``.hdf5`` files (the published checkpoints' format) load by layer name
    when every weighted layer of the model is in the file with the same shapes; with
    ``allow_extra_layers`` the file may also hold layers the model lacks (e.g. a
    classification top loaded into a model built without it). Files whose layer names
    differ but whose weighted layers match the model's one by one, in order, load by order,
    as keras.applications loads the published files (the MobileNetV3 files were written by
    tf.keras 2 with names such as ``Conv/BatchNorm`` that Keras 3 no longer allows).
    Keras 3 ``.weights.h5``/``.keras`` files load by structure.

    Args:
        model: A built ``keras.Model``.
        path: The weights file.
        allow_extra_layers: Accept (and ignore) file layers the model does not have.

    Raises:
        ValueError: If the file does not fit; the message lists the layers that differ.

    Example:
        >>> load_weights_file(model, "mobilenet_v3_small.weights.h5")
    """
    if path.endswith((".weights.h5", ".keras")):
        _load_keras3_file(model, path)
        return
    file_layers = _legacy_file_layers(path)
    model_layers = _model_layers(model)
    parts, extra = _mismatch_report(file_layers, model_layers, allow_extra_layers)
    if not parts:
        if extra:
            logger.info("Ignored %d layers of %s that %s does not have: %s", len(extra), path,
                        model.name, ", ".join(extra))
        model.load_weights(path, by_name=True)
        return
    by_order = _order_report(file_layers, model_layers)
    if by_order is None:
        logger.info("Loading %s by layer order: its layer names differ from %s's.", path,
                    model.name)
        model.load_weights(path)
        return
    raise ValueError(
        f"`weights` file {path!r} does not match the architecture of {model.name!r}, by "
        f"layer name: {'; '.join(parts)}; {by_order}."
    )


def _keras3_structure(path):
    """``{object path: [shapes]}`` of a Keras 3 ``.weights.h5`` file."""
    import h5py

    structure = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and "/vars/" in name:
                owner = name.rsplit("/vars/", 1)[0]
                structure.setdefault(owner, []).append((int(name.rsplit("/", 1)[1]), obj.shape))
        f.visititems(visit)
    return {k: [tuple(s) for _, s in sorted(v)] for k, v in structure.items()}


def _load_keras3_file(model, path):
    try:
        # Keras warns once per object it cannot match before it raises; the error below
        # says it all, so the warnings are only passed on when loading succeeds.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.load_weights(path)
    except (ValueError, KeyError) as error:
        report = ""
        if path.endswith(".weights.h5"):
            report = _keras3_report(model, path)
        raise ValueError(
            f"`weights` file {path!r} does not match the architecture of {model.name!r}"
            f"{': ' + report if report else ''}. Keras said: {error}"
        ) from error
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename,
                               warning.lineno)


def _keras3_report(model, path):
    """Which objects of a Keras 3 weights file differ from ``model``'s own weights."""
    with tempfile.TemporaryDirectory() as folder:
        reference = os.path.join(folder, "model.weights.h5")
        model.save_weights(reference)
        expected = _keras3_structure(reference)
    try:
        actual = _keras3_structure(path)
    except OSError:
        return "the file is not a readable HDF5 file"
    names = _keras3_layer_paths(model)
    label = lambda path: f"{names[path]} ({path})" if path in names else path  # noqa: E731
    expected = {label(k): v for k, v in expected.items()}
    actual = {label(k): v for k, v in actual.items()}
    parts, _ = _mismatch_report(actual, expected, allow_extra_layers=False)
    return "; ".join(parts)


def _keras3_layer_paths(model):
    """``{"layers/conv2d_3": layer name}``: how Keras 3 weight files address each layer
    (snake-cased class name, numbered in layer order), for readable reports."""
    import re

    names, used = {}, {}
    for layer in model.layers:
        base = re.sub(r"\W+", "", type(layer).__name__)
        base = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", base)
        base = re.sub("([a-z])([A-Z])", r"\1_\2", base).lower()
        if base in used:
            used[base] += 1
            key = f"{base}_{used[base]}"
        else:
            used[base] = 0
            key = base
        names[f"layers/{key}"] = layer.name
    return names

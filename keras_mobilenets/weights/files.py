"""Reading weights files into a model, with a readable report when a file does not fit.

Legacy Keras ``.h5`` / ``.hdf5`` files (the published checkpoints' format) load by layer
name, or by layer order where only the names differ; Keras 3 ``.weights.h5`` / ``.keras``
files load by structure. When a file does not fit, the ``ValueError`` lists the layers
that differ instead of Keras' own trace.

Example:
    >>> load_weights_file(model, "mobilenet_v3_small.weights.h5")
"""

import logging
import os
import re
import tempfile
import warnings

import h5py

logger = logging.getLogger(__name__)


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

"""The model zoo tables (command line, docs page, README's short one), generated from the registry.

Every row is an entry of :mod:`keras_mobilenets.registry`; this module only measures the
variants and formats the tables. ``VARIANTS``, ``Variant`` and ``get`` are the registry's
entries, entry class and lookup under their older names.

Example:
    >>> from keras_mobilenets import zoo
    >>> print(zoo.model_table_markdown())  # keras-mobilenets models --markdown
"""

from keras_mobilenets import registry

#: The registry's entry class (older name).
Variant = registry.ModelEntry
#: Returns the entry called ``name`` (older name of ``registry.get``).
get = registry.get


def __getattr__(name):
    # VARIANTS / BY_NAME: read from the registry on access, so entries registered later
    # (e.g. by a user's own family) are included.
    if name == "VARIANTS":
        return registry.entries()
    if name == "BY_NAME":
        return {entry.name: entry for entry in registry.entries()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def imagenet_input_sizes(variant):
    """Input sizes of the published ImageNet checkpoints of ``variant`` (may be empty).

    Example:
        >>> imagenet_input_sizes(get("mobilenet_v2_1.0"))
        [96, 128, 160, 192, 224]
    """
    return variant.imagenet_input_sizes


def measure(variant, input_size=224):
    """Builds ``variant`` at ``input_size`` and profiles it.

    Returns:
        A ``profiling.ModelProfile``: ``params`` (``count_params()`` with the 1000-class
        top, batch-norm statistics included), ``trainable_params`` and ``macs``.

    Example:
        >>> measure(get("mobilenet_v3_small_1.0")).params
        2554968
    """
    import keras

    from keras_mobilenets import profiling

    report = profiling.profile(variant.build(input_shape=(input_size, input_size, 3)))
    # The graph's names and state go; Python's own garbage collector frees the model (a
    # forced gc.collect per variant took a third of a second).
    keras.backend.clear_session(free_memory=False)
    return report


def measure_all(variants=None, input_size=224, progress=False):
    """Measures every variant of ``variants`` (every registry entry by default).

    Takes about a second per variant on a CPU.

    Args:
        variants: Variants to measure.
        input_size: Square input size at which multiply-adds are counted.
        progress: Show a progress bar.

    Returns:
        A list of ``profiling.ModelProfile`` (see :func:`measure`), in the order of
        ``variants``.
    """
    import keras

    variants = registry.entries() if variants is None else variants
    bar = keras.utils.Progbar(len(variants), verbose=1 if progress else 0)
    measurements = []
    for variant in variants:
        measurements.append(measure(variant, input_size))
        bar.add(1)
    return measurements


def _reference_params(variant):
    references = []
    if variant.params is not None:
        references.append(f"{variant.params:,d}")
    if variant.trainable_params is not None:
        references.append(f"{variant.trainable_params:,d} trainable")
    return ", ".join(references) or "—"


def model_table_markdown(measurements=None, progress=False):
    """The model table (markdown) of ``docs/model_zoo.md`` and the README.

    One row per registry entry: the builder call, the parameters and multiply-adds at
    224x224 measured on our models, the reference numbers, the input sizes of the
    published ImageNet weights and the reference ImageNet top-1.

    Args:
        measurements: The variants' profiles (:func:`measure`) in registry order (None:
            :func:`measure_all`, about 20 s on a CPU).
        progress: Show a progress bar while measuring.

    Example:
        >>> print(model_table_markdown())  # keras-mobilenets models --markdown
    """
    lines = [
        "| variant | builder call | params | trainable params | MACs at 224 (M) "
        "| reference params | reference MACs (M) | ImageNet weights (input sizes) "
        "| top-1 (%) |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for variant, measured in _measured_variants(measurements, progress):
        arguments = ", ".join(f"{key}={value!r}" for key, value in variant.kwargs.items())
        sizes = variant.imagenet_input_sizes
        reference_macs = "—" if variant.macs_millions is None else f"{variant.macs_millions:g}"
        top1 = "—" if variant.top1 is None else f"{variant.top1:g}"
        lines.append(
            f"| {variant.name} | `{variant.builder}({arguments})` "
            f"| {measured.params:,d} | {measured.trainable_params:,d} "
            f"| {measured.macs / 1e6:.1f} | {_reference_params(variant)} "
            f"| {reference_macs} | {', '.join(map(str, sizes)) if sizes else 'none'} "
            f"| {top1} |"
        )
    return "\n".join(lines)


def _measured_variants(measurements, progress):
    """``(registry entry, profile)`` pairs of every variant; measures them when None."""
    if measurements is None:
        measurements = measure_all(progress=progress)
    variants = registry.entries()
    if len(measurements) != len(variants):
        raise ValueError(f"`measurements` must have one entry per variant ({len(variants)}), "
                         f"got {len(measurements)}.")
    return list(zip(variants, measurements))


def builder_table_markdown(measurements=None, progress=False):
    """The model table in short (markdown, the README's): one row per builder.

    Each row gives the builder, its registry variants, the range of their parameters and
    multiply-adds at 224x224 (measured) and the best published ImageNet top-1 among them;
    :func:`model_table_markdown` has every variant.

    Args:
        measurements: As for :func:`model_table_markdown` (None: measure every variant).
        progress: Show a progress bar while measuring.

    Example:
        >>> print(builder_table_markdown())
    """
    rows = {}
    for variant, measured in _measured_variants(measurements, progress):
        rows.setdefault(variant.builder, []).append((variant, measured))
    lines = ["| builder | variants | params (M) | MACs at 224 (M) | best ImageNet top-1 (%) |",
             "|---|---:|---:|---:|---:|"]
    for builder, members in rows.items():
        params = [measured.params / 1e6 for _, measured in members]
        macs = [measured.macs / 1e6 for _, measured in members]
        top1 = [variant.top1 for variant, _ in members if variant.top1 is not None]
        best = f"{max(top1):g}" if top1 else "—"
        lines.append(f"| `{builder}` | {len(members)} | {_span(params, '.1f')} "
                     f"| {_span(macs, '.0f')} | {best} |")
    return "\n".join(lines)


def _span(values, spec):
    low, high = format(min(values), spec), format(max(values), spec)
    return low if low == high else f"{low}–{high}"


#: Licence note per checkpoint source (the project that publishes the files).
LICENCES = {
    "keras.applications": "Apache-2.0 (keras-applications)",
    "torchvision": "BSD-3-Clause (torchvision); the training data's terms apply",
    "timm": "Apache-2.0 (timm); the training data's terms apply",
}


def _weights_keyword(entry, checkpoint):
    sources = {c.source for c in entry.checkpoints}
    if checkpoint.source == "torchvision" and "keras.applications" in sources:
        return "imagenet_torchvision"
    return "imagenet"


def _metrics_text(metrics):
    return ", ".join(f"{name} {value:g}" for name, value in metrics.items()) or "—"


def checkpoint_table_markdown():
    """The pretrained checkpoints (markdown): per variant and source, the ``weights``
    keyword, how many files, their input sizes, published metrics and licence note.

    Example:
        >>> print(checkpoint_table_markdown())  # part of docs/model_zoo.md
    """
    from keras_mobilenets.models import catalog

    lines = [
        "| variant or head | `weights=` | source | files | input sizes | published metrics "
        "| licence |",
        "|---|---|---|---:|---|---|---|",
    ]
    for entry in registry.entries():
        groups = {}
        for checkpoint in entry.checkpoints:
            groups.setdefault((_weights_keyword(entry, checkpoint), checkpoint.source),
                              []).append(checkpoint)
        for (keyword, source), files in groups.items():
            top1 = sorted({c.top1 for c in files if c.top1 is not None})
            metrics = {"ImageNet top-1": top1[0]} if len(top1) == 1 else {}
            sizes = ", ".join(str(rows) for rows in sorted({c.rows for c in files}))
            count = len({c.file_name for c in files})
            lines.append(f"| {entry.name} | `\"{keyword}\"` | {source} | {count} | {sizes} "
                         f"| {_metrics_text(metrics)} | {LICENCES.get(source, '—')} |")
    for (head, keyword), checkpoint in catalog.HEAD_CHECKPOINTS.items():
        call = {"ssdlite": "detection.SSDLite", "lraspp": "segmentation.LRASPP"}.get(head, head)
        metrics = catalog.HEAD_METRICS.get(checkpoint.file_name, {})
        lines.append(
            f"| `{call}(\"MobileNetV3Large\")` | `\"{keyword}\"` | {checkpoint.source} | 1 "
            f"| {checkpoint.rows} | {_metrics_text(metrics)} "
            f"| {LICENCES.get(checkpoint.source, '—')} |")
    return "\n".join(lines)


def model_zoo_markdown(measurements=None, progress=False):
    """The model zoo page of the documentation (``docs/model_zoo.md``) as markdown.

    The table of :func:`model_table_markdown` with an introduction and notes.

    Args:
        measurements: As for :func:`model_table_markdown` (None: measure every variant).
        progress: Show a progress bar while measuring.

    Example:
        >>> print(model_zoo_markdown())  # keras-mobilenets models --markdown
    """
    lines = [
        "# Model zoo",
        "",
        "Every entry of the model registry (`keras_mobilenets.registry`). Build one with the",
        "builder call shown (add `weights=\"imagenet\"` for the published weights,",
        "`include_top=False` for a backbone), or by name: "
        "`keras_mobilenets.registry.get(\"mobilenet_v3_small_1.0\").build()`.",
        "",
        model_table_markdown(measurements, progress),
        "",
        "*params*, *trainable params* and *MACs* are measured on our builders with the",
        "1000-class top: `count_params()` (batch-norm statistics included, as",
        "keras.applications counts), the trainable parameters, and the multiply-adds of",
        "convolutions and dense layers at 224x224 (`keras_mobilenets.profiling`).",
        "Reference numbers, which the test suite checks our builders against: *reference",
        "params* is keras.applications' `count_params()` and, marked *trainable*,",
        "torchvision's (timm's for MobileNetV4) count for the same architecture; *reference",
        "MACs* the multiply-adds the papers report at the variant's default input size (224;",
        "MobileNetV4 Conv-Medium and Hybrid-Medium 256, Conv-Large and Hybrid-Large 384);",
        "*top-1* the ImageNet accuracy published for the",
        "checkpoint. — : no reference number.",
        "ImageNet weights: keras.applications' published files (input sizes without a file",
        "of their own load the 224 weights); ShuffleNetV2's are torchvision's (converted when",
        "loaded; `weights=\"imagenet_torchvision\"` gives torchvision's MobileNetV2 / V3 too);",
        "ShuffleNet V1 has none.",
        "",
        "## Pretrained checkpoints",
        "",
        "Every published weights file the package downloads (`keras.utils.get_file`, hash",
        "verified, cached under `$KERAS_HOME/models`; `KERAS_MOBILENETS_WEIGHTS_URL` names a",
        "mirror or a folder). torchvision's and timm's files are read without running code",
        "from them and converted to our layers once (the converted `.weights.h5` is cached).",
        "Published metrics are the source's own numbers for its file (ImageNet top-1 at the",
        "checkpoint's input size; torchvision's COCO box mAP and VOC-label mIoU for the heads);",
        "licence notes name the licence the source publishes its files under.",
        "",
        checkpoint_table_markdown(),
        "",
        "This page is generated: `keras-mobilenets models --markdown > docs/model_zoo.md`.",
        "",
    ]
    return "\n".join(lines)

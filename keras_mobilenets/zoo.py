"""The model zoo: every named variant with its builder arguments and reference numbers.

One table, read by the CLI (``keras-mobilenets models``), the README's model table and the
tests that check parameter counts and multiply-adds against the references.
"""

import dataclasses
from typing import Optional


@dataclasses.dataclass(frozen=True)
class Variant:
    """A named model variant.

    Attributes:
        name: Short unique name, e.g. ``"mobilenet_v3_small_0.75"``.
        builder: Name of the public builder in ``keras_mobilenets``.
        kwargs: Builder arguments besides ``weights``.
        params: Reference ``count_params()`` with the 1000-class top (keras.applications,
            batch-norm statistics included), or None when there is none.
        trainable_params: Reference trainable parameters (torchvision), or None.
        macs_millions: Reference multiply-adds at 224x224 in millions (paper), or None.
        top1: Reference ImageNet top-1 of the published checkpoint, or None.
    """

    name: str
    builder: str
    kwargs: dict
    params: Optional[int] = None
    trainable_params: Optional[int] = None
    macs_millions: Optional[float] = None
    top1: Optional[float] = None

    def build(self, **overrides):
        """Builds the variant (``weights=None`` unless overridden)."""
        import keras_mobilenets

        arguments = {"weights": None, **self.kwargs, **overrides}
        return getattr(keras_mobilenets, self.builder)(**arguments)


VARIANTS = (
    Variant("mobilenet_v1_1.0", "MobileNet", {"alpha": 1.0}, 4_253_864, None, 569, 70.6),
    Variant("mobilenet_v1_0.75", "MobileNet", {"alpha": 0.75}, 2_601_976, None, 325),
    Variant("mobilenet_v1_0.5", "MobileNet", {"alpha": 0.5}, 1_342_536, None, 149),
    Variant("mobilenet_v1_0.25", "MobileNet", {"alpha": 0.25}, 475_544, None, 41),
    Variant("mobilenet_v2_1.0", "MobileNetV2", {"alpha": 1.0}, 3_538_984, 3_504_872, 300, 71.8),
    Variant("mobilenet_v2_1.4", "MobileNetV2", {"alpha": 1.4}, 6_156_712, None, 585),
    Variant("mobilenet_v2_0.35", "MobileNetV2", {"alpha": 0.35}),
    Variant("mobilenet_v3_large_1.0", "MobileNetV3Large", {}, 5_507_432, 5_483_032, 217, 75.2),
    Variant("mobilenet_v3_large_0.75", "MobileNetV3Large", {"alpha": 0.75}, 4_012_616, None, 155),
    Variant(
        "mobilenet_v3_large_minimalistic",
        "MobileNetV3Large",
        {"minimalistic": True},
        3_948_688,
        None,
        209,
    ),
    Variant("mobilenet_v3_small_1.0", "MobileNetV3Small", {}, 2_554_968, 2_542_856, 56, 67.5),
    Variant("mobilenet_v3_small_0.75", "MobileNetV3Small", {"alpha": 0.75}, 2_051_552),
    Variant(
        "mobilenet_v3_small_minimalistic",
        "MobileNetV3Small",
        {"minimalistic": True},
        2_056_848,
    ),
    # ShuffleNet V1 (arXiv:1707.01083): MACs from Table 2 (g = 3) and Table 1 (g = 8).
    Variant("shufflenet_g3_0.5", "ShuffleNet", {"groups": 3, "scale": 0.5}, None, None, 38),
    Variant("shufflenet_g3_1.0", "ShuffleNet", {"groups": 3, "scale": 1.0}, None, None, 140),
    Variant("shufflenet_g3_2.0", "ShuffleNet", {"groups": 3, "scale": 2.0}, None, None, 524),
    Variant("shufflenet_g8_1.0", "ShuffleNet", {"groups": 8, "scale": 1.0}, None, None, 137),
    # ShuffleNetV2 (arXiv:1807.11164): trainable parameters of torchvision's
    # shufflenet_v2_x*, MACs from Table 5, top-1 of torchvision's x1.0 checkpoint.
    Variant("shufflenet_v2_0.5", "ShuffleNetV2", {"scale": 0.5}, None, 1_366_792, 41),
    Variant("shufflenet_v2_1.0", "ShuffleNetV2", {"scale": 1.0}, None, 2_278_604, 146, 69.4),
    Variant("shufflenet_v2_1.5", "ShuffleNetV2", {"scale": 1.5}, None, 3_503_624, 299),
    Variant("shufflenet_v2_2.0", "ShuffleNetV2", {"scale": 2.0}, None, 7_393_996, 591),
)

BY_NAME = {variant.name: variant for variant in VARIANTS}


def get(name):
    """Returns the :class:`Variant` called ``name``.

    Raises:
        ValueError: If there is no such variant (the message lists them).
    """
    if name not in BY_NAME:
        raise ValueError(f"Unknown model variant {name!r}; known variants: {sorted(BY_NAME)}.")
    return BY_NAME[name]


def imagenet_input_sizes(variant):
    """Input sizes of the published ImageNet checkpoints that fit ``variant`` (may be empty).

    Example:
        >>> imagenet_input_sizes(get("mobilenet_v2_1.0"))
        [96, 128, 160, 192, 224]
    """
    from keras_mobilenets.weights import registry

    family = {builder: family for family, builder in registry.FAMILY_BUILDERS.items()}.get(
        variant.builder)
    alpha = variant.kwargs.get("alpha", 1.0)
    minimalistic = variant.kwargs.get("minimalistic", False)
    return sorted({
        checkpoint.rows for checkpoint in registry.CHECKPOINTS
        if checkpoint.family == family and abs(checkpoint.alpha - alpha) < 1e-6
        and checkpoint.minimalistic == minimalistic
    })


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
    keras.backend.clear_session()
    return report


def measure_all(variants=None, input_size=224, progress=False):
    """Measures every variant of ``variants`` (all of :data:`VARIANTS` by default).

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

    variants = VARIANTS if variants is None else variants
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

    One row per variant of :data:`VARIANTS`: the builder call, the parameters and
    multiply-adds at 224x224 measured on our models, the reference numbers, the input
    sizes of the published ImageNet weights (from the weights registry) and the
    reference ImageNet top-1.

    Args:
        measurements: The variants' profiles (:func:`measure`) in the order of
            :data:`VARIANTS` (None: :func:`measure_all`, about 20 s on a CPU).
        progress: Show a progress bar while measuring.

    Example:
        >>> print(model_table_markdown())  # keras-mobilenets models --markdown
    """
    if measurements is None:
        measurements = measure_all(progress=progress)
    if len(measurements) != len(VARIANTS):
        raise ValueError(f"`measurements` must have one entry per variant ({len(VARIANTS)}), "
                         f"got {len(measurements)}.")
    lines = [
        "| variant | builder call | params | trainable params | MACs at 224 (M) "
        "| reference params | reference MACs (M) | ImageNet weights (input sizes) "
        "| top-1 (%) |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for variant, measured in zip(VARIANTS, measurements):
        arguments = ", ".join(f"{key}={value!r}" for key, value in variant.kwargs.items())
        sizes = imagenet_input_sizes(variant)
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
        "Every named variant of `keras_mobilenets.zoo.VARIANTS`. Build one with the builder",
        "call shown (add `weights=\"imagenet\"` for the published weights, `include_top=False`",
        "for a backbone), or by name: "
        "`keras_mobilenets.zoo.get(\"mobilenet_v3_small_1.0\").build()`.",
        "",
        model_table_markdown(measurements, progress),
        "",
        "*params*, *trainable params* and *MACs* are measured on our builders with the",
        "1000-class top: `count_params()` (batch-norm statistics included, as",
        "keras.applications counts), the trainable parameters, and the multiply-adds of",
        "convolutions and dense layers at 224x224 (`keras_mobilenets.profiling`).",
        "Reference numbers, which the test suite checks our builders against: *reference",
        "params* is keras.applications' `count_params()` and, marked *trainable*,",
        "torchvision's count for the same architecture; *reference MACs* the multiply-adds",
        "the papers report at 224x224; *top-1* the ImageNet accuracy published for the",
        "checkpoint. — : no reference number.",
        "ImageNet weights: keras.applications' published files (input sizes without a file",
        "of their own load the 224 weights); ShuffleNetV2's are torchvision's (converted when",
        "loaded; `weights=\"imagenet_torchvision\"` gives torchvision's MobileNetV2 / V3 too);",
        "ShuffleNet V1 has none.",
        "",
        "This page is generated: `keras-mobilenets models --markdown > docs/model_zoo.md`.",
        "",
    ]
    return "\n".join(lines)

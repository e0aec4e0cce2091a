"""The model registry: every variant once, with its builder, reference numbers and weights.

One :class:`ModelEntry` per named variant (``"mobilenet_v3_small_1.0"``) holds everything
the package knows about it: the public builder and its arguments, the family, how inputs in
[0, 255] are prepared, the default input size, the reference numbers the tests check
(parameters, multiply-adds, ImageNet top-1) and the pretrained checkpoints
(:class:`Checkpoint`: source, URL, hash, published metrics). The command line, the model
zoo page, the heads' backbone lookup, weights selection and fine-tuning all read it.

Builders register themselves with :func:`register_builder`; the entries (data only) are in
:mod:`keras_mobilenets.models.catalog`. Adding a family means one spec module, one builder
module decorated with ``register_builder`` and its entries in the catalog.

This module holds no Keras import and does no I/O, as torchvision's ``register_model`` /
``Weights(meta=...)`` and timm's ``default_cfgs`` keep their tables.

Example:
    >>> from keras_mobilenets import registry
    >>> entry = registry.get("mobilenet_v3_small_1.0")
    >>> entry.builder, entry.params, entry.default_input_size
    ('MobileNetV3Small', 2554968, 224)
    >>> model = entry.build(input_shape=(96, 96, 3))
"""

import dataclasses
import types
from typing import Optional

#: How a checkpoint or a variant wants inputs in [0, 255] prepared: "tf" scales to
#: [-1, 1], "torch" normalises with the ImageNet mean / standard deviation (both with
#: ``imagenet.preprocess_input``), "none" means the model rescales inside.
PREPROCESSING = ("tf", "torch", "none")

_BUILDERS = {}
_ENTRIES = {}


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """One published weights file and what it fits.

    Attributes:
        family: The family of the variant it fits, e.g. "mobilenet_v3_small".
        alpha: Width multiplier.
        rows: Input size the checkpoint was trained at (square inputs).
        include_top: Whether the file holds the 1000-class ImageNet top.
        minimalistic: MobileNetV3's minimalistic variant.
        file_name: Official file name (also the name in the cache).
        url: Official download URL.
        md5: Published md5 of the file, or None.
        sha256: sha256 of the file, or None where it could not be computed.
        num_params: ``count_params()`` of the model that fits (batch-norm statistics
            included).
        preprocessing: One of :data:`PREPROCESSING`.
        top1: ImageNet top-1 accuracy (%) published for the checkpoint, or None.
        source: Where the file and numbers come from.
    """

    family: str
    alpha: float
    rows: int
    include_top: bool
    minimalistic: bool
    file_name: str
    url: str
    md5: Optional[str]
    sha256: Optional[str]
    num_params: int
    preprocessing: str
    top1: Optional[float] = None
    source: str = "keras.applications"

    @property
    def name(self):
        """A readable unique name, e.g. ``"mobilenet_v3_small_1.0_224_no_top"``
        (``..._torchvision`` for torchvision's files)."""
        mini = "_minimalistic" if self.minimalistic else ""
        top = "" if self.include_top else "_no_top"
        source = "" if self.source == "keras.applications" else f"_{self.source}"
        return f"{self.family}{mini}_{self.alpha}_{self.rows}{top}{source}"

    @property
    def input_shape(self):
        """The ``(rows, cols, channels)`` the checkpoint was trained at."""
        return (self.rows, self.rows, 3)

    @property
    def builder(self):
        """Name of the public builder that builds the matching model."""
        return family_builder(self.family)

    def builder_kwargs(self):
        """Builder arguments (besides ``weights``) of the model this file fits."""
        if self.source == "timm":  # MobileNetV4: no width multiplier
            return {"include_top": self.include_top,
                    "input_shape": self.input_shape if self.include_top else None}
        kwargs = {"alpha": self.alpha, "include_top": self.include_top}
        if self.family.startswith("shufflenet"):
            kwargs["scale"] = kwargs.pop("alpha")
        if self.family.startswith("mobilenet_v3"):
            kwargs["minimalistic"] = self.minimalistic
        else:
            kwargs["input_shape"] = self.input_shape if self.include_top else None
        return kwargs


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """A named model variant and everything known about it.

    Attributes:
        name: Short unique name, e.g. ``"mobilenet_v3_small_0.75"``.
        builder: Name of the public builder (``keras_mobilenets.<builder>``).
        family: Family name, shared by the variants of one builder and their checkpoints.
        kwargs: Builder arguments besides ``weights`` (read-only mapping).
        preprocessing: How [0, 255] inputs are prepared for the model as built by
            default, one of :data:`PREPROCESSING`.
        default_input_size: Square input size of the reference numbers and checkpoints.
        params: Reference ``count_params()`` with the 1000-class top (keras.applications,
            batch-norm statistics included), or None when there is none.
        trainable_params: Reference trainable parameters (torchvision), or None.
        macs_millions: Reference multiply-adds in millions (paper) at 224x224, or at
            ``default_input_size`` for families whose paper uses other sizes
            (MobileNetV4), or None.
        top1: Reference ImageNet top-1 (%) of the published checkpoint, or None.
        checkpoints: The published weights files of this variant.
        paper: arXiv id of the paper the architecture comes from.
    """

    name: str
    builder: str
    family: str
    kwargs: types.MappingProxyType
    preprocessing: str
    default_input_size: int = 224
    params: Optional[int] = None
    trainable_params: Optional[int] = None
    macs_millions: Optional[float] = None
    top1: Optional[float] = None
    checkpoints: tuple = ()
    paper: str = ""

    def __post_init__(self):
        if self.preprocessing not in PREPROCESSING:
            raise ValueError(
                f"ModelEntry {self.name!r}: `preprocessing` must be one of {PREPROCESSING}, "
                f"got {self.preprocessing!r}."
            )
        object.__setattr__(self, "kwargs", types.MappingProxyType(dict(self.kwargs)))
        object.__setattr__(self, "checkpoints", tuple(self.checkpoints))

    def build(self, **overrides):
        """Builds the variant (``weights=None`` unless overridden).

        Example:
            >>> get("shufflenet_v2_0.5").build(input_shape=(64, 64, 3)).output_shape
            (None, 1000)
        """
        arguments = {"weights": None, **self.kwargs, **overrides}
        return get_builder(self.builder)(**arguments)

    @property
    def imagenet_input_sizes(self):
        """Sorted input sizes of this variant's published ImageNet checkpoints."""
        return sorted({checkpoint.rows for checkpoint in self.checkpoints})


def register_builder(function):
    """Decorator that makes a public builder findable by its name.

    Example:
        >>> @register_builder
        ... def MyNet(**kwargs): ...
    """
    _BUILDERS[function.__name__] = function
    return function


def builder_names():
    """Names of every registered builder, in registration order."""
    return tuple(_BUILDERS)


def get_builder(name, argument="model"):
    """The public builder called ``name``.

    Args:
        name: A builder name such as ``"MobileNetV3Small"``.
        argument: The argument name used in the error message.

    Raises:
        ValueError: For an unknown name (the message lists the builders).

    Example:
        >>> get_builder("MobileNetV2")(input_shape=(64, 64, 3), weights=None).name
        'mobilenet_v2_1.00_64'
    """
    if not isinstance(name, str) or name not in _BUILDERS:
        raise ValueError(f"`{argument}` must be one of {builder_names()}, got {name!r}.")
    return _BUILDERS[name]


def register(*entries):
    """Adds model entries (the catalog does this at import).

    Raises:
        ValueError: If an entry's name is taken already.
    """
    for entry in entries:
        if entry.name in _ENTRIES:
            raise ValueError(f"Model entry {entry.name!r} is registered already.")
        _ENTRIES[entry.name] = entry


def entries(builder=None, family=None):
    """The registered entries, in registration order, optionally of one builder / family.

    Example:
        >>> entries(builder="MobileNetV3Small")[0].name
        'mobilenet_v3_small_1.0'
    """
    return tuple(
        entry for entry in _ENTRIES.values()
        if (builder is None or entry.builder == builder)
        and (family is None or entry.family == family)
    )


def get(name):
    """The :class:`ModelEntry` called ``name``.

    Raises:
        ValueError: If there is no such variant (the message lists them).
    """
    if name not in _ENTRIES:
        raise ValueError(f"Unknown model variant {name!r}; known variants: {sorted(_ENTRIES)}.")
    return _ENTRIES[name]


def checkpoints(family=None):
    """Every published checkpoint (or one family's), in registry order.

    Example:
        >>> len(checkpoints("mobilenet_v3_small"))
        6
    """
    return tuple(
        checkpoint for entry in _ENTRIES.values() for checkpoint in entry.checkpoints
        if family is None or checkpoint.family == family
    )


def family_builder(family):
    """Name of the builder of ``family`` (the family itself if unknown)."""
    for entry in _ENTRIES.values():
        if entry.family == family:
            return entry.builder
    return family


def builders_with_checkpoints():
    """Names of the builders that have published ImageNet checkpoints."""
    names = []
    for entry in _ENTRIES.values():
        if entry.checkpoints and entry.builder not in names:
            names.append(entry.builder)
    return tuple(names)

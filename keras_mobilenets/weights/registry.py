"""The published ImageNet checkpoints, as data.

One :class:`Checkpoint` per file that keras.applications publishes for MobileNet
(Howard et al. 2017, arXiv:1704.04861), MobileNetV2 (Sandler et al. 2018,
arXiv:1801.04381) and MobileNetV3 (Howard et al. 2019, arXiv:1905.02244). Our builders use
keras.applications' layer names, so these legacy ``.h5`` files load by layer name.

This module holds data only: no Keras import, no I/O. Selecting a checkpoint for a model is
done in :mod:`keras_mobilenets.weights`, downloading in :mod:`keras_mobilenets.weights.download`.

Hashes: keras.applications publishes md5 hashes for the MobileNetV3 files only; the V1 and
V2 files have no published hash (``md5`` and ``sha256`` are None). Those are checked for
being a readable Keras weights file with the expected layers instead.

Example:
    >>> from keras_mobilenets.weights import registry
    >>> [c.file_name for c in registry.CHECKPOINTS if c.family == "mobilenet_v3_small"][:1]
    ['weights_mobilenet_v3_small_224_1.0_float.h5']
"""

import dataclasses
from typing import Optional

V1_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/"
V2_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
V3_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"

# Public builder of each family (for messages and the CLI).
FAMILY_BUILDERS = {
    "mobilenet_v1": "MobileNet",
    "mobilenet_v2": "MobileNetV2",
    "mobilenet_v3_small": "MobileNetV3Small",
    "mobilenet_v3_large": "MobileNetV3Large",
}

# How inputs in [0, 255] must be prepared (see keras_mobilenets.imagenet.preprocess_input):
# "tf": scale to [-1, 1] before the model; "none": the model rescales inside
# (MobileNetV3 with include_preprocessing=True).
PREPROCESSING = ("tf", "none")


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """One published weights file and what it fits.

    Attributes:
        family: "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small" or "mobilenet_v3_large".
        alpha: Width multiplier.
        rows: Input size the checkpoint was trained at (square inputs).
        include_top: Whether the file holds the 1000-class ImageNet top.
        minimalistic: MobileNetV3's minimalistic variant.
        file_name: Official file name (also the name in the cache).
        url: Official download URL.
        md5: Published md5 of the file, or None.
        sha256: sha256 of the file, or None where it could not be computed.
        num_params: ``count_params()`` of the model that fits (keras.applications,
            batch-norm statistics included).
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
        """A readable unique name, e.g. ``"mobilenet_v3_small_1.0_224_no_top"``."""
        mini = "_minimalistic" if self.minimalistic else ""
        top = "" if self.include_top else "_no_top"
        return f"{self.family}{mini}_{self.alpha}_{self.rows}{top}"

    @property
    def input_shape(self):
        """The ``(rows, cols, channels)`` the checkpoint was trained at."""
        return (self.rows, self.rows, 3)

    @property
    def builder(self):
        """Name of the public builder that builds the matching model."""
        return FAMILY_BUILDERS.get(self.family, self.family)

    def builder_kwargs(self):
        """Builder arguments (besides ``weights``) of the model this file fits."""
        kwargs = {"alpha": self.alpha, "include_top": self.include_top}
        if self.family.startswith("mobilenet_v3"):
            kwargs["minimalistic"] = self.minimalistic
        else:
            kwargs["input_shape"] = self.input_shape if self.include_top else None
        return kwargs


# count_params() of keras.applications (weights=None), with and without the top:
# {alpha: (with_top, without_top)}.
_V1_PARAMS = {
    0.25: (475_544, 218_544),
    0.5: (1_342_536, 829_536),
    0.75: (2_601_976, 1_832_976),
    1.0: (4_253_864, 3_228_864),
}
_V1_ALPHA_TEXT = {0.25: "2_5", 0.5: "5_0", 0.75: "7_5", 1.0: "1_0"}
_V1_ROWS = (128, 160, 192, 224)
_V1_TOP1 = {(1.0, 224): 70.6}

_V2_PARAMS = {
    0.35: (1_691_208, 410_208),
    0.5: (1_987_224, 706_224),
    0.75: (2_663_064, 1_382_064),
    1.0: (3_538_984, 2_257_984),
    1.3: (5_431_048, 3_766_048),
    1.4: (6_156_712, 4_363_712),
}
_V2_ROWS = (96, 128, 160, 192, 224)
_V2_TOP1 = {(1.0, 224): 71.8}

# (size, minimalistic, alpha): (with_top, without_top, md5 with top, md5 without top, top-1)
_V3 = {
    ("large", False, 1.0): (
        5_507_432, 2_996_352,
        "59e551e166be033d707958cf9e29a6a7", "07fb09a5933dd0c8eaafa16978110389", 75.6,
    ),
    ("large", False, 0.75): (
        4_012_616, 1_808_736,
        "765b44a33ad4005b3ac83185abf1d0eb", "40af19a13ebea4e2ee0c676887f69a2e", 73.3,
    ),
    ("large", True, 1.0): (
        3_948_688, 1_437_608,
        "675e7b876c45c57e9e63e6d90a36599c", "ec5221f64a2f6d1ef965a614bdae7973", 72.3,
    ),
    ("small", False, 1.0): (
        2_554_968, 939_120,
        "8768d4c2e7dee89b9d02b2d03d65d862", "d3e8ec802a04aa4fc771ee12a9a9b836", 68.1,
    ),
    ("small", False, 0.75): (
        2_051_552, 583_160,
        "cb65d4e5be93758266aa0a7f2c6708b7", "ebdb5cc8e0b497cd13a7c275d475c819", 65.4,
    ),
    ("small", True, 1.0): (
        2_056_848, 441_000,
        "99cd97fb2fcdad2bf028eb838de69e37", "cde8136e733e811080d9fcd8a252f7e4", 61.9,
    ),
}


def _v1_file_name(alpha, rows, include_top):
    suffix = "" if include_top else "_no_top"
    return f"mobilenet_{_V1_ALPHA_TEXT[alpha]}_{rows}_tf{suffix}.h5"


def _v2_file_name(alpha, rows, include_top):
    suffix = "" if include_top else "_no_top"
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}{suffix}.h5"


def _v3_file_name(size, minimalistic, alpha, include_top):
    model = f"{size}{'_minimalistic' if minimalistic else ''}_224_{alpha}_float"
    return f"weights_mobilenet_v3_{model}{'' if include_top else '_no_top_v2'}.h5"


def _table():
    rows = []
    for alpha, params in _V1_PARAMS.items():
        for size in _V1_ROWS:
            for index, include_top in enumerate((True, False)):
                name = _v1_file_name(alpha, size, include_top)
                rows.append(Checkpoint(
                    family="mobilenet_v1", alpha=alpha, rows=size, include_top=include_top,
                    minimalistic=False, file_name=name, url=V1_BASE_URL + name, md5=None,
                    sha256=None, num_params=params[index], preprocessing="tf",
                    top1=_V1_TOP1.get((alpha, size)),
                ))
    for alpha, params in _V2_PARAMS.items():
        for size in _V2_ROWS:
            for index, include_top in enumerate((True, False)):
                name = _v2_file_name(alpha, size, include_top)
                rows.append(Checkpoint(
                    family="mobilenet_v2", alpha=alpha, rows=size, include_top=include_top,
                    minimalistic=False, file_name=name, url=V2_BASE_URL + name, md5=None,
                    sha256=None, num_params=params[index], preprocessing="tf",
                    top1=_V2_TOP1.get((alpha, size)),
                ))
    for (size, minimalistic, alpha), (top, no_top, md5, md5_no_top, top1) in _V3.items():
        for include_top in (True, False):
            name = _v3_file_name(size, minimalistic, alpha, include_top)
            rows.append(Checkpoint(
                family=f"mobilenet_v3_{size}", alpha=alpha, rows=224, include_top=include_top,
                minimalistic=minimalistic, file_name=name, url=V3_BASE_URL + name,
                md5=md5 if include_top else md5_no_top, sha256=None,
                num_params=top if include_top else no_top, preprocessing="none",
                top1=top1 if include_top else None,
            ))
    return tuple(rows)


#: Every published checkpoint. Lookups read this name at call time, so tests (or a mirror
#: with re-hashed files) may replace it, e.g. with ``monkeypatch.setattr``.
CHECKPOINTS = _table()

"""Every model variant of the package, as registry entries (data only).

Reference numbers: ``params`` is keras.applications' ``count_params()`` with the 1000-class
top (batch-norm statistics included), ``trainable_params`` torchvision's count for the same
architecture, ``macs_millions`` the multiply-adds the papers report at the default input size
(224x224 but for MobileNetV4's larger variants), ``top1`` the
ImageNet accuracy published for the checkpoint.

Checkpoints: the files keras.applications publishes for MobileNet (Howard et al. 2017,
arXiv:1704.04861), MobileNetV2 (Sandler et al. 2018, arXiv:1801.04381) and MobileNetV3
(Howard et al. 2019, arXiv:1905.02244). Our builders use keras.applications' layer names, so
these legacy ``.h5`` files load by layer name. keras.applications publishes md5 hashes for
the MobileNetV3 files only; the V1 and V2 files are checked for being a readable Keras
weights file with the expected layers instead.

torchvision's ImageNet checkpoints (``source="torchvision"``, PyTorch state dicts converted
on loading, see :mod:`keras_mobilenets.weights.torchvision`): ShuffleNetV2 x0.5/x1/x1.5/x2
(``weights="imagenet"``, the only ones for that family) and the ``IMAGENET1K_V2`` files of
MobileNetV2 and MobileNetV3-Small / -Large (``weights="imagenet_torchvision"``); their
``sha256`` is the prefix torchvision puts in the file name, and ``top1`` torchvision's
published ImageNet-1K acc@1.

Example:
    >>> from keras_mobilenets import registry
    >>> registry.get("mobilenet_v2_1.0").checkpoints[0].file_name
    'mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96.h5'
"""

from keras_mobilenets.registry import Checkpoint, ModelEntry, register
from keras_mobilenets.specs.mobilenet_v4 import DEFAULT_SIZES as _V4_SIZES

V1_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/"
V2_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
V3_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"
TORCHVISION_BASE_URL = "https://download.pytorch.org/models/"

_V1_PAPER = "arXiv:1704.04861"
_V2_PAPER = "arXiv:1801.04381"
_V3_PAPER = "arXiv:1905.02244"
_SHUFFLENET_PAPER = "arXiv:1707.01083"
_V4_PAPER = "arXiv:2404.10518"
_SHUFFLENET_V2_PAPER = "arXiv:1807.11164"

# MobileNet V1, {alpha: (params with top, params without top, MACs (M), top-1 at 224)}.
_V1 = {
    1.0: (4_253_864, 3_228_864, 569, 70.6),
    0.75: (2_601_976, 1_832_976, 325, None),
    0.5: (1_342_536, 829_536, 149, None),
    0.25: (475_544, 218_544, 41, None),
}
_V1_ALPHA_TEXT = {0.25: "2_5", 0.5: "5_0", 0.75: "7_5", 1.0: "1_0"}
_V1_ROWS = (128, 160, 192, 224)

# MobileNetV2, {alpha: (params with top, params without top, MACs (M), top-1,
# torchvision's trainable parameters)}.
_V2 = {
    1.0: (3_538_984, 2_257_984, 300, 71.8, 3_504_872),
    1.4: (6_156_712, 4_363_712, 585, None, None),
    0.35: (1_691_208, 410_208, None, None, None),
    0.5: (1_987_224, 706_224, None, None, None),
    0.75: (2_663_064, 1_382_064, None, None, None),
    1.3: (5_431_048, 3_766_048, None, None, None),
}
_V2_ROWS = (96, 128, 160, 192, 224)

# MobileNetV3, (size, minimalistic, alpha): (params with top, without top, md5 with top,
# md5 without top, top-1, MACs (M), torchvision's trainable parameters). Top-1 of the
# Keras checkpoints; the paper's small 1.0 is 67.5 (the reference column).
_V3 = {
    ("large", False, 1.0): (
        5_507_432, 2_996_352, "59e551e166be033d707958cf9e29a6a7",
        "07fb09a5933dd0c8eaafa16978110389", 75.6, 217, 5_483_032,
    ),
    ("large", False, 0.75): (
        4_012_616, 1_808_736, "765b44a33ad4005b3ac83185abf1d0eb",
        "40af19a13ebea4e2ee0c676887f69a2e", 73.3, 155, None,
    ),
    ("large", True, 1.0): (
        3_948_688, 1_437_608, "675e7b876c45c57e9e63e6d90a36599c",
        "ec5221f64a2f6d1ef965a614bdae7973", 72.3, 209, None,
    ),
    ("small", False, 1.0): (
        2_554_968, 939_120, "8768d4c2e7dee89b9d02b2d03d65d862",
        "d3e8ec802a04aa4fc771ee12a9a9b836", 68.1, 56, 2_542_856,
    ),
    ("small", False, 0.75): (
        2_051_552, 583_160, "cb65d4e5be93758266aa0a7f2c6708b7",
        "ebdb5cc8e0b497cd13a7c275d475c819", 65.4, None, None,
    ),
    ("small", True, 1.0): (
        2_056_848, 441_000, "99cd97fb2fcdad2bf028eb838de69e37",
        "cde8136e733e811080d9fcd8a252f7e4", 61.9, None, None,
    ),
}
# The variants' reference top-1 (the zoo's column): the papers' where they differ from
# the Keras checkpoints' published numbers.
_V3_REFERENCE_TOP1 = {("large", False, 1.0): 75.2, ("small", False, 1.0): 67.5}

# ShuffleNet V1 (groups, scale): MACs (M) from the paper's Table 2 (g = 3) and Table 1.
_SHUFFLENET = {(3, 0.5): 38, (3, 1.0): 140, (3, 2.0): 524, (8, 1.0): 137}
# ShuffleNetV2 scale: (torchvision's trainable parameters, MACs (M) from Table 5, top-1).
_SHUFFLENET_V2 = {
    0.5: (1_366_792, 41, None),
    1.0: (2_278_604, 146, 69.4),
    1.5: (3_503_624, 299, None),
    2.0: (7_393_996, 591, None),
}


# torchvision's checkpoints: family, alpha -> (file name, published acc@1, count_params()
# of the matching model with the top, batch-norm statistics included).
_TORCHVISION = {
    ("shufflenet_v2", 0.5): ("shufflenetv2_x0.5-f707e7126e.pth", 60.552, 1_374_744),
    ("shufflenet_v2", 1.0): ("shufflenetv2_x1-5666bf0f80.pth", 69.362, 2_294_784),
    ("shufflenet_v2", 1.5): ("shufflenetv2_x1_5-3c479a10.pth", 72.996, 3_527_064),
    ("shufflenet_v2", 2.0): ("shufflenetv2_x2_0-8be3c8ee.pth", 76.230, 7_427_712),
    ("mobilenet_v2", 1.0): ("mobilenet_v2-7ebf99e0.pth", 72.154, 3_538_984),
    ("mobilenet_v3_small", 1.0): ("mobilenet_v3_small-047dcff4.pth", 67.668, 2_554_968),
    ("mobilenet_v3_large", 1.0): ("mobilenet_v3_large-5c1a4163.pth", 75.274, 5_507_432),
}


def _torchvision_checkpoints(family, alpha):
    """torchvision's checkpoint of ``family`` at ``alpha`` (a list of 0 or 1)."""
    if (family, alpha) not in _TORCHVISION:
        return []
    name, top1, num_params = _TORCHVISION[(family, alpha)]
    return [Checkpoint(
        family=family, alpha=alpha, rows=224, include_top=True, minimalistic=False,
        file_name=name, url=TORCHVISION_BASE_URL + name, md5=None,
        sha256=name.rsplit("-", 1)[1].split(".")[0], num_params=num_params,
        preprocessing="none", top1=top1, source="torchvision",
    )]


# MobileNetV4 (Qin et al. 2024) in timm's layout: variant -> (params with top, without top
# (count_params(), batch-norm statistics included), timm 1.0's trainable parameters,
# MACs (M) and top-1 the paper reports, timm checkpoint tag, the checkpoint's top-1).
# The paper's MACs and top-1 are those of its ImageNet-1K classification table ("Classification
# results on ImageNet-1K, along with on-device benchmarks": Conv-S 73.8 / 0.2 G, Conv-M
# 79.9 / 1.0 G, Hybrid-M 80.7 / 1.2 G, Conv-L 82.9 / 5.9 G, Hybrid-L 83.4 / 7.2 G), checked
# against copies of that table (we could not read the paper's own page offline).
# The checkpoints are timm's default tag per model on the Hugging Face hub; their top-1 is
# timm's published ImageNet-1K validation top-1 at the checkpoint's input size (224 / 256 /
# 384 / 256 / 384), from the comparison table of timm's MobileNetV4 model cards (generated
# from timm's results-imagenet.csv). timm publishes no file hash, so sha256 is None.
TIMM_BASE_URL = "https://huggingface.co/timm/"
_V4 = {
    "conv_small": (3_799_112, 1_284_192, 3_774_024, 200, 73.8, "e2400_r224_in1k", 73.756),
    "conv_medium": (9_783_416, 7_268_496, 9_715_512, 1000, 79.9, "e500_r256_in1k", 79.928),
    "conv_large": (32_740_416, 30_225_496, 32_590_864, 5900, 82.9, "e600_r384_in1k", 82.952),
    "hybrid_medium": (
        11_150_488, 8_635_568, 11_074_648, 1200, 80.7, "e200_r256_in12k_ft_in1k", 82.364,
    ),
    "hybrid_large": (
        37_929_024, 35_414_104, 37_764_624, 7200, 83.4, "ix_e600_r384_in1k", 83.990,
    ),
}


def _v4_checkpoints(variant, params):
    model = f"mobilenetv4_{variant}.{params[5]}"
    rows = []
    for include_top, num_params in ((True, params[0]), (False, params[1])):
        rows.append(Checkpoint(
            family=f"mobilenet_v4_{variant}", alpha=1.0, rows=_V4_SIZES[variant],
            include_top=include_top, minimalistic=False, file_name=f"{model}.safetensors",
            url=f"{TIMM_BASE_URL}{model}/resolve/main/model.safetensors", md5=None,
            sha256=None, num_params=num_params, preprocessing="none", top1=params[6],
            source="timm",
        ))
    return rows


def _v1_checkpoints(alpha, params):
    rows = []
    for size in _V1_ROWS:
        for include_top, num_params in ((True, params[0]), (False, params[1])):
            name = (f"mobilenet_{_V1_ALPHA_TEXT[alpha]}_{size}_tf"
                    f"{'' if include_top else '_no_top'}.h5")
            rows.append(Checkpoint(
                family="mobilenet_v1", alpha=alpha, rows=size, include_top=include_top,
                minimalistic=False, file_name=name, url=V1_BASE_URL + name, md5=None,
                sha256=None, num_params=num_params, preprocessing="tf",
                top1=params[3] if include_top and size == 224 else None,
            ))
    return rows


def _v2_checkpoints(alpha, params):
    rows = []
    for size in _V2_ROWS:
        for include_top, num_params in ((True, params[0]), (False, params[1])):
            name = (f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{size}"
                    f"{'' if include_top else '_no_top'}.h5")
            rows.append(Checkpoint(
                family="mobilenet_v2", alpha=alpha, rows=size, include_top=include_top,
                minimalistic=False, file_name=name, url=V2_BASE_URL + name, md5=None,
                sha256=None, num_params=num_params, preprocessing="tf",
                top1=params[3] if include_top and size == 224 else None,
            ))
    return rows


def _v3_checkpoints(size, minimalistic, alpha, params):
    with_top, without_top, md5, md5_no_top, top1 = params[:5]
    rows = []
    for include_top in (True, False):
        model = f"{size}{'_minimalistic' if minimalistic else ''}_224_{alpha}_float"
        name = f"weights_mobilenet_v3_{model}{'' if include_top else '_no_top_v2'}.h5"
        rows.append(Checkpoint(
            family=f"mobilenet_v3_{size}", alpha=alpha, rows=224, include_top=include_top,
            minimalistic=minimalistic, file_name=name, url=V3_BASE_URL + name,
            md5=md5 if include_top else md5_no_top, sha256=None,
            num_params=with_top if include_top else without_top, preprocessing="none",
            top1=top1 if include_top else None,
        ))
    return rows


def _entries():
    rows = []
    for alpha, params in _V1.items():
        rows.append(ModelEntry(
            f"mobilenet_v1_{alpha}", "MobileNet", "mobilenet_v1", {"alpha": alpha}, "tf",
            params=params[0], macs_millions=params[2], top1=params[3],
            checkpoints=_v1_checkpoints(alpha, params), paper=_V1_PAPER,
        ))
    for alpha, params in _V2.items():
        rows.append(ModelEntry(
            f"mobilenet_v2_{alpha}", "MobileNetV2", "mobilenet_v2", {"alpha": alpha}, "tf",
            params=params[0], trainable_params=params[4], macs_millions=params[2],
            top1=params[3], paper=_V2_PAPER,
            checkpoints=_v2_checkpoints(alpha, params)
            + _torchvision_checkpoints("mobilenet_v2", alpha),
        ))
    for size in ("large", "small"):
        for (row_size, minimalistic, alpha), params in _V3.items():
            if row_size != size:
                continue
            kwargs = {"minimalistic": True} if minimalistic else (
                {"alpha": alpha} if alpha != 1.0 else {})
            suffix = "minimalistic" if minimalistic else f"{alpha}"
            rows.append(ModelEntry(
                f"mobilenet_v3_{size}_{suffix}", f"MobileNetV3{size.capitalize()}",
                f"mobilenet_v3_{size}", kwargs, "none", params=params[0],
                trainable_params=params[6], macs_millions=params[5],
                top1=_V3_REFERENCE_TOP1.get((size, minimalistic, alpha)),
                checkpoints=_v3_checkpoints(size, minimalistic, alpha, params) + (
                    [] if minimalistic else
                    _torchvision_checkpoints(f"mobilenet_v3_{size}", alpha)),
                paper=_V3_PAPER,
            ))
    for variant, params in _V4.items():
        title = "".join(part.capitalize() for part in variant.split("_"))
        rows.append(ModelEntry(
            f"mobilenet_v4_{variant}", f"MobileNetV4{title}", f"mobilenet_v4_{variant}", {},
            "none", default_input_size=_V4_SIZES[variant], params=params[0],
            trainable_params=params[2], macs_millions=params[3], top1=params[4],
            checkpoints=_v4_checkpoints(variant, params), paper=_V4_PAPER,
        ))
    for (groups, scale), macs in _SHUFFLENET.items():
        rows.append(ModelEntry(
            f"shufflenet_g{groups}_{scale}", "ShuffleNet", "shufflenet_v1",
            {"groups": groups, "scale": scale}, "torch", macs_millions=macs,
            paper=_SHUFFLENET_PAPER,
        ))
    for scale, (trainable, macs, top1) in _SHUFFLENET_V2.items():
        rows.append(ModelEntry(
            f"shufflenet_v2_{scale}", "ShuffleNetV2", "shufflenet_v2", {"scale": scale},
            "torch", trainable_params=trainable, macs_millions=macs, top1=top1,
            paper=_SHUFFLENET_V2_PAPER,
            checkpoints=_torchvision_checkpoints("shufflenet_v2", scale),
        ))
    return rows


register(*_entries())


def _head_checkpoint(family, file_name, rows, num_params):
    return Checkpoint(
        family=family, alpha=1.0, rows=rows, include_top=True, minimalistic=False,
        file_name=file_name, url=TORCHVISION_BASE_URL + file_name, md5=None,
        sha256=file_name.rsplit("-", 1)[1].split(".")[0], num_params=num_params,
        preprocessing="none", source="torchvision",
    )


#: torchvision's detection and segmentation checkpoints, by (head, ``weights`` keyword);
#: the heads load them (converted) on MobileNetV3-Large with torchvision's layout.
HEAD_CHECKPOINTS = {
    ("lraspp", "voc"): _head_checkpoint(
        "lraspp_mobilenet_v3_large", "lraspp_mobilenet_v3_large-d234d4ea.pth", 520, 3_246_194),
    ("ssdlite", "coco"): _head_checkpoint(
        "ssdlite320_mobilenet_v3_large", "ssdlite320_mobilenet_v3_large_coco-a79551df.pth",
        320, 3_473_004),
}
#: Published metrics of the head checkpoints (torchvision's model tables).
HEAD_METRICS = {
    "lraspp_mobilenet_v3_large-d234d4ea.pth": {"mIoU (COCO val2017, VOC labels)": 57.9,
                                               "pixel accuracy": 91.2},
    "ssdlite320_mobilenet_v3_large_coco-a79551df.pth": {"COCO box mAP": 21.3},
}

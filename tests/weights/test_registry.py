"""The checkpoint registry: complete, consistent with keras.applications, right sizes."""

import collections

import pytest

import keras_mobilenets
from keras_mobilenets.weights import registry

KERAS = [c for c in registry.CHECKPOINTS if c.source == "keras.applications"]
TORCHVISION = [c for c in registry.CHECKPOINTS if c.source == "torchvision"]


def test_registry_covers_every_published_checkpoint():
    counts = collections.Counter(c.family for c in KERAS)
    # V1: 4 alphas x 4 sizes, V2: 6 alphas x 5 sizes, V3: 3 variants; each with/without top.
    assert counts == {
        "mobilenet_v1": 32, "mobilenet_v2": 60, "mobilenet_v3_small": 6,
        "mobilenet_v3_large": 6,
    }
    # MobileNetV4: timm's default checkpoint of each of the 5 variants, with / without top.
    assert collections.Counter(
        c.family for c in registry.CHECKPOINTS if c.source == "timm") == {
        "mobilenet_v4_conv_small": 2, "mobilenet_v4_conv_medium": 2,
        "mobilenet_v4_conv_large": 2, "mobilenet_v4_hybrid_medium": 2,
        "mobilenet_v4_hybrid_large": 2,
    }
    # torchvision: ShuffleNetV2 x0.5/x1/x1.5/x2, MobileNetV2, V3 Small and Large.
    assert collections.Counter(c.family for c in TORCHVISION) == {
        "shufflenet_v2": 4, "mobilenet_v2": 1, "mobilenet_v3_small": 1,
        "mobilenet_v3_large": 1,
    }
    timm = [c for c in registry.CHECKPOINTS if c.source == "timm"]
    assert len(KERAS) + len(TORCHVISION) + len(timm) == len(registry.CHECKPOINTS)
    # A file per checkpoint; one timm file serves with and without the top.
    assert len({(c.file_name, c.include_top) for c in registry.CHECKPOINTS}) == len(
        registry.CHECKPOINTS)
    assert len({c.file_name for c in KERAS + TORCHVISION}) == len(KERAS + TORCHVISION)
    assert len({c.name for c in registry.CHECKPOINTS}) == len(registry.CHECKPOINTS)



def test_timm_checkpoints_carry_timm_published_top1():
    # timm's ImageNet-1K top-1 at each checkpoint's input size (timm model cards); no hash.
    timm = [c for c in registry.CHECKPOINTS if c.source == "timm"]
    assert {(c.file_name, c.rows, c.top1) for c in timm} == {
        ("mobilenetv4_conv_small.e2400_r224_in1k.safetensors", 224, 73.756),
        ("mobilenetv4_conv_medium.e500_r256_in1k.safetensors", 256, 79.928),
        ("mobilenetv4_conv_large.e600_r384_in1k.safetensors", 384, 82.952),
        ("mobilenetv4_hybrid_medium.e200_r256_in12k_ft_in1k.safetensors", 256, 82.364),
        ("mobilenetv4_hybrid_large.ix_e600_r384_in1k.safetensors", 384, 83.990),
    }
    assert all(c.sha256 is None and c.md5 is None for c in timm)

def test_urls_and_file_names_follow_keras_applications():
    from keras.src.applications import mobilenet, mobilenet_v2, mobilenet_v3

    bases = {
        "mobilenet_v1": mobilenet.BASE_WEIGHT_PATH,
        "mobilenet_v2": mobilenet_v2.BASE_WEIGHT_PATH,
        "mobilenet_v3_small": mobilenet_v3.BASE_WEIGHT_PATH,
        "mobilenet_v3_large": mobilenet_v3.BASE_WEIGHT_PATH,
    }
    for c in KERAS:
        assert c.url == bases[c.family] + c.file_name
    names = {c.file_name for c in KERAS}
    assert {"mobilenet_1_0_224_tf.h5", "mobilenet_2_5_128_tf_no_top.h5",
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5",
            "weights_mobilenet_v3_large_224_1.0_float.h5",
            "weights_mobilenet_v3_small_minimalistic_224_1.0_float_no_top_v2.h5"} <= names


def test_v3_hashes_are_the_published_md5():
    from keras.src.applications.mobilenet_v3 import WEIGHTS_HASHES

    for c in KERAS:
        if c.family.startswith("mobilenet_v3"):
            size = c.family.rsplit("_", 1)[1]
            key = f"{size}{'_minimalistic' if c.minimalistic else ''}_224_{c.alpha}_float"
            assert c.md5 == WEIGHTS_HASHES[key][0 if c.include_top else 1]
        else:
            assert c.md5 is None and c.sha256 is None  # nothing published for V1/V2


def _entry_of(checkpoint):
    (entry,) = [e for e in keras_mobilenets.registry.entries() if checkpoint in e.checkpoints]
    return entry


def _models_to_build():
    # One checkpoint per distinct model, except those with the top whose entry has a
    # reference count (checked below without building).
    seen = {}
    for c in registry.CHECKPOINTS:
        if not (c.include_top and _entry_of(c).params is not None):
            seen.setdefault((c.builder, c.alpha, c.minimalistic, c.include_top, c.source), c)
    return list(seen.values())


def test_checkpoints_with_the_top_fit_their_entrys_model():
    # A file with the top fits the entry's model as built: its count is the entry's, which
    # tests/test_zoo.py measures on the built model.
    checked = 0
    for checkpoint in registry.CHECKPOINTS:
        if checkpoint.include_top and _entry_of(checkpoint).params is not None:
            assert checkpoint.num_params == _entry_of(checkpoint).params, checkpoint.name
            checked += 1
    assert checked > len(registry.CHECKPOINTS) / 3


@pytest.mark.slow
@pytest.mark.parametrize("checkpoint", _models_to_build(), ids=lambda c: c.name)
def test_num_params_equals_count_params(checkpoint):
    builder = getattr(keras_mobilenets, checkpoint.builder)
    kwargs = checkpoint.builder_kwargs()
    if kwargs.get("input_shape") is not None:
        kwargs["input_shape"] = (32, 32, 3)  # parameters do not depend on the input size
    model = builder(weights=None, **kwargs)
    assert model.count_params() == checkpoint.num_params
    # Every checkpoint of this model (all sizes) records the same count.
    for other in registry.CHECKPOINTS:
        if (other.builder, other.alpha, other.minimalistic, other.include_top) == (
            checkpoint.builder, checkpoint.alpha, checkpoint.minimalistic, checkpoint.include_top
        ):
            assert other.num_params == checkpoint.num_params


def test_metadata():
    for c in registry.CHECKPOINTS:
        assert c.preprocessing in registry.PREPROCESSING
        assert c.input_shape == (c.rows, c.rows, 3)
    for c in KERAS:
        assert c.preprocessing == ("none" if c.family.startswith("mobilenet_v3") else "tf")
    for c in registry.CHECKPOINTS:  # torchvision's and timm's: normalised inside the model
        if c.source != "keras.applications":
            assert c.preprocessing == "none" and c.include_top in (True, False)
    for c in TORCHVISION:
        assert c.include_top and c.rows == 224
    top1 = {c.name: c.top1 for c in registry.CHECKPOINTS if c.top1}
    assert top1["mobilenet_v1_1.0_224"] == 70.6
    assert top1["mobilenet_v3_large_1.0_224"] == 75.6

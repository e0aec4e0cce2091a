"""MobileNetV4 builders (arXiv:2404.10518): counts, timm parity, weights, shapes, heads."""

import json
import pathlib

import keras
import numpy as np
import pytest

import keras_mobilenets
from keras_mobilenets import detection, profiling, registry, segmentation, specs
from keras_mobilenets.weights import download, timm
from tests import helpers
from tests.reference import recipe

REFERENCE = pathlib.Path(__file__).resolve().parents[1] / "reference"

# timm 1.0's trainable parameters (1000 classes) and default input sizes.
TIMM_TRAINABLE = {
    "conv_small": 3_774_024, "conv_medium": 9_715_512, "conv_large": 32_590_864,
    "hybrid_medium": 11_074_648, "hybrid_large": 37_764_624,
}
TIMM_SIZES = {
    "conv_small": 224, "conv_medium": 256, "conv_large": 384, "hybrid_medium": 256,
    "hybrid_large": 384,
}
# Paper's multiply-adds (M) at the default size; our count has convolutions, dense layers
# and the hybrids' attention products (42 M in Hybrid-Medium, 340 M in Hybrid-Large).
PAPER_MACS = {
    "conv_small": 200, "conv_medium": 1000, "conv_large": 5900, "hybrid_medium": 1200,
    "hybrid_large": 7200,
}
SMALL = ("conv_small", "hybrid_medium")  # run by default; the others are `acceptance`
VARIANTS = [v if v in SMALL else pytest.param(v, marks=pytest.mark.acceptance)
            for v in specs.mobilenet_v4.VARIANTS]


def builder(variant):
    return getattr(keras_mobilenets, "MobileNetV4" + "".join(
        part.capitalize() for part in variant.split("_")))


@pytest.mark.slow
@pytest.mark.parametrize("variant", specs.mobilenet_v4.VARIANTS)
def test_trainable_params_and_input_size_are_timms(variant):
    # The built models' counts equal the registry's in tests/test_zoo.py (with the top) and
    # tests/weights/test_registry.py (the headless checkpoint's).
    entry = registry.get(f"mobilenet_v4_{variant}")
    assert entry.trainable_params == TIMM_TRAINABLE[variant]
    assert entry.checkpoints[0].num_params == entry.params
    assert entry.default_input_size == TIMM_SIZES[variant]
    assert builder(variant)().input_shape == (None, TIMM_SIZES[variant], TIMM_SIZES[variant], 3)


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_macs_at_default_size_near_the_paper(variant):
    size = TIMM_SIZES[variant]
    macs = profiling.profile(builder(variant)(input_shape=(size, size, 3))).macs / 1e6
    assert registry.get(f"mobilenet_v4_{variant}").macs_millions == PAPER_MACS[variant]
    # Measured: 186 / 1080 / 6376 / 1272 / 7715 M.
    assert macs == pytest.approx(PAPER_MACS[variant], rel=0.09)


def _timm_file(variant, folder):
    """The reference state dict of ``variant`` written as a timm .safetensors file."""
    from safetensors.numpy import save_file

    meta = json.loads((REFERENCE / "data" / f"mobilenetv4_{variant}.json").read_text())
    path = folder / f"mobilenetv4_{variant}.safetensors"
    save_file(recipe.state_dict(meta["shapes"]), str(path))
    return path, meta


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_logits_equal_timm_reference(variant, tmp_path):
    # Random timm model (random batch-norm statistics, layer scale, attention), logits in
    # float64 by tests/reference/make_timm_references.py; same [0, 255] pixels here.
    path, meta = _timm_file(variant, tmp_path)
    assert meta["trainable_params"] == TIMM_TRAINABLE[variant]
    model = builder(variant)(
        input_shape=(recipe.SIZE, recipe.SIZE, 3), weights=path, classifier_activation=None
    )
    expected = np.load(REFERENCE / "data" / f"mobilenetv4_{variant}.npz")["logits"]
    np.testing.assert_allclose(helpers.run(model, recipe.images()), expected, atol=1e-4)


@pytest.mark.slow
def test_timm_weights_without_top_and_mismatches(tmp_path):
    path, meta = _timm_file("conv_small", tmp_path)
    features = builder("conv_small")(include_top=False, weights=path, pooling="avg")
    full = builder("conv_small")(input_shape=(64, 64, 3), weights=path)
    tapped = keras.Model(full.input, full.get_layer("blocks_4_0_bn1_act").output)
    pooled = helpers.run(tapped, recipe.images()).mean(axis=(1, 2))
    np.testing.assert_allclose(helpers.run(features, recipe.images()), pooled, atol=1e-5)
    with pytest.raises(ValueError, match="classifier"):
        builder("conv_small")(input_shape=(64, 64, 3), weights=path, classes=10)
    with pytest.raises(ValueError, match="do not fit"):
        builder("conv_medium")(input_shape=(64, 64, 3), weights=path)
    state = dict(recipe.state_dict(meta["shapes"]))
    del state["blocks.2.0.dw_start.conv.weight"]
    with pytest.raises(ValueError, match="blocks_2_0_dw_start_conv"):
        timm.convert_state_dict(builder("conv_small")(input_shape=(64, 64, 3)), state)


@pytest.mark.slow
def test_imagenet_weights_download_timm_safetensors(tmp_path, monkeypatch):
    entry = registry.get("mobilenet_v4_conv_small")
    checkpoint = entry.checkpoints[0]
    assert checkpoint.source == "timm"
    assert checkpoint.url.startswith("https://huggingface.co/timm/mobilenetv4_conv_small.")
    assert checkpoint.url.endswith("/model.safetensors")
    served = tmp_path / "served"
    served.mkdir()
    path, _ = _timm_file("conv_small", tmp_path)
    (served / checkpoint.file_name).write_bytes(path.read_bytes())
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv(download.BASE_URL_ENV, served.as_uri())
    model = builder("conv_small")(weights="imagenet", classifier_activation=None)
    reference = builder("conv_small")(weights=path, classifier_activation=None)
    images = recipe.images(size=224, batch=1)
    np.testing.assert_allclose(helpers.run(model, images), helpers.run(reference, images),
                               atol=1e-5)
    (served / checkpoint.file_name).write_bytes(b"not a safetensors file")
    (tmp_path / "keras_home" / "models" / checkpoint.file_name).unlink()
    with pytest.raises(ValueError, match="safetensors"):
        builder("conv_small")(weights="imagenet")


@pytest.mark.slow
@pytest.mark.parametrize("variant, last_at_8", [
    ("conv_small", "blocks_2_0_pw_exp_act"), ("hybrid_medium", "blocks_2_0_pw_exp_act"),
])
def test_endpoints_and_shapes_at_two_sizes_and_output_stride_16(variant, last_at_8):
    model = builder(variant)(include_top=False)
    assert model.input_shape == (None, None, None, 3)
    endpoints = keras_mobilenets.stride_endpoints(model)
    assert sorted(endpoints) == [4, 8, 16, 32]
    assert endpoints[8].last == last_at_8
    names = [endpoints[s].block for s in (4, 8, 16, 32)]
    taps = keras.Model(model.input, [model.get_layer(n).output for n in names])
    for size in (64, 77):
        outputs = taps(helpers.random_images((size, size, 3)), training=False)
        for out, stride in zip(outputs, (4, 8, 16, 32)):
            side = -(-size // stride)
            assert out.shape[:3] == (2, side, side)
    dilated = builder(variant)(include_top=False, output_stride=16, input_shape=(64, 64, 3))
    assert sorted(keras_mobilenets.stride_endpoints(dilated)) == [4, 8, 16]
    assert dilated.output_shape == (None, 4, 4, 960)
    classifier = builder(variant)(input_shape=(77, 96, 3), classes=7, pooling="avg")
    assert classifier.output_shape == (None, 7)


@pytest.mark.slow
@pytest.mark.parametrize("variant", SMALL)
def test_keras_round_trip_safe_mode(variant, tmp_path):
    model = builder(variant)(input_shape=(64, 64, 3), classes=5)
    helpers.randomize_batch_norm(model)
    loaded = helpers.assert_keras_round_trip(model, helpers.random_images((64, 64, 3)),
                                             tmp_path, atol=1e-5)
    assert type(loaded.get_layer("blocks_4_0_bn1_act")) is keras.layers.ReLU


@pytest.mark.parametrize("kwargs, match", [
    ({"dropout_rate": 1.5}, "dropout_rate"),
    ({"output_stride": 4}, "output_stride"),
    ({"pooling": "min"}, "pooling"),
    ({"classes": 0}, "classes"),
    ({"input_shape": (16, 16, 3)}, "input_shape"),
    ({"weights": "missing.safetensors"}, "weights"),
    ({"weights": "imagenet", "classes": 10}, "classes"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_mobilenets.MobileNetV4ConvSmall(**kwargs)


def test_spec_rows_are_checked():
    from keras_mobilenets.specs.uib_spec import mqa, uib

    with pytest.raises(ValueError, match="needs a depthwise"):
        uib(96, start=0, mid=0, e=2, s=2)
    with pytest.raises(ValueError, match="odd"):
        uib(96, start=4, mid=3, e=2)
    with pytest.raises(ValueError, match="heads"):
        mqa(160, heads=0, key_dim=64)
    with pytest.raises(ValueError, match="variant"):
        specs.mobilenet_v4.spec("conv_tiny")


@pytest.mark.slow
def test_detector_and_segmenter_on_conv_small():
    detector = detection.SSDLite(backbone="MobileNetV4ConvSmall", input_shape=(128, 128, 3),
                                 num_classes=5)
    boxes, scores = detector.outputs
    assert boxes.shape[-1] == 4 and scores.shape[-1] == 6 and boxes.shape[1] == scores.shape[1]
    outputs = keras.tree.flatten(detector(helpers.random_images((128, 128, 3)), training=False))
    assert all(np.isfinite(np.asarray(o)).all() for o in outputs)
    segmenter = segmentation.LRASPP(backbone="MobileNetV4ConvSmall", input_shape=(96, 96, 3),
                                    num_classes=3)
    assert segmenter(helpers.random_images((96, 96, 3)), training=False).shape == (2, 96, 96, 3)

"""ShuffleNet V1 (arXiv:1707.01083) and ShuffleNetV2 (arXiv:1807.11164) builders."""

import math

import keras
import numpy as np
import pytest

import keras_mobilenets
from keras_mobilenets import (
    ChannelShuffle,
    ShuffleNet,
    ShuffleNetV2,
    profiling,
    zoo,
)
from keras_mobilenets.layers.grouped_conv import Conv2D as GroupedConv2D
from keras_mobilenets.models import shufflenet
from tests import helpers

# Trainable parameters of torchvision's shufflenet_v2_x0_5 ... x2_0 (1000 classes).
TORCHVISION_V2_TRAINABLE = {0.5: 1_366_792, 1.0: 2_278_604, 1.5: 3_503_624, 2.0: 7_393_996}
# Multiply-adds at 224 in millions: ShuffleNetV2 Table 5; ShuffleNet V1 Table 1 (1x, per g).
V2_MACS = {0.5: 41, 1.0: 146, 1.5: 299, 2.0: 591}
V1_MACS_1X = {1: 143, 2: 140, 3: 137, 4: 133, 8: 137}
V2_STAGE_WIDTHS = {0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024),
                   1.5: (176, 352, 704, 1024), 2.0: (244, 488, 976, 2048)}


def _ceil_halvings(size, times):
    for _ in range(times):
        size = math.ceil(size / 2)
    return size


@pytest.mark.parametrize("scale", [0.5, 1.0, 1.5, 2.0])
def test_v2_trainable_params_equal_torchvision_and_macs_match_table5(scale):
    model = ShuffleNetV2(scale=scale, input_shape=(224, 224, 3))
    report = profiling.profile(model)
    assert report.trainable_params == TORCHVISION_V2_TRAINABLE[scale]
    endpoints = keras_mobilenets.stride_endpoints(model)
    widths = [model.get_layer(endpoints[s].block).output.shape[-1] for s in (8, 16, 32)]
    assert (*widths, model.get_layer("conv5").filters) == V2_STAGE_WIDTHS[scale]
    assert report.macs == pytest.approx(V2_MACS[scale] * 1e6, rel=0.03)
    assert zoo.get(f"shufflenet_v2_{scale}").trainable_params == TORCHVISION_V2_TRAINABLE[scale]


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 8])
def test_v1_macs_match_table1(groups):
    report = profiling.profile(ShuffleNet(groups=groups, scale=1.0, input_shape=(224, 224, 3)))
    assert report.macs == pytest.approx(V1_MACS_1X[groups] * 1e6, rel=0.03)
    if groups == 3:
        # "ShuffleNet 1x (g = 3)": about 1.9M parameters, about 140M multiply-adds (Table 2).
        assert report.trainable_params == pytest.approx(1.9e6, rel=0.03)
        assert report.macs == pytest.approx(140e6, rel=0.03)


@pytest.mark.parametrize(
    "builder, kwargs, widths",
    [
        (ShuffleNet, {"groups": 3, "scale": 0.5}, (12, 120, 240, 480, 480)),
        (ShuffleNet, {"groups": 8, "scale": 0.25}, (16, 96, 192, 384, 384)),
        (ShuffleNetV2, {"scale": 0.5}, (24, 48, 96, 192, 1024)),
    ],
)
def test_backbone_endpoints_and_shapes_at_two_sizes(builder, kwargs, widths):
    # widths: block outputs at strides 4, 8, 16, 32, then the backbone's output.
    model = builder(include_top=False, **kwargs)
    assert model.input_shape == (None, None, None, 3)
    endpoints = keras_mobilenets.stride_endpoints(model)
    assert sorted(endpoints) == [4, 8, 16, 32]
    assert endpoints[4].block == "maxpool"
    assert endpoints[8].block == "stage2_4_" + (
        "concat_shuffle" if builder is ShuffleNetV2 else "relu"
    )
    names = [endpoints[s].block for s in (4, 8, 16, 32)] + [endpoints[s].last for s in (4, 32)]
    taps = keras.Model(model.input, [model.get_layer(n).output for n in names] + [model.output])
    for size in (64, 77):
        outputs = taps(helpers.random_images((size, size, 3)), training=False)
        sides = [_ceil_halvings(size, halvings) for halvings in (2, 3, 4, 5)]
        for out, side, channels in zip(outputs, sides, widths):
            assert out.shape == (2, side, side, channels)
        assert outputs[4].shape[1:3] == (sides[0], sides[0])  # "last" at stride 4
        assert outputs[5].shape[1:3] == (sides[3], sides[3])  # "last" at stride 32
        assert outputs[6].shape == (2, sides[3], sides[3], widths[4])


@pytest.mark.parametrize("output_stride", [8, 16])
def test_dilated_backbone_keeps_resolution(output_stride):
    model = ShuffleNetV2(
        scale=0.5, include_top=False, input_shape=(64, 64, 3), output_stride=output_stride
    )
    assert model.output_shape == (None, 64 // output_stride, 64 // output_stride, 1024)
    assert max(keras_mobilenets.stride_endpoints(model)) == output_stride
    v1 = ShuffleNet(groups=2, scale=0.25, include_top=False, input_shape=(64, 64, 3),
                    output_stride=output_stride)
    assert v1.output_shape[1:3] == (64 // output_stride, 64 // output_stride)


def test_include_top_and_pooling_variants():
    top = ShuffleNetV2(scale=0.5, input_shape=(64, 64, 3), classes=7,
                       classifier_activation=None)
    assert top.output_shape == (None, 7)
    assert top.get_layer("predictions").use_bias
    for pooling in ("avg", "max"):
        model = ShuffleNet(groups=3, scale=0.25, include_top=False, pooling=pooling,
                           input_shape=(None, None, 3))
        assert model.output_shape == (None, 240)
        out = model(helpers.random_images((48, 40, 3)), training=False)
        assert out.shape == (2, 240)
    probs = ShuffleNet(groups=1, scale=0.25, input_shape=(64, 64, 3), classes=5)(
        helpers.random_images((64, 64, 3)), training=False
    )
    np.testing.assert_allclose(np.sum(probs, axis=1), 1.0, rtol=1e-5)


def test_every_shuffle_is_a_channel_shuffle_layer():
    def shuffles(model):
        return [layer for layer in model.layers if isinstance(layer, ChannelShuffle)]

    v2 = ShuffleNetV2(scale=0.5, include_top=False, input_shape=(32, 32, 3))
    assert len(shuffles(v2)) == 16 and {layer.groups for layer in shuffles(v2)} == {2}
    v1 = ShuffleNet(groups=4, scale=0.25, include_top=False, input_shape=(32, 32, 3))
    # Every unit but stage 2's first (dense first 1x1) shuffles its 4 groups.
    assert len(shuffles(v1)) == 15 and {layer.groups for layer in shuffles(v1)} == {4}
    assert "stage2_1_shuffle" not in [layer.name for layer in v1.layers]
    assert v1.get_layer("stage2_1_expand").groups == 1
    assert v1.get_layer("stage2_2_expand").groups == 4
    assert v1.get_layer("stage3_1_project").groups == 4
    # Grouped 1x1 convolutions use keras_mobilenets' Conv2D (fast gradient).
    assert type(v1.get_layer("stage2_1_expand")) is keras.layers.Conv2D
    assert type(v1.get_layer("stage2_2_expand")) is GroupedConv2D
    g1 = ShuffleNet(groups=1, scale=0.25, include_top=False, input_shape=(32, 32, 3))
    assert not shuffles(g1)
    for model in (v1, v2, g1):
        assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)


@pytest.mark.parametrize(
    "builder, kwargs",
    [(ShuffleNet, {"groups": 3, "scale": 0.25}), (ShuffleNetV2, {"scale": 0.5})],
)
def test_keras_round_trip_safe_mode(builder, kwargs, tmp_path):
    model = builder(input_shape=(64, 64, 3), classes=6, include_preprocessing=True, **kwargs)
    helpers.randomize_batch_norm(model)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    images = helpers.random_images((64, 64, 3))
    # Eager calls: predict() would trace each model once more for the same check.
    np.testing.assert_allclose(
        loaded(images, training=False), model(images, training=False), atol=1e-5
    )


def test_include_preprocessing_equals_preprocess_input():
    images = helpers.random_images((64, 64, 3))
    inside = ShuffleNetV2(scale=0.5, input_shape=(64, 64, 3), include_preprocessing=True)
    outside = ShuffleNetV2(scale=0.5, input_shape=(64, 64, 3))
    helpers.copy_weights_by_name(inside, outside)
    np.testing.assert_allclose(
        inside(images, training=False),
        outside(shufflenet.preprocess_input(images), training=False),
        atol=1e-5,
    )
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(
        shufflenet.preprocess_input(images), (images / 255.0 - mean) / std, atol=1e-5
    )


@pytest.mark.parametrize(
    "builder, kwargs",
    [(ShuffleNet, {"groups": 3, "scale": 0.25}), (ShuffleNetV2, {"scale": 0.5})],
)
def test_training_steps_reduce_loss(builder, kwargs):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(8, 32, 32, 3)).astype("float32")
    labels = np.arange(8) % 4
    model = builder(input_shape=(32, 32, 3), classes=4, **kwargs)
    # Eager steps: tracing the train function costs more than a few steps on this CPU.
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss="sparse_categorical_crossentropy", run_eagerly=True)
    # Each step's own loss: Keras before 3.15 does not reset the loss tracker in
    # train_on_batch (it returns the mean over every call so far).
    losses = []
    for _ in range(6):
        model.reset_metrics()
        losses.append(float(model.train_on_batch(images, labels)))
    assert losses[-1] < 0.25 * losses[0], losses


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"groups": 5}, r"`groups` must be one of \(1, 2, 3, 4, 8\), got 5"),
        ({"groups": True}, r"`groups` must be one of \(1, 2, 3, 4, 8\), got True"),
        ({"groups": "3"}, r"`groups` must be one of .*got '3'"),
        ({"scale": 0.75}, r"`scale` must be one of \(0.25, 0.5, 1.0, 1.5, 2.0\), got 0.75"),
        ({"pooling": "sum"}, r"`pooling` must be one of"),
    ],
)
def test_v1_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ShuffleNet(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scale": 0.25}, r"`scale` must be one of \(0.5, 1.0, 1.5, 2.0\), got 0.25"),
        ({"scale": "1.0"}, r"`scale` must be one of \(0.5, 1.0, 1.5, 2.0\), got '1.0'"),
        ({"classes": 0}, r"`classes` must be an int >= 1"),
        ({"input_shape": (16, 16, 3)}, r"`input_shape` sizes must be"),
    ],
)
def test_v2_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ShuffleNetV2(**kwargs)


@pytest.mark.parametrize("build", [lambda: ShuffleNet(groups=3, weights="imagenet"),
                                   lambda: ShuffleNet(groups=8, scale=0.5, weights="imagenet")])
def test_imagenet_weights_list_the_variants_that_have_them(build):
    # ShuffleNetV2 has torchvision's (tests/weights/test_torchvision_download.py).
    with pytest.raises(ValueError, match=r"no published ImageNet weights.*MobileNetV3Small.*"
                                         r"ShuffleNetV2 \(scale 0.5/1/1.5/2; input sizes 224\)"):
        build()


def test_weights_file_loads(tmp_path):
    source = ShuffleNet(groups=8, scale=0.25, input_shape=(64, 64, 3), classes=3)
    helpers.randomize_batch_norm(source)
    path = str(tmp_path / "shufflenet.weights.h5")
    source.save_weights(path)
    target = ShuffleNet(groups=8, scale=0.25, input_shape=(64, 64, 3), classes=3, weights=path)
    images = helpers.random_images((64, 64, 3))
    np.testing.assert_allclose(
        target(images, training=False), source(images, training=False), atol=1e-6
    )


def test_zoo_lists_both_families():
    builders = {variant.builder for variant in zoo.VARIANTS}
    assert {"ShuffleNet", "ShuffleNetV2"} <= builders
    assert zoo.get("shufflenet_g3_1.0").macs_millions == 140


def _with_conv2d_layers(model):
    """``model`` as the builders made it before: keras.layers.Conv2D for grouped convolutions."""
    def clone(layer):
        if isinstance(layer, GroupedConv2D):
            return keras.layers.Conv2D.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    old = keras.models.clone_model(model, clone_function=clone)
    assert not any(isinstance(layer, GroupedConv2D) for layer in old.layers)
    return old


def test_weights_saved_with_grouped_conv2d_layers_load(tmp_path):
    kwargs = dict(groups=3, scale=0.25, input_shape=(64, 64, 3), classes=3)
    old = _with_conv2d_layers(ShuffleNet(**kwargs))
    helpers.randomize_batch_norm(old)
    rng = np.random.default_rng(4)
    old.set_weights([rng.normal(0, 0.1, w.shape).astype("float32") if w.ndim == 4 else w
                     for w in old.get_weights()])
    path = str(tmp_path / "before.weights.h5")
    old.save_weights(path)
    model = ShuffleNet(weights=path, **kwargs)
    direct = ShuffleNet(**kwargs)
    direct.load_weights(path)  # Keras' own loader, too
    assert [layer.name for layer in model.layers] == [layer.name for layer in old.layers]
    images = helpers.random_images((64, 64, 3))
    np.testing.assert_allclose(
        model(images, training=False), old(images, training=False), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        direct(images, training=False), old(images, training=False), rtol=1e-5, atol=1e-5
    )
    assert type(model.get_layer("stage3_2_project")) is GroupedConv2D
    # ... and back: a file of today's builder loads into Conv2D layers.
    path = str(tmp_path / "after.weights.h5")
    model.save_weights(path)
    back = _with_conv2d_layers(ShuffleNet(**kwargs))
    back.load_weights(path)
    np.testing.assert_allclose(
        back(images, training=False), old(images, training=False), rtol=1e-5, atol=1e-5
    )

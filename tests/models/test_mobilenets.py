"""MobileNet V1/V2/V3 builders against keras.applications and the reference numbers."""

import keras
import numpy as np
import pytest

import keras_mobilenets
from keras_mobilenets import zoo
from tests.helpers import (
    assert_keras_round_trip,
    copy_weights_by_name,
    random_images,
    randomize_batch_norm,
    run,
)

MOBILENETS = [v for v in zoo.VARIANTS if v.builder.startswith("MobileNet")]


# Parameter counts (keras.applications'), trainable parameters (torchvision's) and
# multiply-adds (the papers') of every variant: tests/test_zoo.py, one build per variant.


# (our builder, keras.applications builder, kwargs) for the parity tests.
PARITY_CASES = [
    ("MobileNet", "MobileNet", {}),
    ("MobileNet", "MobileNet", {"alpha": 0.5}),
    ("MobileNetV2", "MobileNetV2", {}),
    ("MobileNetV2", "MobileNetV2", {"alpha": 0.35}),
    ("MobileNetV3Small", "MobileNetV3Small", {}),
    ("MobileNetV3Small", "MobileNetV3Small", {"minimalistic": True}),
    ("MobileNetV3Large", "MobileNetV3Large", {}),
    ("MobileNetV3Large", "MobileNetV3Large", {"alpha": 0.75}),
    ("MobileNetV3Large", "MobileNetV3Large", {"minimalistic": True}),
]


def _parity_id(case):
    return case[0] + "".join(f"-{k}={v}" for k, v in case[2].items())


@pytest.mark.parametrize("case", PARITY_CASES, ids=_parity_id)
@pytest.mark.parametrize("include_top", [True, False])
def test_numerical_parity_with_keras_applications(case, include_top):
    ours_name, theirs_name, kwargs = case
    shape = (96, 96, 3)
    common = dict(input_shape=shape, weights=None, include_top=include_top, **kwargs)
    if include_top:
        common.update(classes=10, classifier_activation=None)
    reference = getattr(keras.applications, theirs_name)(**common)
    randomize_batch_norm(reference)
    ours = getattr(keras_mobilenets, ours_name)(**common)
    assert ours.count_params() == reference.count_params()
    weighted = [layer for layer in reference.layers if layer.weights]
    assert copy_weights_by_name(reference, ours) == len(weighted)
    images = random_images(shape, batch=2)
    if not theirs_name.startswith("MobileNetV3"):
        images = images / 127.5 - 1.0
    expected = run(reference, images)
    actual = run(ours, images)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=0)


def test_weight_order_matches_keras_applications():
    reference = keras.applications.MobileNetV3Small(weights=None, input_shape=(64, 64, 3))
    ours = keras_mobilenets.MobileNetV3Small(weights=None, input_shape=(64, 64, 3))
    assert [w.shape for w in ours.weights] == [w.shape for w in reference.weights]
    ours.set_weights(reference.get_weights())  # positional transfer works too


BUILDERS = ["MobileNet", "MobileNetV2", "MobileNetV3Small", "MobileNetV3Large"]


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("size, final", [(96, 3), (128, 4)])
def test_feature_map_shapes_at_two_input_sizes(builder, size, final):
    model = getattr(keras_mobilenets, builder)(
        input_shape=(size, size, 3), include_top=False, weights=None
    )
    assert model.output_shape[1:3] == (final, final)
    endpoints = keras_mobilenets.stride_endpoints(model)
    assert set(endpoints) >= {4, 8, 16, 32}
    for stride, endpoint in endpoints.items():
        assert model.get_layer(endpoint.block).output.shape[1] == -(-size // stride)
        assert model.get_layer(endpoint.last).output.shape[1] == -(-size // stride)


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("channels", [1, 4])
def test_variable_input_channels(builder, channels):
    model = getattr(keras_mobilenets, builder)(
        input_shape=(None, None, channels), include_top=False, weights=None
    )
    assert model.input_shape == (None, None, None, channels)
    out = run(model, random_images((64, 64, channels)))
    assert out.shape[1:3] == (2, 2)


@pytest.mark.parametrize("builder", BUILDERS)
def test_custom_input_shape_123(builder):
    kwargs = dict(input_shape=(123, 123, 3), include_top=False, weights=None)
    model = getattr(keras_mobilenets, builder)(**kwargs)
    # V1 pads stride-2 convolutions on one side only (3x3 out), V2/V3 as TF-slim (4x4).
    assert model.output_shape == getattr(keras.applications, builder)(**kwargs).output_shape
    assert model.output_shape[1:3] == ((3, 3) if builder == "MobileNet" else (4, 4))


@pytest.mark.parametrize("builder", BUILDERS)
def test_custom_input_tensor(builder):
    inputs = keras.Input((80, 80, 3), name="image")
    x = keras.layers.Resizing(64, 64, name="resize")(inputs)
    model = getattr(keras_mobilenets, builder)(
        input_tensor=x, include_top=False, pooling="avg", weights=None
    )
    assert model.inputs[0] is inputs
    assert model.input_shape == (None, 80, 80, 3)
    assert len(model.output_shape) == 2


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_pooling(builder, pooling):
    model = getattr(keras_mobilenets, builder)(
        input_shape=(64, 64, 3), include_top=False, pooling=pooling, weights=None
    )
    features = run(model, random_images((64, 64, 3)))
    assert features.ndim == 2
    last = run(keras.Model(model.input, model.layers[-2].output), random_images((64, 64, 3)))
    reduce = np.mean if pooling == "avg" else np.max
    np.testing.assert_allclose(features, reduce(last, axis=(1, 2)), atol=1e-5)


@pytest.mark.parametrize("builder", BUILDERS)
def test_classifier_activation(builder):
    build = getattr(keras_mobilenets, builder)
    kwargs = dict(input_shape=(64, 64, 3), classes=7, weights=None)
    probabilities = build(classifier_activation="softmax", **kwargs)
    images = random_images((64, 64, 3))
    probs = run(probabilities, images)
    assert probs.shape == (2, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    logits_model = build(classifier_activation=None, **kwargs)
    logits_model.set_weights(probabilities.get_weights())
    logits = run(logits_model, images)
    np.testing.assert_allclose(keras.ops.softmax(logits), probs, atol=1e-5)


@pytest.mark.parametrize("builder", BUILDERS)
def test_keras_save_and_load_safe_mode(builder, tmp_path):
    model = getattr(keras_mobilenets, builder)(
        input_shape=(64, 64, 3), classes=5, weights=None, alpha=0.5
    )
    randomize_batch_norm(model)
    assert_keras_round_trip(model, random_images((64, 64, 3)), tmp_path, atol=1e-5)


def test_output_stride_16_dilates_the_last_stage():
    plain = keras_mobilenets.MobileNetV3Large(
        input_shape=(224, 224, 3), include_top=False, weights=None
    )
    dilated = keras_mobilenets.MobileNetV3Large(
        input_shape=(224, 224, 3), include_top=False, weights=None, output_stride=16
    )
    assert dilated.output_shape == (None, 14, 14, 960)
    assert dilated.count_params() == plain.count_params()
    assert dilated.get_layer("expanded_conv_13_depthwise").dilation_rate == (2, 2)
    endpoints = keras_mobilenets.stride_endpoints(dilated)
    assert max(endpoints) == 16
    assert endpoints[16].last == "conv_1_act"
    # The dilated model computes the same function as the plain one on the first stages.
    dilated.set_weights(plain.get_weights())
    images = random_images((224, 224, 3), batch=1)
    tap = "expanded_conv_5_add"
    np.testing.assert_allclose(
        run(keras.Model(dilated.input, dilated.get_layer(tap).output), images),
        run(keras.Model(plain.input, plain.get_layer(tap).output), images),
        atol=1e-5,
    )


@pytest.mark.parametrize("builder", ["MobileNet", "MobileNetV2", "MobileNetV3Small"])
def test_output_stride_8(builder):
    model = getattr(keras_mobilenets, builder)(
        input_shape=(128, 128, 3), include_top=False, weights=None, output_stride=8
    )
    assert model.output_shape[1:3] == (16, 16)


def test_stride_endpoints_of_mobilenet_v3_large_are_the_heads_taps():
    model = keras_mobilenets.MobileNetV3Large(
        input_shape=(320, 320, 3), include_top=False, weights=None
    )
    endpoints = keras_mobilenets.stride_endpoints(model)
    assert endpoints[8].block == "expanded_conv_5_add"
    assert model.get_layer(endpoints[8].block).output.shape[-1] == 40
    assert endpoints[16].last == "expanded_conv_12_expand_act"
    assert model.get_layer(endpoints[16].last).output.shape[1:] == (20, 20, 672)
    assert endpoints[32].last == "conv_1_act"
    assert endpoints[32].block == "expanded_conv_14_add"


def test_stride_endpoints_survive_save_and_load(tmp_path):
    model = keras_mobilenets.MobileNetV2(input_shape=(64, 64, 3), include_top=True,
                                         weights=None, alpha=0.35, classes=3)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert keras_mobilenets.stride_endpoints(loaded) == keras_mobilenets.stride_endpoints(model)
    assert keras_mobilenets.stride_endpoints(model)[32].last == "out_relu"


def test_stride_endpoints_reject_foreign_models():
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, strides=2)(inputs))
    with pytest.raises(ValueError, match="no block outputs"):
        keras_mobilenets.stride_endpoints(model)


def test_include_preprocessing_equals_preprocess_input():
    from keras_mobilenets.models import mobilenet_v2

    kwargs = dict(input_shape=(64, 64, 3), weights=None, alpha=0.35, include_top=False)
    inside = keras_mobilenets.MobileNetV2(include_preprocessing=True, **kwargs)
    outside = keras_mobilenets.MobileNetV2(**kwargs)
    outside.set_weights(inside.get_weights())
    images = random_images((64, 64, 3))
    np.testing.assert_allclose(
        run(inside, images),
        run(outside, mobilenet_v2.preprocess_input(images)),
        atol=1e-5,
    )


def test_preprocess_input_per_family():
    from keras_mobilenets.models import mobilenet_v1, mobilenet_v3

    pixels = np.array([[0.0, 127.5, 255.0]])
    np.testing.assert_allclose(mobilenet_v1.preprocess_input(pixels), [[-1.0, 0.0, 1.0]])
    assert mobilenet_v3.preprocess_input(pixels) is pixels


def test_default_names_follow_keras_applications():
    assert keras_mobilenets.MobileNet(weights=None, alpha=0.5).name == "mobilenet_0.50_224"
    assert keras_mobilenets.MobileNetV2(weights=None).name == "mobilenetv2_1.00_224"
    assert keras_mobilenets.MobileNetV3Small(weights=None).name == "MobileNetV3Small"
    assert keras_mobilenets.MobileNetV3Large(weights=None, name="x").name == "x"


def test_layers_are_named_and_hard_swish_is_a_layer():
    model = keras_mobilenets.MobileNetV3Small(input_shape=(64, 64, 3), weights=None)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"HardSwish", "HardSigmoid", "Multiply"} <= kinds
    assert not any("lambda" in layer.name.lower() for layer in model.layers)
    assert "TFOpLambda" not in kinds


BAD_ARGUMENTS = [
    ({"alpha": 0}, "alpha"),
    ({"alpha": -0.5}, "alpha"),
    ({"alpha": "1.0"}, "alpha"),
    ({"input_shape": (16, 16, 3)}, "input_shape"),
    ({"input_shape": (224, 224)}, "input_shape"),
    ({"input_shape": (1, 224, 224, 3)}, "input_shape"),
    ({"input_shape": (224, 224, 0)}, "input_shape"),
    ({"classes": 0}, "classes"),
    ({"classes": 2.5}, "classes"),
    ({"pooling": "mean", "include_top": False}, "pooling"),
    ({"classifier_activation": "nope"}, "classifier_activation"),
    ({"include_top": "yes"}, "include_top"),
    ({"weights": "/no/such/file.h5"}, "weights"),
    ({"output_stride": 4}, "output_stride"),
    ({"input_tensor": np.zeros((1, 64, 64, 3))}, "input_tensor"),
]


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("kwargs, argument", BAD_ARGUMENTS, ids=lambda x: str(x))
def test_bad_arguments_raise_value_errors_naming_the_argument(builder, kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        getattr(keras_mobilenets, builder)(**kwargs)


def test_builder_specific_bad_arguments():
    with pytest.raises(ValueError, match="`depth_multiplier`"):
        keras_mobilenets.MobileNet(depth_multiplier=0, weights=None)
    with pytest.raises(ValueError, match="`dropout`"):
        keras_mobilenets.MobileNet(dropout=1.5, weights=None)
    with pytest.raises(ValueError, match="`dropout_rate`"):
        keras_mobilenets.MobileNetV3Small(dropout_rate=-0.1, weights=None)
    with pytest.raises(ValueError, match="`minimalistic`"):
        keras_mobilenets.MobileNetV3Large(minimalistic="yes", weights=None)
    with pytest.raises(ValueError, match="does not match"):
        keras_mobilenets.MobileNetV2(
            input_shape=(96, 96, 3), input_tensor=keras.Input((64, 64, 3)), weights=None
        )


def test_depth_multiplier_and_any_positive_alpha():
    model = keras_mobilenets.MobileNet(
        input_shape=(64, 64, 3), alpha=0.3, depth_multiplier=2, weights=None, classes=4
    )
    assert model.get_layer("conv_dw_1").depth_multiplier == 2
    assert model.get_layer("conv_pw_13").filters == int(1024 * 0.3)
    assert model.output_shape == (None, 4)

"""LR-ASPP: shapes, taps, parameter count, numerics against numpy, round trip, bad inputs."""

import keras
import numpy as np
import pytest

import keras_mobilenets as km
from keras_mobilenets.segmentation import LRASPP
from tests.helpers import assert_keras_round_trip, random_images, randomize_batch_norm, run

# Small and fast: the head does not depend on the backbone's width.
TINY = dict(backbone="MobileNetV3Small", alpha=0.35, num_classes=6)


def layer_shape(model, name):
    return tuple(model.get_layer(name).output.shape[1:])


@pytest.mark.parametrize("input_shape", [(96, 96, 3), (100, 100, 3), (130, 170, 3), (33, 47, 3)])
def test_logits_at_input_size_and_branches_at_ceil_strides(input_shape):
    model = LRASPP(input_shape=input_shape, **TINY)
    rows, cols = input_shape[:2]
    s8, s16 = (-(-rows // 8), -(-cols // 8)), (-(-rows // 16), -(-cols // 16))
    assert model.output_shape == (None, rows, cols, 6)
    assert layer_shape(model, "lraspp_cbr_relu")[:2] == s16
    assert layer_shape(model, "lraspp_gate_sigmoid") == (1, 1, 128)
    assert layer_shape(model, "lraspp_gate_multiply") == (*s16, 128)
    assert layer_shape(model, "lraspp_high_resize") == (*s8, 128)
    assert layer_shape(model, "lraspp_low_classifier") == (*s8, 6)
    assert layer_shape(model, "lraspp_high_classifier") == (*s8, 6)
    assert run(model, random_images(input_shape, batch=1)).shape == (1, rows, cols, 6)


def test_torchvision_configuration_has_its_parameter_count():
    # torchvision's lraspp_mobilenet_v3_large(num_classes=21): 3,221,538 parameters (all
    # trainable). count_params() adds the batch norms' moving statistics (non-trainable).
    # A global-pool gate makes the count independent of the input size.
    model = LRASPP("MobileNetV3Large", num_classes=21, input_shape=(64, 64, 3))
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 3_221_538
    assert abs(model.count_params() - 3_221_538) / 3_221_538 < 0.02
    endpoints = km.stride_endpoints(model)
    assert endpoints[8].block == "expanded_conv_5_add"
    assert model.get_layer("lraspp_low_classifier").input.shape[-1] == 40
    assert model.get_layer("lraspp_cbr_conv").input.shape[-1] == 960
    assert model.get_layer("lraspp_cbr_conv").input is model.get_layer("conv_1_act").output


@pytest.mark.parametrize("backbone, kwargs, low, high", [
    ("MobileNetV3Large", dict(alpha=0.75), 32, 720),
    ("MobileNetV2", dict(alpha=0.35), 16, 1280),
    ("ShuffleNetV2", dict(scale=0.5), 48, 1024),
])
def test_other_backbones(backbone, kwargs, low, high):
    model = LRASPP(backbone, num_classes=3, input_shape=(64, 80, 3), inter_channels=16, **kwargs)
    assert model.output_shape == (None, 64, 80, 3)
    assert model.get_layer("lraspp_low_classifier").input.shape[1:] == (8, 10, low)
    assert model.get_layer("lraspp_cbr_conv").input.shape[1:] == (4, 5, high)
    assert layer_shape(model, "lraspp_gate_multiply") == (4, 5, 16)


def test_backbone_model_is_tapped_in_place_as_one_flat_graph():
    backbone = km.MobileNetV3Small(
        input_shape=(64, 64, 3), alpha=0.35, include_top=False, output_stride=16
    )
    model = LRASPP(backbone, num_classes=4)
    assert model.input_shape == (None, 64, 64, 3)
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)
    assert model.get_layer("conv_1_act") is backbone.get_layer("conv_1_act")


def _bilinear(x, rows, cols):
    """numpy bilinear resize with half-pixel centres (PyTorch align_corners=False)."""
    def matrix(size_in, size_out):
        src = np.clip((np.arange(size_out) + 0.5) * size_in / size_out - 0.5, 0, size_in - 1)
        low = np.floor(src).astype(int)
        high = np.minimum(low + 1, size_in - 1)
        weights = np.zeros((size_out, size_in))
        np.add.at(weights, (np.arange(size_out), low), 1 - (src - low))
        np.add.at(weights, (np.arange(size_out), high), src - low)
        return weights

    return np.einsum("ri,cj,bijk->brck", matrix(x.shape[1], rows), matrix(x.shape[2], cols), x)


def _conv1x1(x, layer):
    weights = layer.get_weights()
    y = np.einsum("bijc,cd->bijd", x, weights[0][0, 0])
    return y + weights[1] if len(weights) > 1 else y


@pytest.mark.parametrize("pooling", ["global", (2, (1, 2))])
def test_head_matches_numpy(pooling):
    """The head computes the paper's formula, with torchvision's interpolation."""
    model = LRASPP(input_shape=(70, 90, 3), pooling=pooling, inter_channels=8, **TINY)
    randomize_batch_norm(model)
    for name in ("lraspp_low_classifier", "lraspp_high_classifier"):
        kernel, bias = model.get_layer(name).get_weights()
        bias = np.random.default_rng(1).normal(size=bias.shape)
        model.get_layer(name).set_weights([kernel, bias])
    images = random_images((70, 90, 3), batch=2)
    taps = keras.Model(model.input, [model.get_layer("lraspp_low_classifier").input,
                                     model.get_layer("lraspp_cbr_conv").input])
    low, high = (np.asarray(t, dtype="float64") for t in taps(images, training=False))

    gamma, beta, mean, variance = model.get_layer("lraspp_cbr_bn").get_weights()
    x = _conv1x1(high, model.get_layer("lraspp_cbr_conv"))
    x = np.maximum((x - mean) / np.sqrt(variance + 1e-5) * gamma + beta, 0)
    if pooling == "global":
        pooled = high.mean(axis=(1, 2), keepdims=True)
    else:  # kernel 2x2, strides (1, 2), valid
        rows, cols = high.shape[1] - 1, (high.shape[2] - 2) // 2 + 1
        pooled = np.stack([np.stack([high[:, i:i + 2, 2 * j:2 * j + 2].mean(axis=(1, 2))
                                     for j in range(cols)], 1) for i in range(rows)], 1)
    gate = 1 / (1 + np.exp(-_conv1x1(pooled, model.get_layer("lraspp_gate_conv"))))
    if pooling != "global":
        gate = _bilinear(gate, *high.shape[1:3])
    x = _bilinear(x * gate, *low.shape[1:3])
    x = _conv1x1(x, model.get_layer("lraspp_high_classifier"))
    x = x + _conv1x1(low, model.get_layer("lraspp_low_classifier"))
    expected = _bilinear(x, 70, 90)
    np.testing.assert_allclose(run(model, images), expected, atol=1e-4, rtol=1e-4)


def test_paper_pooling_at_cityscapes_size_builds():
    model = LRASPP("MobileNetV3Small", alpha=0.35, num_classes=19, input_shape=(1024, 2048, 3),
                   pooling=(49, (16, 20)))
    assert layer_shape(model, "lraspp_gate_pool")[:2] == (1, 4)
    assert layer_shape(model, "lraspp_gate_resize")[:2] == (64, 128)
    assert model.output_shape == (None, 1024, 2048, 19)


def test_keras_round_trip(tmp_path):
    model = LRASPP(input_shape=(64, 72, 3), pooling=(2, 2), **TINY)
    randomize_batch_norm(model)
    assert_keras_round_trip(model, random_images((64, 72, 3)), tmp_path, atol=1e-5)


BAD_ARGUMENTS = [
    (dict(num_classes=0), r"`num_classes` must be an int >= 1, got 0"),
    (dict(num_classes=2.5), r"`num_classes` must be an int >= 1, got 2.5"),
    (dict(inter_channels=0), r"`inter_channels` must be an int >= 1, got 0"),
    (dict(backbone="ResNet50"),
     r"`backbone` must be one of \(.*'MobileNetV3Large'.*got 'ResNet50'"),
    (dict(pooling="max"), r"`pooling` must be 'global' or \(kernel, strides\).*got 'max'"),
    (dict(pooling=(3, 0)), r"`pooling` must be 'global'.*got \(3, 0\)"),
    (dict(pooling=(3,)), r"`pooling` must be 'global'.*got \(3,\)"),
    (dict(pooling=(9, 1)), r"`pooling` kernel \(9, 9\) is larger than the stride-16 feature map "
                           r"\(4, 4\)"),
    (dict(input_shape=(None, None, 3)), r"needs a static input size.*\(None, None, 3\)"),
    (dict(input_shape=(16, 16, 3)), r"`input_shape` sizes must be None or ints >= 32"),
    (dict(alpha=-1.0), r"`alpha` must be a number > 0"),
]


def test_bad_arguments_are_named():
    for kwargs, message in BAD_ARGUMENTS:  # one test: most cases fail before any layer
        with pytest.raises(ValueError, match=message):
            LRASPP(**{**TINY, "input_shape": (64, 64, 3), **kwargs})


def test_backbone_models_must_be_dilated_and_static():
    plain = km.MobileNetV3Small(input_shape=(64, 64, 3), alpha=0.35, include_top=False)
    with pytest.raises(ValueError, match="has output stride 32, but output_stride=16"):
        LRASPP(plain)
    dynamic = km.MobileNetV3Small(alpha=0.35, include_top=False, output_stride=16)
    with pytest.raises(ValueError, match="needs a static input size"):
        LRASPP(dynamic)
    with pytest.raises(ValueError, match="`backbone` must be one of"):
        LRASPP(keras.layers.Dense(2))

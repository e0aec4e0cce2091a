"""SSDLite builder: torchvision's parameter count, backbones, flat graph, bad inputs."""

import keras
import numpy as np
import pytest

import keras_mobilenets as km
from keras_mobilenets.backbone import headless_backbone
from keras_mobilenets.detection import DefaultBoxes, SSDLite
from keras_mobilenets.quantization import translate

TORCHVISION_PARAMS = 3_440_060  # ssdlite320_mobilenet_v3_large, 91 classes (background included)


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_torchvision_configuration_parameter_count():
    model = SSDLite("MobileNetV3Large", num_classes=90, backbone_kwargs={"reduced_tail": True})
    # torchvision counts parameters (no batch-norm statistics): the same layers, same count.
    assert _trainable(model) == TORCHVISION_PARAMS
    assert abs(model.count_params() - TORCHVISION_PARAMS) / TORCHVISION_PARAMS < 0.02
    assert model.output_shape == [(None, 3234, 4), (None, 3234, 91)]
    assert model.get_layer("expanded_conv_12_expand_act").output.shape[-1] == 672
    assert model.get_layer("conv_1_act").output.shape[-1] == 480
    assert DefaultBoxes.from_model(model).feature_map_shapes == (
        (20, 20), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1))


@pytest.mark.parametrize("backbone, kwargs", [
    ("MobileNetV2", {"alpha": 0.35}),
    ("MobileNetV3Small", {}),
    ("ShuffleNetV2", {"scale": 0.5}),
])
def test_backbones(backbone, kwargs):
    model = SSDLite(backbone, num_classes=3, input_shape=(96, 96, 3), backbone_kwargs=kwargs)
    taps = km.stride_endpoints(
        headless_backbone(backbone, input_shape=(96, 96, 3), **kwargs))
    for k, stride in enumerate((16, 32)):
        assert model.get_layer(f"ssdlite_box_{k}_depthwise").input is model.get_layer(
            taps[stride].last).output
    boxes = DefaultBoxes.from_model(model)
    assert boxes.feature_map_shapes == ((6, 6), (3, 3), (2, 2), (1, 1), (1, 1), (1, 1))
    assert model.output_shape == [(None, boxes.num_boxes, 4), (None, boxes.num_boxes, 4)]
    outputs = model(np.zeros((2, 96, 96, 3), "float32"), training=False)
    assert outputs["boxes"].shape == (2, boxes.num_boxes, 4)


def test_backbone_model_and_flat_graph():
    backbone = km.MobileNetV3Small(input_shape=(64, 64, 3), include_top=False, minimalistic=True)
    model = SSDLite(backbone, num_classes=2, input_shape=None, extra_channels=(64,),
                    aspect_ratios=((2,), (2, 3), (3,)))
    assert model.input_shape == (None, 64, 64, 3)
    assert DefaultBoxes.from_model(model, aspect_ratios=((2,), (2, 3), (3,))).boxes_per_location == (
        4, 6, 4)
    # One flat functional graph of standard layers (what quantize_model translates).
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)
    assert {type(layer).__name__ for layer in model.layers} <= set(translate.SUPPORTED_LAYERS) | {
        "InputLayer"}
    with pytest.raises(ValueError, match="aspect_ratios"):
        DefaultBoxes.from_model(model)


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_classes=0), "num_classes"),
    (dict(num_classes=2.5), "num_classes"),
    (dict(input_shape=(None, None, 3)), r"input_shape.*\(None, None, 3\)"),
    (dict(input_shape=(16, 16, 3)), "input_shape.*>= 32"),
    (dict(input_shape=(64, 64)), "input_shape"),
    (dict(backbone="ResNet50"), "backbone.*ResNet50"),
    (dict(extra_channels=(64, 0)), "extra_channels"),
    (dict(aspect_ratios=(0,)), "aspect_ratios"),
    (dict(backbone_kwargs=[("alpha", 1)]), "backbone_kwargs"),
])
def test_bad_arguments(kwargs, match):
    arguments = dict(backbone="MobileNetV3Small", num_classes=2, input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match=match):
        SSDLite(**{**arguments, **kwargs})


def test_backbone_model_with_another_input_shape():
    backbone = km.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, include_top=False)
    with pytest.raises(ValueError, match="input_shape"):
        SSDLite(backbone, num_classes=2, input_shape=(96, 96, 3))

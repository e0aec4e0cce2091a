"""headless_backbone: how the detection and segmentation heads get their backbone."""

import pytest

import keras_mobilenets
from keras_mobilenets.backbone import BACKBONES, headless_backbone, stride_endpoints


@pytest.mark.parametrize("name", BACKBONES)
def test_builder_name_gives_headless_model_with_requested_stride(name):
    model = headless_backbone(name, input_shape=(96, 96, 3), output_stride=16)
    assert model.input_shape == (None, 96, 96, 3)
    assert max(stride_endpoints(model)) == 16
    assert len(model.output.shape) == 4  # no classification top
    assert model.output.shape[1:3] == (6, 6)


def test_builder_arguments_are_passed_on():
    model = headless_backbone("MobileNetV3Small", input_shape=(64, 64, 3), alpha=0.75)
    reference = keras_mobilenets.MobileNetV3Small(
        input_shape=(64, 64, 3), alpha=0.75, include_top=False
    )
    assert model.count_params() == reference.count_params()


def test_model_is_returned_as_is_when_it_matches():
    model = keras_mobilenets.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, include_top=False)
    assert headless_backbone(model, input_shape=(64, 64, 3)) is model
    assert headless_backbone(model, input_shape=None) is model


@pytest.mark.parametrize(
    "backbone, kwargs, message",
    [
        ("ResNet50", {}, "`backbone` must be one of"),
        (3, {}, "got int"),
        ("model", {"input_shape": (32, 32, 3)}, r"input_shape` \(32, 32, 3\) does not match"),
        ("model", {"output_stride": 16}, "has output stride 32, but output_stride=16"),
        ("model", {"alpha": 0.5}, r"Builder arguments \['alpha'\] only apply"),
        ("plain", {}, "not a keras_mobilenets backbone"),
    ],
)
def test_bad_backbones_are_named(backbone, kwargs, message):
    import keras

    if backbone == "model":
        backbone = keras_mobilenets.MobileNetV2(
            input_shape=(64, 64, 3), alpha=0.35, include_top=False
        )
    elif backbone == "plain":
        inputs = keras.Input((64, 64, 3))
        backbone = keras.Model(inputs, keras.layers.Conv2D(4, 3, strides=2)(inputs))
    arguments = {"input_shape": (64, 64, 3), **kwargs}
    with pytest.raises(ValueError, match=message):
        headless_backbone(backbone, **arguments)

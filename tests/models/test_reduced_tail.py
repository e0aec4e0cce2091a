"""MobileNetV3 ``reduced_tail``: the last stage at half width, names unchanged."""

import pytest

import keras_mobilenets as km
from keras_mobilenets import specs


@pytest.mark.parametrize("size", ["small", "large"])
def test_reduced_tail_halves_the_last_stage_only(size):
    full = specs.mobilenet_v3.spec(size)
    reduced = specs.mobilenet_v3.spec(size, reduced_tail=True)
    last_stride_2 = max(i for i, row in enumerate(full.blocks) if row.stride > 1)
    for i, (a, b) in enumerate(zip(full.blocks, reduced.blocks)):
        if i < last_stride_2:
            assert a == b
        elif i == last_stride_2:
            assert (b.exp, b.out) == (a.exp, a.out // 2)
        else:
            assert (b.exp, b.out) == (a.exp // 2, a.out // 2)
    assert reduced.last_conv.filters == full.last_conv.filters // 2
    assert reduced.top.hidden == full.top.hidden // 2


@pytest.mark.parametrize("builder", [km.MobileNetV3Small, km.MobileNetV3Large])
def test_reduced_tail_model_has_the_same_names_and_fewer_parameters(builder):
    full = builder(input_shape=(64, 64, 3), include_top=False)
    reduced = builder(input_shape=(64, 64, 3), include_top=False, reduced_tail=True)
    assert [layer.name for layer in reduced.layers] == [layer.name for layer in full.layers]
    assert reduced.count_params() < full.count_params()
    assert reduced.output_shape[-1] == full.output_shape[-1] // 2


def test_torchvision_large_reduced_tail_widths():
    # torchvision mobilenet_v3_large(reduced_tail=True): C5 blocks 80 out / 480 expansion,
    # last conv 480 channels (the SSDLite stride-32 feature map).
    model = km.MobileNetV3Large(input_shape=(320, 320, 3), include_top=False, reduced_tail=True)
    assert model.get_layer("expanded_conv_12_project").filters == 80
    assert model.get_layer("expanded_conv_13_expand").filters == 480
    assert model.output_shape == (None, 10, 10, 480)


def test_reduced_tail_errors():
    with pytest.raises(ValueError, match="reduced_tail"):
        km.MobileNetV3Small(reduced_tail="yes")
    with pytest.raises(ValueError, match="reduced_tail=True.*imagenet"):
        km.MobileNetV3Large(reduced_tail=True, weights="imagenet")

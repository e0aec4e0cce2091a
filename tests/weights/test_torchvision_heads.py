"""torchvision's LR-ASPP weights: parity with torchvision's own logits on the same [0, 255]
pixels (reference file of tests/reference/make_torchvision_references.py: a
``lraspp_mobilenet_v3_large`` layout at width 0.25 with random weights and batch-norm
statistics), ``weights="voc"`` through a local server, and bad combinations."""

import dataclasses
import os
import shutil

import numpy as np
import pytest

import keras_mobilenets
from keras_mobilenets import backbone as backbone_lib
from keras_mobilenets.models import catalog
from keras_mobilenets.segmentation import LRASPP
from tests.weights.test_torchvision_download import sha256_of

REFERENCE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "reference", "torchvision")
NAME = "lraspp_mobilenet_v3_large_0.25"
VOC = "lraspp_mobilenet_v3_large-d234d4ea.pth"
KWARGS = dict(num_classes=21, input_shape=(64, 64, 3), alpha=0.25)


def reference(name):
    return os.path.join(REFERENCE, name)


def max_difference(model):
    expected = np.load(reference(f"{NAME}.npz"))
    logits = model(expected["pixels"].astype("float32"), training=False)
    return float(np.max(np.abs(np.asarray(logits) - expected["logits"])))


def test_lraspp_logits_equal_torchvision():
    model = LRASPP("MobileNetV3Large", weights=reference(f"{NAME}.pth"), **KWARGS)
    assert max_difference(model) < 1e-4
    # torchvision's "low" is the first stride-8 block output, not the last.
    low = model.get_layer("lraspp_low_classifier").input
    assert low is model.get_layer("expanded_conv_3_project_bn").output


def test_first_block_endpoint():
    features = keras_mobilenets.MobileNetV3Large(include_top=False, weights=None,
                                                 input_shape=(64, 64, 3))
    endpoint = backbone_lib.stride_endpoints(features)[8]
    assert (endpoint.first_block, endpoint.block) == (
        "expanded_conv_3_project_bn", "expanded_conv_5_add")
    model = LRASPP("MobileNetV3Large", num_classes=3, input_shape=(64, 64, 3), alpha=0.25,
                   low_tap="first", layout="torchvision")
    assert model.get_layer("rescaling") is not None
    low = model.get_layer("lraspp_low_classifier").input
    assert low is model.get_layer("expanded_conv_3_project_bn").output
    default = LRASPP("MobileNetV3Large", num_classes=3, input_shape=(64, 64, 3), alpha=0.25)
    low = default.get_layer("lraspp_low_classifier").input
    assert low is default.get_layer("expanded_conv_5_add").output


def test_voc_downloads_and_converts(server, keras_home, monkeypatch):
    path = server.path(VOC)
    shutil.copy(reference(f"{NAME}.pth"), path)
    checkpoint = catalog.HEAD_CHECKPOINTS[("lraspp", "voc")]
    monkeypatch.setitem(catalog.HEAD_CHECKPOINTS, ("lraspp", "voc"), dataclasses.replace(
        checkpoint, sha256=sha256_of(path)[:8]))
    model = LRASPP("MobileNetV3Large", weights="voc", **KWARGS)
    assert max_difference(model) < 1e-4
    assert server.requests == [f"/weights/{VOC}"]
    assert sorted(os.listdir(keras_home / "models")) == sorted(
        [VOC, "lraspp_mobilenet_v3_large-d234d4ea_keras.weights.h5"])
    again = LRASPP("MobileNetV3Large", weights="voc", **KWARGS)
    assert max_difference(again) < 1e-4 and len(server.requests) == 1


def test_voc_registry_row():
    checkpoint = catalog.HEAD_CHECKPOINTS[("lraspp", "voc")]
    assert checkpoint.url == "https://download.pytorch.org/models/" + VOC
    assert checkpoint.sha256 == "d234d4ea" and checkpoint.source == "torchvision"
    assert catalog.HEAD_METRICS[VOC]["VOC mIoU"] == 57.9


def test_bad_combinations():
    with pytest.raises(ValueError, match="`num_classes` must be 21.*'voc'.*got 3"):
        LRASPP("MobileNetV3Large", weights="voc", num_classes=3)
    with pytest.raises(ValueError, match="`backbone` must be 'MobileNetV3Large'.*'MobileNetV2'"):
        LRASPP("MobileNetV2", weights=reference(f"{NAME}.pth"), num_classes=21)
    with pytest.raises(ValueError, match="`low_tap` must be one of"):
        LRASPP("MobileNetV3Large", low_tap="middle")
    with pytest.raises(ValueError, match="`layout` must be 'torchvision' or None"):
        keras_mobilenets.MobileNetV3Large(weights=reference("mobilenet_v3_large_0.25.pth"),
                                          layout="keras")
    with pytest.raises(ValueError, match="`layout` must be one of"):
        keras_mobilenets.MobileNetV2(layout="pytorch")
    with pytest.raises(ValueError, match=r"does not fit .*tensors of another shape"):
        LRASPP("MobileNetV3Large", weights=reference(f"{NAME}.pth"), num_classes=21,
               input_shape=(64, 64, 3), alpha=0.5)

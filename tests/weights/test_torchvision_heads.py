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
    assert catalog.HEAD_METRICS[VOC]["mIoU (COCO val2017, VOC labels)"] == 57.9


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


SSD = "ssdlite_mobilenet_v3_large_0.25"
COCO = "ssdlite320_mobilenet_v3_large_coco-a79551df.pth"
SSD_KWARGS = dict(num_classes=3, input_shape=(160, 160, 3), extra_channels=(128, 64, 64, 32),
                  backbone_kwargs={"alpha": 0.25})


def ssd_differences(model):
    expected = np.load(reference(f"{SSD}.npz"))
    out = model(expected["pixels"].astype("float32"), training=False)
    return tuple(float(np.max(np.abs(np.asarray(out[key]) - expected[key])))
                 for key in ("boxes", "classes"))


def test_ssdlite_outputs_equal_torchvision():
    from keras_mobilenets import detection

    model = detection.SSDLite("MobileNetV3Large", weights=reference(f"{SSD}.pth"), **SSD_KWARGS)
    boxes, classes = ssd_differences(model)
    assert boxes < 1e-4 and classes < 1e-4
    assert model.get_layer("rescaling").scale == 1.0 / 127.5  # torchvision's [-1, 1]
    assert model.get_layer("ssdlite_extra_1_depthwise_pad") is not None
    # Without torchvision's weights the extra blocks keep TF's "same" padding.
    plain = detection.SSDLite("MobileNetV3Large", **SSD_KWARGS)
    assert "ssdlite_extra_1_depthwise_pad" not in [layer.name for layer in plain.layers]


def test_ssdlite_coco_download_and_bad_arguments(server, keras_home, monkeypatch):
    from keras_mobilenets import detection

    path = server.path(COCO)
    shutil.copy(reference(f"{SSD}.pth"), path)  # a 3-class file under the COCO name
    checkpoint = catalog.HEAD_CHECKPOINTS[("ssdlite", "coco")]
    assert checkpoint.sha256 == "a79551df" and checkpoint.url.endswith(COCO)
    monkeypatch.setitem(catalog.HEAD_CHECKPOINTS, ("ssdlite", "coco"), dataclasses.replace(
        checkpoint, sha256=sha256_of(path)[:8]))
    kwargs = {**SSD_KWARGS, "num_classes": 90}
    with pytest.raises(ValueError, match=r"coco-a79551df\.pth' does not fit .*"
                                         r"head\.classification_head\.module_list\.0\.1\.weight"):
        detection.SSDLite("MobileNetV3Large", weights="coco", **kwargs)
    assert server.requests == [f"/weights/{COCO}"]  # downloaded and verified, then refused
    with pytest.raises(ValueError, match="`num_classes` must be 90.*'coco'.*got 3"):
        detection.SSDLite("MobileNetV3Large", weights="coco", **SSD_KWARGS)
    with pytest.raises(ValueError, match="`backbone` must be 'MobileNetV3Large'"):
        detection.SSDLite("MobileNetV2", weights=reference(f"{SSD}.pth"), **SSD_KWARGS)
    with pytest.raises(ValueError, match="`weights` must be None, one of \\('coco',\\)"):
        detection.SSDLite("MobileNetV3Large", weights="imagenet", **SSD_KWARGS)

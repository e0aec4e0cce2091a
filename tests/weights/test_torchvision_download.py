"""torchvision checkpoints from the registry end to end against a local HTTP server:
download, sha256-prefix check, conversion, cache of the converted ``.weights.h5``, offline
errors. The served files are the small reference state dicts (tests/reference/torchvision)
under the official names, with the registry entries made to fit them."""

import dataclasses
import hashlib
import os
import shutil

import numpy as np
import pytest

import keras_mobilenets
from keras_mobilenets import registry
from keras_mobilenets.weights import WeightsDownloadError, download, select_checkpoint
from keras_mobilenets.weights import WeightsRequest
from tests.helpers import random_images
from tests.weights.conftest import checkpoint_for

REFERENCE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "reference", "torchvision")
SHUFFLENET = "shufflenetv2_x0.5-f707e7126e.pth"
V3_SMALL = "mobilenet_v3_small-047dcff4.pth"


def sha256_of(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
def serve(server, monkeypatch):
    """``serve(file_name, reference, **changes)``: serves the reference state dict under the
    official ``file_name``; the registry entry gets the served file's sha256 prefix (and
    ``changes``, e.g. the reduced ``alpha`` of the reference file)."""

    def _serve(file_name, reference, prefix=None, **changes):
        path = server.path(file_name)
        shutil.copy(os.path.join(REFERENCE, reference), path)
        entry = checkpoint_for(file_name)
        replaced = dataclasses.replace(
            entry, sha256=prefix or sha256_of(path)[:10], **changes
        )
        model_entry = next(e for e in registry.entries() if entry in e.checkpoints)
        monkeypatch.setitem(registry._ENTRIES, model_entry.name, dataclasses.replace(
            model_entry,
            checkpoints=[replaced if c == entry else c for c in model_entry.checkpoints],
        ))
        return replaced

    return _serve


def cached(keras_home):
    folder = keras_home / "models"
    return sorted(os.listdir(folder)) if folder.exists() else []


def test_registry_rows():
    rows = {c.file_name: c for c in registry.checkpoints() if c.source == "torchvision"}
    assert sorted(rows) == sorted([
        "shufflenetv2_x0.5-f707e7126e.pth", "shufflenetv2_x1-5666bf0f80.pth",
        "shufflenetv2_x1_5-3c479a10.pth", "shufflenetv2_x2_0-8be3c8ee.pth",
        "mobilenet_v2-7ebf99e0.pth", "mobilenet_v3_small-047dcff4.pth",
        "mobilenet_v3_large-5c1a4163.pth",
    ])
    for name, row in rows.items():
        assert row.url == "https://download.pytorch.org/models/" + name
        assert name.startswith(row.file_name.split("-")[0]) and row.sha256 in name
    assert {rows[n].top1 for n in rows if n.startswith("shufflenet")} == {
        60.552, 69.362, 72.996, 76.230}
    assert rows["mobilenet_v2-7ebf99e0.pth"].top1 == 72.154
    # "imagenet" keeps keras.applications' files where there are some.
    request = WeightsRequest("mobilenet_v3_small", rows=224, cols=224)
    assert select_checkpoint(request).source == "keras.applications"
    assert select_checkpoint(request, source="torchvision").file_name == V3_SMALL
    request = WeightsRequest("shufflenet_v2", alpha=1.5, rows=224, cols=224, include_top=False)
    assert select_checkpoint(request).file_name == "shufflenetv2_x1_5-3c479a10.pth"


def test_shufflenet_imagenet_downloads_verifies_converts_and_caches(serve, server, keras_home):
    serve(SHUFFLENET, "shufflenet_v2_x0_5.pth")
    kwargs = dict(scale=0.5, include_top=False, input_shape=(64, 64, 3))
    expected_model = keras_mobilenets.ShuffleNetV2(
        weights=os.path.join(REFERENCE, "shufflenet_v2_x0_5.pth"), **kwargs)
    images = random_images((64, 64, 3))
    expected = expected_model(images)

    with pytest.warns(UserWarning, match="no ShuffleNetV2 ImageNet checkpoint for input size"):
        model = keras_mobilenets.ShuffleNetV2(weights="imagenet", **kwargs)
    assert "rescaling" in [layer.name for layer in model.layers]
    np.testing.assert_allclose(model(images), expected, atol=1e-6)
    assert server.requests == [f"/weights/{SHUFFLENET}"]
    converted = "shufflenetv2_x0.5-f707e7126e_keras_no_top.weights.h5"
    assert cached(keras_home) == sorted([SHUFFLENET, converted])

    # The converted file is used from now on, even without the .pth.
    os.remove(keras_home / "models" / SHUFFLENET)
    with pytest.warns(UserWarning):
        again = keras_mobilenets.ShuffleNetV2(weights="imagenet", **kwargs)
    np.testing.assert_allclose(again(images), expected, atol=1e-6)
    assert server.requests == [f"/weights/{SHUFFLENET}"]

    # A broken converted file is converted again from a fresh download.
    (keras_home / "models" / converted).write_bytes(b"broken")
    with pytest.warns(UserWarning):
        repaired = keras_mobilenets.ShuffleNetV2(weights="imagenet", **kwargs)
    np.testing.assert_allclose(repaired(images), expected, atol=1e-6)
    assert len(server.requests) == 2


def test_mobilenet_v3_imagenet_torchvision(serve, server, keras_home):
    serve(V3_SMALL, "mobilenet_v3_small_0.25.pth", alpha=0.25)
    kwargs = dict(alpha=0.25, include_top=False, input_shape=(64, 64, 3), pooling="avg")
    expected = keras_mobilenets.MobileNetV3Small(
        weights=os.path.join(REFERENCE, "mobilenet_v3_small_0.25.pth"), **kwargs)
    with pytest.warns(UserWarning):
        model = keras_mobilenets.MobileNetV3Small(weights="imagenet_torchvision", **kwargs)
    images = random_images((64, 64, 3))
    np.testing.assert_allclose(model(images), expected(images), atol=1e-6)
    assert cached(keras_home) == sorted(
        [V3_SMALL, "mobilenet_v3_small-047dcff4_keras_no_top.weights.h5"])


def test_a_file_with_another_hash_is_refused_and_deleted(serve, server, keras_home):
    serve(SHUFFLENET, "shufflenet_v2_x0_5.pth", prefix="f707e7126e")  # the real file's
    with pytest.raises(ValueError, match=r"sha256 is [0-9a-f]{64}, expected f707e7126e\.\.\."):
        keras_mobilenets.ShuffleNetV2(scale=0.5, include_top=False, weights="imagenet")
    assert cached(keras_home) == []


def test_offline_error_names_the_file(monkeypatch, keras_home):
    monkeypatch.setenv(download.BASE_URL_ENV, "http://127.0.0.1:9/weights/")
    with pytest.raises(WeightsDownloadError, match=r"mobilenet_v2-7ebf99e0\.pth") as error:
        keras_mobilenets.MobileNetV2(weights="imagenet_torchvision", include_top=False)
    assert "https://download.pytorch.org/models/mobilenet_v2-7ebf99e0.pth" in str(error.value)
    assert cached(keras_home) == []


def test_bad_requests():
    with pytest.raises(ValueError, match="`weights='imagenet_torchvision'`: there are no "
                                         "published ImageNet weights from torchvision"):
        keras_mobilenets.MobileNet(weights="imagenet_torchvision")
    with pytest.raises(ValueError, match=r"`alpha` must be one of \[1.0\].*imagenet_torchvision"):
        keras_mobilenets.MobileNetV2(alpha=0.5, weights="imagenet_torchvision")
    with pytest.raises(ValueError, match="`classes` must be 1000 with `weights='imagenet'`"):
        keras_mobilenets.ShuffleNetV2(classes=10, weights="imagenet")
    with pytest.raises(ValueError, match="'imagenet_torchvision'"):
        keras_mobilenets.ShuffleNetV2(weights="imagenet_pytorch")

"""weights='imagenet' end to end against a local HTTP server: download, cache, hashes,
corrupt-cache recovery, offline errors, with and without the top."""

import os
import socket

import numpy as np
import pytest

import keras_mobilenets
from keras_mobilenets.weights import WeightsDownloadError, download
from tests.helpers import random_images, randomize_batch_norm
from tests.weights.conftest import checkpoint_for, md5_of

V3_TOP = "weights_mobilenet_v3_small_224_0.75_float.h5"
V3_NO_TOP = "weights_mobilenet_v3_small_224_0.75_float_no_top_v2.h5"
V1_128 = "mobilenet_2_5_128_tf.h5"
V1_224 = "mobilenet_2_5_224_tf.h5"
V2_96_NO_TOP = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"


def cached_files(keras_home):
    folder = keras_home / "models"
    return sorted(os.listdir(folder)) if folder.exists() else []


def trained_like(builder, **kwargs):
    """A model with random weights and random batch-norm statistics."""
    model = builder(weights=None, **kwargs)
    randomize_batch_norm(model)
    return model


@pytest.mark.parametrize("include_top, file_name", [(True, V3_TOP), (False, V3_NO_TOP)])
def test_imagenet_downloads_once_then_uses_the_cache(include_top, file_name, publish, server,
                                                     keras_home):
    source = trained_like(keras_mobilenets.MobileNetV3Small, alpha=0.75, include_top=include_top)
    publish(source, file_name)
    images = random_images((96, 96, 3))
    expected = source(images, training=False)

    model = keras_mobilenets.MobileNetV3Small(
        alpha=0.75, include_top=include_top, weights="imagenet"
    )
    np.testing.assert_allclose(model(images, training=False), expected, atol=1e-5)
    assert server.requests == [f"/weights/{file_name}"]
    assert cached_files(keras_home) == [file_name]
    assert md5_of(keras_home / "models" / file_name) == md5_of(server.path(file_name))

    again = keras_mobilenets.MobileNetV3Small(
        alpha=0.75, include_top=include_top, weights="imagenet"
    )
    np.testing.assert_allclose(again(images, training=False), expected, atol=1e-5)
    assert server.requests == [f"/weights/{file_name}"]  # cache hit: no second request


def test_v1_and_v2_files_by_alpha_and_size(publish, server):
    v1 = trained_like(keras_mobilenets.MobileNet, alpha=0.25, input_shape=(128, 128, 3))
    publish(v1, V1_128, hashed=False)  # V1/V2 have no published hash
    v2 = trained_like(keras_mobilenets.MobileNetV2, alpha=0.35, include_top=False)
    publish(v2, V2_96_NO_TOP, hashed=False)

    model = keras_mobilenets.MobileNet(alpha=0.25, input_shape=(128, 128, 3), weights="imagenet")
    images = random_images((128, 128, 3))
    np.testing.assert_allclose(
        model(images, training=False), v1(images, training=False), atol=1e-5
    )
    model = keras_mobilenets.MobileNetV2(
        alpha=0.35, include_top=False, input_shape=(96, 96, 3), weights="imagenet"
    )
    images = random_images((96, 96, 3))
    np.testing.assert_allclose(
        model(images, training=False), v2(images, training=False), atol=1e-5
    )
    assert server.requests == [f"/weights/{V1_128}", f"/weights/{V2_96_NO_TOP}"]


def test_size_without_checkpoint_uses_224_with_a_warning(publish, server):
    publish(keras_mobilenets.MobileNet(alpha=0.25, weights=None), V1_224, hashed=False)
    with pytest.warns(UserWarning, match="100x100.*224x224"):
        keras_mobilenets.MobileNet(alpha=0.25, input_shape=(100, 100, 3), weights="imagenet")
    assert server.requests == [f"/weights/{V1_224}"]


def test_hash_mismatch_raises_and_leaves_nothing_in_the_cache(publish, monkeypatch, keras_home):
    entry = publish(None, V3_TOP)
    wrong = type(entry)(**{**entry.__dict__, "md5": "0" * 32})
    with pytest.raises(ValueError, match=r"md5 is [0-9a-f]{32}, expected 0{32}"):
        download.fetch(wrong)
    assert cached_files(keras_home) == []


@pytest.mark.parametrize("file_name, hashed", [(V3_TOP, True), (V1_224, False)])
def test_corrupt_cached_file_is_fetched_again(file_name, hashed, publish, server, keras_home):
    entry = publish(None, file_name, hashed)
    cached = keras_home / "models" / file_name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"half a file")

    assert download.fetch(entry) == str(cached)
    assert server.requests == [f"/weights/{file_name}"]
    assert md5_of(cached) == md5_of(server.path(file_name))
    assert cached_files(keras_home) == [file_name]


def test_missing_file_on_the_server_is_a_download_error(server, keras_home):
    entry = checkpoint_for(V3_TOP)
    with pytest.raises(WeightsDownloadError, match="404"):
        download.fetch(entry)
    assert cached_files(keras_home) == []


def test_offline_error_names_url_file_and_where_to_put_it(keras_home, monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(download.BASE_URL_ENV, f"http://127.0.0.1:{port}/mirror")
    entry = checkpoint_for(V3_TOP)
    with pytest.raises(WeightsDownloadError) as info:
        keras_mobilenets.MobileNetV3Small(alpha=0.75, weights="imagenet")
    message = str(info.value)
    assert f"http://127.0.0.1:{port}/mirror/{V3_TOP}" in message
    assert entry.url in message  # the official URL, to fetch it elsewhere
    assert str(keras_home / "models" / V3_TOP) in message
    assert download.BASE_URL_ENV in message
    assert cached_files(keras_home) == []


def test_base_url_override_keeps_official_file_names(monkeypatch):
    entry = checkpoint_for(V3_NO_TOP)
    monkeypatch.delenv(download.BASE_URL_ENV, raising=False)
    assert download.checkpoint_url(entry) == entry.url
    monkeypatch.setenv(download.BASE_URL_ENV, "file:///srv/mirror")
    assert download.checkpoint_url(entry) == f"file:///srv/mirror/{V3_NO_TOP}"


@pytest.mark.parametrize("as_uri", [True, False], ids=["file-url", "plain-folder"])
def test_file_url_mirror_for_air_gapped_machines(as_uri, tmp_path, monkeypatch, keras_home):
    import keras

    from tests.weights.conftest import save_legacy_h5

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    tiny = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="dense")])
    save_legacy_h5(tiny, str(mirror / V1_128))
    monkeypatch.setenv(download.BASE_URL_ENV, mirror.as_uri() if as_uri else str(mirror))
    path = download.fetch(checkpoint_for(V1_128))
    assert path == str(keras_home / "models" / V1_128)
    assert md5_of(path) == md5_of(mirror / V1_128)

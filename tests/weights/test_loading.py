"""weights=<path> (Keras 3 and legacy .h5 files) and the checks of weights='imagenet'."""

import keras
import numpy as np
import pytest

import keras_mobilenets
from keras_mobilenets import weights as weights_lib
from keras_mobilenets.weights import WeightsRequest, select_checkpoint
from tests.helpers import random_images, randomize_batch_norm
from tests.weights.conftest import save_legacy_h5


def source_model(**kwargs):
    model = keras_mobilenets.MobileNetV3Small(weights=None, **kwargs)
    randomize_batch_norm(model)
    return model


def outputs(model, images):
    return np.asarray(model(images, training=False))


def test_keras3_weights_file_round_trip(tmp_path):
    source = source_model(alpha=0.75)
    path = str(tmp_path / "small.weights.h5")
    source.save_weights(path)
    model = keras_mobilenets.MobileNetV3Small(alpha=0.75, weights=path)
    images = random_images((64, 64, 3))
    np.testing.assert_allclose(outputs(model, images), outputs(source, images), atol=1e-6)


def test_legacy_h5_loads_by_layer_name(tmp_path):
    source = source_model(alpha=0.75, include_top=False)
    path = save_legacy_h5(source, str(tmp_path / "small_no_top.h5"))
    model = keras_mobilenets.MobileNetV3Small(alpha=0.75, include_top=False, weights=path)
    images = random_images((64, 64, 3))
    np.testing.assert_allclose(outputs(model, images), outputs(source, images), atol=1e-6)


def test_keras_applications_checkpoint_layout_loads_into_ours(tmp_path):
    """A legacy .h5 written from keras.applications (the layout of the published files)
    loads into our model by name and gives the same outputs."""
    reference = keras.applications.MobileNetV3Small(
        alpha=0.75, weights=None, input_shape=(96, 96, 3)
    )
    randomize_batch_norm(reference)
    path = save_legacy_h5(reference, str(tmp_path / "weights_mobilenet_v3_small_224_0.75_float.h5"))
    ours = keras_mobilenets.MobileNetV3Small(alpha=0.75, input_shape=(96, 96, 3), weights=path)
    images = random_images((96, 96, 3))
    np.testing.assert_allclose(outputs(ours, images), outputs(reference, images), atol=1e-5)


def rename_layers(path, rename):
    """Rewrites a legacy .h5 file's layer names (as tf.keras 2 wrote e.g. 'Conv/BatchNorm')."""
    import h5py

    with h5py.File(path, "r+") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
        for name in names:
            if name != rename(name):
                f.move(name, rename(name))
        f.attrs["layer_names"] = [rename(n).encode() for n in names]


def test_legacy_file_with_other_layer_names_loads_by_order(tmp_path):
    """Like the published MobileNetV3 files (tf.keras 2 names), which keras.applications
    also loads by order."""
    reference = keras.applications.MobileNetV3Small(
        alpha=0.75, weights=None, input_shape=(96, 96, 3)
    )
    randomize_batch_norm(reference)
    path = save_legacy_h5(reference, str(tmp_path / "weights_mobilenet_v3_small_224_0.75_float.h5"))
    rename_layers(path, lambda name: name.replace("_bn", "/BatchNorm"))
    ours = keras_mobilenets.MobileNetV3Small(alpha=0.75, input_shape=(96, 96, 3), weights=path)
    images = random_images((96, 96, 3))
    np.testing.assert_allclose(outputs(ours, images), outputs(reference, images), atol=1e-5)


def test_legacy_file_of_another_width_names_the_layers_that_differ(tmp_path):
    path = save_legacy_h5(source_model(alpha=1.0), str(tmp_path / "small_1.0.h5"))
    with pytest.raises(ValueError, match=r"does not match.*weights of another shape: expanded_conv_3_project \(file \[\(1, 1, 96, 40\)\], model \[\(1, 1, 96, 32\)\]\)"):
        keras_mobilenets.MobileNetV3Small(alpha=0.75, weights=path)


def test_legacy_file_without_top_into_model_with_top_lists_missing_layers(tmp_path):
    path = save_legacy_h5(source_model(include_top=False), str(tmp_path / "no_top.h5"))
    with pytest.raises(ValueError, match=r"layers missing from the file: .*logits"):
        keras_mobilenets.MobileNetV3Small(weights=path)


def test_legacy_file_with_top_into_model_without_top_ignores_the_top(tmp_path):
    source = source_model()
    path = save_legacy_h5(source, str(tmp_path / "with_top.h5"))
    model = keras_mobilenets.MobileNetV3Small(include_top=False, weights=path)
    np.testing.assert_array_equal(
        model.get_layer("conv_1").get_weights()[0], source.get_layer("conv_1").get_weights()[0]
    )


def test_keras3_file_of_another_model_is_a_clear_error(tmp_path):
    path = str(tmp_path / "v1.weights.h5")
    keras_mobilenets.MobileNet(alpha=0.25, weights=None).save_weights(path)
    with pytest.raises(ValueError, match="does not match the architecture"):
        keras_mobilenets.MobileNetV3Small(alpha=0.75, weights=path)


def test_hdf5_that_is_not_a_weights_file(tmp_path):
    import h5py

    path = str(tmp_path / "data.h5")
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match="not a Keras legacy weights file"):
        keras_mobilenets.MobileNetV3Small(alpha=0.75, weights=path)


@pytest.mark.parametrize("weights", ["imagenet21k", "missing.weights.h5", 3])
def test_bad_weights_argument(weights):
    with pytest.raises(ValueError, match="`weights` must be"):
        keras_mobilenets.MobileNetV3Small(weights=weights)


def test_weights_file_with_unknown_suffix(tmp_path):
    path = tmp_path / "weights.npz"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"`weights` must be a weights file ending in"):
        keras_mobilenets.MobileNetV3Small(weights=str(path))


@pytest.mark.parametrize("builder, kwargs, match", [
    (keras_mobilenets.MobileNetV3Small, {"classes": 10}, r"`classes` must be 1000.*got 10"),
    (keras_mobilenets.MobileNetV3Small, {"alpha": 0.5}, r"`alpha` must be one of \[0.75, 1.0\]"),
    (keras_mobilenets.MobileNetV3Large, {"alpha": 0.75, "minimalistic": True},
     r"`alpha` must be one of \[1.0\] for MobileNetV3Large with minimalistic=True"),
    (keras_mobilenets.MobileNetV2, {"alpha": 0.6}, r"`alpha` must be one of \[0.35, 0.5"),
    (keras_mobilenets.MobileNet, {"depth_multiplier": 2}, r"`depth_multiplier` must be 1"),
    (keras_mobilenets.MobileNet, {"input_shape": (224, 224, 1)}, r"3 channels.*got 1"),
    (keras_mobilenets.MobileNetV3Small, {"classifier_activation": "relu"},
     r"`classifier_activation` must be 'softmax' or None.*'relu'"),
])
def test_imagenet_combinations_without_checkpoint(builder, kwargs, match, monkeypatch):
    def no_network(*args):
        raise AssertionError("validation must fail before any download")

    monkeypatch.setattr(weights_lib.download, "fetch", no_network)
    with pytest.raises(ValueError, match=match):
        builder(weights="imagenet", **kwargs)


def test_imagenet_without_top_accepts_any_classes_argument():
    checkpoint = select_checkpoint(WeightsRequest("mobilenet_v3_small", include_top=False,
                                                  classes=10))
    assert checkpoint.file_name == "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"


def test_family_without_published_weights_lists_the_ones_with_weights():
    with pytest.raises(ValueError) as info:
        select_checkpoint(WeightsRequest("shufflenet_v1_g3", alpha=1.0))
    message = str(info.value)
    assert "'shufflenet_v1_g3'" in message
    for builder in ("MobileNet (", "MobileNetV2 (", "MobileNetV3Small (", "MobileNetV3Large (",
                    "ShuffleNetV2 ("):
        assert builder in message


@pytest.mark.parametrize("request_, file_name", [
    (WeightsRequest("mobilenet_v1", 0.5, 160, 160), "mobilenet_5_0_160_tf.h5"),
    (WeightsRequest("mobilenet_v1", 0.75, 192, 192, include_top=False),
     "mobilenet_7_5_192_tf_no_top.h5"),
    (WeightsRequest("mobilenet_v2", 1.3, 224, 224),
     "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.3_224.h5"),
    (WeightsRequest("mobilenet_v2", 0.5, None, None, include_top=False),
     "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5"),
    (WeightsRequest("mobilenet_v3_large", 1.0, 224, 224, minimalistic=True),
     "weights_mobilenet_v3_large_minimalistic_224_1.0_float.h5"),
])
def test_selection_by_alpha_size_top_and_minimalistic(request_, file_name):
    assert select_checkpoint(request_).file_name == file_name


def test_non_square_input_falls_back_to_224_with_a_warning():
    with pytest.warns(UserWarning, match="128x160"):
        checkpoint = select_checkpoint(WeightsRequest("mobilenet_v2", 1.0, 128, 160))
    assert checkpoint.rows == 224

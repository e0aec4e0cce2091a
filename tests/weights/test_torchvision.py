"""torchvision state dicts as ``weights=``: parity with torchvision's own outputs on the
same [0, 255] pixels (reference files written by
tests/reference/make_torchvision_references.py with torchvision models of random weights
and random batch-norm statistics), safetensors, and files that do not fit."""

import os

import numpy as np
import pytest

import keras_mobilenets
from keras_mobilenets.weights import torch_checkpoint, torchvision

REFERENCE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "reference", "torchvision")
SIZE = 64

CASES = {
    "shufflenet_v2_x0_5": (keras_mobilenets.ShuffleNetV2, {"scale": 0.5}),
    "mobilenet_v2_0.25": (keras_mobilenets.MobileNetV2, {"alpha": 0.25}),
    "mobilenet_v3_small_0.25": (keras_mobilenets.MobileNetV3Small, {"alpha": 0.25}),
    "mobilenet_v3_large_0.25": (keras_mobilenets.MobileNetV3Large, {"alpha": 0.25}),
}


def reference(name):
    return os.path.join(REFERENCE, name)


def build(name, weights, **kwargs):
    builder, variant = CASES[name]
    arguments = dict(input_shape=(SIZE, SIZE, 3), classes=10, classifier_activation=None)
    return builder(weights=weights, **{**arguments, **variant, **kwargs})


def max_difference(model, name):
    expected = np.load(reference(f"{name}.npz"))
    logits = model(expected["pixels"].astype("float32"), training=False)
    return float(np.max(np.abs(np.asarray(logits) - expected["logits"])))


@pytest.mark.parametrize("name", sorted(CASES))
def test_logits_equal_torchvision_on_the_same_pixels(name):
    model = build(name, reference(f"{name}.pth"))
    assert model.get_layer("rescaling") is not None  # takes [0, 255] pixels
    assert max_difference(model, name) < 1e-4


def test_the_layout_matters():
    """The converted weights in keras.applications' layout (TF padding, epsilon 1e-3) give
    other logits on the same normalised inputs: the parity above checks padding and
    epsilon, not only the weights."""
    from keras_mobilenets import imagenet

    name = "mobilenet_v2_0.25"
    converted = build(name, reference(f"{name}.pth"), include_preprocessing=False)
    keras_layout = build(name, None, include_preprocessing=False)
    assert keras_layout.get_layer("bn_Conv1").epsilon != converted.get_layer("bn_Conv1").epsilon
    for layer in keras_layout.layers:
        if layer.weights:
            layer.set_weights(converted.get_layer(layer.name).get_weights())
    pixels = np.load(reference(f"{name}.npz"))["pixels"].astype("float32")
    inputs = imagenet.preprocess_input(pixels, mode="torch")
    expected = np.load(reference(f"{name}.npz"))["logits"]
    assert np.max(np.abs(converted(inputs) - expected)) < 1e-4
    assert np.max(np.abs(keras_layout(inputs) - expected)) > 5e-4  # 1.1e-3 measured


def test_safetensors_and_headless_models(tmp_path):
    from safetensors.numpy import save_file

    name = "shufflenet_v2_x0_5"
    state = torch_checkpoint.read_state_dict(reference(f"{name}.pth"))
    path = str(tmp_path / f"{name}.safetensors")
    save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, path)
    assert max_difference(build(name, path), name) < 1e-4
    headless = build(name, path, include_top=False, pooling="avg")
    full = build(name, reference(f"{name}.pth"))
    np.testing.assert_array_equal(headless.get_layer("conv5").get_weights()[0],
                                  full.get_layer("conv5").get_weights()[0])
    # Explicitly without the Rescaling layer, the model takes normalised inputs.
    bare = build(name, path, include_preprocessing=False)
    assert "rescaling" not in [layer.name for layer in bare.layers]


def test_a_file_of_another_architecture_is_refused():
    with pytest.raises(ValueError) as error:
        build("mobilenet_v2_0.25", reference("shufflenet_v2_x0_5.pth"))
    message = str(error.value)
    assert "shufflenet_v2_x0_5.pth" in message
    assert "keys missing from the file: " in message and "features.0.0.weight" in message
    assert "keys the model does not have: " in message and "conv1.0.weight" in message


def test_shapes_that_differ_are_named():
    with pytest.raises(ValueError, match=r"tensors of another shape: .*features\.0\.0\.weight "
                                         r"\(file \(8, 3, 3, 3\)"):
        build("mobilenet_v2_0.25", reference("mobilenet_v2_0.25.pth"), alpha=0.5)
    with pytest.raises(ValueError, match=r"fc\.weight \(file \(10, 1024\), predictions needs "
                                         r"\(1024, 1000\)\)"):
        build("shufflenet_v2_x0_5", reference("shufflenet_v2_x0_5.pth"), classes=1000)
    with pytest.raises(ValueError, match=r"small_0\.25\.pth' does not fit 'MobileNetV3Large'.*"
                                         r"another shape.*missing.*does not have"):
        build("mobilenet_v3_large_0.25", reference("mobilenet_v3_small_0.25.pth"))


def test_families_without_a_converter():
    with pytest.raises(ValueError, match="no torchvision conversion for 'shufflenet_v1_g3'"):
        keras_mobilenets.ShuffleNet(input_shape=(SIZE, SIZE, 3),
                                    weights=reference("shufflenet_v2_x0_5.pth"))
    with pytest.raises(ValueError, match="`weights` must be"):
        keras_mobilenets.MobileNetV2(weights=reference("missing.pth"))


@pytest.mark.parametrize("name, family", [
    ("shufflenet_v2_x0_5", "shufflenet_v2"), ("mobilenet_v2_0.25", "mobilenet_v2"),
    ("mobilenet_v3_small_0.25", "mobilenet_v3_small"),
    ("mobilenet_v3_large_0.25", "mobilenet_v3_large"),
])
def test_every_layer_has_its_own_torchvision_module(name, family):
    model = build(name, None)
    weighted = [layer.name for layer in model.layers if layer.weights]
    prefixes = torchvision.CONVERTERS[family](weighted)
    assert sorted(prefixes) == sorted(weighted)
    assert len(set(prefixes.values())) == len(weighted)
    state = torch_checkpoint.read_state_dict(reference(f"{name}.pth"))
    modules = {key.rsplit(".", 1)[0] for key in state}
    assert modules == set(prefixes.values())


def _full_size_models():
    from keras_mobilenets import detection, segmentation

    small = (64, 64, 3)
    models = {
        f"shufflenet_v2_x{str(scale).replace('.', '_')}": ("shufflenet_v2", lambda s=scale: keras_mobilenets.ShuffleNetV2(
            scale=s, input_shape=small))
        for scale in (0.5, 1.0, 1.5, 2.0)
    }
    models.update({
        "mobilenet_v2": ("mobilenet_v2", lambda: keras_mobilenets.MobileNetV2(
            layout="torchvision", input_shape=small)),
        "mobilenet_v3_small": ("mobilenet_v3_small", lambda: keras_mobilenets.MobileNetV3Small(
            layout="torchvision", input_shape=small)),
        "mobilenet_v3_large": ("mobilenet_v3_large", lambda: keras_mobilenets.MobileNetV3Large(
            layout="torchvision", input_shape=small)),
        "lraspp_mobilenet_v3_large": ("lraspp_mobilenet_v3_large", lambda: segmentation.LRASPP(
            "MobileNetV3Large", num_classes=21, input_shape=small, layout="torchvision",
            low_tap="first")),
        "ssdlite320_mobilenet_v3_large": (
            "ssdlite320_mobilenet_v3_large", lambda: detection.SSDLite(
                "MobileNetV3Large", num_classes=90, input_shape=small,
                backbone_kwargs={"layout": "torchvision", "reduced_tail": True})),
    })
    return models


FULL_SIZE = _full_size_models()


@pytest.mark.parametrize("name", sorted(FULL_SIZE))
def test_the_published_checkpoints_fit(name):
    """Our torchvision-layout models take exactly the keys and shapes of torchvision's
    full-size models, i.e. of the published checkpoints (reference full_size_shapes.json)."""
    import json

    with open(reference("full_size_shapes.json")) as f:
        shapes = json.load(f)[name]
    family, build = FULL_SIZE[name]
    model = build()
    state = {key: np.zeros(shape, np.float32) for key, shape in shapes.items()}
    converted = torchvision.converted_weights(model, state, family)
    assert sum(len(arrays) for arrays in converted.values()) == len(model.weights)
    trainable = sum(int(np.prod(shape)) for key, shape in shapes.items()
                    if not key.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == trainable

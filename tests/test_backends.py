"""The package on Keras 3's JAX and PyTorch backends, against TensorFlow (docs/backends.md).

The backend is chosen when keras is imported, so each backend runs once in a subprocess
(``tests/scripts/backend_check.py``) on files this TensorFlow process saves: weights of
every family, a ``.keras`` file, loss inputs and ground-truth boxes. The tests compare its
outputs with TensorFlow's, load the ``.keras`` files it saved, and check that the
TensorFlow-only entry points refused its backend. A backend that is not installed is
skipped (``pip install "jax[cpu]"``, ``pip install torch``).
"""

import importlib.util
import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_mobilenets import _checks, detection, segmentation
from tests import backend_models, helpers

SCRIPT = helpers.REPO / "tests" / "scripts" / "backend_check.py"
BACKENDS = ("jax", "torch")
TOLERANCE = 1e-5
TF_ONLY = ("quantization.quantize_model", "export.to_tflite", "distribute.strategy_from_name",
           "distribute.synchronize_batch_norm", "detection.inference_model",
           "detection.TargetEncoder in tf.data")


def _flat(outputs, name):
    if isinstance(outputs, dict):
        return {f"{name}/{key}": np.asarray(value) for key, value in outputs.items()}
    return {name: np.asarray(outputs)}


def _loss_data(detector, rng):
    """Fixed loss inputs, ground-truth boxes and fit images (numpy, saved for the script)."""
    anchors = detection.DefaultBoxes.from_model(detector).boxes().shape[0]
    classes = backend_models.SSD_CLASSES + 1
    seg_shape = (2, 8, 8)
    true_classes = np.where(rng.uniform(size=(2, anchors)) < 0.1,
                            rng.integers(1, classes, (2, anchors)), 0)
    true_boxes = rng.normal(0, 1, (2, anchors, 5)).astype("float32")
    true_boxes[..., 4] = (true_classes > 0).astype("float32")
    masks = rng.integers(0, backend_models.SEG_CLASSES, seg_shape)
    masks[:, :2] = 255
    size = backend_models.HEAD_SIZE
    return {
        "ssd_true_boxes": true_boxes,
        "ssd_true_classes": true_classes.astype("int32"),
        "ssd_pred_boxes": rng.normal(0, 1, (2, anchors, 4)).astype("float32"),
        "ssd_pred_classes": rng.normal(0, 2, (2, anchors, classes)).astype("float32"),
        "seg_masks": masks.astype("int32"),
        "seg_logits": rng.normal(0, 2, (*seg_shape, backend_models.SEG_CLASSES)).astype(
            "float32"),
        "seg_predictions": rng.integers(0, backend_models.SEG_CLASSES, seg_shape).astype(
            "int32"),
        "gt_boxes": np.array([[[4, 4, 30, 30], [20, 30, 60, 60]],
                              [[10, 2, 50, 40], [-1, -1, -1, -1]]] * 2, "float32") * size / 64,
        "gt_labels": np.array([[0, 2], [1, -1]] * 2, "int32"),
    }


@pytest.fixture(scope="module")
def tensorflow(tmp_path_factory):
    """TensorFlow's side: the files for the script and TensorFlow's own results."""
    folder = tmp_path_factory.mktemp("backends")
    rng = np.random.default_rng(0)
    inputs = {name: backend_models.inputs(name) for name in backend_models.builders()}
    inputs["ssdlite_fit"] = backend_models.inputs("ssdlite", batch=4, seed=1)
    outputs, models = {}, {}
    for name, make in backend_models.builders().items():
        model = models[name] = make()
        helpers.randomize_batch_norm(model, seed=len(outputs))
        model.save_weights(folder / f"{name}.weights.h5")
        outputs.update(_flat(model(inputs[name], training=False), name))
    for name in backend_models.KERAS_FROM_TF:
        models[name].save(folder / f"{name}.keras")
    np.savez(folder / "inputs.npz", **inputs)
    data = _loss_data(models["ssdlite"], rng)
    np.savez(folder / "losses.npz", **data)
    return {"folder": folder, "inputs": inputs, "outputs": outputs, "models": models,
            "data": data}


# Each backend is a whole subprocess run of every family (minutes): the end_to_end tier.
@pytest.fixture(scope="module", params=[
    pytest.param(name, marks=pytest.mark.end_to_end) for name in BACKENDS])
def backend(request):
    """``(name, results.json dict, its output folder)`` of the script run on ``name``."""
    name = request.param
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed (the backend tests need it)")
    tensorflow = request.getfixturevalue("tensorflow")  # only when the backend is there
    out = tensorflow["folder"] / name
    out.mkdir()
    env = helpers.environment(KERAS_BACKEND=name, **helpers.jax_cache_environment(request.config))
    process = subprocess.run(
        [sys.executable, str(SCRIPT), str(tensorflow["folder"]), str(out)],
        capture_output=True, text=True, timeout=helpers.SUBPROCESS_TIMEOUT_S, env=env,
    )
    assert process.returncode == 0, process.stderr[-4000:]
    results = json.loads((out / "results.json").read_text())
    assert results["backend"] == name
    return name, results, out


def test_backend_outputs_match_tensorflow(backend, tensorflow):
    name, _, folder = backend
    actual = dict(np.load(folder / "outputs.npz"))
    assert sorted(actual) == sorted(tensorflow["outputs"])
    for key, expected in tensorflow["outputs"].items():
        np.testing.assert_allclose(actual[key], expected, rtol=TOLERANCE, atol=TOLERANCE,
                                   err_msg=f"{key} on {name}")


def test_keras_file_saved_under_tensorflow_loads_on_backend(backend, tensorflow):
    name, _, folder = backend
    actual = dict(np.load(folder / "keras_outputs.npz"))
    assert sorted(actual) == sorted(key for key in tensorflow["outputs"]
                                    if key.split("/")[0] in backend_models.KERAS_FROM_TF)
    assert actual
    for key, value in actual.items():
        np.testing.assert_allclose(value, tensorflow["outputs"][key], rtol=TOLERANCE,
                                   atol=TOLERANCE, err_msg=f"{key} on {name}")


def test_keras_files_saved_on_backend_load_under_tensorflow(backend, tensorflow):
    name, _, folder = backend
    for model_name in backend_models.KERAS_TO_TF:
        model = keras.saving.load_model(folder / f"{model_name}.keras", safe_mode=True)
        outputs = _flat(model(tensorflow["inputs"][model_name], training=False), model_name)
        for key, value in outputs.items():
            np.testing.assert_allclose(value, tensorflow["outputs"][key], rtol=1e-6, atol=1e-6,
                                       err_msg=f"{key}, saved on {name}")


def test_losses_and_metrics_match_tensorflow(backend, tensorflow):
    name, results, _ = backend
    data = tensorflow["data"]
    true = {"boxes": data["ssd_true_boxes"], "classes": data["ssd_true_classes"]}
    pred = {"boxes": data["ssd_pred_boxes"], "classes": data["ssd_pred_classes"]}
    expected = {}
    for mode in ("hard_negative", "focal"):
        for key, loss in detection.ssd_losses(mode=mode).items():
            expected[f"ssd_{mode}_{key}"] = float(loss(true[key], pred[key]))
    loss = segmentation.SegmentationCrossEntropy(ignore_label=255)
    expected["segmentation"] = float(loss(data["seg_masks"], data["seg_logits"]))
    assert sorted(results["losses"]) == sorted(expected)
    for key, value in expected.items():
        assert results["losses"][key] == pytest.approx(value, rel=TOLERANCE), (key, name)
    scores = segmentation.score_masks(data["seg_masks"], data["seg_predictions"],
                                      backend_models.SEG_CLASSES)
    assert results["mean_iou"] == pytest.approx(float(scores.mean_iou), abs=1e-6)
    np.testing.assert_allclose(results["per_class_iou"], scores.per_class_iou, atol=1e-6)


def test_ssd_targets_match_tensorflow(backend, tensorflow):
    name, _, folder = backend
    encoder = detection.TargetEncoder(
        detection.DefaultBoxes.from_model(tensorflow["models"]["ssdlite"]),
        (backend_models.HEAD_SIZE,) * 2)
    data = tensorflow["data"]
    expected = encoder.encode({"boxes": data["gt_boxes"], "labels": data["gt_labels"]})
    actual = dict(np.load(folder / "targets.npz"))
    assert int(np.sum(np.asarray(expected["classes"]) > 0)) >= 6  # every object matched
    np.testing.assert_array_equal(actual["classes"], np.asarray(expected["classes"]))
    np.testing.assert_allclose(actual["boxes"], np.asarray(expected["boxes"]), atol=1e-5)


def test_fit_lowers_the_loss_on_backend(backend):
    name, results, _ = backend
    losses = results["fit_losses"]
    assert len(losses) == 4 and all(np.isfinite(losses)), losses
    assert losses[-1] < losses[0] * 0.98, f"SSDLite fit on {name}: {losses}"


def test_every_family_takes_a_fit_step_on_backend(backend):
    name, results, _ = backend
    steps = results["family_fit_steps"]
    expected = [*backend_models.builders(), *backend_models.fit_builders()]
    assert sorted(steps) == sorted(set(expected) - {"ssdlite"})  # SSDLite: the test above
    for family, step in steps.items():
        assert np.isfinite(step["loss"]), (family, name, step)
        # The gradient reached the stem and moved most weights.
        assert step["first_moved"] and step["moved"] > 0.5, (family, name, step)


def test_tensorflow_only_features_refuse_other_backends(backend):
    name, results, _ = backend
    assert sorted(results["guards"]) == sorted(TF_ONLY)
    for feature, message in results["guards"].items():
        assert message is not None, f"{feature} ran on {name}"
        assert message.startswith("RuntimeError: "), message
        assert "needs the TensorFlow backend" in message, message
        assert f"runs on '{name}'" in message and "KERAS_BACKEND=tensorflow" in message, message


def test_require_tensorflow_backend(monkeypatch):
    _checks.require_tensorflow_backend("export.to_tflite")  # this process runs TensorFlow
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(RuntimeError, match=r"^export.to_tflite needs the TensorFlow backend "
                                           r"of Keras, but Keras runs on 'jax'\. .*"
                                           r"KERAS_BACKEND=tensorflow"):
        _checks.require_tensorflow_backend("export.to_tflite")

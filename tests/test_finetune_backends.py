"""The float fine-tuning workflow on Keras 3's JAX and PyTorch backends (docs/backends.md).

The backend is chosen when keras is imported, so each backend runs in a subprocess:
``tests/scripts/finetune_backend_check.py`` (``run_finetune``: refusals of the
TensorFlow-only settings, a run interrupted and resumed, then called again) and the
``keras-mobilenets finetune`` command. This TensorFlow process prepares their data and
checks their files: the checkpoints of each phase, ``model.keras`` (loaded here, it gives
the backend's outputs), the skipped-files report and the reported accuracy. A backend that
is not installed is skipped.
"""

import importlib.util
import json
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_mobilenets import finetune
from keras_mobilenets.training import batch_norm_layers
from tests import helpers

SCRIPT = helpers.REPO / "tests" / "scripts" / "finetune_backend_check.py"
TOLERANCE = 1e-5
# Whole programs on another backend (tens of seconds to minutes each): the end_to_end tier.
BACKENDS = [pytest.param(name, marks=pytest.mark.end_to_end) for name in ("jax", "torch")]


def _require(name):
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed (the backend tests need it)")


def _classifier():
    """The classifier of the script's runs, built here (TensorFlow) to read their files."""
    script = helpers.load_script(SCRIPT)
    config = script.CONFIG
    return finetune.build_classifier(2, config["backbone"], config["image_size"], None,
                                     **config["backbone_kwargs"]), script


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The script's inputs: a messy photo folder, backbone weights and probe images."""
    from tests.datasets.test_image_folders import write_messy_folder

    folder = tmp_path_factory.mktemp("finetune_backends")
    photos = write_messy_folder(folder / "photos")
    rng = np.random.default_rng(0)
    for name in ("cats", "dogs"):  # more images, so that both splits hold some of each
        for index in range(6):
            image = np.clip(rng.normal(60 + 120 * (name == "dogs"), 30, (16, 16, 3)), 0, 255)
            tf.io.write_file(str(photos / name / f"more_{index}.png"),
                             tf.io.encode_png(image.astype("uint8")))
    model, script = _classifier()
    backbone = finetune.backbone_of(model)
    helpers.randomize_batch_norm(backbone, seed=1)  # "pretrained": not the initial values
    backbone.save_weights(folder / "backbone.weights.h5")
    probe = rng.uniform(0, 255, (6, 32, 32, 3)).astype("float32")
    np.savez(folder / "probe.npz", images=probe)
    return {"folder": folder, "photos": photos, "probe": probe,
            "backbone": [np.array(w) for w in backbone.weights]}


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request):
    """``(name, results.json dict, its output folder)`` of the script run on ``name``."""
    name = request.param
    _require(name)
    prepared = request.getfixturevalue("prepared")
    out = prepared["folder"] / name
    out.mkdir()
    env = helpers.environment(KERAS_BACKEND=name,
                              **helpers.jax_cache_environment(request.config))
    process = helpers.run_python([SCRIPT, prepared["folder"], out], out, env=env)
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-4000:]
    results = json.loads((out / "results.json").read_text())
    assert results["backend"] == name
    return name, results, out


def _assert_refusal(message, name, *names):
    assert message is not None and message.startswith("BackendError: "), message
    assert "needs the TensorFlow backend of Keras" in message, message
    assert f"runs on '{name}'" in message and "KERAS_BACKEND=tensorflow" in message, message
    for setting in names:
        assert setting in message, (setting, message)


def test_tensorflow_only_settings_are_refused_before_anything_runs(backend):
    name, results, _ = backend
    settings = {"qat": "qat=True", "export": "export (int8 TFLite or ONNX)",
                "sync_batch_norm": "sync_batch_norm=True", "strategy": "a tf.distribute strategy"}
    assert sorted(results["refusals"]) == sorted(settings)
    for key, setting in settings.items():
        _assert_refusal(results["refusals"][key], name, f"finetune with {setting}")
        assert "the float fine-tuning runs on every Keras backend" in results["refusals"][key]
        assert not results["refusal_left_output"][key], f"{key}: output folder written"


def test_interrupted_run_resumes_from_its_checkpoints(backend):
    name, results, out = backend
    assert results["interrupted"]
    # Interrupted in epoch 2 of 2 of the frozen phase: its first checkpoint and its backup.
    assert "checkpoints/frozen/epoch_01.weights.h5" in results["after_interruption"]
    assert "checkpoints/frozen/epoch_02.weights.h5" not in results["after_interruption"]
    assert any(path.startswith("backup/frozen/") for path in results["after_interruption"])
    resumed = results["resumed"]["phases"]
    assert resumed["frozen"]["epochs"] == [1] and not resumed["frozen"]["completed_before"]
    assert resumed["fine_tune"]["epochs"] == [0]
    assert all(np.isfinite(resumed[phase]["losses"]).all() for phase in resumed)
    run = out / "run"
    for path in ("frozen/epoch_01", "frozen/epoch_02", "fine_tune/epoch_01"):
        assert (run / "checkpoints" / f"{path}.weights.h5").is_file(), path
    assert not any(files for _, _, files in os.walk(run / "backup"))  # removed when done
    # It continued from epoch 1's weights (read here, under TensorFlow).
    model, _ = _classifier()
    model.load_weights(run / "checkpoints" / "frozen" / "epoch_01.weights.h5")
    predictions = np.load(out / "predictions.npz")
    np.testing.assert_array_equal(predictions["resumed_start_kernel"],
                                  np.array(model.get_layer("head_predictions").kernel))
    # Called again: every phase completed before, loaded, and the same model.
    again = results["again"]["phases"]
    assert all(phase["completed_before"] and phase["epochs"] == [] for phase in again.values())
    np.testing.assert_array_equal(predictions["again"], predictions["resumed"])


def test_phases_freeze_the_backbone_then_keep_its_batch_norms(backend, prepared):
    """With starting weights, the frozen phase changes only the head; the unfrozen phase
    trains the convolutions and keeps the batch norms (weights and statistics)."""
    _, _, out = backend
    model, _ = _classifier()
    backbone = finetune.backbone_of(model)
    norms = {id(w) for layer in batch_norm_layers(backbone) for w in layer.weights}
    head = model.get_layer("head_predictions")
    checkpoints = out / "run" / "checkpoints"
    model.load_weights(checkpoints / "frozen" / "epoch_02.weights.h5")
    for initial, weight in zip(prepared["backbone"], backbone.weights):
        np.testing.assert_array_equal(np.array(weight), initial, err_msg=weight.path)
    frozen_head = np.array(head.kernel)
    model.load_weights(checkpoints / "fine_tune" / "epoch_01.weights.h5")
    changed = []
    for initial, weight in zip(prepared["backbone"], backbone.weights):
        if id(weight) in norms:
            np.testing.assert_array_equal(np.array(weight), initial, err_msg=weight.path)
        elif not np.array_equal(np.array(weight), initial):
            changed.append(weight.path)
    assert len(changed) > 10, changed  # the convolutions trained
    assert not np.array_equal(np.array(head.kernel), frozen_head)


def test_model_file_gives_the_backends_outputs_under_tensorflow(backend, prepared):
    name, results, out = backend
    predictions = np.load(out / "predictions.npz")
    path = results["resumed"]["files"]["model"]
    assert path == str(out / "run" / "model.keras")
    model = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(model.predict(prepared["probe"], verbose=0),
                               predictions["resumed"], rtol=TOLERANCE, atol=TOLERANCE,
                               err_msg=f"model.keras trained on {name}")
    np.testing.assert_allclose(predictions["model_keras"], predictions["resumed"],
                               rtol=TOLERANCE, atol=TOLERANCE)


def test_report_and_accuracy_of_the_run(backend, prepared):
    """The skipped files are reported; the accuracy is the saved model's on the
    validation split, computed again here under TensorFlow."""
    _, results, out = backend
    resumed = results["resumed"]
    assert resumed["class_names"] == ["cats", "dogs"]
    assert resumed["skipped"] == ["corrupt.jpg", "notes.txt", "truncated.jpg"]
    report = out / "run" / "skipped_files.txt"
    assert resumed["files"]["skipped_txt"] == str(report)
    text = report.read_text()
    assert all(name in text for name in resumed["skipped"])
    assert len(json.loads((out / "run" / "skipped_files.json").read_text())) == 3
    [[row, accuracy]] = resumed["rows"]
    assert row == "Keras float"
    _, script = _classifier()
    config = script.CONFIG
    _, validation, _ = finetune.image_folder_datasets(
        prepared["photos"], config["image_size"], config["batch_size"],
        config["validation_split"], 0)
    images, labels = finetune.dataset_arrays(validation)
    assert len(images) >= 4
    model = keras.saving.load_model(out / "run" / "model.keras")
    expected = np.mean(np.argmax(model.predict(images, verbose=0), axis=-1) == labels)
    assert accuracy == pytest.approx(expected)
    assert results["again"]["rows"] == resumed["rows"]


CLI = ["finetune", "--weights", "none", "--minimalistic", "--alpha", "0.35", "--image-size",
       "32", "--batch-size", "8", "--shapes-images", "30", "--epochs", "1",
       "--fine-tune-epochs", "1", "--optimizer", "sgd", "--output-dir", "run"]


@pytest.mark.parametrize("name", BACKENDS)
def test_finetune_command_on_backend(name, tmp_path, request):
    """``keras-mobilenets finetune`` from random weights (the batch norms train and are
    re-estimated), and its refusal of --qat and --export before anything runs."""
    _require(name)
    env = helpers.environment(KERAS_BACKEND=name,
                              **helpers.jax_cache_environment(request.config))
    refused = helpers.run_python(["-m", "keras_mobilenets", *CLI[:-1], "refused", "--qat",
                                  "--export", "m.tflite"], tmp_path, env=env)
    assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
    error = refused.stderr.strip().splitlines()[-1]
    assert error.startswith("keras-mobilenets finetune: error: keras-mobilenets finetune "
                            "--qat --export needs the TensorFlow backend of Keras"), error
    assert f"runs on '{name}'" in error and "KERAS_BACKEND=tensorflow" in error, error
    assert not (tmp_path / "refused").exists()

    process = helpers.run_python(["-m", "keras_mobilenets", *CLI], tmp_path, env=env)
    out = process.stdout
    assert process.returncode == 0, out[-3000:] + process.stderr[-5000:]
    for step in ("[1/5] data: 30 images of 5 classes", "[3/5] 1 epoch with the backbone frozen",
                 "[4/5] 1 epoch with the backbone unfrozen (batch norms training)",
                 "[5/5] evaluating on the validation images"):
        assert step in out, step
    accuracy = float(re.search(r"^Keras float +([0-9.]+)", out, re.M).group(1))
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert model.output_shape == (None, 5) and 0 <= accuracy <= 1
    for phase in ("frozen", "fine_tune"):
        assert (tmp_path / "run" / "checkpoints" / phase / "epoch_01.weights.h5").is_file()

"""The fine-tuning workflow: image folders, frozen/unfrozen phases, checkpoints and resume."""

import json
import logging
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_mobilenets import _checks, finetune
from keras_mobilenets.datasets import shapes
from keras_mobilenets.training import batch_norm_layers, reestimate_batch_norm
from tests import helpers

TINY = dict(backbone="MobileNetV3Small", backbone_kwargs={"alpha": 0.35, "minimalistic": True},
            weights=None, image_size=32, batch_size=8, calibration_images=16, latency_runs=5)


def write_images(folder, counts):
    """Writes ``counts[name]`` tiny PNG files into ``folder/name``."""
    os.makedirs(folder, exist_ok=True)
    for name, count in counts.items():
        os.makedirs(folder / name, exist_ok=True)
        for index in range(count):
            image = np.full((8, 8, 3), index * 10, dtype="uint8")
            tf.io.write_file(str(folder / name / f"{index}.png"), tf.io.encode_png(image))
    return folder


@pytest.mark.parametrize("make, message", [
    (lambda root: root / "missing", "does not exist"),
    (lambda root: write_images(root, {}) / "file.txt", "is not a folder"),
    (lambda root: write_images(root / "one", {"cats": 2}), r"at least 2 class sub-folders, "
                                                           r"found 1 \(cats\)"),
    (lambda root: write_images(root / "flat", {}), "found 0 .none."),
    (lambda root: (write_images(root / "holes", {"cats": 2}) / "dogs").mkdir() or root / "holes",
     "'dogs' hold no images"),
])
def test_check_image_folder_rejects_bad_folders(tmp_path, make, message):
    (tmp_path / "file.txt").write_text("not a folder")
    path = make(tmp_path)
    with pytest.raises(ValueError, match=f"`data_dir` '{path}'.*{message}"):
        finetune.check_image_folder(path)


def test_check_image_folder_ignores_hidden_folders_and_loose_files(tmp_path):
    write_images(tmp_path, {"cats": 1, "dogs": 1, ".ipynb_checkpoints": 1})
    (tmp_path / "LICENSE.txt").write_text("license")
    assert finetune.check_image_folder(tmp_path) == ["cats", "dogs"]


def test_shapes_folder_round_trips_through_image_dataset_from_directory(tmp_path):
    folder = tmp_path / "shapes"
    assert finetune.write_shapes_folder(folder, num_images=20, image_size=32) == str(folder)
    assert finetune.check_image_folder(folder) == sorted(shapes.CLASS_NAMES)
    images, labels = shapes.load("train", num_images=20, image_size=32)
    for label, name in enumerate(shapes.CLASS_NAMES):
        assert len(os.listdir(folder / name)) == np.sum(labels == label) == 4

    train, val, class_names = finetune.image_folder_datasets(
        folder, image_size=32, batch_size=8, validation_split=0.25, seed=0)
    x_train, y_train = finetune.dataset_arrays(train)
    x_val, y_val = finetune.dataset_arrays(val)
    assert (len(x_train), len(x_val)) == (15, 5)
    # Every image read back is one of the generated ones (PNG is lossless, no resizing at
    # the same size), with its label under the folder's class order.
    originals = {image.tobytes(): shapes.CLASS_NAMES[label] for image, label in
                 zip(images, labels)}
    for image, label in zip(np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val])):
        assert originals[image.astype("uint8").tobytes()] == class_names[label]

    mtime = os.path.getmtime(folder / "circle" / os.listdir(folder / "circle")[0])
    finetune.write_shapes_folder(folder, num_images=20, image_size=32)  # same: kept
    assert os.path.getmtime(folder / "circle" / os.listdir(folder / "circle")[0]) == mtime
    finetune.write_shapes_folder(folder, num_images=10, image_size=32)  # other: rewritten
    assert sum(len(os.listdir(folder / name)) for name in shapes.CLASS_NAMES) == 10
    with pytest.raises(ValueError, match="not empty and was not written by write_shapes"):
        finetune.write_shapes_folder(write_images(tmp_path / "photos", {"cats": 1}))


def _backbone_weights(model):
    return [np.array(w) for w in finetune.backbone_of(model).weights]


def test_phases_freeze_the_backbone_then_its_batch_norms():
    # SGD: its training step traces in half the time of Adam's on a whole network.
    images, labels = shapes.load("train", num_images=16, image_size=32)
    data = tf.data.Dataset.from_tensor_slices((images.astype("float32"), labels)).batch(8)
    model = finetune.build_classifier(5, "MobileNetV3Small", image_size=32, weights=None,
                                      alpha=0.35, minimalistic=True)
    reestimate_batch_norm(model, images)  # random kernels: realistic activations (as run_finetune)
    backbone = finetune.backbone_of(model)
    norms = batch_norm_layers(backbone)
    head = model.get_layer("head_predictions")

    # Phase 1: only the head trains; the frozen batch norms keep their statistics.
    finetune.set_backbone_trainable(model, False)
    before, head_before = _backbone_weights(model), head.get_weights()[0]
    finetune.fit_phase(model, data, epochs=1, learning_rate=1e-2, optimizer="sgd", verbose=0)
    for a, b in zip(before, _backbone_weights(model)):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(head.get_weights()[0], head_before)

    # Phase 2, batch norms frozen: convolutions train, batch norms neither train nor
    # update their statistics (Keras runs non-trainable batch norms in inference mode).
    finetune.set_backbone_trainable(model, True, freeze_batch_norm=True)
    stats = [[np.array(w) for w in layer.weights] for layer in norms]
    assert backbone.get_layer("conv").trainable
    assert not any(layer.trainable for layer in norms)
    model(images.astype("float32"), training=True)
    for layer, weights in zip(norms, stats):
        for a, b in zip(weights, layer.weights):
            np.testing.assert_array_equal(a, np.array(b))

    # Phase 2, batch norms training: their moving statistics end as the re-estimated
    # statistics of the given images (not the momentum-0.999 average).
    finetune.set_backbone_trainable(model, True, freeze_batch_norm=False)
    finetune.fit_phase(model, data, epochs=1, learning_rate=1e-2, optimizer="sgd",
                       batch_norm_images=images, verbose=0)
    trained = [np.array(layer.moving_variance) for layer in norms]
    reestimate_batch_norm(model, images)
    for layer, variance in zip(norms, trained):
        np.testing.assert_allclose(np.array(layer.moving_variance), variance, rtol=1e-5)
    assert not all(np.allclose(v, s[3], rtol=1e-3) for v, s in zip(trained, stats))


class RecordStart(keras.callbacks.Callback):
    """Keeps the head's kernel as it is when training begins (after any restore)."""

    def on_train_begin(self, logs=None):
        self.kernel = np.array(self.model.get_layer("head_predictions").kernel)


def _head_kernel_in(path, config, num_classes=5):
    model = finetune.build_classifier(num_classes, config.backbone, config.image_size, None,
                                      **config.backbone_kwargs)
    model.load_weights(path)
    return np.array(model.get_layer("head_predictions").kernel)


@pytest.mark.slow
@pytest.mark.end_to_end
def test_an_interrupted_run_resumes_at_the_next_epoch(tmp_path):
    config = finetune.FineTuneConfig(**TINY, epochs=3, fine_tune_epochs=0, augment=False)
    output = tmp_path / "run"
    run = dict(data_dir=None, output_dir=output, config=config, shapes_images=20, verbose=0)
    checkpoints = output / "checkpoints" / "frozen"

    with pytest.raises(KeyboardInterrupt):
        finetune.run_finetune(**run, callbacks=[helpers.Interrupt(at=1)])
    assert sorted(os.listdir(checkpoints)) == ["epoch_01.weights.h5"]
    assert os.path.isdir(output / "backup" / "frozen")

    start = RecordStart()
    result = finetune.run_finetune(**run, callbacks=[start])
    frozen = result.phases["frozen"]
    assert frozen.epochs == (1, 2) and not frozen.completed_before
    assert len(frozen.history["loss"]) == 2
    assert sorted(os.listdir(checkpoints)) == [f"epoch_0{n}.weights.h5" for n in (1, 2, 3)]
    assert not os.path.exists(output / "backup" / "frozen")  # removed when the phase ends
    # It continued from the weights of epoch 1, not from a new initialization.
    np.testing.assert_array_equal(start.kernel,
                                  _head_kernel_in(checkpoints / "epoch_01.weights.h5", config))
    final = np.array(result.model.get_layer("head_predictions").kernel)
    np.testing.assert_array_equal(final, _head_kernel_in(checkpoints / "epoch_03.weights.h5",
                                                         config))

    again = finetune.run_finetune(**run)  # everything done: nothing trains
    assert again.phases["frozen"].completed_before and again.phases["frozen"].epochs == ()
    np.testing.assert_array_equal(
        np.array(again.model.get_layer("head_predictions").kernel), final)
    assert again.row("Keras float").accuracy == result.row("Keras float").accuracy

    other = finetune.FineTuneConfig(**{**TINY, "learning_rate": 0.1}, epochs=3,
                                    fine_tune_epochs=0, augment=False)
    with pytest.raises(ValueError, match=r"other settings \(learning_rate: 0.001 there, 0.1 now"):
        finetune.run_finetune(**{**run, "config": other})


def test_a_phase_after_a_resumed_one_runs_all_its_epochs(tmp_path):
    # Keras 3 keeps the epoch BackupAndRestore restored on the model: without fit_phase
    # resetting it, the next phase of the same model started there and skipped epochs.
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    data = tf.data.Dataset.from_tensor_slices(
        (np.random.default_rng(0).normal(size=(8, 4)).astype("float32"), np.arange(8) % 2)
    ).batch(4)
    phase = dict(learning_rate=0.1, optimizer="sgd", output_dir=tmp_path, verbose=0)
    with pytest.raises(KeyboardInterrupt):
        finetune.fit_phase(model, data, epochs=2, name="first",
                           callbacks=[helpers.Interrupt(at=1)], **phase)
    assert finetune.fit_phase(model, data, epochs=2, name="first", **phase).epochs == (1,)
    second = finetune.fit_phase(model, data, epochs=1, name="second", **phase)
    assert second.epochs == (0,) and len(second.history["loss"]) == 1
    assert os.path.isfile(tmp_path / "checkpoints" / "second" / "epoch_01.weights.h5")


@pytest.mark.parametrize("changes, message", [
    ({"epochs": -1}, "`epochs` must be an int >= 0, got -1"),
    ({"qat_epochs": 0}, "`qat_epochs` must be an int >= 1, got 0"),
    ({"image_size": 16}, "`image_size` must be an int >= 32, got 16"),
    ({"learning_rate": 0}, "`learning_rate` must be a number > 0, got 0"),
    ({"validation_split": 1.0}, r"`validation_split` must be a number in \[0, 1\), got 1.0"),
    ({"backbone": "ResNet50"}, "`backbone` must be one of"),
    ({"backbone": "ShuffleNetV2", "backbone_kwargs": {"alpha": 0.5}},
     r"ShuffleNetV2 has no argument\(s\) \['alpha'\]"),
    ({"backbone_kwargs": {"include_top": True}}, r"must not set \['include_top'\]"),
    ({"weights": "missing.h5"}, "`weights` must be None"),
    ({"qat": "yes"}, "`qat` must be True or False"),
    ({"optimizer": "lamb"}, r"`optimizer` must be one of \('adam', 'sgd'\), got 'lamb'"),
])
def test_config_errors_name_the_setting(changes, message):
    with pytest.raises(ValueError, match=message):
        finetune.FineTuneConfig(**changes).check()


def test_run_finetune_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"`export` must be a path ending in \.tflite or "
                                         r"\.onnx, got 'model\.pb'"):
        finetune.run_finetune(tmp_path, tmp_path / "out", export="model.pb")
    with pytest.raises(ValueError, match="`config` must be a FineTuneConfig"):
        finetune.run_finetune(tmp_path, tmp_path / "out", config={"epochs": 1})
    with pytest.raises(ValueError, match="`data_dir` .* must hold at least 2 class"):
        finetune.run_finetune(tmp_path, tmp_path / "out")
    with pytest.raises(ValueError, match="`strategy` must be a tf.distribute.Strategy.*'mirrored'"):
        finetune.run_finetune(None, tmp_path / "out", strategy="mirrored")
    assert not (tmp_path / "out").exists()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    data = tf.data.Dataset.from_tensor_slices((np.zeros((4, 4)), np.zeros(4))).batch(2)
    with pytest.raises(ValueError, match="`strategy` must be a tf.distribute.Strategy.*None"):
        finetune.fit_phase(model, data, epochs=1, learning_rate=0.1, strategy=[None])


def test_settings_are_refused_only_with_checkpoints_of_other_settings(tmp_path):
    from keras_mobilenets.finetune import config as config_lib

    config_lib.check_settings(str(tmp_path), {"learning_rate": 0.001, "epochs": 1})
    # A run that stopped before its first checkpoint (e.g. offline): taken over.
    config_lib.check_settings(str(tmp_path), {"learning_rate": 0.1, "epochs": 1})
    with open(tmp_path / "settings.json") as f:
        assert json.load(f) == {"learning_rate": 0.1, "epochs": 1}
    (tmp_path / "checkpoints" / "frozen").mkdir(parents=True)
    (tmp_path / "checkpoints" / "frozen" / "epoch_01.weights.h5").write_bytes(b"weights")
    config_lib.check_settings(str(tmp_path), {"learning_rate": 0.1, "epochs": 1})  # same
    with pytest.raises(ValueError, match=r"holds the checkpoints of a run with other settings "
                                         r"\(learning_rate: 0.1 there, 0.5 now\)"):
        config_lib.check_settings(str(tmp_path), {"learning_rate": 0.5, "epochs": 1})


@pytest.mark.parametrize("changes, names", [
    ({}, ["data", "build", "frozen", "fine_tune", "evaluate"]),
    ({"epochs": 0}, ["data", "build", "fine_tune", "evaluate"]),
    ({"fine_tune_epochs": 0, "qat": True}, ["data", "build", "frozen", "qat", "evaluate"]),
])
def test_step_numbers_count_the_steps_that_run(changes, names, caplog):
    from keras_mobilenets.finetune import workflow

    steps = workflow.Steps.of(finetune.FineTuneConfig(**changes))
    assert steps.names == names
    with caplog.at_level(logging.INFO, logger="keras_mobilenets.finetune"):
        steps.say(names[2], "%s and more", workflow._epochs(1))
        steps.say("evaluate", "%s", workflow._epochs(2))
    assert caplog.messages == [f"[3/{len(names)}] 1 epoch and more",
                               f"[{len(names)}/{len(names)}] 2 epochs"]


@pytest.mark.slow
@pytest.mark.end_to_end
def test_run_finetune_skips_bad_files_and_same_seed_gives_same_numbers(tmp_path, caplog):
    from tests.datasets.test_image_folders import write_messy_folder

    data_dir = write_messy_folder(tmp_path / "photos")
    for name in ("cats", "dogs"):  # more images, so that both splits hold some of each
        for index in range(6):
            image = np.full((16, 16, 3), 20 * index + 100 * (name == "dogs"), dtype="uint8")
            tf.io.write_file(str(data_dir / name / f"more_{index}.png"), tf.io.encode_png(image))
    config = finetune.FineTuneConfig(**TINY, epochs=1, fine_tune_epochs=1, validation_split=0.25)
    output = tmp_path / "run"
    with pytest.raises(ValueError, match=r"3 file\(s\) cannot be used as images \(the list is "
                                         r"in .*skipped_files.txt\)"):
        finetune.run_finetune(data_dir, output, config, strict=True, verbose=0)
    assert not (output / "checkpoints").exists()

    with caplog.at_level(logging.INFO, logger="keras_mobilenets.finetune"):
        first = finetune.run_finetune(data_dir, output, config, verbose=0)
    assert {os.path.basename(entry.path) for entry in first.skipped} == {
        "corrupt.jpg", "truncated.jpg", "notes.txt"}
    with open(first.files["skipped_json"]) as f:
        assert len(json.load(f)) == 3
    assert "[1/5] data: skipped 3 file(s)" in caplog.text
    assert "[3/5] 1 epoch with the backbone frozen" in caplog.text
    assert "[5/5] evaluating" in caplog.text

    # Another run with the same seed in another folder: the same weights, the same numbers.
    second = finetune.run_finetune(data_dir, tmp_path / "again", config, verbose=0)
    assert not second.phases["frozen"].completed_before  # trained again, not loaded
    for a, b in zip(first.model.weights, second.model.weights):
        np.testing.assert_array_equal(np.array(a), np.array(b), err_msg=a.path)
    assert first.rows == second.rows


def test_check_backend_refuses_tensorflow_only_settings_elsewhere(monkeypatch, tmp_path):
    qat = finetune.FineTuneConfig(qat=True)
    finetune.check_backend(qat, export="model_int8.tflite")  # this process runs TensorFlow
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    finetune.check_backend(finetune.FineTuneConfig(), strategy=tf.distribute.get_strategy())
    with pytest.raises(RuntimeError, match=r"^finetune with qat=True and export \(int8 TFLite "
                                           r"or ONNX\) needs the TensorFlow backend of Keras, "
                                           r"but Keras runs on 'jax'\. "
                                           r".*KERAS_BACKEND=tensorflow.* "
                                           r"the float fine-tuning runs on every Keras backend"):
        finetune.check_backend(qat, export="model_int8.tflite")
    with pytest.raises(RuntimeError, match="^finetune with a tf.distribute strategy needs"):
        finetune.check_backend(finetune.FineTuneConfig(),
                               strategy=tf.distribute.OneDeviceStrategy("/cpu:0"))
    with pytest.raises(_checks.BackendError, match="^finetune with sync_batch_norm=True needs"):
        finetune.run_finetune(None, tmp_path / "out",
                              finetune.FineTuneConfig(sync_batch_norm=True))
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_tensorflow_only_settings_are_listed_in_one_order():
    every = finetune.FineTuneConfig(qat=True, sync_batch_norm=True)
    assert finetune.tensorflow_only_settings(every, "m.tflite", distributed=True) == [
        "qat", "export", "sync_batch_norm", "strategy"]
    assert finetune.tensorflow_only_settings(finetune.FineTuneConfig()) == []
    assert finetune.tensorflow_only_settings(finetune.FineTuneConfig(sync_batch_norm=True),
                                             distributed=True) == ["sync_batch_norm", "strategy"]

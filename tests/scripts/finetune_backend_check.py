"""Runs the float fine-tuning workflow on the Keras backend of ``KERAS_BACKEND``.

Used by ``tests/test_finetune_backends.py``, which prepares ``FOLDER`` under TensorFlow
and checks what this script leaves in ``OUT``:

* ``FOLDER/photos`` (in): a class folder of images with undecodable files among them;
  ``FOLDER/backbone.weights.h5`` (in): the starting weights of the backbone (batch norms
  stay frozen when the backbone is unfrozen, as with any pretrained weights);
  ``FOLDER/probe.npz`` (in): images to predict;
* the TensorFlow-only settings (QAT, int8 export, synchronized batch norms, a
  ``tf.distribute`` strategy) are each tried first: their error messages go to
  ``results.json``, and whether they left their output folder behind;
* ``OUT/run`` (out): a run interrupted in its first phase, resumed by the same call, then
  called once more (everything completed: loaded from the checkpoints). Its files stay for
  the test (checkpoints, ``model.keras``, the skipped-files report);
* ``predictions.npz`` (out): the probe images through the resumed run's model, through its
  ``model.keras`` loaded here and through the model of the last call; the head's kernel
  when the resumed phase began;
* ``results.json`` (out): the phases, rows, class names, skipped files and files of the
  runs, the backend, and the seconds of each part.

Usage:
    KERAS_BACKEND=jax python tests/scripts/finetune_backend_check.py FOLDER OUT
"""

import json
import os
import pathlib
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from keras_mobilenets import finetune
from tests import helpers

#: The run's settings; tests/test_finetune_backends.py builds the same classifier.
CONFIG = dict(backbone="MobileNetV3Small", backbone_kwargs={"alpha": 0.35, "minimalistic": True},
              image_size=32, batch_size=8, validation_split=0.25, calibration_images=16,
              optimizer="sgd", epochs=2, fine_tune_epochs=1, latency_runs=5)


class RecordStarts(keras.callbacks.Callback):
    """The head's kernel each time a phase begins training (after any restore)."""

    def __init__(self):
        super().__init__()
        self.kernels = []

    def on_train_begin(self, logs=None):
        self.kernels.append(np.array(self.model.get_layer("head_predictions").kernel))


def refusals(photos, out, config):
    """``{setting: error message or None}`` of the TensorFlow-only settings."""
    calls = {
        "qat": dict(config=finetune.FineTuneConfig(**config, qat=True)),
        "export": dict(config=finetune.FineTuneConfig(**config), export="model_int8.tflite"),
        "sync_batch_norm": dict(config=finetune.FineTuneConfig(**config, sync_batch_norm=True)),
        "strategy": dict(config=finetune.FineTuneConfig(**config),
                         strategy=tf.distribute.OneDeviceStrategy("/cpu:0")),
    }
    messages, left = {}, {}
    for name, arguments in calls.items():
        output = out / f"refused_{name}"
        try:
            finetune.run_finetune(photos, output, verbose=0, **arguments)
            messages[name] = None
        except Exception as error:  # reported (and failed) by the parent test
            messages[name] = f"{type(error).__name__}: {error}"
        left[name] = output.exists()
    return messages, left


def phases(result):
    return {name: {"epochs": list(phase.epochs), "completed_before": phase.completed_before,
                   "losses": [float(x) for x in phase.history.get("loss", [])]}
            for name, phase in result.phases.items()}


def main(folder, out):
    folder, out = pathlib.Path(folder), pathlib.Path(out)
    clock = [("start", time.perf_counter(), time.process_time())]
    photos = folder / "photos"
    config = dict(CONFIG, weights=str(folder / "backbone.weights.h5"))
    results = {"backend": keras.backend.backend()}
    results["refusals"], results["refusal_left_output"] = refusals(photos, out, config)
    clock.append(("refusals", time.perf_counter(), time.process_time()))

    config = finetune.FineTuneConfig(**config)
    run = dict(data_dir=photos, output_dir=out / "run", config=config, verbose=0)
    try:
        finetune.run_finetune(**run, callbacks=[helpers.Interrupt(at=1)])
        results["interrupted"] = False
    except KeyboardInterrupt:
        results["interrupted"] = True
    results["after_interruption"] = sorted(
        str(path.relative_to(out / "run")) for path in (out / "run").rglob("*")
        if path.is_file() and "shapes" not in path.parts)
    clock.append(("interrupted", time.perf_counter(), time.process_time()))

    starts = RecordStarts()
    resumed = finetune.run_finetune(**run, callbacks=[starts])
    clock.append(("resumed", time.perf_counter(), time.process_time()))
    probe = np.load(folder / "probe.npz")["images"]
    predictions = {"resumed": resumed.model.predict(probe, verbose=0),
                   "resumed_start_kernel": starts.kernels[0]}
    loaded = keras.saving.load_model(resumed.files["model"], safe_mode=True)
    predictions["model_keras"] = loaded.predict(probe, verbose=0)
    again = finetune.run_finetune(**run)
    predictions["again"] = again.model.predict(probe, verbose=0)
    clock.append(("again", time.perf_counter(), time.process_time()))

    np.savez(out / "predictions.npz", **predictions)
    for key, result in (("resumed", resumed), ("again", again)):
        results[key] = {
            "phases": phases(result),
            "rows": [[row.name, row.accuracy] for row in result.rows],
            "class_names": list(result.class_names),
            "skipped": sorted(os.path.basename(entry.path) for entry in result.skipped),
            "files": {name: os.fspath(path) for name, path in result.files.items()},
        }
    # Wall and CPU seconds of each part, for the docs' timings (nothing asserts them).
    results["seconds"] = {name: (round(wall - before[1], 1), round(cpu - before[2], 1))
                          for before, (name, wall, cpu) in zip(clock, clock[1:])}
    (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:3])

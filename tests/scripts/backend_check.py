"""Runs the package on the Keras backend of ``KERAS_BACKEND`` against files saved under TF.

Used by ``tests/test_backends.py``, which prepares ``FOLDER`` under TensorFlow and compares
what this script writes to ``OUT`` with TensorFlow's results:

* ``<name>.weights.h5`` (in): weights of each model of ``tests/backend_models.py``; this
  script builds the same architectures, loads them and writes the outputs on
  ``inputs.npz`` to ``outputs.npz`` (dict outputs as ``<name>/<key>``);
* ``<name>.keras`` (in, ``backend_models.KERAS_FROM_TF``): loaded here, outputs in
  ``keras_outputs.npz``; the models of ``KERAS_TO_TF`` are saved from here as
  ``<name>.keras`` (out) for TF to load;
* ``losses.npz`` (in): fixed targets and predictions; the SSD and segmentation losses, the
  segmentation scores and the SSD training targets computed here go to ``results.json``
  and ``targets.npz``;
* ``results.json`` (out) also holds the loss per epoch of a short SSDLite ``fit``, one
  ``fit`` step of every classifier family and LR-ASPP (its loss, the share of weights it
  moved, whether it moved the first) and the message of every TF-only entry point (which
  must refuse this backend).

Usage:
    KERAS_BACKEND=jax python tests/scripts/backend_check.py FOLDER OUT
"""

import json
import pathlib
import sys
import time

import keras
import numpy as np

from keras_mobilenets import detection, distribute, export, quantization, segmentation
from tests import backend_models

def build(make):
    """``make()``, on JAX with the variables left uninitialized (the caller assigns all).

    JAX compiles each random initializer once per weight shape (about 60 compilations,
    most of the build time of a small model); these weights are overwritten anyway.
    """
    if keras.backend.backend() != "jax":
        return make()
    with keras.StatelessScope(initialize_variables=False):
        return make()


def flat(outputs, name):
    """``{name or name/key: numpy array}`` of a model's outputs."""
    if isinstance(outputs, dict):
        return {f"{name}/{key}": np.asarray(value) for key, value in outputs.items()}
    return {name: np.asarray(outputs)}


def run_models(folder, out, inputs):
    models, outputs = {}, {}
    for name, make in backend_models.builders().items():
        model = build(make)
        model.load_weights(folder / f"{name}.weights.h5")
        models[name] = model
    keras.backend.clear_session()  # forget the deferred initializers (all assigned)
    for name, model in models.items():
        outputs.update(flat(model.predict(inputs[name], verbose=0), name))
        if name in backend_models.KERAS_TO_TF:
            model.save(out / f"{name}.keras")
    np.savez(out / "outputs.npz", **outputs)
    loaded = {}
    for name in backend_models.KERAS_FROM_TF:
        model = keras.saving.load_model(folder / f"{name}.keras", safe_mode=True)
        loaded.update(flat(model.predict(inputs[name], verbose=0), name))
    np.savez(out / "keras_outputs.npz", **loaded)
    return models


def losses_and_metrics(folder, out, detector):
    data = dict(np.load(folder / "losses.npz"))
    ssd_true = {"boxes": data["ssd_true_boxes"], "classes": data["ssd_true_classes"]}
    ssd_pred = {"boxes": data["ssd_pred_boxes"], "classes": data["ssd_pred_classes"]}
    values = {}
    for mode in ("hard_negative", "focal"):
        for key, loss in detection.ssd_losses(mode=mode).items():
            values[f"ssd_{mode}_{key}"] = float(loss(ssd_true[key], ssd_pred[key]))
    loss = segmentation.SegmentationCrossEntropy(ignore_label=255)
    values["segmentation"] = float(loss(data["seg_masks"], data["seg_logits"]))
    scores = segmentation.score_masks(data["seg_masks"], data["seg_predictions"],
                                      backend_models.SEG_CLASSES)
    encoder = detection.TargetEncoder(detection.DefaultBoxes.from_model(detector),
                                      (backend_models.HEAD_SIZE,) * 2)
    targets = encoder.encode({"boxes": data["gt_boxes"], "labels": data["gt_labels"]})
    np.savez(out / "targets.npz", **{k: np.asarray(v) for k, v in targets.items()})
    return {"losses": values, "mean_iou": float(scores.mean_iou),
            "per_class_iou": [float(v) for v in scores.per_class_iou]}, targets


def fit(detector, images, targets):
    """Loss per epoch of a few full-batch SGD steps of SSDLite with the SSD losses."""
    detector.compile(keras.optimizers.SGD(0.05), loss=detection.ssd_losses())
    targets = {key: np.asarray(value) for key, value in targets.items()}
    history = detector.fit(images, targets, epochs=4, batch_size=len(images), verbose=0)
    return [float(v) for v in history.history["loss"]]


def fit_step(model, images, labels, loss):
    """One SGD ``fit`` step: ``{"loss", "moved" (share of weights), "first_moved"}``."""
    before = [np.array(w) for w in model.trainable_weights]
    model.compile(keras.optimizers.SGD(0.01), loss=loss)
    history = model.fit(images, labels, batch_size=len(images), epochs=1, verbose=0)
    moved = [not np.array_equal(np.array(w), b) for w, b in zip(model.trainable_weights, before)]
    return {"loss": float(history.history["loss"][-1]), "moved": sum(moved) / len(moved),
            "first_moved": bool(moved[0])}


def fit_families(models, inputs):
    """``fit_step`` of every classifier family (ShuffleNet V1 with g = 1, 3, 8) and LR-ASPP."""
    rng = np.random.default_rng(0)
    classifier_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    steps = {}
    trainees = {name: model for name, model in models.items() if name != "ssdlite"}
    trainees.update({name: make() for name, make in backend_models.fit_builders().items()})
    for name, model in trainees.items():
        if name == "lraspp":
            images = inputs["lraspp"]
            labels = rng.integers(0, backend_models.SEG_CLASSES, images.shape[:3])
            loss = segmentation.SegmentationCrossEntropy(ignore_label=255)
        else:
            images = backend_models.inputs(name)
            labels = rng.integers(0, backend_models.NUM_CLASSES, len(images))
            loss = classifier_loss
        steps[name] = fit_step(model, images, labels, loss)
    return steps


def tensorflow_only(model, detector, out):
    """``{entry point: message of the error it raised, or None}``."""
    import tensorflow as tf

    encoder = detection.TargetEncoder(detection.DefaultBoxes.from_model(detector),
                                      (backend_models.HEAD_SIZE,) * 2)
    images = np.zeros((1, backend_models.HEAD_SIZE, backend_models.HEAD_SIZE, 3), "float32")
    boxes = {"boxes": np.array([[[4, 4, 30, 30]]], "float32"), "labels": np.array([[1]])}
    dataset = tf.data.Dataset.from_tensor_slices((images, boxes)).batch(1)
    calls = {
        "quantization.quantize_model": lambda: quantization.quantize_model(model),
        "export.to_tflite": lambda: export.to_tflite(model, str(out / "m.tflite")),
        "distribute.strategy_from_name": lambda: distribute.strategy_from_name("auto"),
        "distribute.synchronize_batch_norm": lambda: distribute.synchronize_batch_norm(model),
        "detection.inference_model": lambda: detection.inference_model(detector),
        "detection.TargetEncoder in tf.data": lambda: next(iter(dataset.map(encoder))),
    }
    messages = {}
    for name, call in calls.items():
        try:
            call()
            messages[name] = None
        except RuntimeError as error:
            messages[name] = f"RuntimeError: {error}"
        except Exception as error:  # reported (and failed) by the parent test
            messages[name] = f"{type(error).__name__}: {error}"
    return messages


def main(folder, out):
    folder, out = pathlib.Path(folder), pathlib.Path(out)
    clock = [("start", time.perf_counter(), time.process_time())]
    inputs = dict(np.load(folder / "inputs.npz"))
    models = run_models(folder, out, inputs)
    clock.append(("models", time.perf_counter(), time.process_time()))
    detector = models["ssdlite"]
    results, targets = losses_and_metrics(folder, out, detector)
    results["guards"] = tensorflow_only(models["mobilenet_v3_small"], detector, out)
    clock.append(("losses_metrics_guards", time.perf_counter(), time.process_time()))
    results["fit_losses"] = fit(detector, inputs["ssdlite_fit"], targets)
    clock.append(("fit", time.perf_counter(), time.process_time()))
    results["family_fit_steps"] = fit_families(models, inputs)
    clock.append(("family_fit_steps", time.perf_counter(), time.process_time()))
    results["backend"] = keras.backend.backend()
    # Wall and CPU seconds of each part, for the docs' timings (nothing asserts them).
    results["seconds"] = {name: (round(wall - before[1], 1), round(cpu - before[2], 1))
                          for before, (name, wall, cpu) in zip(clock, clock[1:])}
    (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:3])

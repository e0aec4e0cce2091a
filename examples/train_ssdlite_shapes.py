"""Train SSDLite on the synthetic shapes, fine-tune it quantization-aware, export int8 TFLite.

Steps: build ``detection.SSDLite`` on MobileNetV3Small (minimalistic: ReLU, no SE, which
runs fast in int8), train it from scratch on ``datasets.shapes`` detection scenes (96x96,
random horizontal flips), re-estimate the batch-norm statistics (MobileNetV3's
momentum 0.999 leaves them far from the data after a short training), fine-tune the model
quantization-aware (``quantization.quantize_model``), export the whole detector with
its post-processing to a full-int8 TFLite file (``export.to_tflite(..., postprocess=)``)
and compare, on held-out images: COCO mAP and mAP@0.5 (pycocotools) of the untrained,
float, QAT and int8 TFLite detectors, and how many of the QAT model's detections the int8
file reproduces (same label, IoU >= 0.9, every corner within 2 pixels).

Usage::

    python examples/train_ssdlite_shapes.py            # run time: see results.json
    python examples/train_ssdlite_shapes.py --epochs 4 --output-dir runs/ssd   # see --help
    KERAS_MOBILENETS_SMOKE=1 python examples/train_ssdlite_shapes.py   # < 1 minute

Writes the int8 detector, a figure (image | int8 detections | ground truth) and
``results.json`` (the printed figures with the seed, the command line and the machine) to
``--output-dir`` (default ``keras_mobilenets_runs/ssdlite_shapes``).

``run(config)`` returns the numbers (the tests call it with the smoke configuration).
"""

import argparse
import dataclasses
import logging
import os
import sys
import time

# TensorFlow's own log lines off (TF_CPP_MIN_LOG_LEVEL=0 in the environment shows them): the
# level must be set before TensorFlow is imported, and keras_mobilenets, imported first,
# drops the lines TensorFlow prints before it reads it (see keras_mobilenets.quiet).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras_mobilenets  # noqa: E402, F401  (first: it imports TensorFlow)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_mobilenets import detection, export, plotting, training  # noqa: E402
from keras_mobilenets import results as run_results
from keras_mobilenets.datasets import shapes

SMOKE_VARIABLE = "KERAS_MOBILENETS_SMOKE"
logger = logging.getLogger("train_ssdlite_shapes")


@dataclasses.dataclass(frozen=True)
class Config:
    image_size: int = 96
    train_images: int = 3000
    test_images: int = 500
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 4e-3
    qat_epochs: int = 1
    qat_learning_rate: float = 2e-4
    backbone: str = "MobileNetV3Small"
    backbone_kwargs: tuple = (("minimalistic", True),)
    extra_channels: tuple = detection.ssdlite.EXTRA_CHANNELS
    score_threshold: float = 0.25
    max_detections: int = 10
    # Flip only: the SSD random crop (detection.Augmenter(crop=True)) slows convergence too
    # much for a 10-epoch run (a far lower mAP@0.5 with it than without in an earlier
    # measurement, not rerun since; the figures without it: docs/results/ssdlite_shapes).
    augment: bool = True
    crop: bool = False
    verbose: int = 2
    seed: int = 0
    output_dir: str = os.path.join("keras_mobilenets_runs", "ssdlite_shapes")
    figure_images: int = 6  # held-out images drawn in int8_detections.png
    figure_colors: int = 0  # 0: full colour; 2-256: a palette PNG (the README's picture)


# Smoke: 64x64 images and one extra block (at 64 pixels the maps after the stride-32 one
# are all 1x1, so more extra blocks would only add layers to trace, quantize and convert).
SMOKE = Config(image_size=64, train_images=640, test_images=48, epochs=5, learning_rate=6e-3,
               extra_channels=(128,), score_threshold=0.05, verbose=0)


def dataset(images, targets, config, encoder, augmenter=None, shuffle=False, as_tuple=False):
    """``(images, targets)`` batches: optional augmentation, then SSD target encoding."""
    data = tf.data.Dataset.from_tensor_slices((images.astype("float32"), targets))
    if shuffle:
        data = data.shuffle(len(images), seed=config.seed, reshuffle_each_iteration=True)
    if augmenter is not None:
        # One image at a time: the augmenter's random ops keep one state, so parallel calls
        # would draw in the order the threads happen to run (measured on two cores: two
        # pipelines of the same seed gave different batches; tests/test_example_data_order.py).
        data = data.map(augmenter)
    data = data.batch(config.batch_size).map(encoder, num_parallel_calls=tf.data.AUTOTUNE)
    if as_tuple:  # a tfmot QAT model has list outputs: boxes, classes
        data = data.map(lambda x, y: (x, (y["boxes"], y["classes"])))
    return data.prefetch(tf.data.AUTOTUNE)


def _metrics(ground_truth, detections, size):
    return detection.coco_metrics(ground_truth, detections, image_shape=(size, size),
                                  num_classes=shapes.NUM_CLASSES)


def run(config=Config()):
    """Runs the whole example; returns a dict of the measured numbers."""
    start = time.perf_counter()
    stamp = lambda what: logger.info("%s: %.1f s", what, time.perf_counter() - start)  # noqa: E731
    keras.utils.set_random_seed(config.seed)
    size = config.image_size
    train_x, train_y = shapes.load("train", config.train_images, size, task="detection",
                                   seed=config.seed)
    test_x, test_y = shapes.load("test", config.test_images, size, task="detection",
                                 seed=config.seed)
    test_x = test_x.astype("float32")
    model = detection.SSDLite(config.backbone, num_classes=shapes.NUM_CLASSES,
                              input_shape=(size, size, 3),
                              backbone_kwargs=dict(config.backbone_kwargs),
                              extra_channels=config.extra_channels)
    encoder = detection.TargetEncoder(detection.DefaultBoxes.from_model(model), (size, size))
    augmenter = detection.Augmenter((size, size), crop=config.crop) if config.augment else None
    postprocess = detection.SSDPostprocess.from_model(
        model, score_threshold=config.score_threshold, max_detections=config.max_detections)

    def keras_detections(predict):
        batches = [predict(test_x[i:i + 64]) for i in range(0, len(test_x), 64)]
        outputs = [{k: np.asarray(v) for k, v in postprocess(b).items()} for b in batches]
        return {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}

    rows = {}
    training.reestimate_batch_norm(model, train_x[:256].astype("float32"))
    rows["untrained (float)"] = _metrics(
        test_y, keras_detections(lambda x: model(x, training=False)), size)
    stamp("built and evaluated the untrained model")

    steps = config.epochs * -(-config.train_images // config.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)
    # XLA compilation of the train step takes longer than it saves in a run this short.
    model.compile(keras.optimizers.Adam(schedule), loss=detection.ssd_losses(), jit_compile=False)
    train_data = dataset(train_x, train_y, config, encoder, augmenter, shuffle=True)
    history = model.fit(train_data, epochs=config.epochs, verbose=config.verbose)
    # MobileNetV3's batch norm (momentum 0.999) has not caught up with the trained weights.
    training.reestimate_batch_norm(model, train_x[:512].astype("float32"))
    rows["Keras float"] = _metrics(
        test_y, keras_detections(lambda x: model(x, training=False)), size)
    train_seconds = time.perf_counter() - start
    stamp("trained")

    from keras_mobilenets.quantization import quantize_model

    import tf_keras  # installed with the qat extra, which quantize_model needs

    # Calibrated quantization ranges: QAT starts from ranges measured on training images.
    qat = quantize_model(model, calibration_data=train_x[:512].astype("float32"))
    qat.compile(tf_keras.optimizers.Adam(config.qat_learning_rate),
                loss=list(detection.ssd_losses().values()))
    qat.fit(dataset(train_x, train_y, config, encoder, augmenter, shuffle=True, as_tuple=True),
            epochs=config.qat_epochs, verbose=config.verbose)
    qat_detections = keras_detections(lambda x: qat(x, training=False))
    rows["Keras QAT"] = _metrics(test_y, qat_detections, size)
    stamp("QAT")

    flatbuffer = export.to_tflite(qat, quantization="int8", postprocess=postprocess)
    stamp("exported")
    runner = export.LiteRTModel(flatbuffer)
    tflite = detection.tflite_detections(runner, test_x)
    rows["TFLite int8"] = _metrics(test_y, tflite, size)
    agreement, compared = detection.detection_agreement(qat_detections, tflite, (size, size))
    kernels = export.op_tensor_types(flatbuffer)
    int8_kernels = all((k["input"], k["weights"], k["output"]) == ("INT8",) * 3 for k in kernels)
    return {
        "rows": rows,
        "loss": [float(v) for v in history.history["loss"]],
        "agreement": agreement,
        "compared_detections": compared,
        "kernels": len(kernels),
        "int8_kernels": int8_kernels,
        "op_report": export.op_report(flatbuffer),
        "tflite_kib": len(flatbuffer) / 1024,
        "latency_ms": runner.latency(runs=20, warmup=3).median_ms,
        "train_seconds": train_seconds,
        "seconds": time.perf_counter() - start,
        "flatbuffer": flatbuffer,
        "images": test_x[:config.figure_images],
        "detections": {k: v[:config.figure_images] for k, v in tflite.items()},
        "ground_truth": {k: v[:config.figure_images] for k, v in test_y.items()},
    }


def draw_detections(images, detections, path, ground_truth=None, colors=None):
    """Saves image | detections (| ground truth), one row per image: boxes in their class
    colours with names and scores, and a legend of the class colours (``colors``: see
    ``plotting.save_comparison``)."""
    class_colors = plotting.class_colors(shapes.NUM_CLASSES + 1)[1:] / 255.0  # no background

    def boxes_drawer(found, scores=True):
        from matplotlib.patches import Rectangle

        def draw(axis, index):
            for k, (box, label) in enumerate(zip(found["boxes"][index], found["labels"][index])):
                if label < 0:
                    continue
                x1, y1, x2, y2 = box
                axis.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, linewidth=2,
                                         color=class_colors[label]))
                text = shapes.CLASS_NAMES[label]
                if scores:
                    text += f" {found['scores'][index][k]:.2f}"
                axis.text(x1, y1, text, color="white", fontsize=7, verticalalignment="bottom",
                          backgroundcolor=class_colors[label])

        return draw

    panels = [("image", images, None), ("int8 TFLite detections", images,
                                        boxes_drawer(detections))]
    if ground_truth is not None:
        panels.append(("ground truth", images, boxes_drawer(ground_truth, scores=False)))
    return plotting.save_comparison(
        panels, path, legend=list(zip(shapes.CLASS_NAMES, class_colors)), colors=colors)


def table(results):
    """The results as a text table."""
    lines = [f"{'detector':<20} {'mAP':>7} {'mAP@0.5':>8}"]
    for name, metrics in results["rows"].items():
        lines.append(f"{name:<20} {metrics['mAP']:>7.3f} {metrics['mAP@0.5']:>8.3f}")
    lines.append(
        f"int8 TFLite reproduces {100 * results['agreement']:.1f}% of the QAT model's "
        f"{results['compared_detections']} detections (same label, IoU >= 0.9, within 2 px)")
    lines.append(
        f"{results['kernels']} CONV_2D/DEPTHWISE_CONV_2D ops, all int8: {results['int8_kernels']}; "
        f"file {results['tflite_kib']:.0f} KiB, {results['latency_ms']:.2f} ms per image")
    lines.append(f"training {results['train_seconds']:.0f} s, total {results['seconds']:.0f} s")
    return "\n".join(lines)


def config_from_environment():
    """``SMOKE`` when ``KERAS_MOBILENETS_SMOKE=1``, else the full ``Config()``."""
    return SMOKE if os.environ.get(SMOKE_VARIABLE) == "1" else Config()


def parse_config(argv=None):
    """The ``Config`` from the command line; defaults from :func:`config_from_environment`."""
    defaults = config_from_environment()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for field in dataclasses.fields(Config):
        value = getattr(defaults, field.name)
        if isinstance(value, tuple):
            continue  # structured settings (backbone arguments, extra blocks): code only
        flag = "--" + field.name.replace("_", "-")
        if isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        else:
            parser.add_argument(flag, type=type(value), default=value,
                                help=f"(default: {value})")
    config = dataclasses.replace(defaults, **vars(parser.parse_args(argv)))
    if config.figure_images < 1:
        parser.error(f"--figure-images must be at least 1, got {config.figure_images}")
    if config.figure_colors and not 2 <= config.figure_colors <= 256:
        parser.error("--figure-colors must be 0 (full colour) or in [2, 256], got "
                     f"{config.figure_colors}")
    return config


def main(argv=None):
    config = parse_config(argv)
    logging.basicConfig(level=logging.WARNING)
    logger.setLevel(logging.INFO)
    results = run(config)
    print(results["op_report"])
    print(table(results))
    os.makedirs(config.output_dir, exist_ok=True)
    path = os.path.join(config.output_dir, "ssdlite_shapes_int8.tflite")
    with open(path, "wb") as f:
        f.write(results["flatbuffer"])
    print(f"int8 detector written to {path}")
    figure = draw_detections(results["images"], results["detections"],
                             os.path.join(config.output_dir, "int8_detections.png"),
                             ground_truth=results["ground_truth"],
                             colors=config.figure_colors or None)
    print(f"int8 detections drawn on held-out images: {figure}")
    path = write_results(config, results, argv)
    print(f"Figures, seed, command and machine: {path}")
    return 0


def write_results(config, results, argv=None):
    """Writes ``results.json`` (table, seed, command line, machine) to the output folder."""
    program = "python examples/train_ssdlite_shapes.py"
    if os.environ.get(SMOKE_VARIABLE) == "1":
        program = f"{SMOKE_VARIABLE}=1 {program}"
    rows = [{"name": name, **metrics} for name, metrics in results["rows"].items()]
    figures = {key: results[key] for key in (
        "agreement", "compared_detections", "kernels", "int8_kernels", "tflite_kib",
        "latency_ms", "train_seconds", "loss")}
    return run_results.write_results(
        config.output_dir, "ssdlite_shapes", config.seed,
        run_results.command_line(program, argv), rows, settings=config,
        seconds=results["seconds"], **figures)


if __name__ == "__main__":
    sys.exit(main())

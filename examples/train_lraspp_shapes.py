"""Train LR-ASPP on the synthetic shapes segmentation data, fine-tune it QAT, export int8.

LR-ASPP is the segmentation head of "Searching for MobileNetV3" (Howard et al. 2019,
arXiv:1905.02244, section 6.3). This script trains ``segmentation.LRASPP`` on a
MobileNetV3Small backbone (dilated to output stride 16) on the package's embedded shapes
data (6 classes: background + 5 shapes), with flip / scale augmentation, re-estimates the
backbone's batch-norm statistics (MobileNetV3's momentum 0.999 leaves them far from the
data's after a short run), fine-tunes it quantization-aware, exports float32 and full-int8
TFLite files and prints held-out mean IoU, pixel agreement, size and latency of each.

Usage:
    python examples/train_lraspp_shapes.py [--image-size 128] [--epochs 6] [--seed 0]
        [--output-dir DIR]
    KERAS_MOBILENETS_SMOKE=1 python examples/train_lraspp_shapes.py   # tiny, < 60 s

Prints the table and writes it, with the seed, the command line and the machine, to
``results.json`` in the output folder; measured figures (and the command they came
from) are in docs/segmentation.md.
"""

import argparse
import dataclasses
import os
import sys
import time

# TensorFlow's own log lines off (TF_CPP_MIN_LOG_LEVEL=0 in the environment shows them): the
# level must be set before TensorFlow is imported, and keras_mobilenets, imported first,
# drops the lines TensorFlow prints before it reads it (see keras_mobilenets.quiet).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_mobilenets import quiet  # noqa: E402  (first: it imports TensorFlow)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_mobilenets import export, segmentation  # noqa: E402
from keras_mobilenets.datasets import shapes  # noqa: E402
from keras_mobilenets import plotting, results  # noqa: E402
from keras_mobilenets.training import reestimate_batch_norm  # noqa: E402

SMOKE_ENV = "KERAS_MOBILENETS_SMOKE"
NUM_CLASSES = shapes.NUM_CLASSES + 1  # background + the shapes


@dataclasses.dataclass(frozen=True)
class Config:
    """What to train and measure; the defaults reach mean IoU >= 0.8 on held-out images."""

    backbone: str = "MobileNetV3Small"
    alpha: float = 1.0
    image_size: int = 128
    train_images: int = 4000
    test_images: int = 500
    epochs: int = 6
    qat_epochs: int = 1
    qat_steps: int = 0  # > 0: that many steps per QAT epoch, run eagerly (no tracing)
    batch_size: int = 32
    learning_rate: float = 5e-3
    qat_learning_rate: float = 1e-4
    augment: bool = True
    float_tflite: bool = True  # also export and measure a float32 TFLite file
    latency_runs: int = 50
    seed: int = 0  # of the data, the initialization, the shuffling and the augmentation
    output_dir: str = os.path.join("keras_mobilenets_runs", "lraspp_shapes")


# Tiny sizes and few steps: checks that everything runs, not how well it trains.
SMOKE = dict(alpha=0.35, image_size=64, train_images=512, test_images=32, epochs=2,
             qat_steps=2, batch_size=16, learning_rate=1e-2, float_tflite=False, latency_runs=3)


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the result table."""

    name: str
    mean_iou: float
    agreement: float = None  # fraction of pixels whose class matches the row's reference
    size_kib: float = None
    latency_ms: float = None


@dataclasses.dataclass(frozen=True)
class Result:
    """Everything the run measured."""

    config: Config
    rows: tuple
    per_class_iou: np.ndarray  # of the int8 file
    losses: tuple  # float training loss per epoch
    models: dict  # "float": the Keras model, "qat": its QAT model
    files: dict  # "float32", "int8": the .tflite paths
    seconds: float

    def row(self, name):
        return next(row for row in self.rows if row.name == name)

    def table(self):
        def cell(value, fmt):
            return format("-" if value is None else format(value, fmt), f">{fmt.split('.')[0]}")

        lines = [f"{'model':22s} {'mean IoU':>8s} {'agreement':>9s} {'size KiB':>9s} "
                 f"{'latency ms':>10s}"]
        lines += [f"{r.name:22s} {cell(r.mean_iou, '8.4f')} {cell(r.agreement, '9.4f')} "
                  f"{cell(r.size_kib, '9.1f')} {cell(r.latency_ms, '10.3f')}" for r in self.rows]
        names = ("background", *shapes.CLASS_NAMES)
        lines.append("int8 IoU per class: " + ", ".join(
            f"{name} {iou:.3f}" for name, iou in zip(names, self.per_class_iou)))
        return "\n".join(lines)


def training_data(config, images, masks):
    """Shuffled, augmented batches of (float images in [0, 255], uint8 masks)."""
    dataset = tf.data.Dataset.from_tensor_slices((images.astype("float32"), masks))
    dataset = dataset.shuffle(len(images), seed=config.seed).batch(config.batch_size)
    if config.augment:
        # One batch at a time: the random layers draw from one seed generator, so parallel
        # calls would draw in the order the threads happen to run (measured on two cores: two
        # pipelines of the same seed gave different batches; tests/test_example_data_order.py).
        dataset = dataset.map(segmentation.segmentation_augmentation(seed=config.seed))
    return dataset.prefetch(tf.data.AUTOTUNE)


def run(config, verbose=2):
    """Trains, QAT fine-tunes, exports and measures; returns a ``Result``."""
    from keras_mobilenets.quantization import quantize_model

    start = time.perf_counter()

    def say(message):
        print(f"[{time.perf_counter() - start:6.1f} s] {message}", flush=True)

    size = config.image_size
    say(f"Generating shapes: {config.train_images} train / {config.test_images} test images "
        f"at {size}x{size}")
    x_train, y_train = shapes.load("train", config.train_images, size, task="segmentation",
                                   seed=config.seed)
    x_test, y_test = shapes.load("test", config.test_images, size, task="segmentation",
                                 seed=config.seed)
    x_test = x_test.astype("float32")
    dataset = training_data(config, x_train, y_train)

    keras.utils.set_random_seed(config.seed)
    model = segmentation.LRASPP(config.backbone, num_classes=NUM_CLASSES,
                                input_shape=(size, size, 3), alpha=config.alpha)
    untrained = segmentation.evaluate(model, x_test, y_test, num_classes=NUM_CLASSES)
    say(f"Training LR-ASPP on {config.backbone} (alpha {config.alpha}, "
        f"{model.count_params():,} parameters) for {config.epochs} epochs")
    steps = config.epochs * len(dataset)
    loss = segmentation.SegmentationCrossEntropy()
    model.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)),
        loss=loss,
    )
    history = model.fit(dataset, epochs=config.epochs, shuffle=False,  # shuffled above
                        verbose=verbose)
    reestimate_batch_norm(model, x_train[:512], batch_size=64)
    float_masks = segmentation.predict_masks(model, x_test)

    say(f"Quantization-aware fine-tuning for {config.qat_epochs} epoch(s)")
    # Calibrated quantization ranges: QAT starts from ranges measured on training images.
    qat_model = quantize_model(model, calibration_data=x_train[:512])
    import tf_keras  # installed with the qat extra, which quantize_model needs

    qat_model.compile(optimizer=tf_keras.optimizers.Adam(config.qat_learning_rate), loss=loss,
                      run_eagerly=config.qat_steps > 0)
    qat_model.fit(dataset, epochs=config.qat_epochs, steps_per_epoch=config.qat_steps or None,
                  shuffle=False, verbose=verbose)
    qat_masks = segmentation.predict_masks(qat_model, x_test)

    say("Exporting TFLite files, running them with LiteRT")
    os.makedirs(config.output_dir, exist_ok=True)
    names = ("float32", "int8") if config.float_tflite else ("int8",)
    files = {name: os.path.join(config.output_dir, f"lraspp_shapes_{name}.tflite")
             for name in names}
    if config.float_tflite:
        export.to_tflite(model, files["float32"])
    export.to_tflite(qat_model, files["int8"], quantization="int8")
    runners = {name: export.LiteRTModel(path) for name, path in files.items()}
    file_masks = {name: segmentation.predict_masks(r, x_test) for name, r in runners.items()}

    def score(predictions):
        return segmentation.score_masks(y_test, predictions, NUM_CLASSES)

    def agreement(a, b):
        return float(np.mean(a == b))

    def file_row(title, name, reference):
        latency = runners[name].latency(runs=config.latency_runs).median_ms
        return Row(title, score(file_masks[name]).mean_iou,
                   agreement(file_masks[name], reference),
                   os.path.getsize(files[name]) / 1024, latency)

    rows = (
        Row("Keras untrained", untrained.mean_iou),
        Row("Keras float", score(float_masks).mean_iou),
        Row("Keras QAT", score(qat_masks).mean_iou, agreement(qat_masks, float_masks)),
        *([file_row("TFLite float32", "float32", float_masks)] if config.float_tflite else []),
        file_row("TFLite int8 (QAT)", "int8", qat_masks),
    )
    figure = compare_masks(x_test[:6], file_masks["int8"][:6], y_test[:6],
                           os.path.join(config.output_dir, "int8_masks.png"))
    return Result(config, rows, score(file_masks["int8"]).per_class_iou,
                  tuple(history.history["loss"]), {"float": model, "qat": qat_model},
                  {**files, "figure": figure}, time.perf_counter() - start)


def compare_masks(images, predicted, true, path):
    """Saves image | int8 prediction | ground truth, one row per image, with the class
    colours' legend."""
    names = ("background", *shapes.CLASS_NAMES)
    return plotting.save_comparison(
        [("image", images, None),
         ("int8 TFLite prediction", plotting.masks_to_rgb(predicted, NUM_CLASSES), None),
         ("ground truth", plotting.masks_to_rgb(true, NUM_CLASSES), None)],
        path, legend=list(zip(names, plotting.class_colors(NUM_CLASSES))))


def main(argv=None):
    """Parses the command line (and ``KERAS_MOBILENETS_SMOKE``), runs, prints the table."""
    defaults = Config()
    if os.environ.get(SMOKE_ENV, "") not in ("", "0"):
        defaults = dataclasses.replace(defaults, **SMOKE)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in dataclasses.fields(Config):
        value = getattr(defaults, field.name)
        flag = "--" + field.name.replace("_", "-")
        if isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        else:
            parser.add_argument(flag, type=type(value), default=value,
                                help=f"(default: {value})")
    config = Config(**vars(parser.parse_args(argv)))
    result = run(config, verbose=quiet.progress_verbosity())  # plain lines unless a terminal
    print(f"\nLR-ASPP on shapes, {config.image_size}x{config.image_size}, "
          f"{config.test_images} held-out images ({result.seconds:.0f} s in all)")
    print(result.table())
    path = write_results(config, result, argv)
    print(f"Figures, seed, command and machine: {path}")
    return result


def write_results(config, result, argv=None):
    """Writes ``results.json`` (table, seed, command line, machine) to the output folder."""
    program = "python examples/train_lraspp_shapes.py"
    if os.environ.get(SMOKE_ENV, "") not in ("", "0"):
        program = f"{SMOKE_ENV}=1 {program}"
    names = ("background", *shapes.CLASS_NAMES)
    return results.write_results(
        config.output_dir, "lraspp_shapes", config.seed, results.command_line(program, argv),
        result.rows, settings=config, seconds=result.seconds,
        int8_iou_per_class=dict(zip(names, map(float, result.per_class_iou))),
        losses=[float(v) for v in result.losses],
        int8_ops=dict(export.op_histogram(result.files["int8"]).most_common()))


if __name__ == "__main__":
    main()

"""MobileNetV4 int8: top-1 agreement of the int8 TFLite file with its QAT model, per variant.

For each of the five MobileNetV4 builders, at a small input size with the classes of the
embedded shapes data (``datasets.shapes``); image size, training images and epochs are
per variant (``SETTINGS``; ``--image-size``, ``--train-images``, ``--epochs`` and
``--learning-rate`` set them for every variant):

1. train the float model from scratch on the shapes train split, every residual branch
   started at 0.1 of its output (``damp_residual_branches``; ``--branch-init``), in
   batches reshuffled every epoch (``training_data``: Keras' own ``fit(x, y,
   shuffle=True)`` repeats one permutation every epoch once a seed is set, and the models
   then learnt the fixed batches instead of the shapes), and re-estimate its batch-norm
   statistics;
2. ``quantization.quantize_model`` with calibration on training images, then a short
   quantization-aware fine-tune;
3. ``export.to_tflite(qat, quantization="int8")`` and run the file with LiteRT
   (``export.LiteRTModel``) on the shapes test split;
4. measure the top-1 agreement of the int8 file with the QAT model's argmax and the
   accuracy of the float, QAT and int8 models;
5. time the trained weights as float32 and int8 TFLite files at the variant's ImageNet
   input size (``latency_at_size``; ``--latency-size`` sets another), int8 by post-training
   quantization on shapes images of that size; the hybrids also with the opt-in
   "float_ops" rewrite. Trained weights, not fresh ones: a fresh hybrid's layer scales
   (1e-5) make the quantized residual ADDs' input scales so unequal that XNNPACK refuses
   them; trained layer scales are what a user's file has.

The models end in logits (``classifier_activation=None``): an int8 softmax output has a
step of 1/256, so two close classes can tie and the argmax of a tie is not a disagreement
of the network. A table is printed and ``results.json`` saved under ``--output-dir``.

Usage:
    python benchmarks/mobilenet_v4_int8.py [--variants conv_small,hybrid_medium]
        [--image-size 64] [--train-images 6000] [--epochs 6]
        [--output-dir keras_mobilenets_runs/mobilenet_v4_int8]
"""

import argparse
import functools
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_mobilenets  # noqa: E402
from keras_mobilenets import export, quantization  # noqa: E402
from keras_mobilenets.datasets import shapes  # noqa: E402
from keras_mobilenets.export import compare  # noqa: E402
from keras_mobilenets.finetune.data import arrays_dataset  # noqa: E402
from keras_mobilenets.specs.mobilenet_v4 import DEFAULT_SIZES  # noqa: E402
from keras_mobilenets.training import reestimate_batch_norm  # noqa: E402

VARIANTS = ("conv_small", "hybrid_medium", "conv_medium", "conv_large", "hybrid_large")
# Per variant: (image size, training images, float epochs, learning rate). With the
# residual branches damped to 0.1 (``--branch-init``) the conv variants learn the shapes
# at 24,000 x 2 (test accuracy 0.93 / 0.99 / 0.98 for Small / Medium / Large, 7 to 43
# minutes on one core); undamped, Conv-Medium stayed at 0.29 and Conv-Small needed
# 48,000 x 4 for 0.89. The hybrids need a lower learning rate: Hybrid-Medium reached
# 0.68 at 24,000 x 2 and chance at 48,000 x 2 from 3e-3, 0.93 at 24,000 x 2 from 1e-3.
# Hybrid-Large with the same settings: 0.96 (57 minutes on one core).
SETTINGS = {
    "conv_small": (64, 24000, 2, 3e-3),
    "hybrid_medium": (64, 24000, 2, 1e-3),
    "conv_medium": (64, 24000, 2, 3e-3),
    "conv_large": (64, 24000, 2, 3e-3),
    "hybrid_large": (64, 24000, 2, 1e-3),
}
REQUIRED_AGREEMENT = 0.98


def builder(variant):
    title = "".join(part.capitalize() for part in variant.split("_"))
    return getattr(keras_mobilenets, f"MobileNetV4{title}")


def build(variant, image_size, seed=None):
    if seed is not None:
        keras.utils.set_random_seed(seed)
    return builder(variant)(input_shape=(image_size, image_size, 3), classes=shapes.NUM_CLASSES,
                            classifier_activation=None, dropout_rate=0.0)


def layer_scales(model):
    """The layer-scale layers of a hybrid (none in the conv variants)."""
    return [layer for layer in model.layers if layer.name.endswith("layer_scale")]


def damp_residual_branches(model, factor):
    """Starts every residual branch of ``model`` at ``factor`` times its output; returns
    how many residual branches it changed.

    The branch is the second input of each residual ``Add``: its last op is a layer scale
    in the hybrids and a batch norm in the conv variants (its scale set to ``factor``,
    from 1). Every layer scale of the hybrids is set to ``factor`` (from timm's 1e-5),
    also those of blocks without a residual (stride 2 or a new width), where the next
    batch norm undoes any constant factor in training. Trained from scratch here, a fresh
    Hybrid-Medium (layer scales 1e-5) and an undamped Conv-Medium stayed near chance where
    the same training with branches at 0.1 learnt (``SETTINGS``).
    """
    producers = {id(layer.output): layer for layer in model.layers
                 if not isinstance(layer, keras.layers.InputLayer)}
    branches = [producers[id(layer.input[1])] for layer in model.layers
                if isinstance(layer, keras.layers.Add)]
    scales = layer_scales(model)
    for layer in branches:
        if not (layer in scales or (
                isinstance(layer, keras.layers.BatchNormalization) and layer.scale)):
            raise ValueError(f"a residual branch ends in {layer.name!r}, neither a layer "
                             "scale nor a batch norm with a scale")
    for layer in {id(layer): layer for layer in branches + scales}.values():
        weights = layer.get_weights()  # layer scale: [factors]; batch norm: [gamma, ...]
        weights[0] = np.full_like(weights[0], factor)
        layer.set_weights(weights)
    return len(branches)


def layer_scale_median(model):
    """Median absolute layer-scale factor of a hybrid (None for the conv variants)."""
    factors = [np.abs(layer.get_weights()[0]).ravel() for layer in layer_scales(model)]
    return float(np.median(np.concatenate(factors))) if factors else None


def latency_at_size(model, variant, size, args):
    """``{"float32" / "int8" [/ "int8_float_ops"]: (median ms, KiB)}`` of ``model``'s weights
    at ``size``.

    The weights are copied into the same variant built at ``size`` (the networks are fully
    convolutional up to the pooling, so every weight keeps its shape); int8 is calibrated
    on ``args.calibration`` shapes images of that size. The hybrids get a third file, int8
    with the opt-in "float_ops" rewrite (attention in float32 on XNNPACK). Files are timed
    against each other in ``args.repeats`` interleaved rounds (``export.time_in_rounds``;
    the median over the rounds counts), so that load on the machine changes all alike, and
    saved as ``<variant>_<size>_timed_<file>.tflite``.
    """
    resized = build(variant, size)
    resized.set_weights(model.get_weights())
    images, _ = shapes.load("train", num_images=args.calibration, image_size=size,
                            seed=args.seed)
    int8 = functools.partial(export.to_tflite, resized, quantization="int8",
                             representative_data=images.astype("float32"))
    files = {"float32": export.to_tflite(resized), "int8": int8()}
    if variant.startswith("hybrid"):
        files["int8_float_ops"] = int8(int8_rewrites=(*export.DEFAULT_REWRITES, "float_ops"))
    for name, content in files.items():
        with open(os.path.join(args.output_dir, f"{variant}_{size}_timed_{name}.tflite"),
                  "wb") as f:
            f.write(content)
    times = export.time_in_rounds(files, num_threads=args.threads, rounds=args.repeats,
                                  runs=args.runs)
    return {k: (times.median_ms(k), len(files[k]) / 1024) for k in files}


def training_data(x, y, batch_size, seed):
    """The float training batches: a ``tf.data`` pipeline reshuffled every epoch.

    Not ``model.fit(x, y, shuffle=True)``: with a global seed set (``build`` sets it),
    Keras 3's numpy adapter draws the same permutation every epoch, so every epoch has
    the same batches, and the networks learn those fixed batches (through the batch
    statistics of their batch norms in training mode) instead of the shapes.
    """
    return arrays_dataset(x, y, batch_size, shuffle_seed=seed)


def train_float(model, x, y, epochs, batch_size, learning_rate, seed=0):
    steps = epochs * int(np.ceil(len(x) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(training_data(x, y, batch_size, seed), epochs=epochs, shuffle=False,  # shuffled
              verbose=0)
    reestimate_batch_norm(model, x[:512], batch_size=32)


def quantize_and_fine_tune(model, x, y, epochs, batch_size, learning_rate, calibration,
                           images):
    from keras_mobilenets.quantization._tf_keras import tf_keras

    qat = quantization.quantize_model(model, calibration_data=x[:calibration])
    x, y = x[:images], y[:images]
    if epochs:
        qat.compile(optimizer=tf_keras.optimizers.Adam(learning_rate),
                    loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        qat.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0)
    return qat


def settings(variant, args):
    """``(image_size, train_images, epochs, learning_rate)`` of ``variant``: SETTINGS
    unless overridden."""
    default = SETTINGS[variant]
    overrides = (args.image_size, args.train_images, args.epochs, args.learning_rate)
    return tuple(d if o is None else o for d, o in zip(default, overrides))


def load_data(image_size, train_images, test_images, seed):
    x_train, y_train = shapes.load("train", num_images=train_images, image_size=image_size,
                                   seed=seed)
    x_test, y_test = shapes.load("test", num_images=test_images, image_size=image_size,
                                 seed=seed)
    return (x_train.astype("float32"), y_train), (x_test.astype("float32"), y_test)


def measure(variant, args):
    size, n, epochs, learning_rate = settings(variant, args)
    (x, y), (x_test, y_test) = load_data(size, n, args.test_images, args.seed)
    started = time.perf_counter()
    model = build(variant, size, args.seed)
    if args.branch_init is not None:
        damp_residual_branches(model, args.branch_init)
    train_float(model, x, y, epochs, args.batch_size, learning_rate, args.seed)
    float_logits = model.predict(x_test, batch_size=64, verbose=0)
    trained = time.perf_counter()

    qat = quantize_and_fine_tune(model, x, y, args.qat_epochs, args.batch_size,
                                 args.qat_learning_rate, args.calibration, args.qat_images)
    qat_logits = qat.predict(x_test, batch_size=64, verbose=0)
    int8 = export.to_tflite(qat, quantization="int8")
    int8_logits = export.LiteRTModel(int8).predict(x_test)
    with open(os.path.join(args.output_dir, f"{variant}_{size}_int8.tflite"), "wb") as f:
        f.write(int8)
    latency_size = args.latency_size or DEFAULT_SIZES[variant]
    latency = latency_at_size(model, variant, latency_size, args)
    return {
        "variant": variant,
        "image_size": int(size),
        "train_images": int(n),
        "epochs": int(epochs),
        "learning_rate": float(learning_rate),
        "branch_init": args.branch_init,
        "test_images": int(len(x_test)),
        "float_accuracy": compare.accuracy(float_logits, y_test),
        "qat_accuracy": compare.accuracy(qat_logits, y_test),
        "int8_accuracy": compare.accuracy(int8_logits, y_test),
        "agreement_int8_qat": compare.agreement(int8_logits, qat_logits),
        "agreement_qat_float": compare.agreement(qat_logits, float_logits),
        "predicted_classes_int8": int(len(np.unique(np.argmax(int8_logits, axis=-1)))),
        "max_abs_logit_diff_int8_qat": float(np.abs(int8_logits - qat_logits).max()),
        "logit_range_qat": float(qat_logits.max() - qat_logits.min()),
        "layer_scale_median": layer_scale_median(model),
        "latency_size": int(latency_size),
        "float32_ms": latency["float32"][0],
        "int8_ms": latency["int8"][0],
        "int8_float_ops_ms": latency.get("int8_float_ops", (None,))[0],
        "float32_kib": latency["float32"][1],
        "int8_kib": latency["int8"][1],
        "train_seconds": trained - started,
        "total_seconds": time.perf_counter() - started,
    }


def _cell(milliseconds):
    return f"{'-':>7s}" if milliseconds is None else f"{milliseconds:7.2f}"


def format_table(results):
    lines = [f"{'variant':14s} {'size':>4s} {'train':>5s} {'ep':>2s} {'test':>5s} {'float':>6s} "
             f"{'QAT':>6s} {'int8':>6s} {'agree':>6s} {'at':>4s} {'f32 ms':>7s} {'int8 ms':>7s} "
             f"{'fl.ops':>7s} {'s':>5s}"]
    for r in results:
        lines.append(
            f"{r['variant']:14s} {r['image_size']:4d} {r['train_images']:5d} {r['epochs']:2d} "
            f"{r['test_images']:5d} "
            f"{r['float_accuracy']:6.3f} {r['qat_accuracy']:6.3f} {r['int8_accuracy']:6.3f} "
            f"{r['agreement_int8_qat']:6.3f} {r['latency_size']:4d} {r['float32_ms']:7.2f} "
            f"{r['int8_ms']:7.2f} {_cell(r['int8_float_ops_ms'])} "
            f"{r['total_seconds']:5.0f}")
    return "\n".join(lines)


def branch_init(text):
    """``--branch-init``: a factor >= 0, or "builder" (None: keep the builders' values)."""
    if text == "builder":
        return None
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"a factor >= 0 or 'builder', got {text!r}")
    return value


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--image-size", type=int, default=None,
                        help="input size of every variant (default: per variant, SETTINGS)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="float training epochs of every variant (default: SETTINGS)")
    parser.add_argument("--qat-epochs", type=int, default=1)
    parser.add_argument("--qat-images", type=int, default=1000,
                        help="training images of the QAT fine-tune")
    parser.add_argument("--train-images", type=int, default=None,
                        help="training images of every variant (default: SETTINGS)")
    parser.add_argument("--test-images", type=int, default=300)
    parser.add_argument("--calibration", type=int, default=128, help="calibration images")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="float training's initial learning rate (default: SETTINGS)")
    parser.add_argument("--branch-init", type=branch_init, default=0.1,
                        help="factor every residual branch starts at (damp_residual_branches)"
                             ", or 'builder' for the builders' initialisation")
    parser.add_argument("--qat-learning-rate", type=float, default=1e-4)
    parser.add_argument("--latency-size", type=int, default=None,
                        help="input size of the timed TFLite files (default: the variant's "
                             "ImageNet size, 224 / 256 / 384)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each TFLite file")
    parser.add_argument("--repeats", type=int, default=3,
                        help="interleaved rounds timing the files (the median counts)")
    parser.add_argument("--output-dir", default=os.path.join("keras_mobilenets_runs",
                                                             "mobilenet_v4_int8"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or not variants:
        parser.error(f"--variants: unknown {unknown}; choose from {', '.join(VARIANTS)}")
    args.variants = variants
    return args


def main(argv=None):
    args = parse_arguments(argv)
    os.makedirs(args.output_dir, exist_ok=True)
    results = []
    path = os.path.join(args.output_dir, "results.json")
    for variant in args.variants:
        results.append(measure(variant, args))
        print(format_table(results[-1:]).splitlines()[-1], flush=True)
        with open(path, "w") as f:
            json.dump({"arguments": vars(args), "results": results}, f, indent=2)
    print(format_table(results))
    low = [r["variant"] for r in results if r["agreement_int8_qat"] < REQUIRED_AGREEMENT]
    print(f"saved {path}; agreement < {REQUIRED_AGREEMENT}: {low or 'none'}")
    return 1 if low else 0


if __name__ == "__main__":
    raise SystemExit(main())

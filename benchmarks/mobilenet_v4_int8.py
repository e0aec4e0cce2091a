"""MobileNetV4 int8: top-1 agreement of the int8 TFLite file with its QAT model, per variant.

For each of the five MobileNetV4 builders, at a small input size with the classes of the
embedded shapes data (``datasets.shapes``); image size, training images and epochs are
per variant (``SETTINGS``; ``--image-size``, ``--train-images`` and ``--epochs`` set them
for every variant):

1. train the float model from scratch on the shapes train split, in batches reshuffled
   every epoch (``training_data``: Keras' own ``fit(x, y, shuffle=True)`` repeats one
   permutation every epoch once a seed is set, and the models then learnt the fixed
   batches instead of the shapes), and re-estimate its batch-norm statistics;
2. ``quantization.quantize_model`` with calibration on training images, then a short
   quantization-aware fine-tune;
3. ``export.to_tflite(qat, quantization="int8")`` and run the file with LiteRT
   (``export.LiteRTModel``) on the shapes test split;
4. measure the top-1 agreement of the int8 file with the QAT model's argmax, the accuracy
   of the float, QAT and int8 models, and the float32 / int8 TFLite latency.

The models end in logits (``classifier_activation=None``): an int8 softmax output has a
step of 1/256, so two close classes can tie and the argmax of a tie is not a disagreement
of the network. A table is printed and ``results.json`` saved under ``--output-dir``.

Usage:
    python benchmarks/mobilenet_v4_int8.py [--variants conv_small,hybrid_medium]
        [--image-size 64] [--train-images 6000] [--epochs 6]
        [--output-dir keras_mobilenets_runs/mobilenet_v4_int8]
"""

import argparse
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
from keras_mobilenets.training import reestimate_batch_norm  # noqa: E402

VARIANTS = ("conv_small", "hybrid_medium", "conv_medium", "conv_large", "hybrid_large")
# Per variant: (image size, training images, float epochs). The Medium and Large ones cost
# 4x to 8x Conv-Small's time per image on a CPU, so they see fewer images (and the Large
# ones smaller images) to keep a run of all five within about an hour on one core.
SETTINGS = {
    "conv_small": (64, 6000, 6),
    "hybrid_medium": (64, 3000, 3),
    "conv_medium": (64, 3000, 3),
    "conv_large": (48, 2000, 3),
    "hybrid_large": (48, 2000, 3),
}
REQUIRED_AGREEMENT = 0.98


def builder(variant):
    title = "".join(part.capitalize() for part in variant.split("_"))
    return getattr(keras_mobilenets, f"MobileNetV4{title}")


def build(variant, image_size, seed):
    keras.utils.set_random_seed(seed)
    return builder(variant)(input_shape=(image_size, image_size, 3), classes=shapes.NUM_CLASSES,
                            classifier_activation=None, dropout_rate=0.0)


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
    """``(image_size, train_images, epochs)`` of ``variant``: SETTINGS unless overridden."""
    default = SETTINGS[variant]
    overrides = (args.image_size, args.train_images, args.epochs)
    return tuple(d if o is None else o for d, o in zip(default, overrides))


def load_data(image_size, train_images, test_images, seed):
    x_train, y_train = shapes.load("train", num_images=train_images, image_size=image_size,
                                   seed=seed)
    x_test, y_test = shapes.load("test", num_images=test_images, image_size=image_size,
                                 seed=seed)
    return (x_train.astype("float32"), y_train), (x_test.astype("float32"), y_test)


def measure(variant, args):
    size, n, epochs = settings(variant, args)
    (x, y), (x_test, y_test) = load_data(size, n, args.test_images, args.seed)
    started = time.perf_counter()
    model = build(variant, size, args.seed)
    train_float(model, x, y, epochs, args.batch_size, args.learning_rate, args.seed)
    float_logits = model.predict(x_test, batch_size=64, verbose=0)
    trained = time.perf_counter()

    qat = quantize_and_fine_tune(model, x, y, args.qat_epochs, args.batch_size,
                                 args.qat_learning_rate, args.calibration, args.qat_images)
    qat_logits = qat.predict(x_test, batch_size=64, verbose=0)
    int8 = export.to_tflite(qat, quantization="int8")
    float32 = export.to_tflite(model)
    int8_runner = export.LiteRTModel(int8, num_threads=args.threads)
    int8_logits = int8_runner.predict(x_test)
    float32_runner = export.LiteRTModel(float32, num_threads=args.threads)
    float32_ms = float32_runner.latency(runs=args.runs, warmup=5).median_ms
    int8_ms = int8_runner.latency(runs=args.runs, warmup=5).median_ms
    for name, content in (("float32", float32), ("int8", int8)):
        with open(os.path.join(args.output_dir, f"{variant}_{size}_{name}.tflite"),
                  "wb") as f:
            f.write(content)
    return {
        "variant": variant,
        "image_size": int(size),
        "train_images": int(n),
        "epochs": int(epochs),
        "test_images": int(len(x_test)),
        "float_accuracy": compare.accuracy(float_logits, y_test),
        "qat_accuracy": compare.accuracy(qat_logits, y_test),
        "int8_accuracy": compare.accuracy(int8_logits, y_test),
        "agreement_int8_qat": compare.agreement(int8_logits, qat_logits),
        "agreement_qat_float": compare.agreement(qat_logits, float_logits),
        "predicted_classes_int8": int(len(np.unique(np.argmax(int8_logits, axis=-1)))),
        "max_abs_logit_diff_int8_qat": float(np.abs(int8_logits - qat_logits).max()),
        "logit_range_qat": float(qat_logits.max() - qat_logits.min()),
        "float32_ms": float32_ms,
        "int8_ms": int8_ms,
        "float32_kib": len(float32) / 1024,
        "int8_kib": len(int8) / 1024,
        "train_seconds": trained - started,
        "total_seconds": time.perf_counter() - started,
    }


def format_table(results):
    lines = [f"{'variant':14s} {'size':>4s} {'train':>5s} {'ep':>2s} {'test':>5s} {'float':>6s} "
             f"{'QAT':>6s} {'int8':>6s} {'agree':>6s} {'f32 ms':>7s} {'int8 ms':>7s} {'s':>5s}"]
    for r in results:
        lines.append(
            f"{r['variant']:14s} {r['image_size']:4d} {r['train_images']:5d} {r['epochs']:2d} "
            f"{r['test_images']:5d} "
            f"{r['float_accuracy']:6.3f} {r['qat_accuracy']:6.3f} {r['int8_accuracy']:6.3f} "
            f"{r['agreement_int8_qat']:6.3f} {r['float32_ms']:7.2f} {r['int8_ms']:7.2f} "
            f"{r['total_seconds']:5.0f}")
    return "\n".join(lines)


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
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--qat-learning-rate", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each TFLite file")
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

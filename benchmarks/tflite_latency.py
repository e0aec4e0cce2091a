"""TFLite latency and size of every variant, float32 and int8, beside keras.applications.

Every model is built with ``weights=None`` at 224x224 (``--size``), its batch-norm
statistics re-estimated on random images (so activations and int8 scales are realistic),
converted with ``keras_mobilenets.export.to_tflite`` and timed with LiteRT (XNNPACK,
``--threads`` threads). keras.applications' models are converted the same way; their int8
files keep the converter's native HARD_SWISH ops (``int8_hard_swish="native"``), which is
what a plain TFLite conversion gives. Ours use the default rewrite (``export.rewrite``).

Usage:
    python benchmarks/tflite_latency.py [--size 224] [--threads 2] [--runs 50] [--only v3]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_mobilenets import export, registry, zoo  # noqa: E402
from keras_mobilenets.training import reestimate_batch_norm  # noqa: E402

KERAS_APPLICATIONS = {
    "mobilenet_v1_1.0": lambda shape: keras.applications.MobileNet(input_shape=shape, weights=None),
    "mobilenet_v2_1.0": lambda shape: keras.applications.MobileNetV2(input_shape=shape, weights=None),
    "mobilenet_v3_small_1.0": lambda shape: keras.applications.MobileNetV3Small(
        input_shape=shape, weights=None),
    "mobilenet_v3_large_1.0": lambda shape: keras.applications.MobileNetV3Large(
        input_shape=shape, weights=None),
    "mobilenet_v3_small_minimalistic": lambda shape: keras.applications.MobileNetV3Small(
        input_shape=shape, weights=None, minimalistic=True),
}


def measure(model, images, threads, runs, int8_hard_swish):
    """(float32 ms, int8 ms, float32 KiB, int8 KiB) of one model."""
    reestimate_batch_norm(model, images)
    float32 = export.to_tflite(model)
    int8 = export.to_tflite(model, quantization="int8", representative_data=images,
                            int8_hard_swish=int8_hard_swish)
    times = export.latency_in_turn({"float32": float32, "int8": int8}, num_threads=threads,
                                   runs=runs, warmup=10, repeats=1)
    return (times["float32"], times["int8"], len(float32) / 1024, len(int8) / 1024)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--calibration", type=int, default=32, help="calibration images")
    parser.add_argument("--only", default="", help="substring of the variant names to run")
    args = parser.parse_args()
    shape = (args.size, args.size, 3)
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0, 255, (args.calibration, *shape)).astype("float32")

    header = (f"{'variant':34s} {'f32 ms':>7s} {'int8 ms':>7s} {'int8/f32':>8s} "
              f"{'f32 KiB':>8s} {'int8 KiB':>8s} | {'k.a. f32':>8s} {'k.a. int8':>9s}")
    print(f"TFLite latency at {args.size}x{args.size}, {args.threads} threads, "
          f"median of {args.runs} runs (k.a. = keras.applications, converted the same way)")
    print(header)
    print("-" * len(header))
    # The zoo's variants, then the registry's MobileNetV4 entries (not in the zoo list yet).
    variants = list(zoo.VARIANTS) + [
        entry for entry in registry.entries() if entry.family.startswith("mobilenet_v4")
    ]
    for variant in variants:
        if args.only not in variant.name:
            continue
        model = variant.build(input_shape=shape)
        # Raw pixels where the model rescales inside (V3), [-1, 1] for the others.
        images = pixels if _has(model, "rescaling") else pixels / 127.5 - 1.0
        f32, i8, f32_kib, i8_kib = measure(model, images, args.threads, args.runs, "int8")
        line = (f"{variant.name:34s} {f32:7.2f} {i8:7.2f} {i8 / f32:8.2f} "
                f"{f32_kib:8.0f} {i8_kib:8.0f} |")
        if variant.name in KERAS_APPLICATIONS:
            reference = KERAS_APPLICATIONS[variant.name](shape)
            ref_images = pixels if variant.builder.startswith("MobileNetV3") else images
            ka_f32, ka_i8, _, _ = measure(reference, ref_images, args.threads, args.runs, "native")
            line += f" {ka_f32:8.2f} {ka_i8:9.2f}"
        print(line, flush=True)
        keras.backend.clear_session()


def _has(model, name):
    return any(layer.name == name for layer in model.layers)


if __name__ == "__main__":
    main()

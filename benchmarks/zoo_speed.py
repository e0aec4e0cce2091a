"""Speed and size of every zoo variant: TFLite float32 / int8 and Keras training steps.

For each variant of ``keras_mobilenets.zoo.VARIANTS`` (``--variants`` filters them):

- TFLite at ``--size`` (224): float32 and int8 files made with
  ``keras_mobilenets.export.to_tflite`` (int8 calibrated on random images after the
  batch-norm statistics are re-estimated on them, so activations are realistic), their
  sizes, and their latency with LiteRT (XNNPACK, ``--threads``) timed against each other
  by ``export.time_in_rounds``: ``--repeats`` interleaved rounds of ``--runs`` invocations,
  the median over the rounds (int8 / float32: the median of the per-round ratios;
  ``benchmarks/int8_speed.py`` reports its spread);
- Keras: the median time of ``train_on_batch`` (SGD, batch ``--batch``, ``--train-size``
  input, 10 classes), over ``--repeats`` steps after one warm-up step.

keras.applications' model is measured the same way beside ours where it has one
(MobileNet V1/V2/V3; no ShuffleNets). Its int8 files are plain conversions
(``int8_hard_swish="native"``, no rewrites). ``--float-ops`` adds the opt-in "float_ops"
rewrite to our int8 files (int8 BATCH_MATMUL, SOFTMAX and GELU in float32, so XNNPACK
also takes MobileNetV4's attention softmax and GELU; the files are then not integer-only).

Usage:
    python benchmarks/zoo_speed.py --variants shufflenet_g --repeats 3
    python benchmarks/zoo_speed.py --variants mobilenet_v2_1.0,shufflenet_v2_1.0 --no-train
    python benchmarks/zoo_speed.py --variants mobilenet_v4_hybrid --no-train --float-ops
"""

import argparse
import logging
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_mobilenets import export, zoo  # noqa: E402
from keras_mobilenets.training import reestimate_batch_norm  # noqa: E402

KERAS_APPLICATIONS = {
    "mobilenet_v1_1.0": lambda **kw: keras.applications.MobileNet(alpha=1.0, **kw),
    "mobilenet_v1_0.75": lambda **kw: keras.applications.MobileNet(alpha=0.75, **kw),
    "mobilenet_v1_0.5": lambda **kw: keras.applications.MobileNet(alpha=0.5, **kw),
    "mobilenet_v1_0.25": lambda **kw: keras.applications.MobileNet(alpha=0.25, **kw),
    "mobilenet_v2_1.0": lambda **kw: keras.applications.MobileNetV2(alpha=1.0, **kw),
    "mobilenet_v2_1.4": lambda **kw: keras.applications.MobileNetV2(alpha=1.4, **kw),
    "mobilenet_v2_0.35": lambda **kw: keras.applications.MobileNetV2(alpha=0.35, **kw),
    "mobilenet_v3_large_1.0": lambda **kw: keras.applications.MobileNetV3Large(**kw),
    "mobilenet_v3_large_0.75": lambda **kw: keras.applications.MobileNetV3Large(
        alpha=0.75, **kw),
    "mobilenet_v3_large_minimalistic": lambda **kw: keras.applications.MobileNetV3Large(
        minimalistic=True, **kw),
    "mobilenet_v3_small_1.0": lambda **kw: keras.applications.MobileNetV3Small(**kw),
    "mobilenet_v3_small_0.75": lambda **kw: keras.applications.MobileNetV3Small(
        alpha=0.75, **kw),
    "mobilenet_v3_small_minimalistic": lambda **kw: keras.applications.MobileNetV3Small(
        minimalistic=True, **kw),
}


def _selected(filters):
    wanted = [f.strip() for f in filters.split(",") if f.strip()]
    return [v for v in zoo.VARIANTS if not wanted or any(f in v.name for f in wanted)]


def _input_range(model, pixels):
    # Raw pixels where the model rescales inside (MobileNetV3), [-1, 1] for the others.
    if any("rescaling" in layer.name for layer in model.layers):
        return pixels
    return pixels / 127.5 - 1.0


def tflite(model, pixels, args, int8_hard_swish):
    """{"f32"/"int8": (latency ms, KiB)} of one model's files, and their per-round ratio."""
    images = _input_range(model, pixels)
    reestimate_batch_norm(model, images)
    files = {"f32": export.to_tflite(model)}
    if int8_hard_swish != "int8":
        options = {"int8_rewrites": ()}
    elif args.float_ops:
        options = {"int8_rewrites": (*export.DEFAULT_REWRITES, "float_ops")}
    else:
        options = {}
    files["int8"] = export.to_tflite(model, quantization="int8", representative_data=images,
                                     int8_hard_swish=int8_hard_swish, **options)
    times = export.time_in_rounds(files, num_threads=args.threads, rounds=args.repeats,
                                  runs=args.runs, warmup=3)
    return {**{k: (times.median_ms(k), len(files[k]) / 1024) for k in files},
            "ratio": times.ratio("int8", "f32").median}


def train_step_ms(build, args):
    model = build(input_shape=(args.train_size, args.train_size, 3), classes=10)
    rng = np.random.default_rng(0)
    images = rng.normal(size=(args.batch, args.train_size, args.train_size, 3))
    labels = rng.integers(0, 10, args.batch)
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    model.train_on_batch(images, labels)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        model.train_on_batch(images, labels)
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))


def _cells(values, fmt):
    return " ".join(format(v, fmt) if v is not None else "-".rjust(int(fmt.split(".")[0]))
                    for v in values)


def main(argv=None):
    """Prints the table; returns its rows as ``{"variant", "ours", "keras_applications"}``
    dicts (``ours``: f32 ms, int8 ms, int8 / f32, f32 KiB, int8 KiB, train ms;
    ``keras_applications``: f32 ms, int8 ms, train ms; None where not measured)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="", help="comma-separated name substrings")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20, help="LiteRT invocations per round")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=160)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--calibration", type=int, default=16)
    parser.add_argument("--no-train", action="store_true")
    parser.add_argument("--no-tflite", action="store_true")
    parser.add_argument("--float-ops", action="store_true",
                        help='our int8 files with the opt-in "float_ops" rewrite too')
    args = parser.parse_args(argv)
    if not _selected(args.variants):
        parser.error(f"argument --variants: no zoo variant matches {args.variants!r}; names: "
                     f"{', '.join(v.name for v in zoo.VARIANTS)}")
    logging.getLogger("keras_mobilenets").setLevel(logging.ERROR)
    shape = (args.size, args.size, 3)
    pixels = np.random.default_rng(0).uniform(0, 255, (args.calibration, *shape))
    pixels = pixels.astype("float32")

    print(f"TFLite at {args.size}x{args.size}, {args.threads} threads (median of {args.repeats} "
          f"interleaved rounds of {args.runs} runs{'; our int8 with float_ops' if args.float_ops else ''}"
          f"); train_on_batch SGD batch {args.batch} at "
          f"{args.train_size}x{args.train_size} (median of {args.repeats}). "
          "ka = keras.applications")
    header = (f"{'variant':32s} {'f32 ms':>7s} {'int8 ms':>7s} {'i8/f32':>6s} {'f32 KiB':>7s} "
              f"{'i8 KiB':>7s} {'train ms':>8s} | {'ka f32':>7s} {'ka int8':>7s} "
              f"{'ka train':>8s}")
    print(header)
    print("-" * len(header))
    rows = []
    for variant in _selected(args.variants):
        ours, reference = [None] * 6, [None] * 3
        if not args.no_tflite:
            result = tflite(variant.build(input_shape=shape), pixels, args, "int8")
            (f32, f32_kib), (i8, i8_kib) = result["f32"], result["int8"]
            ours[:5] = [f32, i8, result["ratio"], f32_kib, i8_kib]
        if not args.no_train:
            ours[5] = train_step_ms(lambda **kw: variant.build(**kw), args)
        build = KERAS_APPLICATIONS.get(variant.name)
        if build is not None:
            if not args.no_tflite:
                result = tflite(build(input_shape=shape, weights=None), pixels, args, "native")
                reference[:2] = [result["f32"][0], result["int8"][0]]
            if not args.no_train:
                reference[2] = train_step_ms(lambda **kw: build(weights=None, **kw), args)
        print(f"{variant.name:32s} {_cells(ours[:2], '7.2f')} {_cells(ours[2:3], '6.2f')} "
              f"{_cells(ours[3:5], '7.0f')} {_cells(ours[5:], '8.0f')} | "
              f"{_cells(reference[:2], '7.2f')} {_cells(reference[2:], '8.0f')}", flush=True)
        rows.append({"variant": variant.name, "ours": ours, "keras_applications": reference})
        keras.backend.clear_session()
    return rows


if __name__ == "__main__":
    main()

"""ONNX Runtime float32 and int8 beside LiteRT float32 and int8, for every zoo variant.

For each variant of ``keras_mobilenets.zoo.VARIANTS`` (``--variants`` filters them), at
``--size`` (224), batch 1, with random weights whose batch-norm statistics are re-estimated
on random pixels (so activations are realistic), four files:

- LiteRT float32 and int8: ``export.to_tflite`` (int8 post-training, calibrated on the
  pixels), run by ``export.LiteRTModel`` (XNNPACK);
- ONNX float32: ``export.to_onnx``; ONNX int8: the model made quantization-aware and
  calibrated on the pixels (``quantization.quantize_model``, no training), exported with
  ``export.to_onnx(qat, quantization="int8", int8_hard_swish=...)`` (QDQ from the fake
  quantization; the faster of the two int8 routes, see keras_mobilenets/export/onnx.py;
  ``--int8-hard-swish``: "float", the default, or "int8"); both run by
  ``export.OnnxModel`` (ONNX Runtime, CPU).

For each thread count of ``--threads`` the four files are timed in one process with
``export.time_in_rounds`` (interleaved rounds: ``--rounds`` rounds of ``--runs`` runs per
file, after a warm-up), so that load from other processes hits them alike. Printed per
variant and thread count: the median over the rounds of each file's median, and the
per-round ratios int8 / float32 of each runtime and ONNX float32 / LiteRT float32 as
median (min-max).

``--output DIR`` writes ``DIR/results.json`` (record ``onnx_speed``: the rows, the settings,
the command and the machine with its CPU features); copy it to
``docs/results/onnx_speed/<machine>/seed<N>.json`` and run ``python tools/render_results.py``
to put it in docs/speed.md.

Usage:
    python benchmarks/onnx_speed.py --variants mobilenet_v2_1.0,mobilenet_v3_small_1.0
    python benchmarks/onnx_speed.py --threads 1,2 --rounds 7 --output runs/onnx_speed
"""

import argparse
import logging
import os
import sys
import time
from importlib import metadata

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_mobilenets import export, quantization, results, zoo  # noqa: E402
from keras_mobilenets.export.onnx import INT8_HARD_SWISH_MODES  # noqa: E402
from keras_mobilenets.training import reestimate_batch_norm  # noqa: E402

METHOD = ("random weights with batch-norm statistics re-estimated on {calibration} random "
          "images, batch 1; LiteRT (XNNPACK) float32 and post-training int8, ONNX Runtime "
          "float32 and int8 from the model made quantization-aware and calibrated (no "
          "training; to_onnx's {hard_swish}); the four files in one process, 5 warm-up "
          "runs, then {rounds} rounds of {runs} runs of each file, the order alternating; "
          "ms: median over the rounds of each round's median")
FILES = ("litert_f32", "litert_int8", "onnx_f32", "onnx_int8")
RATIOS = {"litert_int8/f32": ("litert_int8", "litert_f32"),
          "onnx_int8/f32": ("onnx_int8", "onnx_f32"),
          "onnx_f32/litert_f32": ("onnx_f32", "litert_f32")}


def _selected(filters):
    wanted = [f.strip() for f in filters.split(",") if f.strip()]
    return [v for v in zoo.VARIANTS if not wanted or any(f in v.name for f in wanted)]


def make_files(model, pixels, int8_hard_swish="float"):
    """``{file name: bytes}`` of the four files of ``model`` (see the module docstring);
    ``int8_hard_swish``: ``export.to_onnx``'s, for the ONNX int8 file."""
    reestimate_batch_norm(model, pixels)
    qat = quantization.quantize_model(model, calibration_data=pixels)
    return {
        "litert_f32": export.to_tflite(model),
        "litert_int8": export.to_tflite(model, quantization="int8", representative_data=pixels),
        "onnx_f32": export.to_onnx(model),
        "onnx_int8": export.to_onnx(qat, quantization="int8", int8_hard_swish=int8_hard_swish),
    }


def time_files(files, threads, rounds, runs):
    """Medians (ms) of each file and the ``export.Spread`` of the per-round ratios."""
    runners = {name: (export.OnnxModel if name.startswith("onnx") else export.LiteRTModel)(
        content, num_threads=threads) for name, content in files.items()}
    times = export.time_in_rounds(runners, rounds=rounds, runs=runs, warmup=5)
    row = {name: times.median_ms(name) for name in files}
    for label, (top, bottom) in RATIOS.items():
        row[label] = times.ratio(top, bottom)
    return row


def _versions():
    names = ("tensorflow", "keras", "ai-edge-litert", "onnxruntime", "onnx", "tf2onnx")
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def main(argv=None):
    """Prints the table; returns its rows as dicts (variant, threads, the four medians in
    ms, and the three ratios as ``export.Spread(median, low, high)``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="", help="comma-separated name substrings")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20, help="runs per file and round")
    parser.add_argument("--calibration", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the random weights and calibration pixels")
    parser.add_argument("--int8-hard-swish", default="float", choices=INT8_HARD_SWISH_MODES,
                        help="export.to_onnx's int8_hard_swish for the ONNX int8 files")
    parser.add_argument("--output", default=None, help="folder for results.json")
    args = parser.parse_args(argv)
    variants = _selected(args.variants)
    if not variants:
        parser.error(f"argument --variants: no zoo variant matches {args.variants!r}; names: "
                     f"{', '.join(v.name for v in zoo.VARIANTS)}")
    threads = [int(t) for t in args.threads.split(",")]
    logging.getLogger("keras_mobilenets").setLevel(logging.ERROR)
    shape = (args.size, args.size, 3)
    start = time.perf_counter()
    pixels = np.random.default_rng(args.seed).uniform(0, 255, (args.calibration, *shape))
    pixels = pixels.astype("float32")
    machine = results.machine()
    print(f"machine: {machine['cpu_model']} ({machine['usable_cpus']} usable CPUs; "
          f"{', '.join(machine['cpu_features']) or 'no listed features'}); "
          + ", ".join(f"{k} {v}" for k, v in _versions().items()))
    print(f"{args.size}x{args.size}, batch 1; median of {args.rounds} rounds of "
          f"{args.runs} runs per file, files in turn; ratios per round: median (min-max)")
    header = (f"{'variant':32s} {'thr':>3s} {'LiteRT f32':>10s} {'LiteRT i8':>9s} "
              f"{'ORT f32':>8s} {'ORT i8':>8s}  {'LiteRT i8/f32':>17s}  {'ORT i8/f32':>17s}  "
              f"{'ORT f32/LiteRT f32':>18s}")
    print(header)
    print("-" * len(header))
    rows = []
    for variant in variants:
        keras.utils.set_random_seed(args.seed)
        files = make_files(variant.build(input_shape=shape), pixels, args.int8_hard_swish)
        for count in threads:
            row = time_files(files, count, args.rounds, args.runs)
            ratios = "  ".join(f"{m:5.2f} ({lo:.2f}-{hi:.2f})".rjust(width) for (m, lo, hi), width
                               in zip((row[label] for label in RATIOS), (17, 17, 18)))
            print(f"{variant.name:32s} {count:3d} {row['litert_f32']:10.2f} "
                  f"{row['litert_int8']:9.2f} {row['onnx_f32']:8.2f} {row['onnx_int8']:8.2f}  "
                  f"{ratios}", flush=True)
            rows.append({"name": f"{variant.name} {count}", "variant": variant.name,
                         "threads": count, "image_size": args.size, **row})
        keras.backend.clear_session()
    if args.output is not None:
        settings = {key: getattr(args, key)
                    for key in ("size", "rounds", "runs", "calibration", "int8_hard_swish")}
        settings["threads"] = threads
        path = results.write_results(
            args.output, "onnx_speed", args.seed,
            results.command_line("python benchmarks/onnx_speed.py",
                                 argv if argv is not None else sys.argv[1:]),
            rows, settings=settings, seconds=time.perf_counter() - start, versions=_versions(),
            method=METHOD.format(rounds=args.rounds, runs=args.runs,
                                 calibration=args.calibration,
                                 hard_swish=f"int8_hard_swish={args.int8_hard_swish!r}"))
        print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()

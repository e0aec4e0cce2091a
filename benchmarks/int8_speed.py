"""int8 against float32 TFLite latency per variant, 1 and 2 threads, with the spread.

For every selected variant (``--variants``: substrings of the zoo's names; the default is
the set docs/speed.md reports, plus ``demo``, the demo's model: the fine-tuning
classifier on MobileNetV3Small, 5 classes at 64x64, raw pixels in):

1. build it with random weights at ``--size`` (224), re-estimate its batch-norm statistics
   on ``--calibration`` random images (so activations and int8 ranges are realistic), export
   the float32 file and the full-integer int8 file with ``export.to_tflite`` (default
   rewrites);
2. for each of ``--threads`` (1 and 2), time both files in one process with
   ``export.time_in_rounds``: a warm-up, then ``--rounds`` rounds of ``--runs`` invocations
   of each file, the order alternating; report each file's median and the per-round
   int8/float32 ratio as median (min–max) over the rounds.

On a 2-core machine the 2-thread figures move between runs (the benchmark's second thread
competes with everything else); judge by the 1-thread ratios.

``--output DIR`` writes ``DIR/results.json`` (the rows, the settings, the command and the
machine record with its CPU features, oneDNN setting and LiteRT version); copy it to
``docs/results/int8_speed/<machine>/seed<k>.json`` and run ``tools/render_results.py`` to
show it in docs/speed.md.

``--profile VARIANT`` shows where the time goes instead (``--output``: a results.json
named ``int8_profile``): the model is cut after every
block (a layer whose output is the only tensor later layers read), each prefix exported
and timed like above (1 thread), and each block's cost is the difference of consecutive
prefixes, in float32 and int8, with the int8 ops the block adds (``--blocks N``: only
the first N blocks).

Usage:
    python benchmarks/int8_speed.py --seed 0 --output runs/int8_speed
    python benchmarks/int8_speed.py --variants mobilenet_v3_small --threads 1
    python benchmarks/int8_speed.py --profile mobilenet_v3_small_1.0
"""

import argparse
import collections
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_mobilenets import export, finetune, results, zoo  # noqa: E402  (first: quiet)
from keras_mobilenets.imagenet import expected_input_range  # noqa: E402
from keras_mobilenets.training import reestimate_batch_norm  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

#: The variants docs/speed.md reports ("demo": the demo's model, see :func:`build`).
DEFAULT_VARIANTS = ("mobilenet_v3_small_1.0", "mobilenet_v3_small_0.75",
                    "mobilenet_v3_small_minimalistic", "mobilenet_v1_0.25",
                    "mobilenet_v2_0.35", "mobilenet_v2_0.5", "shufflenet_v2_0.5",
                    "mobilenet_v3_large_1.0", "mobilenet_v1_1.0", "mobilenet_v2_1.0",
                    "shufflenet_g3_1.0", "demo")
#: How the figures were measured, as results.json states it.
METHOD = ("float32 and full-integer int8 files of export.to_tflite (default rewrites), random "
          "weights with batch-norm statistics re-estimated on {calibration} random images, "
          "batch 1, LiteRT with XNNPACK; both files in one process, {warmup} warm-up runs, "
          "then {rounds} rounds of {runs} runs of each file, the order alternating; ms: "
          "median over the rounds of each round's median")
DEMO = {"backbone": "MobileNetV3Small", "classes": 5, "size": 64}


def _variant(name):
    return next(v for v in zoo.VARIANTS if v.name == name)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                        help="comma-separated substrings of zoo variant names, or 'demo'")
    parser.add_argument("--size", type=int, default=224, help="input size (not the demo's)")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--runs", type=int, default=40, help="invocations per file and round")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--calibration", type=int, default=32, help="calibration images")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the random weights and calibration images")
    parser.add_argument("--output", default=None, help="folder for results.json")
    parser.add_argument("--extra-rewrites", default="",
                        help="comma-separated opt-in int8 rewrites (export.REWRITES, e.g. "
                             "float_stem): a third file, int8 with them, timed beside")
    parser.add_argument("--profile", default=None, metavar="VARIANT",
                        help="per-block float32/int8 profile of one zoo variant")
    parser.add_argument("--blocks", type=int, default=None,
                        help="profile only the first BLOCKS blocks (default: all)")
    args = parser.parse_args(argv)
    names = [v.name for v in zoo.VARIANTS]
    wanted = [w.strip() for w in args.variants.split(",") if w.strip()]
    args.selected = [w for w in wanted if w == "demo"] + [
        n for n in names if any(w != "demo" and w in n for w in wanted)]
    args.selected.sort(key=lambda n: (wanted.index(n) if n in wanted else len(wanted)))
    if not args.selected:
        parser.error(f"argument --variants: nothing matches {args.variants!r}; names: "
                     f"demo, {', '.join(names)}")
    try:
        args.thread_counts = [int(t) for t in args.threads.split(",")]
    except ValueError:
        args.thread_counts = []
    if not args.thread_counts or min(args.thread_counts) < 1:
        parser.error(f"argument --threads: must be positive ints separated by commas, got "
                     f"{args.threads!r}")
    for option in ("size", "rounds", "runs", "calibration", "blocks"):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            parser.error(f"argument --{option}: must be >= 1, got {getattr(args, option)}")
    if args.size < 32:
        parser.error(f"argument --size: must be >= 32, got {args.size}")
    args.extra = tuple(name.strip() for name in args.extra_rewrites.split(",") if name.strip())
    unknown = [name for name in args.extra if name not in export.REWRITES]
    if unknown:
        parser.error(f"argument --extra-rewrites: unknown {unknown}; choose from "
                     f"{', '.join(export.REWRITES)}")
    if args.profile is not None and args.profile not in names:
        parser.error(f"argument --profile: {args.profile!r} is not a zoo variant; names: "
                     f"{', '.join(names)}")
    return args


def build(name, size):
    """``(model, description)`` of a zoo variant, or of the demo's model for ``"demo"``."""
    if name == "demo":  # keras-mobilenets demo's classifier (finetune.build_classifier)
        model = finetune.build_classifier(DEMO["classes"], DEMO["backbone"], DEMO["size"],
                                          weights=None)
        return model, {"builder": "build_classifier", "kwargs": {"backbone": DEMO["backbone"]},
                       "classes": DEMO["classes"], "image_size": DEMO["size"]}
    variant = _variant(name)
    model = variant.build(input_shape=(size, size, 3))
    return model, {"builder": variant.builder, "kwargs": dict(variant.kwargs),
                   "classes": model.output_shape[-1], "image_size": size}


def calibration_images(model, count, seed):
    """Random images in the model's input range, after its batch norms were re-estimated
    on them (raw pixels where the model rescales them inside, [-1, 1] otherwise)."""
    size = model.input_shape[1]
    pixels = np.random.default_rng(seed).uniform(0, 255, (count, size, size, 3))
    raw_pixels = expected_input_range(model) is not None
    images = (pixels if raw_pixels else pixels / 127.5 - 1.0).astype("float32")
    reestimate_batch_norm(model, images)
    return images


def files_of(model, images, extra=()):
    """``{"float32": bytes, "int8": bytes}`` of a model, and ``"int8_extra"``: int8 with the
    default rewrites and ``extra`` ones, when ``extra`` names any."""
    files = {"float32": export.to_tflite(model),
             "int8": export.to_tflite(model, quantization="int8", representative_data=images)}
    if extra:
        files["int8_extra"], _ = export.rewrite_int8_for_xnnpack(
            files["int8"], rewrites=(*export.DEFAULT_REWRITES, *extra))
    return files


def time_files(files, threads, args):
    """One row's figures at ``threads`` threads."""
    times = export.time_in_rounds(files, num_threads=threads, rounds=args.rounds,
                                  runs=args.runs, warmup=args.warmup, seed=args.seed)
    cell = {}
    for name, prefix in (("int8", ""), ("int8_extra", "extra_")):
        if name in files:
            ratio = times.ratio(name, "float32")
            cell.update({f"{prefix}int8_ms": round(times.median_ms(name), 4),
                         f"{prefix}ratio_median": round(ratio.median, 4),
                         f"{prefix}ratio_min": round(ratio.low, 4),
                         f"{prefix}ratio_max": round(ratio.high, 4)})
    return {"float32_ms": round(times.median_ms("float32"), 4), **cell}


def measure(args, progress=print):
    """The result rows of ``args.selected``; prints one line per row and thread count."""
    rows = []
    for name in args.selected:
        keras.utils.set_random_seed(args.seed)
        model, row = build(name, args.size)
        files = files_of(model, calibration_images(model, args.calibration, args.seed),
                         args.extra)
        row = {"name": name, **row, "float32_kib": round(len(files["float32"]) / 1024, 1),
               "int8_kib": round(len(files["int8"]) / 1024, 1)}
        for threads in args.thread_counts:
            row[f"threads_{threads}"] = cell = time_files(files, threads, args)
            line = (f"{name:32s} {threads} thr  float32 {cell['float32_ms']:7.3f} ms  int8 "
                    f"{cell['int8_ms']:7.3f} ms  int8/float32 {cell['ratio_median']:.2f} "
                    f"({cell['ratio_min']:.2f}–{cell['ratio_max']:.2f})")
            if args.extra:
                line += (f"  +{'+'.join(args.extra)} {cell['extra_int8_ms']:7.3f} ms "
                         f"{cell['extra_ratio_median']:.2f} ({cell['extra_ratio_min']:.2f}–"
                         f"{cell['extra_ratio_max']:.2f})")
            progress(line)
        rows.append(row)
        keras.backend.clear_session()
    return rows


def cut_points(model):
    """Layers after which nothing reads an earlier tensor: the model's block boundaries."""
    layers = model.layers
    position = {id(layer): index for index, layer in enumerate(layers)}
    last_reader = {}  # producer index -> index of the last layer reading its output
    for index, layer in enumerate(layers):
        for node in layer._inbound_nodes:
            for tensor in node.input_tensors:
                producer = position[id(tensor._keras_history.operation)]
                last_reader[producer] = max(last_reader.get(producer, -1), index)
    cuts = []
    for index, layer in enumerate(layers[1:], start=1):
        if all(reader <= index for producer, reader in last_reader.items() if producer < index):
            cuts.append(layer)
    return cuts


#: Words that start the name of a layer inside a block, after the block's name.
_INNER = ("expand", "depthwise", "squeeze", "project", "bn", "act", "relu", "add", "pad")


def _block_name(layer_name):
    """The block a layer belongs to: its name up to the first number in it
    (``expanded_conv_3_expand`` -> ``expanded_conv_3``, ``block_5_add`` -> ``block_5``),
    else up to the first word of :data:`_INNER` (``expanded_conv_project`` ->
    ``expanded_conv``)."""
    parts = layer_name.split("_")
    for index, part in enumerate(parts):
        if part.isdigit():
            return "_".join(parts[: index + 1])
        if index and part in _INNER:
            return "_".join(parts[:index])
    return layer_name


def blocks(model):
    """``{block name: its last layer}`` of a model, in order: the 4-D cut points (see
    :func:`cut_points`), consecutive ones of one block (e.g. its batch norm and its
    activation) merged."""
    segments = {}
    for layer in cut_points(model):
        if len(layer.output.shape) == 4:
            segments[_block_name(layer.name)] = layer
    return segments


def profile(args, progress=print):
    """Per-block float32 / int8 milliseconds of ``args.profile`` (1 thread)."""
    keras.utils.set_random_seed(args.seed)
    model, _ = build(args.profile, args.size)
    images = calibration_images(model, args.calibration, args.seed)
    segments = dict(list(blocks(model).items())[: args.blocks])
    files, ops = {}, {}
    for block, layer in segments.items():
        prefix = keras.Model(model.input, layer.output)
        pair = files_of(prefix, images)
        files[f"{block}/float32"], files[f"{block}/int8"] = pair["float32"], pair["int8"]
        ops[block] = export.op_histogram(pair["int8"])
    progress(f"timing {len(files)} prefix files, {args.rounds} rounds of {args.runs} runs")
    times = export.time_in_rounds(files, num_threads=1, rounds=args.rounds, runs=args.runs,
                                  warmup=args.warmup, seed=args.seed)
    rows, previous = [], {"float32": 0.0, "int8": 0.0}
    previous_ops = collections.Counter()
    for block in segments:
        current = {kind: times.median_ms(f"{block}/{kind}") for kind in ("float32", "int8")}
        added = collections.Counter(ops[block])
        added.subtract(previous_ops)
        rows.append({"name": block, **{f"{kind}_ms": current[kind] - previous[kind]
                                        for kind in current},
                     "int8_ops": {op: n for op, n in sorted(added.items()) if n > 0}})
        previous, previous_ops = current, collections.Counter(ops[block])
    return rows


def print_profile(rows, variant, size):
    print(f"{variant} at {size}x{size}, 1 thread: each block's share of the prefix medians "
          "(differences of noisy medians: small blocks can read slightly negative)")
    print(f"{'block':42s} {'float32 ms':>10s} {'int8 ms':>8s} {'int8-f32':>8s}  int8 ops added")
    for row in rows:
        ops = ", ".join(f"{op} {n}" for op, n in row["int8_ops"].items())
        print(f"{row['name']:42s} {row['float32_ms']:10.3f} {row['int8_ms']:8.3f} "
              f"{row['int8_ms'] - row['float32_ms']:8.3f}  {ops}")
    total = {kind: sum(row[f"{kind}_ms"] for row in rows) for kind in ("float32", "int8")}
    print(f"{'whole prefix':42s} {total['float32']:10.3f} {total['int8']:8.3f} "
          f"{total['int8'] - total['float32']:8.3f}")


def main(argv=None):
    args = parse_args(argv)
    machine = results.machine()
    print(f"{machine['cpu_model']} ({machine['cpu_count']} CPUs; "
          f"{', '.join(machine['cpu_features'] or ['features unknown'])}), LiteRT "
          f"{machine['litert']}, TensorFlow {machine['tensorflow']}")
    start = time.perf_counter()
    if args.profile is not None:
        rows = profile(args)
        print_profile(rows, args.profile, args.size)
    else:
        rows = measure(args)
    if args.output is not None:
        settings = {key: getattr(args, key) for key in
                    ("size", "rounds", "runs", "warmup", "calibration", "profile")}
        settings["threads"] = [1] if args.profile else args.thread_counts
        settings["extra_rewrites"] = list(args.extra)
        path = results.write_results(
            args.output, "int8_profile" if args.profile else "int8_speed", args.seed,
            results.command_line("python benchmarks/int8_speed.py",
                                 argv if argv is not None else sys.argv[1:]),
            rows, settings=settings, seconds=time.perf_counter() - start, method=METHOD.format(
                rounds=args.rounds, runs=args.runs, warmup=args.warmup,
                calibration=args.calibration))
        print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()

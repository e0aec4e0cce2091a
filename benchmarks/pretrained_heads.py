"""Float32 and int8 TFLite of the pretrained heads (COCO SSDLite, VOC LR-ASPP): size,
latency and how far the int8 file agrees with the float model on real photographs.

For each head: build the float Keras model (torchvision's checkpoint converted, or random
weights, see below), make the QAT copy with ``quantization.quantize_model`` calibrated on
the photographs (and their mirror images), export a float32 file from the float model
and a full-int8 file from the QAT copy with ``export.to_tflite`` (SSDLite with its
post-processing, ``detection.SSDPostprocess``, inside both files), time both with LiteRT
(``export.LiteRTModel.latency``) and run both on the photographs:

* SSDLite: the fraction of the float Keras model's detections (score >=
  ``--score-threshold``) that the file reproduces (same label, IoU >= 0.5;
  ``detection.detection_agreement``), and the reverse (the file's detections found among
  the float model's), overall and per photo;
* LR-ASPP: the fraction of pixels whose arg-max class equals the float Keras model's,
  overall and per photo.

The photographs are those of ``<data>/images`` (``--data``, by default the folder that
``KERAS_MOBILENETS_TEST_DATA`` names, else ``../shared/data``), resized to the model's
input (bilinear, aspect not kept). The int8 file is calibrated on the same photographs it
is measured on.

Weights: ``--ssdlite-weights coco`` / ``--lraspp-weights voc`` download torchvision's
checkpoints (or pass the path of a ``.pth`` / ``.safetensors`` state dict). Without a
checkpoint (the default, ``random``) each model is built with the converted model's
architecture (torchvision's MobileNetV3-Large layout, reduced tail for SSDLite; SSDLite's
extra blocks keep "same" padding instead of the checkpoint's symmetric padding), random
kernels and random batch-norm scales and offsets, its batch-norm moving statistics
estimated on the photographs. Latency and size are then those of the real model; the
agreement numbers are NOT those of the trained model.

Usage:
    python benchmarks/pretrained_heads.py --ssdlite-weights coco --lraspp-weights voc
    python benchmarks/pretrained_heads.py                   # random weights
    python benchmarks/pretrained_heads.py --heads lraspp --lraspp-size 256
"""

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

HEADS = ("ssdlite", "lraspp")
RANDOM = "random"
KEYWORDS = {"ssdlite": "coco", "lraspp": "voc"}
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
# Files of <data>/images that are not photographs (masks, golden outputs).
NOT_PHOTOS = ("_mask", "golden")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
MIN_IOU = 0.5
RANDOM_NOTE = ("random weights: latency/size are real, agreement numbers are not those of "
               "the trained model")


def _default_data():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return (os.environ.get("KERAS_MOBILENETS_TEST_DATA")
            or os.path.join(os.path.dirname(repo), "shared", "data"))


def _weights_argument(head):
    def parse(value):
        if value in (RANDOM, KEYWORDS[head]):
            return value
        if value.endswith(CHECKPOINT_SUFFIXES) and os.path.isfile(value):
            return value
        raise argparse.ArgumentTypeError(
            f"must be {KEYWORDS[head]!r}, {RANDOM!r} or an existing torchvision checkpoint "
            f"ending in {', '.join(CHECKPOINT_SUFFIXES)}, got {value!r}")
    return parse


def _heads_argument(value):
    heads = tuple(h.strip() for h in value.split(",") if h.strip())
    if not heads or any(h not in HEADS for h in heads):
        raise argparse.ArgumentTypeError(f"must be a comma list of {HEADS}, got {value!r}")
    return heads


def _size_argument(value):
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 32:
        raise argparse.ArgumentTypeError(f"must be an int >= 32, got {value!r}")
    return size


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ssdlite-weights", type=_weights_argument("ssdlite"), default=RANDOM,
                        help="'coco' (download), a torchvision .pth, or 'random' (default)")
    parser.add_argument("--lraspp-weights", type=_weights_argument("lraspp"), default=RANDOM,
                        help="'voc' (download), a torchvision .pth, or 'random' (default)")
    parser.add_argument("--heads", type=_heads_argument, default=HEADS,
                        help="comma list of ssdlite, lraspp (default: both)")
    parser.add_argument("--ssdlite-size", type=_size_argument, default=320,
                        help="SSDLite input rows = cols (default 320, the checkpoint's)")
    parser.add_argument("--lraspp-size", "--image-size", dest="lraspp_size",
                        type=_size_argument, default=520,
                        help="LR-ASPP input rows = cols (default 520, torchvision's)")
    parser.add_argument("--alpha", type=float, default=1.0,
                        help="backbone width multiplier, random weights only (default 1.0)")
    parser.add_argument("--data", default=_default_data(),
                        help="folder with images/ (default: $KERAS_MOBILENETS_TEST_DATA "
                             "or ../shared/data)")
    parser.add_argument("--score-threshold", type=float, default=None,
                        help="SSDLite detections compared: score >= this (default 0.3 with "
                             "a checkpoint, 0 with random weights)")
    parser.add_argument("--max-detections", type=int, default=None,
                        help="SSDLite detections per photo (default 100 with a checkpoint, "
                             "10 with random weights: the top 10)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20, help="timed invocations per file")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--output-dir", default=os.path.join("keras_mobilenets_runs",
                                                             "pretrained_heads"))
    args = parser.parse_args(argv)
    if args.alpha != 1.0 and any(getattr(args, f"{h}_weights") != RANDOM for h in args.heads):
        parser.error("--alpha other than 1.0 needs random weights (the checkpoints are 1.0)")
    # A random detector's class scores are near ties and mostly below 0.3 (most photos
    # would have no detection to compare), so its top 10 per photo are compared instead.
    random = args.ssdlite_weights == RANDOM
    if args.score_threshold is None:
        args.score_threshold = 0.0 if random else 0.3
    if args.max_detections is None:
        args.max_detections = 10 if random else 100
    if not 0.0 <= args.score_threshold <= 1.0:
        parser.error(f"--score-threshold must be in [0, 1], got {args.score_threshold}")
    if args.max_detections < 1:
        parser.error(f"--max-detections must be >= 1, got {args.max_detections}")
    return args


class Progress:
    """Prints one line per step with the time since the start."""

    def __init__(self):
        self.start = time.perf_counter()

    def __call__(self, message):
        print(f"[{time.perf_counter() - self.start:7.1f} s] {message}", flush=True)


def photo_paths(data):
    folder = os.path.join(data, "images")
    if not os.path.isdir(folder):
        raise SystemExit(f"no photographs: {folder} does not exist (set --data or "
                         "KERAS_MOBILENETS_TEST_DATA)")
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(PHOTO_SUFFIXES)
                   and not any(part in n for part in NOT_PHOTOS))
    if not names:
        raise SystemExit(f"no photographs in {folder}")
    return [os.path.join(folder, n) for n in names]


def load_photos(paths, size):
    from keras_mobilenets.photos import load_photo, resize_photo

    return np.stack([resize_photo(load_photo(p), (size, size)) for p in paths])


def randomize_batch_norm(model, images, seed=0):
    """Random batch-norm scales and offsets, moving statistics estimated on ``images``."""
    from keras_mobilenets.training import batch_norm_layers, reestimate_batch_norm

    rng = np.random.default_rng(seed)
    for layer in batch_norm_layers(model):
        if layer.scale:
            layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape).astype("float32"))
        if layer.center:
            layer.beta.assign(rng.normal(0.0, 0.5, layer.beta.shape).astype("float32"))
    reestimate_batch_norm(model, images, batch_size=8)


def build_ssdlite(weights, size, alpha):
    from keras_mobilenets import detection
    from keras_mobilenets.detection import ssdlite

    shape = (size, size, 3)
    if weights != RANDOM:
        return detection.SSDLite("MobileNetV3Large", num_classes=90, input_shape=shape,
                                 weights=weights)
    # The converted model's graph: [0, 255] -> [-1, 1], torchvision's layout, reduced tail.
    backbone_kwargs = ssdlite._torchvision_backbone_kwargs({"alpha": alpha}, shape)
    return detection.SSDLite("MobileNetV3Large", num_classes=90, input_shape=shape,
                             backbone_kwargs=backbone_kwargs)


def build_lraspp(weights, size, alpha):
    from keras_mobilenets import segmentation

    shape = (size, size, 3)
    if weights != RANDOM:
        return segmentation.LRASPP("MobileNetV3Large", num_classes=21, input_shape=shape,
                                   weights=weights)
    # The converted model's graph: ImageNet mean / std inside, torchvision's layout and tap.
    return segmentation.LRASPP("MobileNetV3Large", num_classes=21, input_shape=shape,
                               layout="torchvision", low_tap="first", alpha=alpha)


def _file_row(name, flatbuffer, path, threads, runs, warmup):
    from keras_mobilenets import export

    with open(path, "wb") as f:
        f.write(flatbuffer)
    runner = export.LiteRTModel(flatbuffer, num_threads=threads)
    latency = runner.latency(runs=runs, warmup=warmup)
    return runner, {"file": os.path.basename(path), "kib": len(flatbuffer) / 1024,
                    "latency_ms": latency.median_ms, "p90_ms": latency.p90_ms}


def _slice(detections, index):
    return {k: v[index:index + 1] for k, v in detections.items()}


def run_ssdlite(args, paths, say):
    from keras_mobilenets import detection, export
    from keras_mobilenets.detection.postprocess import numpy_detections
    from keras_mobilenets.quantization import quantize_model

    size = args.ssdlite_size
    images = load_photos(paths, size)
    calibration = np.concatenate([images, images[:, :, ::-1]])
    say(f"SSDLite: building the float model ({args.ssdlite_weights} weights, {size}x{size})")
    model = build_ssdlite(args.ssdlite_weights, size, args.alpha)
    if args.ssdlite_weights == RANDOM:
        randomize_batch_norm(model, calibration)
    post = detection.SSDPostprocess.from_model(
        model, score_threshold=args.score_threshold, max_detections=args.max_detections)
    reference = numpy_detections(post(model(images, training=False)))
    say(f"SSDLite: quantize_model, calibrated on {len(calibration)} photographs")
    qat = quantize_model(model, calibration_data=calibration, calibration_batch_size=8)
    say("SSDLite: exporting the float32 file")
    files = {"float32": export.to_tflite(model, postprocess=post)}
    say("SSDLite: exporting the int8 file (from the QAT model)")
    files["int8"] = export.to_tflite(qat, quantization="int8", postprocess=post)
    result = {"weights": args.ssdlite_weights, "random_weights": args.ssdlite_weights == RANDOM,
              "input_size": size, "alpha": args.alpha, "score_threshold": args.score_threshold,
              "max_detections": args.max_detections,
              "min_iou": MIN_IOU, "photos": [os.path.basename(p) for p in paths],
              "float_detections": int((reference["labels"] >= 0).sum()), "files": {}}
    agree = lambda a, b: detection.detection_agreement(  # noqa: E731
        a, b, (size, size), min_iou=MIN_IOU, max_pixels=float(size))
    for name, flatbuffer in files.items():
        say(f"SSDLite: timing and running the {name} file")
        path = os.path.join(args.output_dir, f"ssdlite_{name}.tflite")
        runner, row = _file_row(name, flatbuffer, path, args.threads, args.runs, args.warmup)
        found = detection.tflite_detections(runner, images)
        row["detections"] = int((found["labels"] >= 0).sum())
        row["agreement"] = agree(reference, found)[0]          # float's found in the file
        row["reverse_agreement"] = agree(found, reference)[0]  # file's found in the float
        row["per_photo"] = {
            os.path.basename(p): {
                "float_detections": int((reference["labels"][i] >= 0).sum()),
                "detections": int((found["labels"][i] >= 0).sum()),
                "agreement": agree(_slice(reference, i), _slice(found, i))[0]}
            for i, p in enumerate(paths)}
        row["scores"] = found["scores"][:, :5].round(4).tolist()
        result["files"][name] = row
    result["op_report_int8"] = export.op_report(files["int8"])
    return result


def run_lraspp(args, paths, say):
    from keras_mobilenets import export
    from keras_mobilenets.quantization import quantize_model

    size = args.lraspp_size
    images = load_photos(paths, size)
    calibration = np.concatenate([images, images[:, :, ::-1]])
    say(f"LR-ASPP: building the float model ({args.lraspp_weights} weights, {size}x{size})")
    model = build_lraspp(args.lraspp_weights, size, args.alpha)
    if args.lraspp_weights == RANDOM:
        randomize_batch_norm(model, calibration)
    reference = np.concatenate([np.asarray(model(images[i:i + 4], training=False)).argmax(-1)
                                for i in range(0, len(images), 4)])
    say(f"LR-ASPP: quantize_model, calibrated on {len(calibration)} photographs")
    qat = quantize_model(model, calibration_data=calibration, calibration_batch_size=8)
    say("LR-ASPP: exporting the float32 file")
    files = {"float32": export.to_tflite(model)}
    say("LR-ASPP: exporting the int8 file (from the QAT model)")
    files["int8"] = export.to_tflite(qat, quantization="int8")
    classes, shares = np.unique(reference, return_counts=True)
    result = {"weights": args.lraspp_weights, "random_weights": args.lraspp_weights == RANDOM,
              "input_size": size, "alpha": args.alpha,
              "photos": [os.path.basename(p) for p in paths],
              "float_classes": {int(c): float(s / reference.size)
                                for c, s in zip(classes, shares)}, "files": {}}
    for name, flatbuffer in files.items():
        say(f"LR-ASPP: timing and running the {name} file")
        path = os.path.join(args.output_dir, f"lraspp_{name}.tflite")
        runner, row = _file_row(name, flatbuffer, path, args.threads, args.runs, args.warmup)
        logits = runner.predict(images)
        masks = logits.argmax(-1)
        same = masks == reference
        row["agreement"] = float(same.mean())
        row["per_photo"] = {os.path.basename(p): float(same[i].mean())
                            for i, p in enumerate(paths)}
        row["logits_std"] = float(logits.std())
        result["files"][name] = row
    result["op_report_int8"] = export.op_report(files["int8"])
    return result


def machine():
    import tensorflow as tf

    return {"platform": platform.platform(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "python": sys.version.split()[0],
            "tensorflow": tf.__version__}


def table(results):
    """The results as text: one row per file."""
    lines = []
    for head, result in results["heads"].items():
        title = {"ssdlite": "SSDLite MobileNetV3-Large (COCO)",
                 "lraspp": "LR-ASPP MobileNetV3-Large (VOC)"}[head]
        size = result["input_size"]
        note = f"  [{RANDOM_NOTE}]" if result["random_weights"] else ""
        lines.append(f"{title}, {size}x{size}, weights: {result['weights']}{note}")
        if head == "ssdlite":
            lines.append(
                f"  float Keras model: {result['float_detections']} detections (score >= "
                f"{result['score_threshold']}, at most {result['max_detections']} per photo) on "
                f"{len(result['photos'])} photographs; "
                f"agreement = share of them the file reproduces (same label, IoU >= "
                f"{result['min_iou']}), reverse = share of the file's found in the float's")
            header = (f"  {'file':22s} {'KiB':>8s} {'ms':>8s} {'p90 ms':>8s} {'dets':>5s} "
                      f"{'agreement':>9s} {'reverse':>8s}")
        else:
            lines.append(f"  agreement = share of pixels whose arg-max class equals the float "
                         f"Keras model's, {len(result['photos'])} photographs")
            header = f"  {'file':22s} {'KiB':>8s} {'ms':>8s} {'p90 ms':>8s} {'agreement':>9s}"
        lines += [header, "  " + "-" * (len(header) - 2)]
        for row in result["files"].values():
            line = (f"  {row['file']:22s} {row['kib']:8.0f} {row['latency_ms']:8.2f} "
                    f"{row['p90_ms']:8.2f}")
            if head == "ssdlite":
                line += (f" {row['detections']:5d} {row['agreement']:9.3f} "
                         f"{row['reverse_agreement']:8.3f}")
            else:
                line += f" {row['agreement']:9.3f}"
            lines.append(line)
        int8 = result["files"]["int8"]["per_photo"]
        cells = [f"{photo.rsplit('.', 1)[0]} "
                 + (f"{v['agreement']:.2f} ({v['float_detections']})" if isinstance(v, dict)
                    else f"{v:.3f}") for photo, v in int8.items()]
        what = "int8 per photo, agreement (float detections)" if head == "ssdlite" else \
            "int8 per photo"
        lines.append(f"  {what}: " + ", ".join(cells))
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    say = Progress()
    paths = photo_paths(args.data)
    os.makedirs(args.output_dir, exist_ok=True)
    say(f"{len(paths)} photographs from {os.path.join(args.data, 'images')}; "
        f"LiteRT with {args.threads} threads, median of {args.runs} runs")
    import keras

    keras.utils.set_random_seed(0)
    results = {"machine": machine(), "threads": args.threads, "runs": args.runs, "heads": {}}
    runners = {"ssdlite": run_ssdlite, "lraspp": run_lraspp}
    for head in args.heads:
        if getattr(args, f"{head}_weights") == RANDOM:
            say(f"{head}: no checkpoint given -> {RANDOM_NOTE}")
        results["heads"][head] = runners[head](args, paths, say)
        keras.backend.clear_session()
    results["seconds"] = time.perf_counter() - say.start
    path = os.path.join(args.output_dir, "results.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    print(table(results))
    say(f"results written to {path}")
    return results


if __name__ == "__main__":
    main()

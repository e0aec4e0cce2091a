"""``keras-mobilenets detect IMAGE`` and ``keras-mobilenets segment IMAGE``: torchvision's
COCO SSDLite and VOC LR-ASPP (converted) run on a photograph; the detections or the
classes found are printed and a picture is saved.

Example:
    $ keras-mobilenets detect cats_and_dogs.jpg --score-threshold 0.5
    $ keras-mobilenets segment cats_and_dogs.jpg --output-dir runs/segment
"""

import argparse
import os
import sys

from keras_mobilenets.cli.arguments import int_at_least, number_type, one_line_error

DETECT_DIR = os.path.join("keras_mobilenets_runs", "detect")
SEGMENT_DIR = os.path.join("keras_mobilenets_runs", "segment")


def head_weights(keyword):
    """An argparse type: ``keyword`` (any case) or an existing torchvision state dict."""

    from keras_mobilenets.weights.torch_checkpoint import TORCH_SUFFIXES

    def parse(text):
        if text.lower() == keyword:
            return keyword
        if not os.path.isfile(text) or not text.endswith(TORCH_SUFFIXES):
            raise argparse.ArgumentTypeError(
                f"must be {keyword!r} or an existing torchvision checkpoint ending in "
                f"{', '.join(TORCH_SUFFIXES)}, got {text!r}"
            )
        return text

    return parse


unit_interval = number_type(float, lambda value: 0 <= value <= 1, "a number in [0, 1]")
open_unit_interval = number_type(float, lambda value: 0 < value <= 1, "a number in (0, 1]")


def build_detector(weights):
    """torchvision's SSDLite320 MobileNetV3-Large with ``weights`` ("coco" or a path)."""
    from keras_mobilenets.detection import SSDLite

    return SSDLite("MobileNetV3Large", num_classes=90, input_shape=(320, 320, 3),
                   weights=weights)


def build_segmenter(weights):
    """torchvision's LR-ASPP MobileNetV3-Large with ``weights`` ("voc" or a path), 520x520."""
    from keras_mobilenets.segmentation import LRASPP

    return LRASPP("MobileNetV3Large", num_classes=21, input_shape=(520, 520, 3),
                  weights=weights)


def _output_path(output_dir, image, suffix):
    os.makedirs(output_dir, exist_ok=True)
    stem = os.path.splitext(os.path.basename(image))[0]
    return os.path.join(output_dir, f"{stem}_{suffix}.png")


def detect_command(args):
    from keras_mobilenets.detection.predict import detect_image, draw_detections
    from keras_mobilenets.photos import load_photo

    try:
        load_photo(args.image)  # a missing image fails before the download
        model = build_detector(args.weights)
        found = detect_image(args.image, model, score_threshold=args.score_threshold,
                             iou_threshold=args.iou_threshold,
                             max_detections=args.max_detections)
        path = draw_detections(args.image, found,
                               _output_path(args.output_dir, args.image, "detections"))
    except (ValueError, OSError) as error:
        print(one_line_error("detect", error), file=sys.stderr)
        return 1
    height, width = found["image_size"]
    print(f"{args.image} ({width}x{height}, SSDLite MobileNetV3Large, "
          f"weights={args.weights}): {len(found['names'])} detections "
          f"(score >= {args.score_threshold:g})")
    for rank, (name, score, box) in enumerate(zip(found["names"], found["scores"],
                                                  found["boxes"]), 1):
        x0, y0, x1, y1 = (float(v) for v in box)
        print(f"{rank:3d}. {name:16s} {float(score):.3f}  "
              f"[{x0:.1f}, {y0:.1f}, {x1:.1f}, {y1:.1f}]")
    print(f"saved {path}")
    return 0


def segment_command(args):
    from keras_mobilenets.photos import load_photo
    from keras_mobilenets.segmentation.predict import draw_segmentation, segment_image

    try:
        load_photo(args.image)
        model = build_segmenter(args.weights)
        found = segment_image(args.image, model)
        path = draw_segmentation(args.image, found,
                                 _output_path(args.output_dir, args.image, "segmentation"))
    except (ValueError, OSError) as error:
        print(one_line_error("segment", error), file=sys.stderr)
        return 1
    height, width = found["mask"].shape
    print(f"{args.image} ({width}x{height}, LR-ASPP MobileNetV3Large, "
          f"weights={args.weights}): {len(found['classes'])} classes")
    for _, name, share in found["classes"]:
        print(f"  {name:16s} {100 * share:6.2f}%")
    print(f"saved {path}")
    return 0


def add_parsers(commands):
    """Adds the ``detect`` and ``segment`` subcommands to ``commands``."""
    detect = commands.add_parser(
        "detect", help="detect COCO objects in an image (torchvision's SSDLite, converted)")
    detect.add_argument("image", help="image file (JPEG, PNG, ...)")
    detect.add_argument("--weights", default="coco", type=head_weights("coco"),
                        help="'coco' (default, downloaded once) or a torchvision SSDLite "
                             "checkpoint path")
    detect.add_argument("--score-threshold", type=unit_interval, default=0.5,
                        help="smallest score shown (default: 0.5)")
    detect.add_argument("--iou-threshold", type=open_unit_interval, default=0.55,
                        help="non-maximum suppression IoU (default: 0.55)")
    detect.add_argument("--max-detections", type=int_at_least(1), default=100,
                        help="most detections (default: 100)")
    detect.add_argument("--output-dir", default=DETECT_DIR,
                        help=f"folder of the saved picture (default: {DETECT_DIR})")
    detect.set_defaults(run=detect_command)
    segment = commands.add_parser(
        "segment", help="segment an image into Pascal VOC classes (torchvision's LR-ASPP)")
    segment.add_argument("image", help="image file (JPEG, PNG, ...)")
    segment.add_argument("--weights", default="voc", type=head_weights("voc"),
                         help="'voc' (default, downloaded once) or a torchvision LR-ASPP "
                              "checkpoint path")
    segment.add_argument("--output-dir", default=SEGMENT_DIR,
                         help=f"folder of the saved picture (default: {SEGMENT_DIR})")
    segment.set_defaults(run=segment_command)

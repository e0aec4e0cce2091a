"""The ``keras-mobilenets`` command line (also ``python -m keras_mobilenets``).

Commands:
    models   build every variant of the zoo and print parameters and multiply-adds
             side by side with the reference numbers.
    demo     the main job on the embedded default data (see ``demo --help``).
    predict  classify an image with an ImageNet model and print the top classes.
    finetune fine-tune a backbone on a folder of images (or the shapes data), optionally
             quantization-aware, and export int8 TFLite (see ``finetune --help``).
    detect   detect COCO objects in an image with torchvision's SSDLite (converted).
    segment  segment an image into Pascal VOC classes with torchvision's LR-ASPP.
    evaluate accuracy, agreement, size and latency of .keras, .tflite and .onnx files on a
             folder of labelled images (see ``evaluate --help``).

TensorFlow's and LiteRT's own log lines are off unless ``--verbose`` (before or after the
command) or ``TF_CPP_MIN_LOG_LEVEL`` is set (see ``keras_mobilenets.quiet``): the package
sets it when it is imported by this command, before TensorFlow is.
"""

import argparse
import sys

from keras_mobilenets import quiet
from keras_mobilenets.cli import evaluate, inspect_models, pretrained, training
from keras_mobilenets.cli.inspect_models import models_table, predict_image

__all__ = ["build_parser", "main", "models_table", "predict_image"]


def __getattr__(name):
    # PREDICT_MODELS (older name): every registered builder, read from the registry.
    if name == "PREDICT_MODELS":
        from keras_mobilenets import registry

        return registry.builder_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


VERBOSE_HELP = ("show TensorFlow's and LiteRT's own log lines (off by default; a "
                f"{quiet.LEVEL_VARIABLE} you set is kept)")


def build_parser():
    """The argument parser of the ``keras-mobilenets`` command."""
    parser = argparse.ArgumentParser(
        prog="keras-mobilenets",
        description="MobileNet V1/V2/V3/V4 and ShuffleNet for Keras 3: build, train, quantize, "
                    "export.",
    )
    parser.add_argument(quiet.VERBOSE_OPTION, action="store_true", help=VERBOSE_HELP)
    commands = parser.add_subparsers(dest="command", required=True)
    inspect_models.add_parsers(commands)
    training.add_parsers(commands)
    pretrained.add_parsers(commands)
    evaluate.add_parsers(commands)
    for command in commands.choices.values():  # also after the command (SUPPRESS: no reset)
        command.add_argument(quiet.VERBOSE_OPTION, action="store_true",
                             default=argparse.SUPPRESS, help=VERBOSE_HELP)
    return parser


def main(argv=None):
    """Entry point of the ``keras-mobilenets`` console script.

    ``--verbose`` acts when the package is imported by the command, before TensorFlow is
    (``quiet.quiet_command_line``); called from Python, ``main`` changes no environment.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded by the demo
    if args.command == "models" and args.markdown and args.image_size != 224:
        args.subparser.error("--markdown documents the models at 224x224; got "
                             f"--image-size {args.image_size}")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())

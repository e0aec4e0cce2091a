"""``keras-mobilenets demo`` and ``keras-mobilenets finetune``: the training subcommands.

Example:
    >>> from keras_mobilenets import cli
    >>> cli.main(["demo", "--epochs", "1", "--train-images", "200"])
"""

import argparse
import os
import sys

from keras_mobilenets import _checks, quiet, results
from keras_mobilenets.cli.arguments import (
    fraction,
    int_at_least,
    positive_float,
    export_path,
    weights,
)


def latency_note():
    """How the tables' latency was measured, naming this CPU."""
    return ("latency: LiteRT, 2 threads, one image, the median over 7 interleaved rounds on "
            f"this CPU ({results.cpu_description()}); 'vs float32': each file's latency "
            "over the float32 file's, round by round, median (min-max)")


def int8_speed_note(rows):
    """A sentence on whether the int8 files ran faster than float32 here, or "" without a
    timed int8 row."""
    ratios = [row.latency_ratio for row in rows
              if row.latency_ratio is not None and "int8" in row.name]
    if not ratios:
        return ""
    if all(ratio.high < 1 for ratio in ratios):
        return "On this CPU the int8 files ran faster than the float32 file in every round."
    why = ("XNNPACK's int8 kernels gain little without int8 dot-product instructions: "
           "AVX-512 VNNI, AVX-VNNI or ARM's dot product; the int8 files are a third of the "
           "size. Per CPU and model: docs/speed.md.")
    if any(ratio.median >= 1 for ratio in ratios):
        return f"On this CPU the int8 files were not faster than the float32 file ({why})"
    return ("On this CPU the int8 files were not clearly faster than the float32 file: the "
            f"per-round ratio spans 1 ({why})")


def demo_command(args):
    from keras_mobilenets.demo import run_demo
    from keras_mobilenets.results import command_line

    try:
        result = run_demo(
            output_dir=args.output_dir, image_size=args.image_size,
            train_images=args.train_images, test_images=args.test_images, epochs=args.epochs,
            qat_epochs=args.qat_epochs, batch_size=args.batch_size, alpha=args.alpha,
            seed=args.seed, command=command_line("keras-mobilenets", args.argv),
            verbose=quiet.progress_verbosity(),  # plain lines when not on a terminal
        )
    except _checks.BackendError as error:  # QAT and TFLite: refused before any data
        print(f"keras-mobilenets demo: error: {error} `keras-mobilenets finetune` trains "
              "float models on every backend.", file=sys.stderr)
        return 1
    except (ValueError, OSError) as error:
        print(f"keras-mobilenets demo: error: {error}", file=sys.stderr)
        return 1
    print()
    print(f"Held-out accuracy on {args.test_images} shapes images ('agreement' is top-1 "
          f"agreement with the Keras model each file was made from; {latency_note()}):")
    print(result.table())
    note = int8_speed_note(result.rows)
    if note:
        print(note)
    print(f"Files: {', '.join(result.files.values())}  ({result.seconds:.0f} s)")
    print(f"Figures, seed, command and machine: {result.results_file}")
    return 0


def _add_demo_parser(commands):
    demo = commands.add_parser(
        "demo",
        help="train, QAT fine-tune and export MobileNetV3Small on the embedded shapes data",
        description="Train MobileNetV3Small from random weights on the embedded synthetic "
        "shapes data, fine-tune it quantization-aware, export float32 and int8 TFLite files "
        "(int8 from the QAT model and, for comparison, post-training int8), run them with "
        "LiteRT and print accuracy, agreement, size and latency on held-out images. The "
        "same --seed gives the same numbers on one machine.",
        usage="%(prog)s [options] (see --help)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    demo.add_argument("--output-dir", default=os.path.join("keras_mobilenets_runs", "demo"),
                      help="folder for the .tflite files and the models")
    demo.add_argument("--image-size", type=int_at_least(32), default=64,
                      help="square input size in pixels")
    demo.add_argument("--train-images", type=int_at_least(10), default=6000,
                      help="generated training images")
    demo.add_argument("--test-images", type=int_at_least(1), default=1000,
                      help="generated held-out images for every accuracy")
    demo.add_argument("--epochs", type=int_at_least(1), default=6,
                      help="float training epochs")
    demo.add_argument("--qat-epochs", type=int_at_least(1), default=1,
                      help="quantization-aware fine-tuning epochs")
    demo.add_argument("--batch-size", type=int_at_least(1), default=32, help="batch size")
    demo.add_argument("--alpha", type=positive_float, default=1.0,
                      help="width multiplier of MobileNetV3Small")
    demo.add_argument("--seed", type=int_at_least(0), default=0,
                      help="seed of the data, initialization and training order")
    demo.set_defaults(run=demo_command)


def _finetune_config(args):
    from keras_mobilenets.finetune import FineTuneConfig

    backbone_kwargs = {}
    if args.alpha is not None:
        backbone_kwargs["alpha"] = args.alpha
    if args.minimalistic:
        backbone_kwargs["minimalistic"] = True
    return FineTuneConfig(
        backbone=args.model, backbone_kwargs=backbone_kwargs, weights=args.weights,
        image_size=args.image_size, batch_size=args.batch_size,
        validation_split=args.validation_split, augment=not args.no_augment,
        dropout_rate=args.dropout, optimizer=args.optimizer, epochs=args.epochs,
        learning_rate=args.learning_rate, fine_tune_epochs=args.fine_tune_epochs,
        fine_tune_learning_rate=args.fine_tune_learning_rate, qat=args.qat,
        qat_epochs=args.qat_epochs, qat_learning_rate=args.qat_learning_rate,
        sync_batch_norm=args.sync_batch_norm, latency_runs=args.latency_runs, seed=args.seed,
    )


def _finetune(args, parser):
    from keras_mobilenets import finetune
    from keras_mobilenets.distribute import strategy_from_name

    if args.data_dir is not None:
        try:
            finetune.check_image_folder(args.data_dir)
        except ValueError as error:
            parser.error(f"argument DATA_DIR: {error}")
    for option, name, given in (("--alpha", "alpha", args.alpha is not None),
                                ("--minimalistic", "minimalistic", args.minimalistic)):
        if given and not finetune.builder_accepts(args.model, name):
            parser.error(f"argument {option}: {args.model} has no `{name}` argument")
    config = _finetune_config(args)
    try:
        config.check()
    except ValueError as error:
        parser.error(str(error))
    options = {"qat": "--qat", "export": "--export", "sync_batch_norm": "--sync-batch-norm",
               "strategy": f"--strategy {args.strategy}"}
    used = [options[name] for name in finetune.tensorflow_only_settings(
        config, args.export, distributed=args.strategy != "default")]
    try:  # refused before anything is read or trained
        finetune.require_tensorflow_for(f"keras-mobilenets finetune {' '.join(used)}", used)
    except _checks.BackendError as error:
        parser.error(str(error))
    # "default" is one device on every backend (a tf.distribute strategy only on TensorFlow).
    strategy = None if args.strategy == "default" else strategy_from_name(args.strategy)
    try:
        with finetune.report_to_stdout():
            result = finetune.run_finetune(
                args.data_dir, output_dir=args.output_dir, config=config, export=args.export,
                strategy=strategy, shapes_images=args.shapes_images, strict=args.strict,
                verbose=quiet.progress_verbosity(),  # plain lines when not on a terminal
            )
    except (ValueError, OSError) as error:
        print(f"keras-mobilenets finetune: error: {error}", file=sys.stderr)
        return 1
    notes = []
    for name, phase in result.phases.items():
        if phase.completed_before:
            notes.append(f"{name} completed before (loaded its last checkpoint)")
        elif phase.epochs and phase.epochs[0] > 0:
            notes.append(f"{name} resumed at epoch {phase.epochs[0] + 1}")
    print()
    if notes:
        print(f"Resumed the run in {args.output_dir}: {'; '.join(notes)}.")
    if result.skipped:
        print(f"Skipped {len(result.skipped)} file(s) that cannot be used as images "
              f"(list in {result.files['skipped_txt']}).")
    split = "validation" if config.validation_split else "training"
    print(f"Accuracy on the {split} images ({', '.join(result.class_names)}); 'agreement' is "
          f"top-1 agreement with the Keras model each one was made from; {latency_note()}:")
    print(result.table())
    note = int8_speed_note(result.rows)
    if note:
        print(note)
    print(f"Files: {', '.join(result.files.values())}  ({result.seconds:.0f} s)")
    return 0


def _add_finetune_parser(commands):
    from keras_mobilenets import models  # noqa: F401  (registers the builders)
    from keras_mobilenets import registry
    from keras_mobilenets.distribute import STRATEGIES

    finetune = commands.add_parser(
        "finetune",
        help="fine-tune a backbone on a folder of class sub-folders of images",
        description="Fine-tune a backbone (new head, frozen then unfrozen) on DATA_DIR, a "
        "folder with one sub-folder of images per class (without DATA_DIR: the embedded "
        "shapes data), optionally quantization-aware (--qat), export int8 TFLite "
        "(--export) and print accuracy, size and latency. Every file is checked first: "
        "files that cannot be decoded are skipped and listed in OUTPUT_DIR/"
        "skipped_files.txt (--strict stops instead). Every epoch is checkpointed in "
        "--output-dir; run the same command again to resume after an interruption.",
        usage="%(prog)s [DATA_DIR] [options] (see --help)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = finetune.add_argument
    add("data_dir", metavar="DATA_DIR", nargs="?", default=None,
        help="folder of class sub-folders (None: the embedded shapes data)")
    add("--model", default="MobileNetV3Small", choices=registry.builder_names(),
        help="backbone builder")
    add("--alpha", type=positive_float, default=None,
        help="width multiplier (MobileNet, V2, V3; None: the builder's)")
    add("--minimalistic", action="store_true", help="MobileNetV3 minimalistic")
    add("--weights", type=weights, default="imagenet",
        help="backbone weights: 'imagenet', 'none' (random) or a weights file")
    add("--image-size", type=int_at_least(32), default=224, help="square input size")
    add("--batch-size", type=int_at_least(1), default=32, help="global batch size")
    add("--validation-split", type=fraction, default=0.2,
        help="fraction of the images held out for validation (0: none)")
    add("--no-augment", action="store_true", help="no random augmentation")
    add("--dropout", type=fraction, default=0.2, help="dropout of the head")
    add("--optimizer", default="adam", choices=("adam", "sgd"),
        help="adam, or sgd with momentum 0.9")
    add("--epochs", type=int_at_least(0), default=5, help="epochs with the backbone frozen")
    add("--learning-rate", type=positive_float, default=1e-3,
        help="initial learning rate with the backbone frozen")
    add("--fine-tune-epochs", type=int_at_least(0), default=5,
        help="epochs with the backbone unfrozen")
    add("--fine-tune-learning-rate", type=positive_float, default=1e-4,
        help="initial learning rate with the backbone unfrozen")
    add("--qat", action="store_true", help="quantization-aware fine-tuning")
    add("--qat-epochs", type=int_at_least(1), default=1, help="QAT epochs")
    add("--qat-learning-rate", type=positive_float, default=1e-5,
        help="initial learning rate of QAT")
    add("--export", type=export_path, default=None, metavar="OUT.tflite|OUT.onnx",
        help="write an int8 TFLite file (.tflite, run with LiteRT) or ONNX file (.onnx, run "
             "with ONNX Runtime), from the QAT model with --qat, else post-training, beside "
             "a float32 one; a relative path is inside --output-dir")
    add("--output-dir", default=os.path.join("keras_mobilenets_runs", "finetune"),
        help="checkpoints, backups, model files, skipped-files report")
    add("--strict", action="store_true",
        help="stop before training if a file cannot be decoded, instead of skipping it")
    add("--shapes-images", type=int_at_least(10), default=1000,
        help="images of the shapes data (without DATA_DIR)")
    add("--strategy", default="default", choices=STRATEGIES,
        help="tf.distribute strategy ('default': one device)")
    add("--sync-batch-norm", action="store_true", help="batch statistics over all replicas")
    add("--latency-runs", type=int_at_least(1), default=50,
        help="timed invocations per exported file (LiteRT or ONNX Runtime)")
    add("--seed", type=int_at_least(0), default=0,
        help="seed of the split, shuffling, augmentation and initialization")
    finetune.set_defaults(run=lambda args: _finetune(args, finetune))




def add_parsers(commands):
    """Adds the ``demo`` and ``finetune`` subcommands to ``commands``."""
    _add_demo_parser(commands)
    _add_finetune_parser(commands)

"""``keras-mobilenets evaluate``: model files side by side on a folder of labelled images.

Example:
    $ keras-mobilenets evaluate flower_photos --model run/model.keras run/model_int8.tflite
"""

import argparse
import os
import sys

from keras_mobilenets import quiet
from keras_mobilenets.cli.arguments import int_at_least, one_line_error


def model_file(text):
    """An argparse type: an existing file ending in .keras, .tflite or .onnx."""
    from keras_mobilenets.export.runners import MODEL_SUFFIXES

    if not text.lower().endswith(MODEL_SUFFIXES):
        raise argparse.ArgumentTypeError(
            f"must be a file ending in {', '.join(MODEL_SUFFIXES)}, got {text!r}")
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"model file {text!r} does not exist")
    return text


def _tensorflow_threads(num_threads):
    """TensorFlow's intra-op threads for .keras files; False if TensorFlow runs already."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(num_threads)
    except RuntimeError:  # set once, before TensorFlow's first op (in-process callers)
        return tf.config.threading.get_intra_op_parallelism_threads() == num_threads
    return True


def evaluate_command(args, parser):
    from keras_mobilenets import finetune
    from keras_mobilenets.finetune.file_evaluation import evaluate_files

    try:
        finetune.check_image_folder(args.data_dir)
    except ValueError as error:
        parser.error(f"argument DATA_DIR: {error}")
    keras_threads = _tensorflow_threads(args.threads)
    try:
        with finetune.report_to_stdout():
            result = evaluate_files(
                args.data_dir, args.model, limit=args.limit, num_threads=args.threads,
                latency_runs=args.latency_runs,
                verbose=quiet.progress_verbosity(),  # plain lines when not on a terminal
            )
    except (ValueError, OSError, ImportError) as error:
        print(one_line_error("evaluate", error), file=sys.stderr)
        return 1
    limit = f", the first {args.limit} files of each class folder" if args.limit else ""
    threads = f"{args.threads} thread(s)"
    if any(name.lower().endswith(".keras") for name in args.model) and not keras_threads:
        threads += " (.keras: TensorFlow's own)"
    print()
    classes = ", ".join(result.class_names)
    print(f"Accuracy on {result.images} images of {args.data_dir}{limit}; "
          f"{len(result.class_names)} classes in folder order ({classes}): the files carry "
          "no class names, label i is the i-th class folder.")
    print(f"'agreement' is top-1 agreement with {args.model[0]}; top-5 needs 5 classes (else "
          f"n/a); latency: batch 1, {threads}, the median over 7 interleaved rounds of "
          f"{args.latency_runs} runs per file; 'vs first': its ratio to the first file's, "
          "round by round, median (min–max):")
    print(result.table())
    if result.skipped:
        print(f"Skipped {len(result.skipped)} file(s) that cannot be used as images "
              "(listed above).")
    return 0


def add_parsers(commands):
    """Adds the ``evaluate`` subcommand to ``commands``."""
    evaluate = commands.add_parser(
        "evaluate",
        help="accuracy, agreement, size and latency of model files on labelled images",
        description="Evaluate .keras, .tflite and .onnx files on DATA_DIR, a folder with "
        "one sub-folder of images per class (the finetune layout): top-1 and top-5 "
        "accuracy, top-1 agreement with the first file, file size and latency (batch 1, "
        "every file timed in the same process in interleaved rounds). Each image is "
        "resized to each file's input size and given as RGB pixels in [0, 255], as "
        "finetune's models and files take them; label i is the i-th class folder in "
        "sorted order. Files that cannot be decoded are skipped and named.",
        usage="%(prog)s DATA_DIR --model FILE [FILE ...] [options] (see --help)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = evaluate.add_argument
    add("data_dir", metavar="DATA_DIR", help="folder of class sub-folders of images")
    add("--model", nargs="+", required=True, type=model_file, metavar="FILE",
        help=".keras, .tflite or .onnx files (agreement is with the first)")
    add("--limit", type=int_at_least(1), default=None, metavar="N",
        help="only the first N files of each class folder (a quick look; None: all)")
    add("--threads", type=int_at_least(1), default=2,
        help="CPU threads of LiteRT, onnxruntime and TensorFlow (.keras)")
    add("--latency-runs", type=int_at_least(1), default=50,
        help="timed runs of one image per file")
    evaluate.set_defaults(run=lambda args: evaluate_command(args, evaluate))

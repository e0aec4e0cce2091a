"""The ``keras-mobilenets`` command line (also ``python -m keras_mobilenets``).

Commands:
    models   build every variant of the zoo and print parameters and multiply-adds
             side by side with the reference numbers.
    demo     the main job on the embedded default data (see ``demo --help``).
    predict  classify an image with an ImageNet model and print the top classes.
    finetune fine-tune a backbone on a folder of images (or the shapes data), optionally
             quantization-aware, and export int8 TFLite (see ``finetune --help``).
"""

import argparse
import os
import sys


def models_table(variants=None, input_size=224, progress=True):
    """Builds each registry entry and returns the model table as text.

    Args:
        variants: Registry entries to include (all by default).
        input_size: Square input size at which multiply-adds are counted.
        progress: Show a progress bar while building.

    Returns:
        The table, one line per variant.
    """
    from keras_mobilenets import registry, zoo

    variants = registry.entries() if variants is None else variants
    header = (
        f"{'variant':34s} {'params':>10s} {'reference':>10s} {'trainable':>10s} "
        f"{'MACs(M)':>8s} {'ref MACs':>8s} {'top-1':>6s}"
    )
    lines = [header, "-" * len(header)]
    measurements = zoo.measure_all(variants, input_size, progress=progress)
    for variant, measured in zip(variants, measurements):
        reference = f"{variant.params:,d}" if variant.params else "-"
        ref_macs = f"{variant.macs_millions:g}" if variant.macs_millions else "-"
        top1 = f"{variant.top1:g}" if variant.top1 else "-"
        lines.append(
            f"{variant.name:34s} {measured.params:10,d} {reference:>10s} "
            f"{measured.trainable_params:10,d} {measured.macs / 1e6:8.1f} {ref_macs:>8s} "
            f"{top1:>6s}"
        )
    return "\n".join(lines)


def _show_progress():
    """Progress bars only on a terminal: a redirected output gets the results alone."""
    return sys.stdout.isatty()


def _models(args):
    if args.markdown:
        from keras_mobilenets import zoo

        print(zoo.model_zoo_markdown(progress=_show_progress()), end="")
        return 0
    print(models_table(input_size=args.image_size, progress=_show_progress()))
    return 0


def _demo(args):
    from keras_mobilenets.demo import run_demo

    try:
        result = run_demo(
            output_dir=args.output_dir, image_size=args.image_size,
            train_images=args.train_images, test_images=args.test_images, epochs=args.epochs,
            qat_epochs=args.qat_epochs, batch_size=args.batch_size, alpha=args.alpha,
            seed=args.seed,
        )
    except (ValueError, OSError) as error:
        print(f"keras-mobilenets demo: error: {error}", file=sys.stderr)
        return 1
    print()
    print(f"Held-out accuracy on {args.test_images} shapes images ('agreement' is top-1 "
          "agreement with the Keras model each file was made from; latency: LiteRT, "
          "2 threads, median):")
    print(result.table())
    print(f"Files: {', '.join(result.files.values())}  ({result.seconds:.0f} s)")
    return 0


def __getattr__(name):
    # PREDICT_MODELS (older name): every registered builder, read from the registry.
    if name == "PREDICT_MODELS":
        from keras_mobilenets import registry

        return registry.builder_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _read_image(path, size):
    """The image at ``path`` as a ``(1, size, size, 3)`` float array of [0, 255] RGB pixels.

    Raises:
        ValueError: If there is no such file or it is not an image (naming the path).
    """
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not os.path.isfile(path):
        raise ValueError(f"`image` {path!r}: no such file.")
    try:
        with Image.open(path) as picture:
            picture = ImageOps.exif_transpose(picture).convert("RGB")
            picture = picture.resize((size, size), Image.Resampling.BILINEAR)
            pixels = np.asarray(picture, dtype="float32")
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(
            f"`image` {path!r} is not a readable image ({type(error).__name__}); use a JPEG, "
            "PNG, BMP or GIF file."
        ) from None
    return pixels[None]


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
    demo.add_argument("--image-size", type=_int_at_least(32), default=64,
                      help="square input size in pixels")
    demo.add_argument("--train-images", type=_int_at_least(10), default=6000,
                      help="generated training images")
    demo.add_argument("--test-images", type=_int_at_least(1), default=1000,
                      help="generated held-out images for every accuracy")
    demo.add_argument("--epochs", type=_int_at_least(1), default=6,
                      help="float training epochs")
    demo.add_argument("--qat-epochs", type=_int_at_least(1), default=1,
                      help="quantization-aware fine-tuning epochs")
    demo.add_argument("--batch-size", type=_int_at_least(1), default=32, help="batch size")
    demo.add_argument("--alpha", type=_positive_float, default=1.0,
                      help="width multiplier of MobileNetV3Small")
    demo.add_argument("--seed", type=_int_at_least(0), default=0,
                      help="seed of the data, initialization and training order")
    demo.set_defaults(run=_demo)


def predict_image(image, model_name="MobileNetV3Small", weights="imagenet", top=5, alpha=1.0,
                  minimalistic=False, input_size=224):
    """Classifies one image file with an ImageNet classifier of the package.

    Args:
        image: Path of an image file (JPEG, PNG, BMP, GIF; EXIF orientation applied).
        model_name: A registered builder name (``registry.builder_names()``).
        weights: ``"imagenet"``, None (random weights, e.g. to try the command) or the
            path of a weights file with the 1000-class top.
        top: How many classes to return.
        alpha: Width multiplier of the model (builders that have one).
        minimalistic: MobileNetV3's minimalistic variant.
        input_size: Square size the image is resized to (224, the size of every
            published checkpoint, by default).

    Returns:
        A list of ``(wordnet_id, class_name, score)``, best first.

    Raises:
        ValueError: On an unknown model name, a bad ``top``, a missing or unreadable
            image, or weights that do not fit.

    Example:
        >>> predict_image("grace_hopper.jpg", "MobileNetV3Small")[0][1]
        'military_uniform'
    """
    import inspect

    import numpy as np

    from keras_mobilenets import imagenet, registry

    builder = registry.get_builder(model_name)
    batch = _read_image(image, input_size)
    kwargs = {"weights": weights}
    parameters = inspect.signature(builder).parameters
    if "alpha" in parameters:
        kwargs["alpha"] = alpha
    if "minimalistic" in parameters:
        kwargs["minimalistic"] = minimalistic
    if "include_preprocessing" in parameters:
        # The model maps [0, 255] pixels to what its weights expect (Keras' [-1, 1],
        # torchvision's ImageNet mean / std, ...), so the pixels go in as they are.
        kwargs["include_preprocessing"] = True
    model = builder(input_shape=(input_size, input_size, 3), **kwargs)
    scores = np.asarray(model(batch, training=False))
    return imagenet.decode_predictions(scores, top=top)[0]


_MAX_ERROR_CHARS = 600


def _one_line_error(command, error):
    """``error`` as one line (long reports cut), for a command's failure."""
    text = " ".join(str(error).split())
    if len(text) > _MAX_ERROR_CHARS:
        text = text[:_MAX_ERROR_CHARS] + " [...]"
    return f"keras-mobilenets {command}: error: {text}"


def _predict(args):
    try:
        results = predict_image(
            args.image, args.model, weights=args.weights, top=args.top, alpha=args.alpha,
            minimalistic=args.minimalistic, input_size=args.image_size,
        )
    except (ValueError, OSError) as error:
        print(_one_line_error("predict", error), file=sys.stderr)
        return 1
    weights = "none" if args.weights is None else args.weights
    print(f"{args.image} ({args.model}, weights={weights}):")
    for rank, (wnid, name, score) in enumerate(results, 1):
        print(f"{rank:2d}. {name:30s} {wnid}  {score:.4f}")
    return 0


def _number_type(convert, accept, allowed):
    """An argparse type: ``convert(text)`` if ``accept`` takes it, else an error saying
    what is ``allowed``."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
        return value

    return parse


def _int_at_least(minimum):
    return _number_type(int, lambda value: value >= minimum, f"an int >= {minimum}")


_positive_float = _number_type(float, lambda value: value > 0, "a number > 0")
_fraction = _number_type(float, lambda value: 0 <= value < 1, "a number in [0, 1)")


def _weights(text):
    """A weights keyword ('imagenet', ...), 'none' (random initialisation; any case) or an
    existing weights file."""
    from keras_mobilenets.weights import KEYWORDS, WEIGHTS_SUFFIXES

    if text.lower() in KEYWORDS:
        return text.lower()
    if text.lower() == "none":
        return None
    if not os.path.isfile(text) or not text.endswith(WEIGHTS_SUFFIXES):
        keywords = ", ".join(repr(k) for k in KEYWORDS)
        raise argparse.ArgumentTypeError(
            f"must be one of {keywords}, 'none' or an existing weights file ending in "
            f"{', '.join(WEIGHTS_SUFFIXES)}, got {text!r}"
        )
    return text


def _tflite_path(text):
    if not text.endswith(".tflite"):
        raise argparse.ArgumentTypeError(f"must be a path ending in .tflite, got {text!r}")
    return text


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
    try:
        with finetune.report_to_stdout():
            result = finetune.run_finetune(
                args.data_dir, output_dir=args.output_dir, config=config, export=args.export,
                strategy=strategy_from_name(args.strategy), shapes_images=args.shapes_images,
                strict=args.strict,
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
          "top-1 agreement with the Keras model each one was made from; latency: LiteRT, "
          "2 threads, median:")
    print(result.table())
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
    add("--alpha", type=_positive_float, default=None,
        help="width multiplier (MobileNet, V2, V3; None: the builder's)")
    add("--minimalistic", action="store_true", help="MobileNetV3 minimalistic")
    add("--weights", type=_weights, default="imagenet",
        help="backbone weights: 'imagenet', 'none' (random) or a weights file")
    add("--image-size", type=_int_at_least(32), default=224, help="square input size")
    add("--batch-size", type=_int_at_least(1), default=32, help="global batch size")
    add("--validation-split", type=_fraction, default=0.2,
        help="fraction of the images held out for validation (0: none)")
    add("--no-augment", action="store_true", help="no random augmentation")
    add("--dropout", type=_fraction, default=0.2, help="dropout of the head")
    add("--optimizer", default="adam", choices=("adam", "sgd"),
        help="adam, or sgd with momentum 0.9")
    add("--epochs", type=_int_at_least(0), default=5, help="epochs with the backbone frozen")
    add("--learning-rate", type=_positive_float, default=1e-3,
        help="initial learning rate with the backbone frozen")
    add("--fine-tune-epochs", type=_int_at_least(0), default=5,
        help="epochs with the backbone unfrozen")
    add("--fine-tune-learning-rate", type=_positive_float, default=1e-4,
        help="initial learning rate with the backbone unfrozen")
    add("--qat", action="store_true", help="quantization-aware fine-tuning")
    add("--qat-epochs", type=_int_at_least(1), default=1, help="QAT epochs")
    add("--qat-learning-rate", type=_positive_float, default=1e-5,
        help="initial learning rate of QAT")
    add("--export", type=_tflite_path, default=None, metavar="OUT.tflite",
        help="write an int8 TFLite file (from the QAT model with --qat); a relative path "
             "is inside --output-dir")
    add("--output-dir", default=os.path.join("keras_mobilenets_runs", "finetune"),
        help="checkpoints, backups, model files, skipped-files report")
    add("--strict", action="store_true",
        help="stop before training if a file cannot be decoded, instead of skipping it")
    add("--shapes-images", type=_int_at_least(10), default=1000,
        help="images of the shapes data (without DATA_DIR)")
    add("--strategy", default="default", choices=STRATEGIES,
        help="tf.distribute strategy ('default': one device)")
    add("--sync-batch-norm", action="store_true", help="batch statistics over all replicas")
    add("--latency-runs", type=_int_at_least(1), default=50,
        help="timed LiteRT invocations per TFLite file")
    add("--seed", type=_int_at_least(0), default=0,
        help="seed of the split, shuffling, augmentation and initialization")
    finetune.set_defaults(run=lambda args: _finetune(args, finetune))


def build_parser():
    """The argument parser of the ``keras-mobilenets`` command."""
    from keras_mobilenets import registry

    parser = argparse.ArgumentParser(
        prog="keras-mobilenets",
        description="MobileNet V1/V2/V3 and ShuffleNet for Keras 3: build, train, quantize, export.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    models = commands.add_parser("models", help="print the model table (params, MACs)")
    models.add_argument("--image-size", "--input-size", dest="image_size",
                        type=_int_at_least(32), default=224,
                        help="square input size at which MACs are counted (default: 224)")
    models.add_argument("--markdown", action="store_true",
                        help="print the model zoo page as markdown (docs/model_zoo.md), "
                             "measured at 224x224")
    models.set_defaults(run=_models, subparser=models)
    _add_demo_parser(commands)
    predict = commands.add_parser("predict", help="print the top ImageNet classes of an image")
    predict.add_argument("image", help="image file (JPEG, PNG, ...)")
    predict.add_argument("--model", default="MobileNetV3Small", choices=registry.builder_names(),
                         help="builder (default: MobileNetV3Small)")
    predict.add_argument(
        "--weights", default="imagenet", type=_weights,
        help="'imagenet' (default), 'none' (random) or a weights file path",
    )
    predict.add_argument("--top", type=_int_at_least(1), default=5,
                         help="how many classes to print (default: 5)")
    predict.add_argument("--alpha", type=_positive_float, default=1.0,
                         help="width multiplier (default: 1.0)")
    predict.add_argument("--minimalistic", action="store_true", help="MobileNetV3 minimalistic")
    predict.add_argument(
        "--image-size", "--input-size", dest="image_size", type=_int_at_least(32), default=224,
        help="square input size (default: 224, the checkpoints' size)",
    )
    predict.set_defaults(run=_predict)
    _add_finetune_parser(commands)
    return parser


def main(argv=None):
    """Entry point of the ``keras-mobilenets`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "models" and args.markdown and args.image_size != 224:
        args.subparser.error("--markdown documents the models at 224x224; got "
                             f"--image-size {args.image_size}")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())

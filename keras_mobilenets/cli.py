"""The ``keras-mobilenets`` command line (also ``python -m keras_mobilenets``).

Commands:
    models   build every variant of the zoo and print parameters and multiply-adds
             side by side with the reference numbers.
    demo     the main job on the embedded default data (see ``demo --help``).
    predict  classify an image with an ImageNet model and print the top classes.
"""

import argparse
import os
import sys


def models_table(variants=None, input_size=224, progress=True):
    """Builds each zoo variant and returns the model table as text.

    Args:
        variants: Zoo variants to include (all by default).
        input_size: Square input size at which multiply-adds are counted.
        progress: Show a progress bar while building.

    Returns:
        The table, one line per variant.
    """
    import keras

    from keras_mobilenets import profiling, zoo

    variants = zoo.VARIANTS if variants is None else variants
    header = (
        f"{'variant':34s} {'params':>10s} {'reference':>10s} {'trainable':>10s} "
        f"{'MACs(M)':>8s} {'ref MACs':>8s} {'top-1':>6s}"
    )
    lines = [header, "-" * len(header)]
    bar = keras.utils.Progbar(len(variants), verbose=1 if progress else 0)
    for variant in variants:
        model = variant.build(input_shape=(input_size, input_size, 3))
        report = profiling.profile(model)
        reference = f"{variant.params:,d}" if variant.params else "-"
        ref_macs = f"{variant.macs_millions:g}" if variant.macs_millions else "-"
        top1 = f"{variant.top1:g}" if variant.top1 else "-"
        lines.append(
            f"{variant.name:34s} {report.params:10,d} {reference:>10s} "
            f"{report.trainable_params:10,d} {report.macs / 1e6:8.1f} {ref_macs:>8s} {top1:>6s}"
        )
        bar.add(1)
        keras.backend.clear_session()
    return "\n".join(lines)


def _models(args):
    print(models_table(input_size=args.input_size))
    return 0


def _demo(args):
    from keras_mobilenets.demo import run_demo

    result = run_demo(
        output_dir=args.output_dir, image_size=args.image_size, train_images=args.train_images,
        test_images=args.test_images, epochs=args.epochs, qat_epochs=args.qat_epochs,
    )
    print()
    print(f"Held-out accuracy on {args.test_images} shapes images ('agreement' is top-1 "
          "agreement with the Keras model each file was made from; latency: LiteRT, "
          "2 threads, median):")
    print(result.table())
    print(f"Files: {', '.join(result.files.values())}  ({result.seconds:.0f} s)")
    return 0


PREDICT_MODELS = ("MobileNet", "MobileNetV2", "MobileNetV3Small", "MobileNetV3Large")


def predict_image(image, model_name="MobileNetV3Small", weights="imagenet", top=5, alpha=1.0,
                  minimalistic=False, input_size=224):
    """Classifies one image file with an ImageNet classifier of the package.

    Args:
        image: Path of an image file (anything ``keras.utils.load_img`` reads).
        model_name: Public builder name, one of :data:`PREDICT_MODELS`.
        weights: ``"imagenet"`` or the path of a weights file with the 1000-class top.
        top: How many classes to return.
        alpha: Width multiplier of the model.
        minimalistic: MobileNetV3's minimalistic variant.
        input_size: Square size the image is resized to (224, the size of every
            published checkpoint, by default).

    Returns:
        A list of ``(wordnet_id, class_name, score)``, best first.

    Raises:
        ValueError: On an unknown model name, a bad ``top`` or a bad image.

    Example:
        >>> predict_image("grace_hopper.jpg", "MobileNetV3Small")[0][1]
        'military_uniform'
    """
    import importlib

    import keras
    import numpy as np

    import keras_mobilenets
    from keras_mobilenets import imagenet

    if model_name not in PREDICT_MODELS:
        raise ValueError(f"`model` must be one of {PREDICT_MODELS}, got {model_name!r}.")
    builder = getattr(keras_mobilenets, model_name)
    module = importlib.import_module(builder.__module__)
    kwargs = {"alpha": alpha, "weights": weights}
    if model_name.startswith("MobileNetV3"):
        kwargs["minimalistic"] = minimalistic
    model = builder(input_shape=(input_size, input_size, 3), **kwargs)
    picture = keras.utils.load_img(image, target_size=(input_size, input_size))
    batch = np.expand_dims(keras.utils.img_to_array(picture), 0)
    scores = np.asarray(model(module.preprocess_input(batch), training=False))
    return imagenet.decode_predictions(scores, top=top)[0]


def _predict(args):
    try:
        results = predict_image(
            args.image, args.model, weights=args.weights, top=args.top, alpha=args.alpha,
            minimalistic=args.minimalistic, input_size=args.input_size,
        )
    except (ValueError, OSError) as error:
        print(f"keras-mobilenets predict: error: {error}", file=sys.stderr)
        return 1
    print(f"{args.image} ({args.model}, weights={args.weights}):")
    for rank, (wnid, name, score) in enumerate(results, 1):
        print(f"{rank:2d}. {name:30s} {wnid}  {score:.4f}")
    return 0


def build_parser():
    """The argument parser of the ``keras-mobilenets`` command."""
    parser = argparse.ArgumentParser(
        prog="keras-mobilenets",
        description="MobileNet V1/V2/V3 and ShuffleNet for Keras 3: build, train, quantize, export.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    models = commands.add_parser("models", help="print the model table (params, MACs)")
    models.add_argument("--input-size", type=int, default=224, help="square input size")
    models.set_defaults(run=_models)
    demo = commands.add_parser(
        "demo",
        help="train, QAT fine-tune and export MobileNetV3Small on the embedded shapes data",
    )
    demo.add_argument("--output-dir", default="keras_mobilenets_demo", help="for .tflite files")
    demo.add_argument("--image-size", type=int, default=64)
    demo.add_argument("--train-images", type=int, default=6000)
    demo.add_argument("--test-images", type=int, default=1000)
    demo.add_argument("--epochs", type=int, default=6)
    demo.add_argument("--qat-epochs", type=int, default=1)
    demo.set_defaults(run=_demo)
    predict = commands.add_parser("predict", help="print the top ImageNet classes of an image")
    predict.add_argument("image", help="image file (JPEG, PNG, ...)")
    predict.add_argument("--model", default="MobileNetV3Small", choices=PREDICT_MODELS)
    predict.add_argument(
        "--weights", default="imagenet", help="'imagenet' (default) or a weights file path"
    )
    predict.add_argument("--top", type=int, default=5, help="how many classes to print")
    predict.add_argument("--alpha", type=float, default=1.0, help="width multiplier")
    predict.add_argument("--minimalistic", action="store_true", help="MobileNetV3 minimalistic")
    predict.add_argument(
        "--input-size", type=int, default=224,
        help="square input size (224, the checkpoints' size, by default)",
    )
    predict.set_defaults(run=_predict)
    return parser


def main(argv=None):
    """Entry point of the ``keras-mobilenets`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    if getattr(args, "input_size", 32) < 32:
        build_parser().error(f"--input-size must be >= 32, got {args.input_size}")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())

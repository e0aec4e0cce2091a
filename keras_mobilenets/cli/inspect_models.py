"""``keras-mobilenets models`` and ``keras-mobilenets predict``: the registry's variants
measured beside their reference numbers, and an image classified by a pretrained model.

Example:
    >>> print(models_table(progress=False))
"""

import os
import sys

from keras_mobilenets.cli.arguments import (
    int_at_least,
    one_line_error,
    positive_float,
    show_progress,
    weights,
)


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


def models_command(args):
    if args.markdown:
        from keras_mobilenets import zoo

        print(zoo.model_zoo_markdown(progress=show_progress()), end="")
        return 0
    print(models_table(input_size=args.image_size, progress=show_progress()))
    return 0


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


def predict_command(args):
    try:
        results = predict_image(
            args.image, args.model, weights=args.weights, top=args.top, alpha=args.alpha,
            minimalistic=args.minimalistic, input_size=args.image_size,
        )
    except (ValueError, OSError) as error:
        print(one_line_error("predict", error), file=sys.stderr)
        return 1
    weights = "none" if args.weights is None else args.weights
    print(f"{args.image} ({args.model}, weights={weights}):")
    for rank, (wnid, name, score) in enumerate(results, 1):
        print(f"{rank:2d}. {name:30s} {wnid}  {score:.4f}")
    return 0


def add_parsers(commands):
    """Adds the ``models`` and ``predict`` subcommands to ``commands``."""
    from keras_mobilenets import registry

    models = commands.add_parser("models", help="print the model table (params, MACs)")
    models.add_argument("--image-size", "--input-size", dest="image_size",
                        type=int_at_least(32), default=224,
                        help="square input size at which MACs are counted (default: 224)")
    models.add_argument("--markdown", action="store_true",
                        help="print the model zoo page as markdown (docs/model_zoo.md), "
                             "measured at 224x224")
    models.set_defaults(run=models_command, subparser=models)
    predict = commands.add_parser("predict", help="print the top ImageNet classes of an image")
    predict.add_argument("image", help="image file (JPEG, PNG, ...)")
    predict.add_argument("--model", default="MobileNetV3Small", choices=registry.builder_names(),
                         help="builder (default: MobileNetV3Small)")
    predict.add_argument(
        "--weights", default="imagenet", type=weights,
        help="'imagenet' (default), 'none' (random) or a weights file path",
    )
    predict.add_argument("--top", type=int_at_least(1), default=5,
                         help="how many classes to print (default: 5)")
    predict.add_argument("--alpha", type=positive_float, default=1.0,
                         help="width multiplier (default: 1.0)")
    predict.add_argument("--minimalistic", action="store_true", help="MobileNetV3 minimalistic")
    predict.add_argument(
        "--image-size", "--input-size", dest="image_size", type=int_at_least(32), default=224,
        help="square input size (default: 224, the checkpoints' size)",
    )
    predict.set_defaults(run=predict_command)

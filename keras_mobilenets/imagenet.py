"""ImageNet input preprocessing and prediction decoding, per family.

``preprocess_input`` maps uint8-range pixels to what a family's checkpoints expect;
``decode_predictions`` turns a ``(batch, 1000)`` score array into readable classes using
the ImageNet class index shipped with the package (no download).
"""

import functools
import importlib.resources
import json

import numpy as np

from keras_mobilenets import _checks

PREPROCESSING_MODES = ("tf", "torch", "none")

# ImageNet channel statistics of pixels scaled to [0, 1] (RGB), used by "torch" mode.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def rescaling_arguments(mode):
    """``(scale, offset)`` of a ``keras.layers.Rescaling`` that does ``preprocess_input``.

    Args:
        mode: ``"tf"`` or ``"torch"`` (see ``preprocess_input``).

    Returns:
        A float pair (``"tf"``) or a pair of per-channel lists (``"torch"``).

    Raises:
        ValueError: If ``mode`` is not ``"tf"`` or ``"torch"``.

    Example:
        >>> rescaling_arguments("tf")
        (0.00784313725490196, -1.0)
    """
    if mode == "tf":
        return 1.0 / 127.5, -1.0
    if mode == "torch":
        return (
            [1.0 / (255.0 * std) for std in IMAGENET_STD],
            [-mean / std for mean, std in zip(IMAGENET_MEAN, IMAGENET_STD)],
        )
    raise ValueError(f"`mode` must be 'tf' or 'torch', got {mode!r}.")


# Layers that pass the model input on unchanged (tfmot's input quantizer included).
_PASS_THROUGH = ("InputLayer", "QuantizeLayer")


def _first_layer(model):
    """The first layer after the input of a (possibly nested, possibly QAT) model."""
    for _ in range(8):  # models nested in models, a few deep at most
        layers = [layer for layer in getattr(model, "layers", ())
                  if type(layer).__name__ not in _PASS_THROUGH]
        if not layers:
            return None
        first = layers[0]
        if hasattr(first, "layers"):  # a nested model: look inside
            model = first
            continue
        return getattr(first, "layer", first)  # tfmot's QuantizeWrapper wraps the layer
    return None


def expected_input_range(model):
    """The input range of a model that rescales raw pixels inside, else None.

    A model built with ``include_preprocessing=True`` (the default of every builder and
    head of the package, also inside a fine-tuning classifier or a QAT model from
    ``quantize_model``) starts with a ``Rescaling`` layer doing ``preprocess_input``
    ("tf" or "torch"): it takes RGB pixels in [0, 255].

    Args:
        model: A Keras 3 or tf_keras model.

    Returns:
        ``(0.0, 255.0)``, or None when the model's input range cannot be known (no
        such layer: e.g. ``include_preprocessing=False`` or a model of another source).

    Example:
        >>> expected_input_range(keras_mobilenets.MobileNetV2(weights=None))
        (0.0, 255.0)
    """
    layer = _first_layer(model)
    if layer is None or type(layer).__name__ not in ("Rescaling", "QATRescaling"):
        return None
    config = layer.get_config()
    for mode in ("tf", "torch"):
        scale, offset = rescaling_arguments(mode)
        try:
            same = np.allclose(np.asarray(config.get("scale"), "float64"), scale, rtol=1e-5) \
                and np.allclose(np.asarray(config.get("offset"), "float64"), offset, rtol=1e-5)
        except (TypeError, ValueError):
            same = False
        if same:
            return _checks.PIXEL_RANGE
    return None


def preprocess_input(x, mode="tf"):
    """Scales pixels in [0, 255] for a model built without ``include_preprocessing``.

    Args:
        x: Array or tensor of images, channels last, values in [0, 255].
        mode: ``"tf"`` maps to [-1, 1] (MobileNet V1/V2 checkpoints); ``"torch"`` scales
            to [0, 1] and normalises each RGB channel with the ImageNet mean and standard
            deviation (ShuffleNet checkpoints, as torchvision's); ``"none"`` returns ``x``
            unchanged (models that rescale inside, e.g. MobileNetV3).

    Returns:
        The preprocessed images (float32 for arrays).

    Raises:
        ValueError: If ``mode`` is unknown.

    Example:
        >>> preprocess_input(np.array([0.0, 127.5, 255.0]))
        array([-1.,  0.,  1.], dtype=float32)
    """
    if mode not in PREPROCESSING_MODES:
        raise ValueError(f"`mode` must be one of {PREPROCESSING_MODES}, got {mode!r}.")
    if mode == "none":
        return x
    if isinstance(x, np.ndarray) or np.isscalar(x) or isinstance(x, (list, tuple)):
        x = np.asarray(x, dtype=np.float32)
    scale, offset = rescaling_arguments(mode)
    if mode == "torch":
        scale = np.asarray(scale, dtype=np.float32)
        offset = np.asarray(offset, dtype=np.float32)
        return x * scale + offset
    return x / 127.5 - 1.0


@functools.lru_cache(maxsize=1)
def class_index():
    """The ImageNet class index: a list of 1000 ``(wordnet_id, name)`` pairs."""
    text = importlib.resources.files("keras_mobilenets").joinpath(
        "data/imagenet_class_index.json"
    ).read_text()
    index = json.loads(text)
    return [tuple(index[str(i)]) for i in range(len(index))]


def decode_predictions(preds, top=5):
    """Decodes ImageNet predictions into ``(wordnet_id, class_name, score)`` tuples.

    Args:
        preds: Array of shape ``(batch, 1000)``.
        top: How many classes to return per image.

    Returns:
        One list of ``top`` tuples per image, best first.

    Raises:
        ValueError: If ``preds`` is not ``(batch, 1000)`` or ``top`` is not in [1, 1000].

    Example:
        >>> decode_predictions(model.predict(images))[0][0]
        ('n03763968', 'military_uniform', 0.83)
    """
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(
            f"`preds` must have shape (batch, 1000) (ImageNet scores), got {preds.shape}."
        )
    _checks.check_int("top", top, minimum=1, maximum=1000)
    names = class_index()
    results = []
    for row in preds:
        best = np.argsort(row)[::-1][:top]
        results.append([(*names[i], float(row[i])) for i in best])
    return results

"""Photographs for the pretrained heads: read at full size (EXIF orientation applied) and
resized to a model's input.

Example:
    >>> photo = load_photo("cats_and_dogs.jpg")
    >>> resize_photo(photo, (320, 320)).shape
    (320, 320, 3)
"""

import os

import numpy as np


def load_photo(image):
    """An image file (or an ``(height, width, 3)`` array) as float32 [0, 255] RGB pixels.

    Args:
        image: Path of a JPEG, PNG, BMP or GIF file (its EXIF orientation is applied), or
            an array of RGB pixels in [0, 255].

    Returns:
        A float32 array ``(height, width, 3)`` at the photo's own size.

    Raises:
        ValueError: If the file does not exist or is not an image, or the array is not
            ``(height, width, 3)``.

    Example:
        >>> load_photo("grace_hopper.jpg").shape
        (606, 517, 3)
    """
    if not isinstance(image, (str, os.PathLike)):
        pixels = np.asarray(image, dtype="float32")
        if pixels.ndim != 3 or pixels.shape[-1] != 3 or min(pixels.shape[:2]) < 1:
            raise ValueError(
                f"`image` must be an image path or a (height, width, 3) array, got an array "
                f"of shape {pixels.shape}."
            )
        return pixels
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = os.fspath(image)
    if not os.path.isfile(path):
        raise ValueError(f"`image` {path!r}: no such file.")
    try:
        with Image.open(path) as picture:
            picture = ImageOps.exif_transpose(picture).convert("RGB")
            return np.asarray(picture, dtype="float32")
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(
            f"`image` {path!r} is not a readable image ({type(error).__name__}); use a JPEG, "
            "PNG, BMP or GIF file."
        ) from None


def resize_photo(photo, size):
    """``photo`` ``(height, width, 3)`` resized bilinearly to ``size = (rows, cols)``.

    Example:
        >>> resize_photo(np.zeros((10, 20, 3)), (4, 4)).shape
        (4, 4, 3)
    """
    from PIL import Image

    rows, cols = int(size[0]), int(size[1])
    picture = Image.fromarray(np.clip(np.asarray(photo), 0, 255).astype("uint8"))
    return np.asarray(picture.resize((cols, rows), Image.Resampling.BILINEAR), dtype="float32")


def model_size(model):
    """``(rows, cols)`` of a model's static input.

    Raises:
        ValueError: If the model's input size is not static.

    Example:
        >>> model_size(detection.SSDLite("MobileNetV3Large", input_shape=(320, 320, 3)))
        (320, 320)
    """
    shape = model.input_shape
    if isinstance(shape, list):
        shape = shape[0]
    rows, cols = shape[1:3]
    if rows is None or cols is None:
        raise ValueError(f"`model` must have a static input size, got input shape {shape}.")
    return int(rows), int(cols)


def font(height):
    """Pillow's default font at about ``height`` pixels (a bitmap font on old Pillow)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=max(10, int(height)))
    except TypeError:
        return ImageFont.load_default()

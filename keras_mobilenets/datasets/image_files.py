"""Image files as users collect them: decoded safely with Pillow, bad ones found and reported.

Folders of photos hold corrupt and truncated files, CMYK JPEGs, grayscale, 16-bit or
transparent PNGs, phone pictures stored sideways with an EXIF orientation, and stray files
(notes, ``Thumbs.db``). TensorFlow's decoders stop a whole training run on the first file
they cannot read (``InvalidArgumentError: jpeg::Uncompress failed``) and ignore EXIF
orientation. Here every file is decoded with Pillow:

* EXIF orientation is applied (``ImageOps.exif_transpose``): pixels come out upright, as
  image viewers show them;
* grayscale, palette, CMYK and YCbCr images are converted to RGB; 16-bit images are scaled
  to 8 bits (65535 -> 255); transparent images are composited on white (as a browser shows
  them);
* a file that cannot be decoded is reported (:class:`SkippedFile`: path and reason) instead
  of raising.

Example:
    >>> image = decode_image("photos/cats/001.jpg")   # uint8 (height, width, 3), upright
    >>> good, skipped = check_image_files(["a.jpg", "broken.jpg", "notes.txt"])
    >>> skipped[0].reason
    'cannot decode: cannot identify image file ...'
"""

import concurrent.futures
import dataclasses
import json
import logging
import os
import sys

import numpy as np

logger = logging.getLogger(__name__)

# Extensions of the files read as images (case-insensitive); others are reported as stray.
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")
#: File names of the report :func:`write_report` writes.
REPORT_FILES = ("skipped_files.txt", "skipped_files.json")


@dataclasses.dataclass(frozen=True)
class SkippedFile:
    """A file left out of the data, and why.

    Attributes:
        path: Path of the file.
        reason: Why it was left out (e.g. ``"cannot decode: image file is truncated"``).

    Example:
        >>> str(SkippedFile("cats/notes.txt", "not an image file"))
        'cats/notes.txt: not an image file'
    """

    path: str
    reason: str

    def __str__(self):
        return f"{self.path}: {self.reason}"


def is_image_name(name):
    """Whether a file name ends in one of :data:`IMAGE_EXTENSIONS` (any case).

    Example:
        >>> is_image_name("IMG_0001.JPG"), is_image_name("notes.txt")
        (True, False)
    """
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _to_rgb(image):
    """A Pillow image of any mode as a uint8 ``(height, width, 3)`` array."""
    from PIL import Image

    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "F":
        values = np.asarray(image, dtype="float64")
        if image.mode != "F":
            values = values / 257.0  # 16 bits to 8: 65535 -> 255
        gray = np.clip(np.round(values), 0, 255).astype("uint8")
        return np.repeat(gray[..., None], 3, axis=-1)
    transparent = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        "transparency" in image.info
    )
    if transparent:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("RGB"), dtype="uint8")


def decode_image(path):
    """Decodes an image file as users expect to see it: upright RGB, 8 bits per channel.

    Args:
        path: Path of the file (any format Pillow reads: JPEG, PNG, BMP, GIF (first
            frame), TIFF, WebP).

    Returns:
        A uint8 numpy array ``(height, width, 3)``.

    Raises:
        OSError: If the file cannot be read or decoded (Pillow's ``UnidentifiedImageError``
            for a file that is no image, ``OSError`` for a truncated one).
        ValueError: If Pillow cannot convert the image to RGB.

    Example:
        >>> decode_image("photos/cats/001.jpg").shape
        (375, 500, 3)
    """
    from PIL import Image, ImageOps

    with Image.open(os.fspath(path)) as image:
        image.load()  # decodes everything: raises on truncated or corrupt data
        try:
            upright = ImageOps.exif_transpose(image)
        except Exception as error:  # a malformed EXIF block: keep the stored orientation
            logger.warning("%s: EXIF orientation not applied (%s)", path, error)
            upright = image
        return _to_rgb(upright)


def _reason(error):
    text = str(error).strip() or type(error).__name__
    return f"cannot decode: {text}"


def check_image_file(path):
    """Why the file at ``path`` cannot be used as an image, or None if it can.

    Example:
        >>> check_image_file("photos/cats/notes.txt")
        "not an image file (extension '.txt'; images end in .bmp, .gif, ...)"
    """
    path = os.fspath(path)
    if not is_image_name(path):
        extension = os.path.splitext(path)[1] or "none"
        return (f"not an image file (extension {extension!r}; images end in "
                f"{', '.join(IMAGE_EXTENSIONS)})")
    try:
        decode_image(path)
    except Exception as error:  # every way a file can be bad is a reason, not a crash
        return _reason(error)
    return None


def progress_bar(total, verbose, unit_name):
    """A Keras progress bar on a terminal, a silent one elsewhere (logs, notebooks' files).

    Example:
        >>> bar = progress_bar(100, verbose=1, unit_name="file")
        >>> bar.add(1)
    """
    import keras

    on_terminal = bool(verbose) and hasattr(sys.stdout, "isatty") and sys.stdout.isatty()
    return keras.utils.Progbar(total, verbose=1 if on_terminal else 0, unit_name=unit_name)


def check_image_files(paths, verbose=0, workers=4):
    """Decodes every file of ``paths`` once and sorts them into usable and skipped.

    Args:
        paths: File paths.
        verbose: 1 shows a progress bar when standard output is a terminal.
        workers: Threads that decode in parallel (Pillow releases the GIL while decoding).

    Returns:
        ``(good, skipped)``: the usable paths in the given order, and a list of
        :class:`SkippedFile`.

    Example:
        >>> good, skipped = check_image_files(["a.jpg", "broken.jpg"])
        >>> print(skipped[0])
        broken.jpg: cannot decode: image file is truncated (20 bytes not processed)
    """
    paths = [os.fspath(path) for path in paths]
    bar = progress_bar(len(paths), verbose, "file")
    good, skipped = [], []
    with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
        for path, reason in zip(paths, pool.map(check_image_file, paths)):
            if reason is None:
                good.append(path)
            else:
                skipped.append(SkippedFile(path, reason))
            bar.add(1)
    return good, skipped


def format_report(skipped, limit=None):
    """The skipped files as text, one ``path: reason`` per line (at most ``limit`` lines).

    Example:
        >>> print(format_report(skipped, limit=20))
    """
    lines = [str(entry) for entry in skipped]
    if limit is not None and len(lines) > limit:
        lines = lines[:limit] + [f"... and {len(lines) - limit} more"]
    return "\n".join(lines)


def write_report(skipped, directory):
    """Writes ``skipped_files.txt`` and ``skipped_files.json`` to ``directory``.

    With nothing skipped, the reports of an earlier run in ``directory`` are removed.

    Returns:
        ``{"txt": path, "json": path}`` of the files written (empty with nothing skipped).

    Example:
        >>> write_report(skipped, "run")
        {'txt': 'run/skipped_files.txt', 'json': 'run/skipped_files.json'}
    """
    directory = os.fspath(directory)
    text_path, json_path = (os.path.join(directory, name) for name in REPORT_FILES)
    if not skipped:
        for path in (text_path, json_path):
            if os.path.isfile(path):
                os.remove(path)
        return {}
    with open(text_path, "w") as f:
        f.write(format_report(skipped) + "\n")
    with open(json_path, "w") as f:
        json.dump([dataclasses.asdict(entry) for entry in skipped], f, indent=1)
    return {"txt": text_path, "json": json_path}


def decode_for_dataset(path):
    """:func:`decode_image` for a ``tf.data`` pipeline: never raises.

    A file that passed the check but cannot be decoded any more (changed or removed since)
    gives a black 1x1 image and a warning instead of stopping training mid-epoch.

    Example:
        >>> image = tf.numpy_function(decode_for_dataset, [path], tf.uint8)
    """
    if isinstance(path, bytes):
        path = path.decode()
    try:
        return decode_image(path)
    except Exception as error:
        logger.warning("%s cannot be decoded any more (%s); a black image stands in for it",
                       path, _reason(error))
        return np.zeros((1, 1, 3), dtype="uint8")

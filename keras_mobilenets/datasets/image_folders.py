"""Folders of class sub-folders of images as checked ``tf.data`` datasets.

The layout ``keras.utils.image_dataset_from_directory`` reads (one sub-folder per class,
images in it or in folders below it), read safely: every file is decoded once before
training (:func:`scan_image_folder`), files that cannot be decoded are skipped and reported
(:mod:`keras_mobilenets.datasets.image_files`), and the datasets read only the files that
passed, through the same Pillow decoding (EXIF orientation applied, RGB, 8 bits).

Example:
    >>> from keras_mobilenets.datasets import image_folders
    >>> scan = image_folders.scan_image_folder("flower_photos", verbose=1)
    >>> print(image_files.format_report(scan.skipped))
    >>> train, val, class_names = image_folders.image_folder_datasets(
    ...     "flower_photos", image_size=224, scan=scan)
"""

import dataclasses
import json
import logging
import os

import numpy as np

from keras_mobilenets import _checks
from keras_mobilenets.datasets import image_files, shapes
from keras_mobilenets.datasets.image_files import IMAGE_EXTENSIONS, SkippedFile

logger = logging.getLogger(__name__)

_SHAPES_MARKER = ".keras_mobilenets_shapes.json"

__all__ = ["IMAGE_EXTENSIONS", "ImageFolderScan", "SkippedFile", "check_image_folder",
           "image_folder_datasets", "scan_image_folder", "write_shapes_folder"]


def _visible(names):
    return sorted(name for name in names if not name.startswith("."))


def _walk(folder):
    """Yields the visible files below ``folder`` in Keras' order (hidden ones are skipped)."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = _visible(dirs)
        for name in _visible(files):
            yield os.path.join(root, name)


def _count_images(folder):
    return sum(image_files.is_image_name(path) for path in _walk(folder))


def check_image_folder(data_dir):
    """Checks that ``data_dir`` is a folder of class sub-folders holding images.

    The layout ``keras.utils.image_dataset_from_directory`` reads: one sub-folder per
    class (its name is the class name), with image files (``IMAGE_EXTENSIONS``) in it or
    in folders below it. Hidden folders and files (``.ipynb_checkpoints``, ``.DS_Store``)
    and files next to the class folders are ignored. The files are not decoded here (see
    :func:`scan_image_folder`).

    Args:
        data_dir: Path of the folder.

    Returns:
        The class names, sorted (the label order of the datasets).

    Raises:
        ValueError: If ``data_dir`` does not exist or is not a folder, has fewer than two
            class sub-folders, or has a class sub-folder without images.

    Example:
        >>> check_image_folder("flower_photos")
        ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips']
    """
    path = os.fspath(data_dir)
    if not os.path.exists(path):
        raise ValueError(f"`data_dir` {path!r} does not exist.")
    if not os.path.isdir(path):
        raise ValueError(f"`data_dir` {path!r} is not a folder.")
    cats, dogs = (os.path.join(path, name, "001.jpg") for name in ("cats", "dogs"))
    layout = f"expected one sub-folder of images per class, e.g. {cats} and {dogs}"
    classes = [name for name in _visible(os.listdir(path))
               if os.path.isdir(os.path.join(path, name))]
    if len(classes) < 2:
        raise ValueError(
            f"`data_dir` {path!r} must hold at least 2 class sub-folders, found "
            f"{len(classes)} ({', '.join(classes) or 'none'}); {layout}."
        )
    empty = [name for name in classes if not _count_images(os.path.join(path, name))]
    if empty:
        raise ValueError(
            f"`data_dir` {path!r}: class sub-folder(s) {', '.join(map(repr, empty))} hold no "
            f"images (files ending in {', '.join(IMAGE_EXTENSIONS)}); {layout}."
        )
    return classes


@dataclasses.dataclass(frozen=True)
class ImageFolderScan:
    """The checked contents of a folder of class sub-folders.

    Attributes:
        data_dir: The folder.
        class_names: Class names in label order.
        paths: The files that decode, class by class in sorted order.
        labels: Their integer labels.
        skipped: :class:`SkippedFile` for each file left out (undecodable or no image).

    Example:
        >>> scan = scan_image_folder("flower_photos")
        >>> len(scan.paths), len(scan.skipped)
        (3670, 0)
    """

    data_dir: str
    class_names: tuple
    paths: tuple
    labels: tuple
    skipped: tuple

    def counts(self):
        """``{class name: number of usable images}``."""
        found = np.bincount(np.asarray(self.labels, dtype="int64"),
                            minlength=len(self.class_names))
        return dict(zip(self.class_names, (int(n) for n in found)))


def scan_image_folder(data_dir, verbose=0, limit=None):
    """Decodes every file of a folder of class sub-folders once, before any training.

    Args:
        data_dir: The folder (see :func:`check_image_folder`).
        verbose: 1 shows a progress bar when standard output is a terminal.
        limit: Check only the first ``limit`` files of each class (in sorted order, the
            files that cannot be used among them included); None checks all.

    Returns:
        An :class:`ImageFolderScan`.

    Raises:
        ValueError: On a bad folder, or if a class keeps no decodable image.

    Example:
        >>> scan = scan_image_folder("flower_photos", verbose=1)
        >>> scan.counts()
        {'daisy': 633, 'dandelion': 898, 'roses': 641, 'sunflowers': 699, 'tulips': 799}
    """
    _checks.check_int("limit", limit, minimum=1, allow_none=True)
    path = os.fspath(data_dir)
    class_names = check_image_folder(path)
    candidates, classes = [], []
    for label, name in enumerate(class_names):
        found = list(_walk(os.path.join(path, name)))[:limit]
        candidates += found
        classes += [label] * len(found)
    good, skipped = image_files.check_image_files(candidates, verbose=verbose)
    label_of = dict(zip(candidates, classes))
    labels = tuple(label_of[file] for file in good)
    scan = ImageFolderScan(path, tuple(class_names), tuple(good), labels, tuple(skipped))
    empty = [name for name, count in scan.counts().items() if not count]
    if empty:
        raise ValueError(
            f"`data_dir` {path!r}: class sub-folder(s) {', '.join(map(repr, empty))} hold no "
            "image that can be decoded:\n" + image_files.format_report(skipped, limit=20)
        )
    return scan


def _split(scan, validation_split, seed):
    """Keras' split: one seeded permutation of the files, the last fraction validates."""
    paths, labels = np.array(scan.paths, dtype=object), np.array(scan.labels, dtype="int32")
    order = np.random.RandomState(seed).permutation(len(paths))
    paths, labels = paths[order], labels[order]
    count = int(validation_split * len(paths))
    if validation_split and count == 0:
        counts = ", ".join(f"{name}: {n}" for name, n in scan.counts().items())
        needed = int(np.ceil(1 / validation_split))
        raise ValueError(
            f"`validation_split` {validation_split} of the {len(paths)} usable images of "
            f"{scan.data_dir!r} ({counts}) holds 0 validation images; add images (at least "
            f"{needed} for a split of {validation_split}), raise the split, or use "
            "validation_split=0 (--validation-split 0) to train on all of them."
        )
    train = (list(paths[:len(paths) - count]), labels[:len(paths) - count])
    return train, (list(paths[len(paths) - count:]), labels[len(paths) - count:])


def _dataset(paths, labels, image_size, batch_size, shuffle_seed=None):
    """Batches of ``(float32 images in [0, 255], int32 labels)`` read through Pillow."""
    import tensorflow as tf

    def load(path, label):
        image = tf.numpy_function(image_files.decode_for_dataset, [path], tf.uint8,
                                  stateful=False)
        image.set_shape([None, None, 3])
        image = tf.image.resize(image, (image_size, image_size))  # bilinear, as Keras
        image.set_shape([image_size, image_size, 3])
        return image, label

    data = tf.data.Dataset.from_tensor_slices((tf.constant(paths, tf.string), labels))
    if shuffle_seed is not None:
        data = data.shuffle(len(paths), seed=shuffle_seed, reshuffle_each_iteration=True)
    data = data.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def image_folder_datasets(data_dir, image_size=224, batch_size=32, validation_split=0.2,
                          seed=0, scan=None, strict=False, verbose=0):
    """Training and validation datasets of a folder of class sub-folders.

    Like ``keras.utils.image_dataset_from_directory`` with integer labels (same class
    order, same seeded split), but every file is checked first (:func:`scan_image_folder`)
    and decoded with Pillow (EXIF orientation, grayscale, CMYK, 16-bit and transparent
    images as users expect, see :mod:`~keras_mobilenets.datasets.image_files`). Files that
    cannot be decoded are left out and logged (``strict=True`` refuses them). Images are
    resized to ``image_size`` (bilinear), float32 in [0, 255] (the range the classifiers
    of ``finetune.build_classifier`` take); training batches are reshuffled every epoch
    from ``seed``, validation batches keep one order.

    Args:
        data_dir: The folder (see :func:`check_image_folder`).
        image_size: Square size the images are resized to (>= 32).
        batch_size: Batch size (global batch size under a distribution strategy).
        validation_split: Fraction of the images held out for validation, in [0, 1);
            0 gives no validation dataset.
        seed: Seed of the split and of the shuffling.
        scan: The :class:`ImageFolderScan` of ``data_dir`` if made already (its skipped
            files are then the caller's to report); None scans here.
        strict: Raise instead of skipping files that cannot be decoded (when scanning
            here).
        verbose: 1 shows the scan's progress bar when standard output is a terminal.

    Returns:
        ``(train, validation, class_names)``; ``validation`` is None when
        ``validation_split`` is 0.

    Raises:
        ValueError: On a bad folder or argument, a split without validation images, or
            (with ``strict``) files that cannot be decoded.

    Example:
        >>> train, val, class_names = image_folder_datasets("flower_photos", image_size=224)
    """
    _checks.check_int("image_size", image_size, minimum=32)
    _checks.check_int("batch_size", batch_size, minimum=1)
    _checks.check_rate("validation_split", validation_split)
    _checks.check_int("seed", seed, minimum=0)
    _checks.check_bool("strict", strict)
    if scan is None:
        scan = scan_image_folder(data_dir, verbose=verbose)
        if scan.skipped and strict:
            raise ValueError(refusal(scan))
        if scan.skipped:
            logger.warning("%d file(s) of %s skipped:\n%s", len(scan.skipped), scan.data_dir,
                           image_files.format_report(scan.skipped, limit=20))
    elif not isinstance(scan, ImageFolderScan):
        raise ValueError(f"`scan` must be None or an ImageFolderScan, got {scan!r}.")
    (train_paths, train_labels), (val_paths, val_labels) = _split(scan, validation_split, seed)
    train = _dataset(train_paths, train_labels, image_size, batch_size, shuffle_seed=seed)
    validation = None
    if validation_split:
        validation = _dataset(val_paths, val_labels, image_size, batch_size)
    logger.info("%s: %d classes, %d training images, %d validation images", scan.data_dir,
                len(scan.class_names), len(train_paths), len(val_paths))
    return train, validation, list(scan.class_names)


def refusal(scan, report_path=None):
    """The error message of a strict run on a folder with files that cannot be decoded.

    Example:
        >>> raise ValueError(refusal(scan, "run/skipped_files.txt"))
    """
    where = f" (the list is in {report_path})" if report_path else ""
    return (
        f"`data_dir` {scan.data_dir!r}: {len(scan.skipped)} file(s) cannot be used as images"
        f"{where}; remove or fix them, or run without strict (--strict) to skip them:\n"
        + image_files.format_report(scan.skipped, limit=50)
    )


def write_shapes_folder(directory, num_images=1000, image_size=64, split="train", seed=0,
                        verbose=0):
    """Writes the embedded shapes data as a folder of class sub-folders of PNG files.

    Gives the image-folder workflow data without a download:
    ``directory/circle/00000.png``, ``directory/square/00001.png``, ... (the classes of
    ``datasets.shapes.CLASS_NAMES``). A folder this function wrote with the same arguments
    is left as it is, so calling it again is cheap.

    Args:
        directory: Folder to write (created; must be empty or written by this function).
        num_images: Number of images (classes are balanced within every 5 images).
        image_size: Height and width of the images in pixels (>= 32).
        split: "train" or "test" (see ``datasets.shapes.load``).
        seed: Seed of the data.
        verbose: 1 shows a progress bar when standard output is a terminal.

    Returns:
        ``directory``.

    Raises:
        ValueError: On an invalid argument, or if ``directory`` holds other files.

    Example:
        >>> folder = write_shapes_folder("shapes_images", num_images=500, image_size=96)
        >>> check_image_folder(folder)
        ['circle', 'cross', 'ring', 'square', 'triangle']
    """
    from PIL import Image

    directory = os.fspath(directory)
    settings = {"num_images": num_images, "image_size": image_size, "split": split,
                "seed": seed}
    marker = os.path.join(directory, _SHAPES_MARKER)
    if os.path.isfile(marker):
        with open(marker) as f:
            if json.load(f) == settings:
                return directory
    elif os.path.isdir(directory) and os.listdir(directory):
        raise ValueError(
            f"`directory` {directory!r} is not empty and was not written by "
            "write_shapes_folder; choose an empty or new folder."
        )
    images, labels = shapes.load(split, num_images=num_images, image_size=image_size,
                                 seed=seed)
    for name in shapes.CLASS_NAMES:
        os.makedirs(os.path.join(directory, name), exist_ok=True)
    if os.path.isfile(marker):  # written before with other arguments: start afresh
        os.remove(marker)
        for name in shapes.CLASS_NAMES:
            for old in os.listdir(os.path.join(directory, name)):
                os.remove(os.path.join(directory, name, old))
    bar = image_files.progress_bar(num_images, verbose, "image")
    for index, (image, label) in enumerate(zip(images, labels)):
        path = os.path.join(directory, shapes.CLASS_NAMES[label], f"{index:05d}.png")
        Image.fromarray(image).save(path)
        bar.add(1)
    with open(marker, "w") as f:
        json.dump(settings, f)
    return directory

"""Synthetic "shapes": the embedded default data for classification, detection and segmentation.

Coloured circles, squares, triangles, crosses and rings on textured, noisy backgrounds, drawn
with numpy only. Every image is generated from its own seed ``(seed, split, scene kind,
index)``, so the same arguments always give the same data, a smaller ``num_images`` gives a
prefix of a larger one, and the "train" and "test" splits are drawn from different seeds.

Conventions (keras-hub / KerasCV):
    * classification: one object per image, integer label in ``[0, 5)`` (``CLASS_NAMES``),
      classes balanced within every block of 5 images.
    * detection: 1 to ``max_objects`` non-overlapping objects; targets are a dict
      ``{"boxes": float32 (N, max_objects, 4), "labels": int32 (N, max_objects)}`` in the
      ``"xyxy"`` format (pixel edges: ``x_max - x_min`` is the width in pixels), padded
      with -1 (boxes and labels) after the last object.
    * segmentation: the same scenes as detection (same seed), with a per-pixel class id
      mask, ``0`` = background and ``label + 1`` for an object.

Example:
    >>> from keras_mobilenets.datasets import shapes
    >>> images, labels = shapes.load("train", num_images=1000, image_size=64)
    >>> images, targets = shapes.load("test", task="detection", num_images=100)
    >>> targets["boxes"].shape, targets["labels"].shape
    ((100, 3, 4), (100, 3))
"""

import numpy as np

from keras_mobilenets import _checks

CLASS_NAMES = ("circle", "square", "triangle", "cross", "ring")
NUM_CLASSES = len(CLASS_NAMES)
SPLITS = ("train", "test")
TASKS = ("classification", "detection", "segmentation")
BOUNDING_BOX_FORMAT = "xyxy"
PADDING = -1

_SPLIT_IDS = {"train": 0, "test": 1}
# Detection and segmentation share their scenes, classification has its own.
_SCENE_IDS = {"classification": 0, "detection": 1, "segmentation": 1}


def _shape_mask(kind, dx, dy, r):
    """Boolean mask of shape ``kind`` with half-size ``r``; ``dx, dy`` are offsets from its center."""
    if kind == 0:  # circle
        return dx * dx + dy * dy <= r * r
    if kind == 1:  # square
        return (np.abs(dx) <= r) & (np.abs(dy) <= r)
    if kind == 2:  # triangle, apex up
        return (dy <= r) & (np.abs(dx) <= (dy + r) / 2.0)
    if kind == 3:  # cross
        arm = r / 3.0
        return ((np.abs(dx) <= r) & (np.abs(dy) <= arm)) | ((np.abs(dy) <= r) & (np.abs(dx) <= arm))
    d2 = dx * dx + dy * dy  # ring
    return (d2 <= r * r) & (d2 >= (0.55 * r) ** 2)


def _background(rng, size, yy, xx):
    """A two-colour gradient mixed with stripes of random frequency and orientation."""
    colors = rng.uniform(0, 255, size=(2, 3))
    angle = rng.uniform(0, 2 * np.pi)
    t = (xx * np.cos(angle) + yy * np.sin(angle)) / size
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(1, 5) * t + rng.uniform(0, 2 * np.pi))
    mix = rng.uniform(0.2, 0.6)
    w = ((1 - mix) * (t - t.min()) / (np.ptp(t) + 1e-6) + mix * stripes)[..., None]
    return colors[0] * (1 - w) + colors[1] * w


def _object_color(rng, under):
    """A colour far (>= 90 in RGB distance) from the background ``under`` the object."""
    reference = under.mean(axis=0)
    for _ in range(20):
        color = rng.uniform(0, 255, size=3)
        if np.linalg.norm(color - reference) >= 90:
            return color
    return 255.0 - reference


def _scene(rng, size, labels, radius_range):
    """Draws objects of ``labels`` without overlap; returns (image uint8, mask, boxes, labels)."""
    yy, xx = np.mgrid[0:size, 0:size].astype("float32") + 0.5
    image = _background(rng, size, yy, xx)
    mask = np.zeros((size, size), dtype="uint8")
    boxes, kept = [], []
    for label in labels:
        for _ in range(30):
            r = rng.uniform(*radius_range) * size
            cx, cy = rng.uniform(r + 1, size - r - 1, size=2)
            shape = _shape_mask(label, xx - cx, yy - cy, r)
            rows, cols = np.nonzero(shape)
            box = (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
            if all(box[0] > b[2] or box[2] < b[0] or box[1] > b[3] or box[3] < b[1] for b in boxes):
                break
        else:
            continue  # no free place left for this object
        image[shape] = _object_color(rng, image[shape]) * rng.uniform(0.85, 1.0, size=(len(rows), 1))
        mask[shape] = label + 1
        boxes.append(box)
        kept.append(label)
    image = image + rng.normal(0, rng.uniform(3, 12), size=image.shape)
    image = np.clip(np.round(image), 0, 255).astype("uint8")
    return image, mask, boxes, kept


def _check_arguments(split, num_images, image_size, task, seed, max_objects):
    _checks.check_choice("split", split, SPLITS)
    _checks.check_choice("task", task, TASKS)
    for name, value, minimum in (("num_images", num_images, 1), ("image_size", image_size, 32),
                                 ("max_objects", max_objects, 1), ("seed", seed, 0)):
        _checks.check_int(name, value, minimum=minimum)


def load(split="train", num_images=1000, image_size=64, task="classification", seed=0,
         max_objects=3):
    """Generates a split of the shapes dataset as numpy arrays.

    Args:
        split: "train" or "test" (drawn from different seeds, so they do not overlap).
        num_images: Number of images (>= 1).
        image_size: Height and width in pixels (>= 32).
        task: "classification", "detection" or "segmentation".
        seed: Base seed (int >= 0); the same arguments always give the same data.
        max_objects: Most objects per image for detection and segmentation (>= 1).

    Returns:
        ``(images, targets)``: images are uint8 ``(N, size, size, 3)`` in [0, 255];
        targets are int32 labels ``(N,)`` for classification, a dict
        ``{"boxes": float32 (N, max_objects, 4), "labels": int32 (N, max_objects)}``
        ("xyxy" pixel coordinates, -1 padding) for detection, and uint8 masks
        ``(N, size, size)`` (0 = background, label + 1 = object) for segmentation.

    Raises:
        ValueError: On an invalid argument (the message names it, its value and what is
            allowed).

    Example:
        >>> images, masks = load("train", num_images=8, task="segmentation")
        >>> images.shape, masks.shape
        ((8, 64, 64, 3), (8, 64, 64))
    """
    _check_arguments(split, num_images, image_size, task, seed, max_objects)
    base = (int(seed), _SPLIT_IDS[split], _SCENE_IDS[task])
    images = np.empty((num_images, image_size, image_size, 3), dtype="uint8")
    if task == "classification":
        targets = np.empty((num_images,), dtype="int32")
    elif task == "detection":
        targets = {
            "boxes": np.full((num_images, max_objects, 4), PADDING, dtype="float32"),
            "labels": np.full((num_images, max_objects), PADDING, dtype="int32"),
        }
    else:
        targets = np.empty((num_images, image_size, image_size), dtype="uint8")

    for i in range(num_images):
        rng = np.random.default_rng((*base, 0, i))
        if task == "classification":
            block = np.random.default_rng((*base, 1, i // NUM_CLASSES))
            labels = [int(block.permutation(NUM_CLASSES)[i % NUM_CLASSES])]
            image, _, _, kept = _scene(rng, image_size, labels, (0.15, 0.35))
            targets[i] = kept[0]
        else:
            count = rng.integers(1, max_objects + 1)
            labels = rng.integers(0, NUM_CLASSES, size=count)
            image, mask, boxes, kept = _scene(rng, image_size, labels, (0.08, 0.2))
            if task == "detection":
                targets["boxes"][i, :len(boxes)] = boxes
                targets["labels"][i, :len(kept)] = kept
            else:
                targets[i] = mask
        images[i] = image
    return images, targets


def as_dataset(split="train", num_images=1000, image_size=64, task="classification", seed=0,
               max_objects=3, batch_size=32, shuffle=False):
    """The shapes data as a batched ``tf.data.Dataset`` of ``(images, targets)``.

    Images are float32 in [0, 255] (the range the package's models expect with
    ``include_preprocessing=True``); targets are as in ``load``.

    Args:
        split: As in ``load``.
        num_images: As in ``load``.
        image_size: As in ``load``.
        task: As in ``load``.
        seed: As in ``load``.
        max_objects: As in ``load``.
        batch_size: Batch size (>= 1).
        shuffle: Shuffle the images every epoch (seeded with ``seed``).

    Returns:
        A ``tf.data.Dataset`` yielding ``(images, targets)`` batches.

    Raises:
        ValueError: On an invalid argument.

    Example:
        >>> dataset = as_dataset("train", num_images=512, batch_size=64, shuffle=True)
        >>> model.fit(dataset, epochs=3)
    """
    import tensorflow as tf

    _checks.check_positive_int("batch_size", batch_size)
    _checks.check_bool("shuffle", shuffle)
    images, targets = load(split, num_images, image_size, task, seed, max_objects)
    dataset = tf.data.Dataset.from_tensor_slices((images.astype("float32"), targets))
    if shuffle:
        dataset = dataset.shuffle(num_images, seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)

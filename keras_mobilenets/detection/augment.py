"""Data augmentation for detection that moves the boxes with the pixels.

SSD's augmentation (Liu et al. 2016, arXiv:1512.02325, Section 2.2 "Data augmentation";
the options of torchvision's ``RandomIoUCrop``):

* random crop: pick one of ``min_ious`` (or "no crop", one more choice), then up to
  ``trials`` random patches of ``min_scale`` to 1 times the image side with aspect
  ratio in [1/2, 2]; the first patch that contains the center of an object and
  overlaps one such object with IoU >= the picked value is used (none: no crop).
  Objects whose center leaves the patch are dropped (label and box become -1, and
  the remaining objects are moved to the front); the others are clipped to it;
* horizontal flip with probability 1/2;
* resize to ``output_shape`` (bilinear).

Crops are whole pixels and the resize maps pixel edges to pixel edges, so a box in pixel
edges (``"xyxy"``: x2 - x1 is the width in pixels) still bounds the same pixels. Works on
one image at a time, inside ``tf.data`` (before ``batch``).

Example:
    >>> augmenter = Augmenter(output_shape=(128, 128))
    >>> dataset = dataset.map(augmenter).batch(32).map(encoder)
"""

import keras
import tensorflow as tf

from keras_mobilenets import _checks
from keras_mobilenets.detection.boxes import PADDING, check_format, from_rel_xyxy, to_rel_xyxy

MIN_IOUS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9)


class Augmenter:
    """SSD random crop, horizontal flip and resize of ``(image, {"boxes", "labels"})``.

    Args:
        output_shape: ``(rows, cols)`` of the output images.
        bounding_box_format: Format of the boxes, in and out (``boxes.BOX_FORMATS``);
            pixel formats refer to the input image before and the output image after.
        flip: Whether to flip horizontally with probability 1/2.
        crop: Whether to apply the SSD random crop.
        min_ious: IoU choices of the crop (each in [0, 1]).
        min_scale: Smallest patch side, relative to the image side, in (0, 1].
        trials: Random patches tried per image (>= 1).

    The random ops draw from TensorFlow's global seed (``keras.utils.set_random_seed``)
    and keep their state between calls: in ``tf.data``, map without ``num_parallel_calls``
    for the same draws on every run of a seed (parallel calls draw in the order the threads
    happen to run).

    Raises:
        ValueError: On an invalid argument.

    Example:
        >>> image, boxes = Augmenter((96, 96))(image, {"boxes": b, "labels": l})
    """

    def __init__(self, output_shape, bounding_box_format="xyxy", flip=True, crop=True,
                 min_ious=MIN_IOUS, min_scale=0.3, trials=40):
        self.output_shape = _checks.check_size_pair("output_shape", output_shape)
        check_format(bounding_box_format)
        _checks.check_bool("flip", flip)
        _checks.check_bool("crop", crop)
        if not isinstance(min_ious, (tuple, list)) or not min_ious or not all(
            _checks.is_number(v) and 0 <= v <= 1 for v in min_ious
        ):
            raise ValueError(f"`min_ious` must be a non-empty sequence of numbers in [0, 1], got "
                             f"{min_ious!r}.")
        _checks.check_number("min_scale", min_scale, low=0, high=1, low_open=True)
        _checks.check_positive_int("trials", trials)
        self.bounding_box_format = bounding_box_format
        self.flip = flip
        self.crop = crop
        self.min_ious = tuple(float(v) for v in min_ious)
        self.min_scale = float(min_scale)
        self.trials = int(trials)

    def _crop_window(self, boxes, valid, height, width):
        """Pixel window ``(top, left, rows, cols)`` of the SSD random crop."""
        trials = self.trials
        size = tf.random.uniform((trials, 2), self.min_scale, 1.0)           # (w, h) relative
        aspect = size[:, 0] * tf.cast(width, tf.float32) / (size[:, 1] * tf.cast(height, tf.float32))
        cols = tf.maximum(tf.cast(tf.round(size[:, 0] * tf.cast(width, tf.float32)), tf.int32), 1)
        rows = tf.maximum(tf.cast(tf.round(size[:, 1] * tf.cast(height, tf.float32)), tf.int32), 1)
        left = tf.cast(tf.random.uniform((trials,)) * tf.cast(width - cols + 1, tf.float32), tf.int32)
        top = tf.cast(tf.random.uniform((trials,)) * tf.cast(height - rows + 1, tf.float32), tf.int32)
        left = tf.minimum(left, width - cols)
        top = tf.minimum(top, height - rows)
        window = tf.stack([left / width, top / height, (left + cols) / width, (top + rows) / height],
                          -1)
        window = tf.cast(window, tf.float32)                                   # (T, 4) rel_xyxy
        inside = self._centers_inside(boxes, window) & valid[None]             # (T, M)
        iou = keras.utils.bounding_boxes.compute_iou(window, boxes, "xyxy")    # (T, M)
        best = tf.reduce_max(tf.where(inside, iou, -1.0), axis=-1)
        choice = tf.random.uniform((), 0, len(self.min_ious) + 1, dtype=tf.int32)
        min_iou = tf.gather(list(self.min_ious) + [2.0], choice)              # 2.0: no crop
        good = (aspect >= 0.5) & (aspect <= 2.0) & tf.reduce_any(inside, -1) & (best >= min_iou)
        index = tf.argmax(tf.cast(good, tf.int32), output_type=tf.int32)
        found = tf.reduce_any(good)
        return (tf.where(found, top[index], 0), tf.where(found, left[index], 0),
                tf.where(found, rows[index], height), tf.where(found, cols[index], width))

    @staticmethod
    def _centers_inside(boxes, window):
        center = (boxes[:, :2] + boxes[:, 2:]) / 2.0                           # (M, 2)
        low, high = window[:, None, :2], window[:, None, 2:]
        return tf.reduce_all((center[None] > low) & (center[None] < high), axis=-1)

    def __call__(self, image, bounding_boxes):
        """One image ``(rows, cols, channels)`` and its boxes -> augmented, resized pair."""
        image = tf.convert_to_tensor(image)
        shape = tf.shape(image)
        height, width = shape[0], shape[1]
        labels = tf.cast(bounding_boxes["labels"], tf.int32)
        valid = labels >= 0
        size = tf.cast(tf.stack([width, height, width, height]), tf.float32)
        boxes = to_rel_xyxy(bounding_boxes["boxes"], self.bounding_box_format,
                            (tf.cast(height, tf.float32), tf.cast(width, tf.float32)), labels)
        if self.crop:
            top, left, rows, cols = self._crop_window(boxes, valid, height, width)
            window = tf.cast(tf.stack([left, top, left + cols, top + rows]), tf.float32) / size
            valid &= self._centers_inside(boxes, window[None])[0]
            image = tf.image.crop_to_bounding_box(image, top, left, rows, cols)
            scale = tf.tile(window[2:] - window[:2], [2])
            boxes = tf.clip_by_value((boxes - tf.tile(window[:2], [2])) / scale, 0.0, 1.0)
        if self.flip:
            flipped = tf.random.uniform(()) < 0.5
            image = tf.cond(flipped, lambda: tf.image.flip_left_right(image), lambda: image)
            mirrored = tf.stack([1.0 - boxes[:, 2], boxes[:, 1], 1.0 - boxes[:, 0], boxes[:, 3]], -1)
            boxes = tf.where(flipped, mirrored, boxes)
        image = tf.image.resize(tf.cast(image, tf.float32), self.output_shape)
        order = tf.argsort(tf.cast(~valid, tf.int32), stable=True)             # kept objects first
        valid = tf.gather(valid, order)
        labels = tf.where(valid, tf.gather(labels, order), PADDING)
        boxes = from_rel_xyxy(tf.gather(boxes, order), self.bounding_box_format, self.output_shape,
                              labels)
        return image, {"boxes": boxes, "labels": labels}

"""Box formats, validation of box inputs, and the SSD box coder.

Boxes follow keras-hub / KerasCV: a dict ``{"boxes": (..., max_boxes, 4), "labels":
(..., max_boxes)}`` whose format is named by a ``bounding_box_format`` argument (one of
``BOX_FORMATS``, e.g. ``"xyxy"``: left, top, right, bottom in pixels, the format of the
shapes data), padded with ``-1`` (label ``-1`` marks a padded box). Inside the detector
every box is in ``"rel_xyxy"``: x divided by the image width, y by its height.

The coder is SSD's center-size encoding with variances (Liu et al. 2016,
arXiv:1512.02325, eq. 2; torchvision's ``BoxCoder`` weights (10, 10, 5, 5)): it wraps
``keras.utils.bounding_boxes.encode_box_to_deltas`` / ``decode_deltas_to_boxes``.

Example:
    >>> rel = to_rel_xyxy(np.array([[8., 16., 40., 48.]]), "xyxy", image_shape=(64, 64))
    >>> rel
    array([[0.125, 0.25 , 0.625, 0.75 ]], dtype=float32)
"""

import math
import numbers

import keras
import numpy as np
from keras import ops

from keras_mobilenets import _checks

BOX_FORMATS = (
    "xyxy", "yxyx", "xywh", "center_xywh", "center_yxhw",
    "rel_xyxy", "rel_yxyx", "rel_xywh", "rel_center_xywh",
)
# Box formats whose last two coordinates are a size (must be >= 0); the others are corners
# (maximum >= minimum).
_SIZE_FORMATS = ("xywh", "center_xywh", "center_yxhw", "rel_xywh", "rel_center_xywh")
PADDING = -1
VARIANCE = (0.1, 0.1, 0.2, 0.2)
# torchvision clamps the decoded log-size at log(1000 / 16) so that exp cannot overflow.
MAX_LOG_SIZE = math.log(1000.0 / 16)


def check_format(bounding_box_format, argument="bounding_box_format"):
    """Raises ``ValueError`` unless the format is one of ``BOX_FORMATS``."""
    _checks.check_choice(argument, bounding_box_format, BOX_FORMATS)
    return bounding_box_format


def check_bounding_boxes(bounding_boxes, bounding_box_format, argument="bounding_boxes"):
    """Validates a box dict and returns ``(boxes float32, labels int32)`` numpy arrays.

    Args:
        bounding_boxes: ``{"boxes": (..., M, 4), "labels": (..., M)}``, padded with -1
            (a label < 0 marks a padded box, whose coordinates are not checked).
        bounding_box_format: Format of ``"boxes"`` (one of ``BOX_FORMATS``).
        argument: The argument name used in error messages.

    Returns:
        ``(boxes, labels)`` as numpy arrays.

    Raises:
        ValueError: If the dict, its keys, shapes or values are malformed (a box whose
            maximum coordinate is below its minimum, a negative size, a non-finite value),
            naming the argument and the first offending box.

    Example:
        >>> boxes, labels = check_bounding_boxes(
        ...     {"boxes": [[0., 0., 4., 4.]], "labels": [1]}, "xyxy")
    """
    check_format(bounding_box_format)
    if not isinstance(bounding_boxes, dict) or not {"boxes", "labels"} <= set(bounding_boxes):
        found = sorted(bounding_boxes) if isinstance(bounding_boxes, dict) else (
            type(bounding_boxes).__name__)
        raise ValueError(
            f"`{argument}` must be a dict with keys 'boxes' and 'labels', got {found}."
        )
    boxes = np.asarray(bounding_boxes["boxes"])
    labels = np.asarray(bounding_boxes["labels"])
    if boxes.dtype.kind not in "uif":
        raise ValueError(
            f"`{argument}['boxes']` must hold numbers, got dtype {boxes.dtype} (shape "
            f"{boxes.shape})."
        )
    boxes = boxes.astype("float32")
    if boxes.ndim < 2 or boxes.shape[-1] != 4:
        raise ValueError(
            f"`{argument}['boxes']` must have shape (..., num_boxes, 4), got {boxes.shape}."
        )
    if labels.shape != boxes.shape[:-1]:
        raise ValueError(
            f"`{argument}['labels']` must have shape {boxes.shape[:-1]} (one label per box), "
            f"got {labels.shape}."
        )
    if labels.dtype.kind not in "uif" or (
        labels.dtype.kind == "f" and not np.all(labels == np.round(labels))
    ):
        raise ValueError(f"`{argument}['labels']` must hold integers, got {labels.dtype}.")
    labels = labels.astype("int32")
    valid = boxes[labels >= 0]
    problems = ~np.isfinite(valid).all(-1)
    if bounding_box_format in _SIZE_FORMATS:
        problems |= (valid[:, 2] < 0) | (valid[:, 3] < 0)
        what = "a negative width or height"
    else:
        problems |= (valid[:, 2] < valid[:, 0]) | (valid[:, 3] < valid[:, 1])
        what = "a maximum below its minimum (e.g. x2 < x1)"
    if problems.any():
        bad = valid[np.argmax(problems)].tolist()
        raise ValueError(
            f"`{argument}['boxes']` has {int(problems.sum())} malformed box(es) in format "
            f"{bounding_box_format!r} ({what}, or a non-finite value), e.g. {bad}."
        )
    return boxes, labels


def _size(image_shape):
    height, width = image_shape[0], image_shape[1]
    if isinstance(height, numbers.Real) and isinstance(width, numbers.Real):
        return float(height), float(width)
    return height, width  # tensors (e.g. a tf.data image's dynamic size)


def to_rel_xyxy(boxes, bounding_box_format, image_shape, labels=None):
    """Converts boxes to ``"rel_xyxy"``; padded boxes (label < 0) stay -1.

    Args:
        boxes: Tensor or array ``(..., 4)`` in ``bounding_box_format``.
        bounding_box_format: One of ``BOX_FORMATS``.
        image_shape: ``(rows, cols[, channels])`` of the image the boxes belong to.
        labels: Optional ``(...)`` labels; where < 0 the box is set to -1.

    Returns:
        float32 boxes ``(..., 4)`` (a tensor, or a numpy array for numpy input).

    Example:
        >>> to_rel_xyxy(np.array([[0., 0., 32., 16.]]), "xyxy", (32, 64))
        array([[0.  , 0.  , 0.5 , 0.5 ]], dtype=float32)
    """
    return _convert(boxes, bounding_box_format, "rel_xyxy", image_shape, labels)


def from_rel_xyxy(boxes, bounding_box_format, image_shape, labels=None):
    """Converts ``"rel_xyxy"`` boxes to ``bounding_box_format`` (inverse of ``to_rel_xyxy``).

    Example:
        >>> from_rel_xyxy(np.array([[0., 0., .5, .5]]), "xyxy", (32, 64))
        array([[ 0.,  0., 32., 16.]], dtype=float32)
    """
    return _convert(boxes, "rel_xyxy", bounding_box_format, image_shape, labels)


def _convert(boxes, source, target, image_shape, labels):
    is_numpy = isinstance(boxes, np.ndarray)
    height, width = _size(image_shape)
    converted = ops.cast(boxes, "float32")
    if source != target:
        converted = keras.utils.bounding_boxes.convert_format(
            converted, source=source, target=target, height=height, width=width
        )
    if labels is not None:
        converted = ops.where(ops.expand_dims(labels, -1) < 0, PADDING, converted)
    return ops.convert_to_numpy(converted) if is_numpy else converted


class BoxCoder:
    """SSD center-size box coder with variances, on ``"rel_xyxy"`` boxes.

    ``encode`` gives ``((cx - acx) / aw / v0, (cy - acy) / ah / v1, log(w / aw) / v2,
    log(h / ah) / v3)`` for a box and its anchor; ``decode`` inverts it (clamping the
    log-sizes at ``log(1000 / 16)`` as torchvision does).

    Args:
        variance: Four positive numbers, by default SSD's ``(0.1, 0.1, 0.2, 0.2)``.

    Raises:
        ValueError: If ``variance`` is not four positive numbers.

    Example:
        >>> coder = BoxCoder()
        >>> anchors = np.array([[0.1, 0.1, 0.3, 0.5]], "float32")
        >>> deltas = coder.encode(anchors, np.array([[0.2, 0.1, 0.4, 0.4]], "float32"))
        >>> np.round(coder.decode(anchors, deltas), 6)
        array([[0.2, 0.1, 0.4, 0.4]], dtype=float32)
    """

    def __init__(self, variance=VARIANCE):
        values = tuple(variance) if isinstance(variance, (tuple, list)) else None
        if values is None or len(values) != 4 or not all(
            _checks.is_number(v) and v > 0 for v in values
        ):
            raise ValueError(f"`variance` must be 4 numbers > 0, got {variance!r}.")
        self.variance = tuple(float(v) for v in values)

    def encode(self, anchors, boxes):
        """Deltas ``(..., A, 4)`` of ``"rel_xyxy"`` boxes ``(..., A, 4)`` to anchors ``(A, 4)``."""
        deltas = keras.utils.bounding_boxes.encode_box_to_deltas(
            anchors, boxes, anchor_format="xyxy", box_format="xyxy",
            encoding_format="center_xywh", variance=self.variance,
        )
        return ops.convert_to_numpy(deltas) if isinstance(boxes, np.ndarray) else deltas

    def decode(self, anchors, deltas):
        """``"rel_xyxy"`` boxes ``(..., A, 4)`` from deltas ``(..., A, 4)`` and anchors ``(A, 4)``."""
        is_numpy = isinstance(deltas, np.ndarray)
        deltas = ops.cast(deltas, "float32")
        limit = [np.inf, np.inf, MAX_LOG_SIZE / self.variance[2], MAX_LOG_SIZE / self.variance[3]]
        deltas = ops.minimum(deltas, np.asarray(limit, "float32"))
        boxes = keras.utils.bounding_boxes.decode_deltas_to_boxes(
            anchors, deltas, anchor_format="xyxy", box_format="xyxy",
            encoded_format="center_xywh", variance=self.variance,
        )
        return ops.convert_to_numpy(boxes) if is_numpy else boxes

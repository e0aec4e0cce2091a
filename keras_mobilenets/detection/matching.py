"""Matching default boxes to ground-truth objects, and the training targets of SSD.

SSD's matching strategy (Liu et al. 2016, arXiv:1512.02325, Section 2.2 "Matching
strategy"), as torchvision's ``SSDMatcher``: a default box is matched to the object it
overlaps most when their IoU is >= ``iou_threshold`` (0.5); in addition every object is
matched to the default box that overlaps it most, even below the threshold (so no object
is left without a positive). Padded objects (label < 0) are ignored.

``TargetEncoder`` turns ``(images, {"boxes", "labels"})`` into ``(images, targets)`` for
``model.fit``, inside a ``tf.data`` map (batched or not):

* ``targets["boxes"]``: float32 ``(..., num_boxes, 5)``: the encoded box of the matched
  object (``BoxCoder``) and, last, 1.0 for a positive default box, 0.0 otherwise;
* ``targets["classes"]``: int32 ``(..., num_boxes)``: ``label + 1`` of the matched
  object, 0 for background.

Example:
    >>> encoder = TargetEncoder(DefaultBoxes.from_model(model), image_shape=(128, 128))
    >>> dataset = dataset.map(encoder)   # (images, {"boxes", "labels"}) batches
    >>> model.fit(dataset, ...)
"""

import keras
from keras import ops

from keras_mobilenets import _checks
from keras_mobilenets.detection.boxes import BoxCoder, VARIANCE, check_format, to_rel_xyxy


def match(default_boxes, boxes, labels, iou_threshold=0.5):
    """Index of the object each default box is matched to, -1 for background.

    Args:
        default_boxes: ``(A, 4)`` default boxes, ``"rel_xyxy"``.
        boxes: ``(..., M, 4)`` objects, ``"rel_xyxy"`` (any corner format works if it
            is the same as the default boxes').
        labels: ``(..., M)`` labels; < 0 marks padding.
        iou_threshold: Minimum IoU for a match besides each object's best default box.

    Returns:
        int32 ``(..., A)``: object index in ``[0, M)`` or -1.

    Example:
        >>> match(np.array([[0, 0, .5, .5], [.5, .5, 1, 1]], "float32"),
        ...       np.array([[.4, .4, 1, 1]], "float32"), np.array([2]))
        array([-1,  0], dtype=int32)
    """
    default_boxes = ops.cast(default_boxes, "float32")
    boxes = ops.cast(boxes, "float32")
    valid = ops.cast(labels, "int32") >= 0                                  # (..., M)
    iou = keras.utils.bounding_boxes.compute_iou(boxes, default_boxes, "xyxy")  # (..., M, A)
    iou = ops.where(ops.expand_dims(valid, -1), iou, -1.0)
    best_object = ops.cast(ops.argmax(iou, axis=-2), "int32")              # (..., A)
    best_iou = ops.max(iou, axis=-2)
    num_boxes = ops.shape(iou)[-1]
    # Forced matches: each valid object claims its best default box.
    claimed = ops.one_hot(ops.argmax(iou, axis=-1), num_boxes) * ops.cast(
        ops.expand_dims(valid, -1), "float32"
    )                                                                       # (..., M, A)
    forced = ops.max(claimed, axis=-2) > 0
    forced_object = ops.cast(ops.argmax(claimed, axis=-2), "int32")
    matched = ops.where(forced, forced_object, best_object)
    positive = forced | (best_iou >= iou_threshold)
    return ops.where(positive, matched, -1)


def _check_graph_backend():
    """Refuses a ``tf.data`` map (a TensorFlow graph) when Keras runs on another backend."""
    if keras.backend.backend() == "tensorflow":
        return
    import tensorflow as tf

    if not tf.executing_eagerly():
        _checks.require_tensorflow_backend(
            "detection.TargetEncoder in a tf.data map (on this backend, encode numpy batches "
            "eagerly with `encoder.encode(...)` and pass the arrays to fit)"
        )


class TargetEncoder:
    """Encodes ground truth into SSD training targets (see the module docstring).

    Args:
        default_boxes: A ``DefaultBoxes`` (e.g. ``DefaultBoxes.from_model(model)``).
        image_shape: ``(rows, cols)`` of the model input (the images the boxes are in).
        bounding_box_format: Format of the input boxes (``boxes.BOX_FORMATS``).
        iou_threshold: Matching threshold in ``(0, 1]``.
        variance: The box coder's variances.

    Raises:
        ValueError: On an invalid argument.

    Example:
        >>> encoder = TargetEncoder(boxes, image_shape=(128, 128))
        >>> images, targets = encoder(images, {"boxes": b, "labels": l})
    """

    def __init__(self, default_boxes, image_shape, bounding_box_format="xyxy", iou_threshold=0.5,
                 variance=VARIANCE):
        check_format(bounding_box_format)
        _checks.check_number("iou_threshold", iou_threshold, low=0, high=1, low_open=True)
        self.default_boxes = default_boxes
        self.anchors = default_boxes.boxes()
        self.image_shape = tuple(image_shape)
        self.bounding_box_format = bounding_box_format
        self.iou_threshold = iou_threshold
        self.coder = BoxCoder(variance)

    def encode(self, bounding_boxes):
        """``{"boxes", "labels"}`` (batched or not) -> ``{"boxes": (..., A, 5), "classes": (..., A)}``.

        Raises:
            RuntimeError: Inside a ``tf.data`` map on another Keras backend than TensorFlow
                (``keras.ops`` run that backend's ops); there, encode numpy batches.
        """
        _check_graph_backend()
        labels = ops.cast(bounding_boxes["labels"], "int32")
        boxes = to_rel_xyxy(bounding_boxes["boxes"], self.bounding_box_format, self.image_shape,
                            labels)
        matched = match(self.anchors, boxes, labels, self.iou_threshold)
        positive = matched >= 0
        index = ops.maximum(matched, 0)
        matched_boxes = ops.take_along_axis(boxes, ops.expand_dims(index, -1), axis=-2)
        matched_labels = ops.take_along_axis(labels, index, axis=-1)
        # Background boxes get a harmless target (their own default box): no log(0).
        matched_boxes = ops.where(ops.expand_dims(positive, -1), matched_boxes, self.anchors)
        deltas = self.coder.encode(self.anchors, matched_boxes)
        weight = ops.expand_dims(ops.cast(positive, "float32"), -1)
        return {
            "boxes": ops.concatenate([deltas, weight], axis=-1),
            "classes": ops.where(positive, matched_labels + 1, 0),
        }

    def __call__(self, images, bounding_boxes):
        """``(images, boxes dict) -> (images, targets)``, for ``tf.data.Dataset.map``."""
        return images, self.encode(bounding_boxes)

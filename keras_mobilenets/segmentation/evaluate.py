"""Segmentation evaluation with Keras' IoU metrics: mean IoU and IoU per class.

The score is the one LR-ASPP is reported with (arXiv:1905.02244, section 6.3): the mean
over classes of intersection over union, accumulated over the whole set (one confusion
matrix), pixels labelled ``ignore_label`` skipped. ``keras.metrics.MeanIoU`` computes it;
``keras.metrics.IoU`` with one target class gives each class's IoU.

Example:
    >>> scores = evaluate(model, images, masks)
    >>> scores.mean_iou, scores.per_class_iou
"""

from typing import NamedTuple

import keras
import numpy as np

from keras_mobilenets import _checks
from keras_mobilenets.imagenet import expected_input_range
from keras_mobilenets.segmentation.losses import check_ignore_label


class SegmentationScores(NamedTuple):
    """Scores over a whole set of images.

    Attributes:
        mean_iou: Mean of the per-class IoUs over the classes present in the masks or the
            predictions (Keras' ``MeanIoU``).
        per_class_iou: float array ``(num_classes,)``; NaN for a class absent from both.
    """

    mean_iou: float
    per_class_iou: np.ndarray


def _predict(model, images, batch_size):
    """(argmax class ids int32 (N, rows, cols), number of classes of the logits)."""
    from keras_mobilenets.export.litert import LiteRTModel
    from keras_mobilenets.export.tflite import _is_tf_keras_model

    _checks.check_positive_int("batch_size", batch_size)
    if isinstance(model, LiteRTModel):
        run = model.predict
        # The file's input shape; its value range is not recorded in the file.
        expected, value_range = model.input_shape[1:], None
    elif isinstance(model, keras.Model) or _is_tf_keras_model(model):
        def run(batch):
            return np.asarray(model(batch, training=False))
        expected = tuple(model.inputs[0].shape[1:])
        value_range = expected_input_range(model)
    else:
        raise ValueError(
            "`model` must be a Keras model, a tf_keras (QAT) model or an "
            f"export.LiteRTModel, got {type(model).__name__}."
        )
    images = _checks.check_input_batch("images", images, expected, value_range)
    images = images.astype("float32")
    predictions, num_classes = [], None
    for start in range(0, len(images), batch_size):
        logits = run(images[start:start + batch_size])
        num_classes = logits.shape[-1]
        predictions.append(np.argmax(logits, axis=-1).astype("int32"))
    return np.concatenate(predictions), num_classes


def predict_masks(model, images, batch_size=32):
    """Class id of every pixel: the argmax of the model's logits.

    Args:
        model: A Keras 3 model, a tf_keras (QAT) model or an ``export.LiteRTModel`` mapping
            images to logits ``(batch, rows, cols, classes)``.
        images: Array ``(N, rows, cols, channels)`` in the model's input range.
        batch_size: Images per call (>= 1).

    Returns:
        int32 array ``(N, rows, cols)``.

    Raises:
        ValueError: On an unsupported ``model``, a bad ``batch_size``, or ``images`` that
            do not fit the model's input (as ``evaluate``).

    Example:
        >>> agreement = np.mean(predict_masks(qat, x) == predict_masks(LiteRTModel(f), x))
    """
    return _predict(model, images, batch_size)[0]


def check_masks(masks, num_classes, ignore_label=255, argument="masks"):
    """Raises ``ValueError`` unless ``masks`` holds class ids in ``[0, num_classes)`` or
    ``ignore_label``.

    Example:
        >>> check_masks(np.array([[0, 5]]), num_classes=3)
        Traceback (most recent call last):
        ...
        ValueError: `masks` must hold class ids in [0, 3) or the ignore label 255; got 5.
    """
    masks = np.asarray(masks)
    allowed = f"class ids in [0, {num_classes})" + (
        f" or the ignore label {ignore_label}" if ignore_label is not None else "")
    if masks.dtype.kind not in "uif" or (
        masks.dtype.kind == "f" and not np.all(masks == np.round(masks))
    ):
        raise ValueError(
            f"`{argument}` must hold {allowed} (integers); got dtype {masks.dtype}."
        )
    bad = (masks < 0) | (masks >= num_classes)
    if ignore_label is not None:
        bad &= masks != ignore_label
    if np.any(bad):
        values = np.unique(masks[bad])
        shown = ", ".join(f"{v:g}" for v in values[:5]) + (" ..." if len(values) > 5 else "")
        raise ValueError(f"`{argument}` must hold {allowed}; got {shown}.")


def score_masks(masks, predictions, num_classes, ignore_label=255):
    """Mean IoU and per-class IoU of predicted masks against true masks.

    Args:
        masks: True class ids ``(N, rows, cols)``; ``ignore_label`` pixels are skipped.
        predictions: Predicted class ids, same shape.
        num_classes: Number of classes (>= 1).
        ignore_label: Label to skip (int >= 0) or None.

    Returns:
        A ``SegmentationScores``.

    Raises:
        ValueError: On mismatched shapes, a bad ``num_classes`` / ``ignore_label``, or a
            mask value that is neither a class id in ``[0, num_classes)`` nor
            ``ignore_label``.

    Example:
        >>> score_masks(masks, predict_masks(model, images), num_classes=6).mean_iou
    """
    _checks.check_positive_int("num_classes", num_classes)
    check_ignore_label(ignore_label)
    masks, predictions = np.asarray(masks), np.asarray(predictions)
    if masks.shape != predictions.shape:
        raise ValueError(
            f"`masks` and `predictions` must have the same shape, got {masks.shape} and "
            f"{predictions.shape}."
        )
    check_masks(masks, num_classes, ignore_label)
    mean = keras.metrics.MeanIoU(num_classes, ignore_class=ignore_label)
    per_class = [keras.metrics.IoU(num_classes, target_class_ids=[c], ignore_class=ignore_label)
                 for c in range(num_classes)]
    for start in range(0, len(masks), 64):  # bounded memory for large sets
        y_true = masks[start:start + 64].reshape(-1).astype("int32")
        y_pred = predictions[start:start + 64].reshape(-1).astype("int32")
        for metric in (mean, *per_class):
            metric.update_state(y_true, y_pred)
    confusion = np.asarray(mean.total_cm)
    present = confusion.sum(axis=0) + confusion.sum(axis=1) > 0
    ious = np.array([float(metric.result()) for metric in per_class])
    return SegmentationScores(float(mean.result()), np.where(present, ious, np.nan))


def evaluate(model, images, masks, *, num_classes=None, ignore_label=255, batch_size=32):
    """Mean IoU and per-class IoU of a segmentation model on a labelled set.

    Args:
        model: A Keras 3 model, a tf_keras (QAT) model or an ``export.LiteRTModel`` giving
            logits ``(batch, rows, cols, classes)``.
        images: Array ``(N, rows, cols, channels)`` in the model's input range.
        masks: True class ids ``(N, rows, cols)``; ``ignore_label`` pixels are skipped.
        num_classes: Number of classes; None takes the logits' last dimension.
        ignore_label: Label to skip (int >= 0) or None.
        batch_size: Images per model call (>= 1).

    Returns:
        A ``SegmentationScores``.

    Raises:
        ValueError: On an unsupported ``model`` or a bad argument; ``images`` that do not
            fit the model's input (a wrong shape, a non-numeric dtype, NaN or inf, values
            outside [0, 255] or scaled to [0, 1] for a model with built-in
            preprocessing: the message names ``images``, what it got and the input
            shape); ``masks`` of another shape than the images' or with values that are
            neither class ids nor ``ignore_label``.

    Example:
        >>> images, masks = datasets.shapes.load("test", 200, 128, task="segmentation")
        >>> evaluate(model, images, masks).mean_iou
    """
    masks = np.asarray(masks)
    count = len(images) if hasattr(images, "__len__") else None
    if masks.ndim != 3 or (count is not None and len(masks) != count):
        raise ValueError(
            f"`masks` must have shape (N, rows, cols) with N = {count} (one mask per image "
            f"of `images`), got {masks.shape}."
        )
    if num_classes is not None:
        check_masks(masks, num_classes, ignore_label)
    predictions, logit_classes = _predict(model, images, batch_size)
    return score_masks(masks, predictions, num_classes or logit_classes, ignore_label)

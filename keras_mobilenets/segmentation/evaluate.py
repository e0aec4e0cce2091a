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
    elif isinstance(model, keras.Model) or _is_tf_keras_model(model):
        def run(batch):
            return np.asarray(model(batch, training=False))
    else:
        raise ValueError(
            "`model` must be a Keras model, a tf_keras (QAT) model or an "
            f"export.LiteRTModel, got {type(model).__name__}."
        )
    images = np.asarray(images, dtype="float32")
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
        ValueError: On an unsupported ``model`` or a bad ``batch_size``.

    Example:
        >>> agreement = np.mean(predict_masks(qat, x) == predict_masks(LiteRTModel(f), x))
    """
    return _predict(model, images, batch_size)[0]


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
        ValueError: On mismatched shapes or a bad ``num_classes`` / ``ignore_label``.

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
        ValueError: On an unsupported ``model`` or a bad argument.

    Example:
        >>> images, masks = datasets.shapes.load("test", 200, 128, task="segmentation")
        >>> evaluate(model, images, masks).mean_iou
    """
    predictions, logit_classes = _predict(model, images, batch_size)
    return score_masks(masks, predictions, num_classes or logit_classes, ignore_label)

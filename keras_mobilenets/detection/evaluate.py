"""COCO-style evaluation through pycocotools, and agreement of two sets of detections.

``coco_metrics`` builds pycocotools' ``COCO`` ground truth and detections in memory from
the package's box dicts and runs ``COCOeval`` ("bbox"): mAP is the AP averaged over IoU
thresholds 0.5:0.95, mAP@0.5 the AP at IoU 0.5 (the COCO detection metrics, Lin et al.
2014, arXiv:1405.0312). pycocotools' progress prints are captured and sent to the log.

Example:
    >>> metrics = coco_metrics(targets, detections, bounding_box_format="xyxy")
    >>> metrics["mAP@0.5"]
    0.91
"""

import contextlib
import io
import logging

import numpy as np

from keras_mobilenets import _checks
from keras_mobilenets.detection.boxes import check_bounding_boxes, check_format, to_rel_xyxy

logger = logging.getLogger(__name__)


def _xywh_pixels(boxes, bounding_box_format, image_shape):
    rel = to_rel_xyxy(np.asarray(boxes, "float32"), bounding_box_format, image_shape)
    rows, cols = image_shape[:2]
    x1, y1, x2, y2 = (rel[..., i] for i in range(4))
    return np.stack([x1 * cols, y1 * rows, (x2 - x1) * cols, (y2 - y1) * rows], -1)


def coco_metrics(ground_truth, detections, image_shape, bounding_box_format="xyxy",
                 num_classes=None):
    """mAP (IoU 0.5:0.95) and mAP@0.5 of detections, computed by pycocotools.

    Args:
        ground_truth: ``{"boxes": (N, M, 4), "labels": (N, M)}``, -1 padded.
        detections: ``{"boxes": (N, K, 4), "labels": (N, K), "scores": (N, K)}`` (e.g. from
            ``SSDPostprocess``), -1 padded (label < 0 = no detection).
        image_shape: ``(rows, cols)`` of the images the boxes are in.
        bounding_box_format: Format of both box sets (one of ``boxes.BOX_FORMATS``).
        num_classes: Number of classes (default: 1 + the largest label seen).

    Returns:
        ``{"mAP": float, "mAP@0.5": float, "mAP@0.75": float}``; -1 where pycocotools has
        nothing to average (no ground truth).

    Raises:
        ImportError: If pycocotools is missing (the ``detection`` extra).
        ValueError: On malformed boxes (named by argument: shapes, non-finite or inverted
            boxes), scores of another shape than the labels or not finite, labels >=
            ``num_classes``, or mismatched batch sizes.

    Example:
        >>> coco_metrics(targets, detector.predict(images), image_shape=(128, 128))
        {'mAP': 0.62, 'mAP@0.5': 0.93, 'mAP@0.75': 0.71}
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    check_format(bounding_box_format)
    gt_boxes, gt_labels = check_bounding_boxes(ground_truth, bounding_box_format, "ground_truth")
    dt_boxes, dt_labels = check_bounding_boxes(
        {"boxes": detections["boxes"], "labels": detections["labels"]}, bounding_box_format,
        "detections",
    )
    if not isinstance(detections, dict) or "scores" not in detections:
        raise ValueError("`detections` must be a dict with keys 'boxes', 'labels' and 'scores'.")
    dt_scores = np.asarray(detections["scores"])
    if dt_scores.shape != dt_labels.shape or dt_scores.dtype.kind not in "uif" or not np.all(
        np.isfinite(dt_scores)
    ):
        raise ValueError(
            f"`detections['scores']` must hold finite numbers of shape {dt_labels.shape} (one "
            f"score per box), got dtype {dt_scores.dtype} and shape {dt_scores.shape}."
        )
    dt_scores = dt_scores.astype("float32")
    if len(gt_boxes) != len(dt_boxes):
        raise ValueError(
            f"`ground_truth` has {len(gt_boxes)} images but `detections` {len(dt_boxes)}."
        )
    if num_classes is not None:
        _checks.check_positive_int("num_classes", num_classes)
        for argument, labels in (("ground_truth", gt_labels), ("detections", dt_labels)):
            if labels.size and labels.max() >= num_classes:
                raise ValueError(
                    f"`{argument}['labels']` must hold class ids in [0, {num_classes}) (or -1 "
                    f"for padding) for num_classes={num_classes}; got {int(labels.max())}."
                )
    if num_classes is None:
        num_classes = int(max(gt_labels.max(initial=-1), dt_labels.max(initial=-1))) + 1
    gt_xywh = _xywh_pixels(gt_boxes, bounding_box_format, image_shape)
    dt_xywh = _xywh_pixels(dt_boxes, bounding_box_format, image_shape)
    annotations, results = [], []
    for image_id in range(len(gt_boxes)):
        for box, label in zip(gt_xywh[image_id], gt_labels[image_id]):
            if label >= 0:
                annotations.append({
                    "id": len(annotations) + 1, "image_id": image_id, "category_id": int(label) + 1,
                    "bbox": [float(v) for v in box], "area": float(box[2] * box[3]), "iscrowd": 0,
                })
        for box, label, score in zip(dt_xywh[image_id], dt_labels[image_id], dt_scores[image_id]):
            if label >= 0:
                results.append({"image_id": image_id, "category_id": int(label) + 1,
                                "bbox": [float(v) for v in box], "score": float(score)})
    rows, cols = image_shape[:2]
    dataset = {
        "images": [{"id": i, "height": int(rows), "width": int(cols)} for i in range(len(gt_boxes))],
        "annotations": annotations,
        "categories": [{"id": c + 1, "name": str(c)} for c in range(num_classes)],
    }
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        coco = COCO()
        coco.dataset = dataset
        coco.createIndex()
        predictions = coco.loadRes(results) if results else COCO()
        if not results:
            predictions.dataset = {**dataset, "annotations": []}
            predictions.createIndex()
        evaluator = COCOeval(coco, predictions, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    logger.debug("pycocotools:\n%s", log.getvalue())
    stats = evaluator.stats
    return {"mAP": float(stats[0]), "mAP@0.5": float(stats[1]), "mAP@0.75": float(stats[2])}


def detection_agreement(reference, candidate, image_shape, bounding_box_format="xyxy",
                        min_iou=0.9, max_pixels=2.0):
    """Fraction of ``reference`` detections that ``candidate`` reproduces.

    A reference detection is reproduced when the candidate has, in the same image, a
    detection of the same label whose box has IoU >= ``min_iou`` with it and whose
    coordinates differ by at most ``max_pixels`` pixels.

    Args:
        reference: Detections dict (``"boxes"``, ``"labels"``), -1 padded.
        candidate: Detections dict of the same images.
        image_shape: ``(rows, cols)`` of the images.
        bounding_box_format: Format of both.
        min_iou: IoU needed.
        max_pixels: Largest coordinate difference allowed, in pixels.

    Returns:
        ``(fraction, count)``: the fraction reproduced (1.0 when ``reference`` has none)
        and the number of reference detections.

    Example:
        >>> detection_agreement(keras_detections, tflite_detections, (128, 128))
        (0.98, 250)
    """
    import keras

    ref_boxes, ref_labels = check_bounding_boxes(reference, bounding_box_format, "reference")
    can_boxes, can_labels = check_bounding_boxes(candidate, bounding_box_format, "candidate")
    ref_xywh = _xywh_pixels(ref_boxes, bounding_box_format, image_shape)
    can_xywh = _xywh_pixels(can_boxes, bounding_box_format, image_shape)
    found = total = 0
    for image in range(len(ref_boxes)):
        ref_keep = ref_labels[image] >= 0
        can_keep = can_labels[image] >= 0
        total += int(ref_keep.sum())
        if not ref_keep.any() or not can_keep.any():
            continue
        a, b = ref_xywh[image][ref_keep], can_xywh[image][can_keep]
        iou = np.asarray(keras.utils.bounding_boxes.compute_iou(a, b, "xywh"))
        corners_a = np.concatenate([a[:, :2], a[:, :2] + a[:, 2:]], -1)
        corners_b = np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], -1)
        close = np.abs(corners_a[:, None] - corners_b[None]).max(-1) <= max_pixels
        same = ref_labels[image][ref_keep][:, None] == can_labels[image][can_keep][None]
        found += int(((iou >= min_iou) & close & same).any(-1).sum())
    return (found / total if total else 1.0), total

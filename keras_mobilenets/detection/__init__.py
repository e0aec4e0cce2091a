"""SSDLite object detection (SSD: arXiv:1512.02325; SSDLite: arXiv:1801.04381, Section 6.2;
MobileNetV3 taps and reduced tail: arXiv:1905.02244, Section 6.3).

Box dicts follow keras-hub / KerasCV: ``{"boxes": (..., max_boxes, 4), "labels":
(..., max_boxes)}`` in a named ``bounding_box_format`` (default ``"xyxy"`` pixels), padded
with -1. See ``docs/detection.md``.

Example:
    >>> from keras_mobilenets import detection
    >>> model = detection.SSDLite("MobileNetV3Small", num_classes=5, input_shape=(128, 128, 3))
    >>> encoder = detection.TargetEncoder(detection.DefaultBoxes.from_model(model), (128, 128))
    >>> model.compile("adam", loss=detection.ssd_losses())
    >>> model.fit(dataset.map(encoder), epochs=10)
    >>> detector = detection.inference_model(model, score_threshold=0.3)
    >>> detector.predict(images)["boxes"]
"""

from keras_mobilenets.detection.anchors import DefaultBoxes
from keras_mobilenets.detection.augment import Augmenter
from keras_mobilenets.detection.boxes import (
    BOX_FORMATS,
    BoxCoder,
    check_bounding_boxes,
    from_rel_xyxy,
    to_rel_xyxy,
)
from keras_mobilenets.detection.evaluate import coco_metrics, detection_agreement
from keras_mobilenets.detection.loss import SSDBoxLoss, SSDClassLoss, ssd_losses
from keras_mobilenets.detection.matching import TargetEncoder, match
from keras_mobilenets.detection.postprocess import (
    SSDPostprocess,
    inference_model,
    tflite_detections,
)
from keras_mobilenets.detection.predict import detect_image, draw_detections
from keras_mobilenets.detection.ssdlite import SSDLite

__all__ = [
    "Augmenter",
    "BOX_FORMATS",
    "BoxCoder",
    "DefaultBoxes",
    "SSDBoxLoss",
    "SSDClassLoss",
    "SSDLite",
    "SSDPostprocess",
    "TargetEncoder",
    "check_bounding_boxes",
    "coco_metrics",
    "detect_image",
    "detection_agreement",
    "draw_detections",
    "from_rel_xyxy",
    "inference_model",
    "match",
    "ssd_losses",
    "tflite_detections",
    "to_rel_xyxy",
]

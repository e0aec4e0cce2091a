"""Semantic segmentation: the LR-ASPP head (arXiv:1905.02244), its loss, evaluation and
training augmentation.

Example:
    >>> from keras_mobilenets import segmentation
    >>> model = segmentation.LRASPP("MobileNetV3Small", num_classes=6, input_shape=(128, 128, 3))
    >>> model.compile("adam", loss=segmentation.SegmentationCrossEntropy(ignore_label=255))
    >>> segmentation.evaluate(model, images, masks).mean_iou
"""

from keras_mobilenets.segmentation.augment import segmentation_augmentation
from keras_mobilenets.segmentation.evaluate import (
    SegmentationScores,
    evaluate,
    predict_masks,
    score_masks,
)
from keras_mobilenets.segmentation.losses import SegmentationCrossEntropy
from keras_mobilenets.segmentation.lraspp import LRASPP
from keras_mobilenets.segmentation.predict import draw_segmentation, segment_image

__all__ = [
    "LRASPP",
    "SegmentationCrossEntropy",
    "SegmentationScores",
    "draw_segmentation",
    "evaluate",
    "predict_masks",
    "score_masks",
    "segment_image",
    "segmentation_augmentation",
]

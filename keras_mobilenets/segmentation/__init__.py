"""Semantic segmentation: the LR-ASPP head (arXiv:1905.02244).

Example:
    >>> from keras_mobilenets import segmentation
    >>> model = segmentation.LRASPP("MobileNetV3Small", num_classes=6, input_shape=(128, 128, 3))
"""

from keras_mobilenets.segmentation.lraspp import LRASPP

__all__ = ["LRASPP"]

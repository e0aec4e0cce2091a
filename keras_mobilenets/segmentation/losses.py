"""The segmentation loss: per-pixel sparse cross-entropy that skips an ignore label.

LR-ASPP (arXiv:1905.02244) is trained like other semantic segmentation models: softmax
cross-entropy over the classes at every pixel, where pixels labelled ``ignore_label``
(255 in Pascal VOC and Cityscapes: borders, "void") count neither in the loss nor in its
normalization. Keras' ``SparseCategoricalCrossentropy(ignore_class=...)`` does exactly
that (the default ``"sum_over_batch_size"`` reduction divides by the number of pixels
that are not ignored); ``SegmentationCrossEntropy`` is that loss with the segmentation
defaults (logits in, 255 ignored) and a validated ``ignore_label``.
"""

import keras

from keras_mobilenets import _checks


def check_ignore_label(ignore_label):
    """Raises ``ValueError`` unless ``ignore_label`` is None or an int >= 0."""
    _checks.check_int("ignore_label", ignore_label, minimum=0, allow_none=True)


@keras.saving.register_keras_serializable(package="keras_mobilenets")
class SegmentationCrossEntropy(keras.losses.SparseCategoricalCrossentropy):
    """Mean per-pixel cross-entropy over the pixels whose label is not ``ignore_label``.

    For masks ``(batch, rows, cols)`` of class ids and logits
    ``(batch, rows, cols, classes)``. A batch whose pixels are all ignored gives 0.
    Being a Keras loss computed with ``keras.ops``, it also works as the loss of a tf_keras
    (QAT) model's ``compile``.

    Args:
        ignore_label: Label of the pixels to skip (an int >= 0), or None to use every
            pixel.
        from_logits: Whether predictions are logits (the LR-ASPP output) rather than
            probabilities.
        reduction: A Keras loss reduction (default ``"sum_over_batch_size"``: the mean
            over the pixels that are not ignored).
        name: Loss name.
        dtype: Dtype of the loss computation (None: Keras' float type).

    Raises:
        ValueError: If ``ignore_label`` is not None or an int >= 0.

    Example:
        >>> loss = SegmentationCrossEntropy(ignore_label=255)
        >>> model.compile(optimizer="adam", loss=loss)
    """

    def __init__(self, ignore_label=255, from_logits=True, reduction="sum_over_batch_size",
                 name="segmentation_cross_entropy", dtype=None):
        check_ignore_label(ignore_label)
        super().__init__(from_logits=from_logits, ignore_class=ignore_label,
                         reduction=reduction, name=name, dtype=dtype)
        self.ignore_label = ignore_label

    def get_config(self):
        config = super().get_config()
        del config["ignore_class"]
        return {**config, "ignore_label": self.ignore_label}

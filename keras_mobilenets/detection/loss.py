"""The SSD loss (Liu et al. 2016, arXiv:1512.02325, eq. 1 and "Hard negative mining").

``L = (L_loc + L_conf) / N`` with ``N`` the number of positive default boxes in the batch:

* ``SSDBoxLoss`` (``L_loc``): smooth L1 (Huber with delta 1) between the predicted and the
  encoded target boxes, summed over positive default boxes;
* ``SSDClassLoss`` (``L_conf``): softmax cross-entropy over ``num_classes + 1`` logits for
  the positives and the hardest negatives (the background boxes with the largest loss,
  ``negative_ratio`` = 3 per positive of the same image), or, with
  ``mode="focal"``, the focal loss (Lin et al. 2017, arXiv:1708.02002) over all boxes.

Both divide by the same ``N``, so their sum is the SSD loss; they take the targets of
``matching.TargetEncoder`` and the model's outputs of the same keys:

Example:
    >>> model.compile("adam", loss=ssd_losses())
    >>> model.fit(dataset.map(encoder), epochs=10)
"""

import keras
from keras import ops

from keras_mobilenets import _checks

CLASS_LOSS_MODES = ("hard_negative", "focal")


def _num_positives(positive):
    return ops.maximum(ops.sum(ops.cast(positive, "float32")), 1.0)


@keras.saving.register_keras_serializable(package="keras_mobilenets")
class SSDBoxLoss(keras.losses.Loss):
    """Smooth L1 over positive default boxes, divided by the batch's positives.

    ``y_true``: ``(batch, A, 5)`` (encoded boxes and a positive flag, from
    ``TargetEncoder``); ``y_pred``: ``(batch, A, 4)`` (the model's ``"boxes"``).

    Example:
        >>> SSDBoxLoss()(targets["boxes"], predictions["boxes"])
    """

    def __init__(self, name="ssd_box_loss", reduction="sum", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "float32")
        y_pred = ops.cast(y_pred, "float32")
        weight = y_true[..., 4]
        error = ops.abs(y_true[..., :4] - y_pred)
        smooth_l1 = ops.sum(ops.where(error < 1.0, 0.5 * error * error, error - 0.5), axis=-1)
        return ops.sum(smooth_l1 * weight, axis=-1) / _num_positives(weight > 0)


@keras.saving.register_keras_serializable(package="keras_mobilenets")
class SSDClassLoss(keras.losses.Loss):
    """Classification loss of SSD, divided by the batch's positives.

    ``y_true``: int ``(batch, A)`` class ids (0 = background, from ``TargetEncoder``);
    ``y_pred``: ``(batch, A, num_classes + 1)`` logits (the model's ``"classes"``).

    Args:
        mode: ``"hard_negative"`` (softmax cross-entropy, positives plus the
            ``negative_ratio`` x as many hardest negatives of each image) or ``"focal"``
            (softmax focal loss over every box, no mining).
        negative_ratio: Negatives kept per positive with ``"hard_negative"`` (> 0).
        focal_gamma: Focusing parameter of ``"focal"`` (>= 0).
        focal_alpha: Weight of object boxes in ``"focal"`` (background boxes get
            ``1 - focal_alpha``), in (0, 1).
        name: Loss name (as for ``keras.losses.Loss``).
        reduction: Reduction (as for ``keras.losses.Loss``).
        dtype: Dtype of the computation (as for ``keras.losses.Loss``).

    Raises:
        ValueError: On an invalid argument.

    Example:
        >>> SSDClassLoss(mode="focal")(targets["classes"], predictions["classes"])
    """

    def __init__(self, mode="hard_negative", negative_ratio=3.0, focal_gamma=2.0,
                 focal_alpha=0.25, name="ssd_class_loss", reduction="sum", dtype=None):
        _checks.check_choice("mode", mode, CLASS_LOSS_MODES)
        _checks.check_positive_number("negative_ratio", negative_ratio)
        _checks.check_number("focal_gamma", focal_gamma, low=0)
        _checks.check_number("focal_alpha", focal_alpha, low=0, high=1, low_open=True,
                             high_open=True)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.mode = mode
        self.negative_ratio = negative_ratio
        self.focal_gamma = focal_gamma
        self.focal_alpha = focal_alpha

    def call(self, y_true, y_pred):
        classes = ops.cast(y_true, "int32")
        logits = ops.cast(y_pred, "float32")
        positive = classes > 0
        if self.mode == "focal":
            one_hot = ops.one_hot(classes, ops.shape(logits)[-1])
            loss = keras.losses.categorical_focal_crossentropy(
                one_hot, logits, alpha=1.0, gamma=self.focal_gamma, from_logits=True
            )
            loss = loss * ops.where(positive, self.focal_alpha, 1.0 - self.focal_alpha)
            return ops.sum(loss, axis=-1) / _num_positives(positive)
        loss = keras.losses.sparse_categorical_crossentropy(classes, logits, from_logits=True)
        # Hard negatives: the background boxes of each image ranked by their loss.
        negative_loss = ops.where(positive, -1.0, loss)
        rank = ops.argsort(ops.argsort(-negative_loss, axis=-1), axis=-1)
        num_negatives = self.negative_ratio * ops.sum(
            ops.cast(positive, "float32"), axis=-1, keepdims=True
        )
        hard = ops.logical_not(positive) & (ops.cast(rank, "float32") < num_negatives)
        kept = ops.cast(positive | hard, "float32")
        return ops.sum(loss * kept, axis=-1) / _num_positives(positive)

    def get_config(self):
        config = super().get_config()
        config.update(
            mode=self.mode, negative_ratio=self.negative_ratio, focal_gamma=self.focal_gamma,
            focal_alpha=self.focal_alpha,
        )
        return config


def ssd_losses(mode="hard_negative", **class_loss_kwargs):
    """The SSD loss for ``model.compile``: ``{"boxes": SSDBoxLoss, "classes": SSDClassLoss}``.

    Args:
        mode: ``SSDClassLoss`` mode, ``"hard_negative"`` (default) or ``"focal"``.
        **class_loss_kwargs: Other ``SSDClassLoss`` arguments.

    Returns:
        A dict keyed like the model's outputs and ``TargetEncoder``'s targets (for a
        tfmot QAT model, whose outputs are a list, pass ``list(ssd_losses().values())``).

    Example:
        >>> model.compile(keras.optimizers.Adam(1e-3), loss=ssd_losses(mode="focal"))
    """
    return {"boxes": SSDBoxLoss(), "classes": SSDClassLoss(mode=mode, **class_loss_kwargs)}

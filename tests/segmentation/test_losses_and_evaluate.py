"""SegmentationCrossEntropy and the IoU evaluation: numerics, ignore label, errors."""

import keras
import numpy as np
import pytest

from keras_mobilenets.segmentation import (
    SegmentationCrossEntropy,
    evaluate,
    predict_masks,
    score_masks,
)
from tests.helpers import assert_config_round_trip


def test_loss_is_the_mean_over_pixels_that_are_not_ignored():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 7, 4)).astype("float32")
    labels = rng.integers(0, 4, size=(2, 5, 7))
    labels[0, :2] = 255
    labels[1, :, 3] = 255
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    valid = labels != 255
    picked = np.take_along_axis(log_probs, np.where(valid, labels, 0)[..., None], -1)[..., 0]
    expected = -picked[valid].mean()
    loss = SegmentationCrossEntropy(ignore_label=255)
    np.testing.assert_allclose(float(loss(labels, logits)), expected, rtol=1e-5)
    # Ignored pixels do not matter, whatever their logits.
    changed = np.where(valid[..., None], logits, 100.0 * rng.normal(size=logits.shape))
    np.testing.assert_allclose(float(loss(labels, changed)), expected, rtol=1e-5)
    # Without an ignore label every pixel counts.
    every = np.where(valid, labels, 1)
    all_pixels = -np.take_along_axis(log_probs, every[..., None], -1).mean()
    np.testing.assert_allclose(float(SegmentationCrossEntropy(None)(every, logits)), all_pixels,
                               rtol=1e-5)
    assert float(loss(np.full((1, 5, 7), 255), logits[:1])) == 0.0


def test_loss_config_and_serialization():
    loss = SegmentationCrossEntropy(ignore_label=7, name="seg")
    config = assert_config_round_trip(loss).get_config()
    assert config["ignore_label"] == 7 and config["from_logits"] is True
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, SegmentationCrossEntropy) and restored.ignore_label == 7


def test_loss_rejects_bad_ignore_labels():
    for value in (-1, 2.0, "255", True):
        with pytest.raises(ValueError, match=f"`ignore_label` must be None or an int >= 0, "
                                             f"got {value!r}"):
            SegmentationCrossEntropy(ignore_label=value)


def test_scores_are_intersection_over_union_per_class():
    masks = np.array([[[0, 0, 1, 1], [0, 2, 2, 255]]])
    predictions = np.array([[[0, 1, 1, 1], [0, 2, 0, 4]]])
    scores = score_masks(masks, predictions, num_classes=4)
    # class 0: intersection 2, union 4; class 1: 2 / 3; class 2: 1 / 2; class 3 absent;
    # the ignored pixel's prediction (4, out of range) is skipped.
    np.testing.assert_allclose(scores.per_class_iou[:3], [2 / 4, 2 / 3, 1 / 2], rtol=1e-5)
    assert np.isnan(scores.per_class_iou[3])
    np.testing.assert_allclose(scores.mean_iou, np.mean([2 / 4, 2 / 3, 1 / 2]), rtol=1e-5)
    assert score_masks(masks, np.where(masks == 255, 0, masks), 4).mean_iou == pytest.approx(1.0)


def test_evaluate_runs_a_keras_model():
    inputs = keras.Input((4, 6, 2))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1, use_bias=False)(inputs))
    model.layers[-1].set_weights([np.array([[[[1, 0, 0], [0, 1, 0]]]], "float32")])
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(5, 4, 6, 2)).astype("float32")  # logit 2 is always 0
    expected = np.argmax(images, axis=-1)
    np.testing.assert_array_equal(predict_masks(model, images, batch_size=2), expected)
    scores = evaluate(model, images, expected, batch_size=3)
    assert scores.mean_iou == pytest.approx(1.0) and len(scores.per_class_iou) == 3
    assert np.isnan(scores.per_class_iou[2])


def test_evaluation_errors():
    masks = np.zeros((1, 4, 4), "int32")
    with pytest.raises(ValueError, match=r"same shape, got \(1, 4, 4\) and \(1, 4, 5\)"):
        score_masks(masks, np.zeros((1, 4, 5)), num_classes=2)
    with pytest.raises(ValueError, match="`num_classes` must be an int >= 1, got 0"):
        score_masks(masks, masks, num_classes=0)
    with pytest.raises(ValueError, match="`model` must be a Keras model.*got function"):
        evaluate(lambda x: x, np.zeros((1, 4, 4, 3)), masks)
    with pytest.raises(ValueError, match="`batch_size` must be an int >= 1, got 0"):
        predict_masks(keras.Sequential([keras.Input((4, 4, 3))]), np.zeros((1, 4, 4, 3)), 0)

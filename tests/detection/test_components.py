"""Default boxes, box coder, matching, loss, post-processing, augmentation, COCO metrics."""

import math
import os

import keras
import numpy as np
import pytest

from keras_mobilenets import detection
from keras_mobilenets.detection import (
    Augmenter,
    BoxCoder,
    DefaultBoxes,
    SSDBoxLoss,
    SSDClassLoss,
    SSDPostprocess,
    TargetEncoder,
)
from tests.helpers import assert_config_round_trip

TORCHVISION_MAPS = ((20, 20), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1))


def test_default_boxes_of_the_torchvision_config():
    boxes = DefaultBoxes(TORCHVISION_MAPS)
    np.testing.assert_allclose(boxes.scales, [0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 1.0], atol=1e-12)
    assert boxes.boxes_per_location == (6,) * 6
    anchors = boxes.boxes()
    assert anchors.shape == (3234, 4) == (boxes.num_boxes, 4)
    # First location of the 20x20 map: center (0.025, 0.025); sizes s, sqrt(s s'), then the
    # aspect ratio 2 pair (wide, tall).
    c, s, s2, r2 = 0.025, 0.2, math.sqrt(0.2 * 0.35), math.sqrt(2)
    np.testing.assert_allclose(anchors[:3], [
        [c - s / 2, c - s / 2, c + s / 2, c + s / 2],
        [c - s2 / 2, c - s2 / 2, c + s2 / 2, c + s2 / 2],
        [c - s * r2 / 2, c - s / r2 / 2, c + s * r2 / 2, c + s / r2 / 2],
    ], atol=1e-6)
    # The next location moves one cell (1/20) to the right.
    np.testing.assert_allclose(anchors[6] - anchors[0], [0.05, 0, 0.05, 0], atol=1e-6)
    # Last box: 1x1 map (center 0.5), scale 0.95, ratio 3 tall: height 0.95 sqrt(3) clipped to 1.
    w = 0.95 / math.sqrt(3)
    np.testing.assert_allclose(anchors[-1], [0.5 - w / 2, 0.0, 0.5 + w / 2, 1.0], atol=1e-6)
    unclipped = DefaultBoxes(TORCHVISION_MAPS, clip=False).boxes()
    assert unclipped[-1, 3] - unclipped[-1, 1] == pytest.approx(0.95 * math.sqrt(3), rel=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(feature_map_shapes=()), "feature_map_shapes"),
    (dict(feature_map_shapes=((2, 0),)), "feature_map_shapes"),
    (dict(feature_map_shapes=((2, 2),), aspect_ratios=(-1,)), "aspect_ratios"),
    (dict(feature_map_shapes=((2, 2), (1, 1)), aspect_ratios=((2,),)), "aspect_ratios"),
    (dict(feature_map_shapes=((2, 2),), min_ratio=0.9, max_ratio=0.5), "min_ratio"),
    (dict(feature_map_shapes=((2, 2),), clip=1), "clip"),
])
def test_default_boxes_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DefaultBoxes(**kwargs)


def test_box_coder_round_trip_and_formula():
    rng = np.random.default_rng(0)
    anchors = DefaultBoxes(((4, 4), (2, 2))).boxes()
    corner = rng.uniform(0, 0.6, (3, len(anchors), 2)).astype("float32")
    boxes = np.concatenate([corner, corner + rng.uniform(0.05, 0.4, corner.shape)], -1)
    coder = BoxCoder()
    deltas = coder.encode(anchors, boxes)
    np.testing.assert_allclose(coder.decode(anchors, deltas), boxes, atol=1e-5)
    # SSD's encoding of the first box by hand: center offset / anchor size / 0.1, log size / 0.2.
    a, b = anchors[0], boxes[0, 0]
    aw, ah, bw, bh = a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1]
    expected = [((b[0] + b[2]) - (a[0] + a[2])) / 2 / aw / 0.1,
                ((b[1] + b[3]) - (a[1] + a[3])) / 2 / ah / 0.1,
                math.log(bw / aw) / 0.2, math.log(bh / ah) / 0.2]
    np.testing.assert_allclose(deltas[0, 0], expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="variance"):
        BoxCoder(variance=(0.1, 0.1, 0.2))


def test_box_format_conversions():
    boxes = np.array([[8.0, 16.0, 40.0, 48.0]], "float32")
    rel = detection.to_rel_xyxy(boxes, "xyxy", (64, 128))
    np.testing.assert_allclose(rel, [[8 / 128, 16 / 64, 40 / 128, 48 / 64]])
    np.testing.assert_allclose(detection.from_rel_xyxy(rel, "yxyx", (64, 128)), [[16, 8, 48, 40]])
    padded = detection.to_rel_xyxy(np.array([[1.0, 2, 3, 4]]), "xyxy", (8, 8), labels=np.array([-1]))
    np.testing.assert_array_equal(padded, [[-1, -1, -1, -1]])


@pytest.mark.parametrize("boxes, labels, fmt, match", [
    ([[0, 0, 4]], [1], "xyxy", r"shape \(\.\.\., num_boxes, 4\)"),
    ([[0, 0, 4, 4]], [1, 2], "xyxy", "one label per box"),
    ([[5, 0, 4, 4]], [1], "xyxy", r"malformed.*\[5\.0, 0\.0, 4\.0, 4\.0\]"),
    ([[0, 0, -2, 4]], [0], "xywh", "negative width"),
    ([[0, 0, np.nan, 4]], [0], "xyxy", "non-finite"),
    ([[0, 0, 4, 4]], [0], "ltrb", "bounding_box_format"),
])
def test_malformed_boxes_give_clear_errors(boxes, labels, fmt, match):
    with pytest.raises(ValueError, match=match):
        detection.check_bounding_boxes({"boxes": boxes, "labels": labels}, fmt)


def test_malformed_box_dict_and_padding():
    with pytest.raises(ValueError, match="keys 'boxes' and 'labels'"):
        detection.check_bounding_boxes({"bbox": []}, "xyxy")
    # Padded boxes (label -1) are not checked.
    detection.check_bounding_boxes({"boxes": [[-1, -1, -1, -1]], "labels": [-1]}, "xyxy")


def test_matching_on_a_hand_made_example():
    anchors = np.array([
        [0.0, 0.0, 0.5, 0.5],   # IoU 0.81 with object 0
        [0.5, 0.5, 1.0, 1.0],   # IoU 0.36 with object 1 (its best box: a forced match)
        [0.0, 0.5, 0.5, 1.0],   # overlaps nothing
        [0.05, 0.0, 0.5, 0.5],  # IoU 0.9 with object 0 (its best box), 0.72 with nothing else
    ], "float32")
    objects = np.array([[0.0, 0.0, 0.45, 0.5], [0.4, 0.4, 1.0, 1.0], [0, 0, 1, 1]], "float32")
    labels = np.array([3, 1, -1])  # the third object is padding (it would match everything)
    matched = np.asarray(detection.match(anchors, objects, labels, iou_threshold=0.5))
    np.testing.assert_array_equal(matched, [0, 1, -1, 0])
    # Without the forced match, anchor 1 (IoU 0.36 < 0.5) would be background.
    encoder = TargetEncoder(DefaultBoxes(((2, 2),), aspect_ratios=(2,)), image_shape=(10, 10))
    encoder.anchors = anchors  # the hand-made boxes above
    targets = encoder.encode({"boxes": objects * 10, "labels": labels})
    np.testing.assert_array_equal(np.asarray(targets["classes"]), [4, 2, 0, 4])
    np.testing.assert_array_equal(np.asarray(targets["boxes"])[:, 4], [1, 1, 0, 1])
    decoded = BoxCoder().decode(anchors, np.asarray(targets["boxes"])[:, :4])
    np.testing.assert_allclose(decoded[[0, 1, 3]], objects[[0, 1, 0]], atol=1e-5)


def test_target_encoder_batched_equals_per_image():
    from keras_mobilenets.datasets import shapes

    images, targets = shapes.load("train", 4, 64, task="detection")
    encoder = TargetEncoder(DefaultBoxes(((4, 4), (2, 2), (1, 1))), image_shape=(64, 64))
    _, batched = encoder(images, targets)
    for i in range(4):
        one = encoder.encode({"boxes": targets["boxes"][i], "labels": targets["labels"][i]})
        np.testing.assert_allclose(np.asarray(batched["boxes"])[i], np.asarray(one["boxes"]),
                                   atol=1e-5)
        # Every object has at least one positive default box with its class.
        positives = set(np.asarray(one["classes"])[np.asarray(one["classes"]) > 0])
        assert positives == {int(label) + 1 for label in targets["labels"][i] if label >= 0}


def _cross_entropy(logits, label):
    return -(logits[label] - np.log(np.exp(logits).sum()))


def test_class_loss_uses_three_hard_negatives_per_positive():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (1, 12, 3)).astype("float32")
    classes = np.zeros((1, 12), "int32")
    classes[0, 5] = 2
    ce = np.array([_cross_entropy(logits[0, a], classes[0, a]) for a in range(12)])
    negatives = np.sort(np.delete(ce, 5))[::-1]
    expected = ce[5] + negatives[:3].sum()   # one positive: the 3 hardest negatives
    actual = float(SSDClassLoss()(classes, logits))
    assert actual == pytest.approx(expected, rel=1e-5)
    # Focal mode: alpha-weighted (1 - p)^gamma cross-entropy over every box / positives.
    p = np.exp(-ce)
    alpha = np.where(classes[0] > 0, 0.25, 0.75)
    focal = float(SSDClassLoss(mode="focal")(classes, logits))
    assert focal == pytest.approx((alpha * (1 - p) ** 2 * ce).sum(), rel=1e-4)


def test_box_loss_is_smooth_l1_over_positives():
    y_true = np.zeros((2, 3, 5), "float32")
    y_true[0, 0] = [0.5, 0, 0, 0, 1]
    y_true[1, 2] = [0, 3.0, 0, 0, 1]
    y_pred = np.zeros((2, 3, 4), "float32")
    y_pred[0, 1] = 5.0  # a negative box: ignored
    expected = (0.5 * 0.5 ** 2 + (3.0 - 0.5)) / 2
    assert float(SSDBoxLoss()(y_true, y_pred)) == pytest.approx(expected)


def test_loss_errors_and_config():
    with pytest.raises(ValueError, match="mode"):
        SSDClassLoss(mode="ohem")
    with pytest.raises(ValueError, match="negative_ratio"):
        SSDClassLoss(negative_ratio=0)
    with pytest.raises(ValueError, match="focal_alpha"):
        SSDClassLoss(focal_alpha=1.5)
    loss = SSDClassLoss(mode="focal", focal_gamma=1.5)
    assert SSDClassLoss.from_config(loss.get_config()).get_config() == loss.get_config()


def _hand_made_predictions():
    """Four default boxes, decoded to known boxes with known class probabilities."""
    layer = SSDPostprocess(image_shape=(100, 100), feature_map_shapes=[[1, 1]], aspect_ratios=[2],
                           score_threshold=0.2, iou_threshold=0.5, max_detections=5)
    anchors = layer.default_boxes.boxes()
    boxes = np.array([[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.52, 0.5], [0.12, 0.1, 0.52, 0.5],
                      [0.6, 0.6, 0.9, 0.9]], "float32")
    probabilities = np.array([[0.05, 0.9, 0.05], [0.1, 0.8, 0.1], [0.2, 0.1, 0.7],
                              [0.9, 0.05, 0.05]], "float32")
    deltas = BoxCoder().encode(anchors, boxes)
    return layer, {"boxes": deltas[None], "classes": np.log(probabilities)[None]}


def test_postprocess_per_class_nms_threshold_and_padding():
    layer, predictions = _hand_made_predictions()
    out = {k: np.asarray(v) for k, v in layer(predictions).items()}
    # Box 1 (class 0, IoU 0.9 with box 0) is suppressed; box 2 overlaps box 0 as much but is
    # class 1, so it is kept; box 3's best object score (0.05) is under the threshold.
    assert out["num_detections"].tolist() == [2]
    assert out["labels"].tolist() == [[0, 1, -1, -1, -1]]
    np.testing.assert_allclose(out["scores"][0, :2], [0.9, 0.7], rtol=1e-5)
    np.testing.assert_allclose(out["boxes"][0, :2], [[10, 10, 50, 50], [12, 10, 52, 50]],
                               atol=1e-3)
    np.testing.assert_array_equal(out["boxes"][0, 2:], -1)
    # A looser NMS keeps box 1; max_detections cuts to the best ones.
    loose = SSDPostprocess(**{**layer.get_config(), "iou_threshold": 0.95})
    assert np.asarray(loose(predictions)["labels"]).tolist() == [[0, 0, 1, -1, -1]]
    one = SSDPostprocess(**{**layer.get_config(), "max_detections": 1})
    assert np.asarray(one(predictions)["scores"]).tolist() == [[pytest.approx(0.9)]]


def test_postprocess_serialization(tmp_path):
    layer, predictions = _hand_made_predictions()
    clone = assert_config_round_trip(layer)
    assert clone.get_config()["feature_map_shapes"] == [[1, 1]]
    inputs = {"boxes": keras.Input((4, 4), name="boxes"),
              "classes": keras.Input((4, 3), name="classes")}
    model = keras.Model(inputs, layer(inputs))
    path = os.path.join(tmp_path, "postprocess.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    expected, actual = model(predictions), loaded(predictions)
    for key in detection.postprocess.OUTPUT_KEYS:
        np.testing.assert_allclose(np.asarray(actual[key]), np.asarray(expected[key]), atol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(score_threshold=1.5), "score_threshold"),
    (dict(iou_threshold=0), "iou_threshold"),
    (dict(max_detections=0), "max_detections"),
    (dict(bounding_box_format="ltrb"), "bounding_box_format"),
    (dict(image_shape=(None, 4)), "image_shape"),
])
def test_postprocess_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SSDPostprocess(**{"image_shape": (8, 8), "feature_map_shapes": [[1, 1]], **kwargs})


def test_augmentation_moves_boxes_with_the_pixels():
    import tensorflow as tf

    tf.random.set_seed(0)
    image = np.zeros((64, 80, 3), "float32")
    box = [10, 20, 45, 50]
    image[box[1]:box[3], box[0]:box[2]] = 255.0
    targets = {"boxes": np.array([box, [-1] * 4], "float32"), "labels": np.array([3, -1])}
    augmenter = Augmenter((48, 48))
    for _ in range(12):
        out, moved = augmenter(image, targets)
        out, boxes, labels = np.asarray(out), np.asarray(moved["boxes"]), np.asarray(moved["labels"])
        assert out.shape == (48, 48, 3) and labels[1] == -1 and (boxes[1] == -1).all()
        rows, cols = np.nonzero(out[..., 0] > 127)
        if labels[0] < 0:  # dropped: its center left the crop
            continue
        bounds = [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
        np.testing.assert_allclose(bounds, boxes[0], atol=1.0)
    with pytest.raises(ValueError, match="min_scale"):
        Augmenter((8, 8), min_scale=0)


def test_coco_metrics_through_pycocotools():
    pytest.importorskip("pycocotools")
    truth = {"boxes": np.array([[[0, 0, 20, 20], [30, 30, 60, 50]]], "float32"),
             "labels": np.array([[0, 2]])}
    perfect = {**truth, "scores": np.array([[0.9, 0.8]], "float32")}
    metrics = detection.coco_metrics(truth, perfect, image_shape=(64, 64))
    assert metrics["mAP"] == pytest.approx(1.0) and metrics["mAP@0.5"] == pytest.approx(1.0)
    # The second box shifted: IoU 0.6 (counts at 0.5, not at 0.75) -> mAP@0.5 1, mAP lower.
    shifted = {**perfect, "boxes": np.array([[[0, 0, 20, 20], [30, 35, 60, 55]]], "float32")}
    metrics = detection.coco_metrics(truth, shifted, image_shape=(64, 64))
    assert metrics["mAP@0.5"] == pytest.approx(1.0) and metrics["mAP"] < 0.8
    wrong = {**perfect, "labels": np.array([[1, 2]])}
    assert detection.coco_metrics(truth, wrong, image_shape=(64, 64))["mAP@0.5"] < 0.9


def test_detection_agreement():
    a = {"boxes": np.array([[[0, 0, 20, 20], [30, 30, 60, 50]]], "float32"),
         "labels": np.array([[0, 2]])}
    b = {"boxes": np.array([[[1, 0, 21, 20], [30, 30, 60, 40]]], "float32"),
         "labels": np.array([[0, 2]])}
    assert detection.detection_agreement(a, b, (64, 64)) == (0.5, 2)
    assert detection.detection_agreement(a, a, (64, 64)) == (1.0, 2)

"""ONNX float32 files of every builder family and of both heads match Keras (end-to-end tier).

Small inputs, untrained weights with re-estimated batch norms (so the outputs depend on
the image), classifier logits (``classifier_activation=None``), tolerance 1e-4 (plus 1e-5
relative: float32 sums of logits near 100 differ by more in their last bits).
"""

import numpy as np
import pytest

import keras_mobilenets as km
from keras_mobilenets import detection, export, segmentation
from keras_mobilenets.training import reestimate_batch_norm
from tests.helpers import random_images

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

pytestmark = pytest.mark.end_to_end

TOP = dict(weights=None, classes=10, classifier_activation=None)
SIZE = 64


def _check_parity(model, shape):
    reestimate_batch_norm(model, random_images(shape, batch=8, seed=5))
    images = random_images(shape, batch=4, seed=1)
    expected = model.predict(images, verbose=0)
    runner = export.OnnxModel(export.to_onnx(model))
    actual = runner.predict(images)
    if isinstance(expected, dict):  # SSDLite: {"boxes", "classes"}, the file's order
        names = [detail["name"] for detail in runner.output_details]
        assert len(names) == len(expected) == len(actual), names
        matched = {key: next(a for a in actual if a.shape == value.shape)
                   for key, value in expected.items()}
        actual, expected = list(matched.values()), list(expected.values())
    else:
        actual, expected = [actual], [expected]
    for a, e in zip(actual, expected):
        assert np.ptp(e, axis=0).max() > 1e-3  # the outputs depend on the image
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-4)
    return runner


@pytest.mark.parametrize("build", [
    lambda: km.MobileNet(input_shape=(SIZE, SIZE, 3), alpha=0.25, **TOP),
    lambda: km.MobileNetV2(input_shape=(SIZE, SIZE, 3), alpha=0.35, **TOP),
    lambda: km.MobileNetV3Small(input_shape=(SIZE, SIZE, 3), alpha=0.75, **TOP),
    lambda: km.MobileNetV3Large(input_shape=(SIZE, SIZE, 3), minimalistic=True, **TOP),
    lambda: km.ShuffleNet(input_shape=(SIZE, SIZE, 3), groups=3, scale=0.5, **TOP),
    lambda: km.ShuffleNetV2(input_shape=(SIZE, SIZE, 3), scale=0.5, **TOP),
    lambda: km.MobileNetV4ConvSmall(input_shape=(SIZE, SIZE, 3), **TOP),
    lambda: km.MobileNetV4HybridMedium(input_shape=(SIZE, SIZE, 3), **TOP),  # Mobile MQA
], ids=["MobileNet", "MobileNetV2", "MobileNetV3Small", "MobileNetV3Large", "ShuffleNet",
        "ShuffleNetV2", "MobileNetV4ConvSmall", "MobileNetV4HybridMedium"])
def test_float32_logits_match_keras(build):
    runner = _check_parity(build(), (SIZE, SIZE, 3))
    if "Conv" in runner.op_histogram():  # ShuffleNet's grouped 1x1s: one Conv each
        assert runner.op_histogram()["Conv"] > 10


def test_ssdlite_raw_outputs_match_keras():
    model = detection.SSDLite("MobileNetV3Small", num_classes=5, input_shape=(96, 96, 3),
                              backbone_kwargs={"alpha": 0.35}, extra_channels=(32, 16, 16, 16))
    _check_parity(model, (96, 96, 3))


def test_lraspp_logits_match_keras():
    model = segmentation.LRASPP("MobileNetV3Small", alpha=0.35, num_classes=6,
                                input_shape=(SIZE, SIZE, 3), inter_channels=16)
    _check_parity(model, (SIZE, SIZE, 3))


def test_post_processed_detector_gives_keras_detections():
    """SSDPostprocess (decoding, per-class NMS, top-k) becomes ONNX NonMaxSuppression in a
    Loop over the batch: the same detections as Keras."""
    model = detection.SSDLite("MobileNetV3Small", num_classes=5, input_shape=(96, 96, 3),
                              backbone_kwargs={"alpha": 0.35}, extra_channels=(32, 16, 16, 16))
    reestimate_batch_norm(model, random_images((96, 96, 3), batch=8, seed=5))
    detector = detection.inference_model(model, score_threshold=0.0, max_detections=20)
    images = random_images((96, 96, 3), batch=2, seed=1)
    expected = detector.predict(images, verbose=0)
    runner = export.OnnxModel(export.to_onnx(detector))
    assert runner.op_histogram()["Loop"] == 1  # the per-image suppression
    actual = dict(zip([d["name"] for d in runner.output_details], runner.predict(images)))
    assert sorted(actual) == sorted(expected) == ["boxes", "labels", "num_detections", "scores"]
    assert np.ptp(expected["scores"]) > 0.01  # distinct scores: the order is meaningful
    np.testing.assert_array_equal(actual["labels"], expected["labels"])
    np.testing.assert_array_equal(actual["num_detections"], expected["num_detections"])
    np.testing.assert_allclose(actual["scores"], expected["scores"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(actual["boxes"], expected["boxes"], rtol=0, atol=1e-3)

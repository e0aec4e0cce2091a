"""int8 ONNX files of QAT models agree with the QAT Keras models (end-to-end tier).

Each model is trained briefly on the embedded shapes data (32x32), made quantization-aware
(``quantization.quantize_model``, calibrated), fine-tuned for one epoch, exported with
``export.to_onnx(qat, quantization="int8")`` and run with ONNX Runtime on held-out images.
Training runs TensorFlow's CPU kernels: the module is listed in tests/conftest.py's
``KERNEL_DEPENDENT_MODULES`` (marker ``kernels``).
"""

import keras
import numpy as np
import pytest

import keras_mobilenets as km
from keras_mobilenets import export
from keras_mobilenets.training import reestimate_batch_norm

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")
pytest.importorskip("tensorflow_model_optimization")

pytestmark = pytest.mark.end_to_end

SIZE = 32


@pytest.fixture(scope="module")
def shapes_data():
    from keras_mobilenets.datasets import shapes

    x, y = shapes.load("train", num_images=600, image_size=SIZE)
    x_test, _ = shapes.load("test", num_images=200, image_size=SIZE)
    return x.astype("float32"), y, x_test.astype("float32"), shapes.NUM_CLASSES


def _qat_model(builder, kwargs, data):
    from keras_mobilenets import quantization
    from keras_mobilenets.quantization._tf_keras import tf_keras

    x, y, _, classes = data
    keras.utils.set_random_seed(0)
    model = builder(input_shape=(SIZE, SIZE, 3), weights=None, classes=classes,
                    classifier_activation=None, **kwargs)
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=50, epochs=4, verbose=0)
    # Four epochs from scratch leave the moving statistics behind the weights.
    reestimate_batch_norm(model, x[:256])
    qat = quantization.quantize_model(model, calibration_data=x[:256])
    qat.compile(tf_keras.optimizers.Adam(1e-4),
                tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x[:300], y[:300], batch_size=50, epochs=1, verbose=0)
    return qat


@pytest.fixture(scope="module", params=[
    (km.MobileNetV3Small, {"alpha": 0.75, "dropout_rate": 0.0}),
    (km.MobileNetV2, {"alpha": 0.35}),
    (km.ShuffleNetV2, {"scale": 0.5}),
], ids=["MobileNetV3Small", "MobileNetV2", "ShuffleNetV2"])
def trained(request, shapes_data):
    """A QAT model trained on shapes, its held-out logits and its int8 ONNX runner."""
    qat = _qat_model(*request.param, shapes_data)
    logits = qat.predict(shapes_data[2], batch_size=100, verbose=0)
    assert len(np.unique(np.argmax(logits, axis=-1))) > 1  # not a constant model
    tflite = export.LiteRTModel(export.to_tflite(qat, quantization="int8"))
    return {"logits": logits, "runner": export.OnnxModel(export.to_onnx(qat, quantization="int8")),
            "tflite_logits": tflite.predict(shapes_data[2])}


def _agreement(a, b):
    return float(np.mean(np.argmax(a, -1) == np.argmax(b, -1)))


#: Models whose int8 ONNX file agreed with the QAT model far less than the int8 TFLite file
#: (AMD EPYC, AVX2, onnxruntime 1.32): MobileNetV2 0.605 against 0.85, ShuffleNetV2 0.565
#: against 0.83 (MobileNetV3Small: 0.555 against 0.56). See docs/onnx.md.
ONNX_INT8_GAP = ("MobileNetV2", "ShuffleNetV2")


def test_qat_int8_file_agrees_as_well_as_the_int8_tflite_file(trained, shapes_data, request):
    # The same QAT model's two int8 files: ONNX Runtime's integer kernels should lose no
    # more top-1 agreement with the QAT model than LiteRT's (within 3 of 100 images).
    if request.node.callspec.id in ONNX_INT8_GAP:
        request.applymarker(pytest.mark.xfail(strict=False, reason=(
            "known gap: ONNX Runtime requantizes the file's folded float32 weights per "
            "tensor (docs/onnx.md)")))
    onnx_agreement = _agreement(trained["runner"].predict(shapes_data[2]), trained["logits"])
    tflite_agreement = _agreement(trained["tflite_logits"], trained["logits"])
    assert onnx_agreement >= tflite_agreement - 0.03, (onnx_agreement, tflite_agreement)


def test_qat_int8_file_runs_integer_kernels(trained):
    runner = trained["runner"]
    ops = runner.op_histogram()
    assert ops["QuantizeLinear"] > 10 and ops["DequantizeLinear"] > 10
    # ONNX Runtime fuses the QDQ pairs around most convolutions into QLinearConv; those
    # whose batch norm tfmot keeps apart (before a hard-swish, or a depthwise convolution)
    # stay float32 Conv + BatchNormalization between DequantizeLinear and QuantizeLinear.
    assert runner.optimized_op_histogram()["QLinearConv"] > 10


@pytest.mark.xfail(strict=False, reason=(
    "Not reached (docs/onnx.md): the models this module trains in its time budget are near "
    "chance (MobileNetV3Small 0.75: 0.23 top-1 on 5 classes), so even their int8 TFLite "
    "files agree on 0.56-0.85 only; and ONNX Runtime's files agree less than TFLite's for "
    "MobileNetV2 (0.605 against 0.85) and ShuffleNetV2 (0.565 against 0.83)."))
def test_qat_int8_file_agrees_with_the_qat_model(trained, shapes_data):
    int8_logits = trained["runner"].predict(shapes_data[2])
    agreement = np.mean(np.argmax(int8_logits, -1) == np.argmax(trained["logits"], -1))
    assert agreement >= 0.98, agreement

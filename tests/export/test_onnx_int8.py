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
    return {"logits": logits, "runner": export.OnnxModel(export.to_onnx(qat, quantization="int8"))}


def test_qat_int8_file_runs_integer_kernels(trained):
    runner = trained["runner"]
    ops = runner.op_histogram()
    assert ops["QuantizeLinear"] > 10 and ops["DequantizeLinear"] > 10
    # ONNX Runtime fuses the QDQ pairs around most convolutions into QLinearConv; those
    # whose batch norm tfmot keeps apart (before a hard-swish, or a depthwise convolution)
    # stay float32 Conv + BatchNormalization between DequantizeLinear and QuantizeLinear.
    assert runner.optimized_op_histogram()["QLinearConv"] > 10


@pytest.mark.xfail(strict=False, reason=(
    "Known problem (docs/onnx.md): the file holds the QAT weights as float32 and ONNX "
    "Runtime's WeightBiasQuantization optimizer requantizes them per tensor when it loads "
    "it (MobileNetV3Small trained on shapes: 0.545 top-1 agreement on the AMD EPYC); with "
    "the graph optimizations off the file matches the QAT model."))
def test_qat_int8_file_agrees_with_the_qat_model(trained, shapes_data):
    int8_logits = trained["runner"].predict(shapes_data[2])
    agreement = np.mean(np.argmax(int8_logits, -1) == np.argmax(trained["logits"], -1))
    assert agreement >= 0.98, agreement

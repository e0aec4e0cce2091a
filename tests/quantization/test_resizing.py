"""Resizing (upsampling in segmentation heads): translation, QAT and int8 TFLite."""

import keras
import numpy as np
import pytest

from keras_mobilenets.quantization import quantize_model

pytest.importorskip("tf_keras")
pytest.importorskip("tensorflow_model_optimization")
pytest.importorskip("ai_edge_litert")

from keras_mobilenets import export  # noqa: E402
from keras_mobilenets.quantization import translate  # noqa: E402
from tests.quantization.helpers import assert_int8_graph  # noqa: E402

OPS = {"bilinear": "RESIZE_BILINEAR", "nearest": "RESIZE_NEAREST_NEIGHBOR"}


def upsampling_model(interpolation, **options):
    L = keras.layers
    inputs = keras.Input((16, 20, 3), name="image")
    x = L.Conv2D(4, 3, strides=4, padding="same", name="down")(inputs)  # 4x5
    x = L.ReLU(name="down_relu")(x)
    x = L.Resizing(7, 9, interpolation=interpolation, name="up", **options)(x)  # not 2x
    outputs = L.Conv2D(2, 1, name="classifier")(x)
    return keras.Model(inputs, outputs, name="upsampling")


@pytest.mark.parametrize("interpolation", sorted(OPS))
def test_resizing_quantizes_and_runs_in_int8(interpolation):
    model = upsampling_model(interpolation)
    # Inputs in [-1, 1] keep the convolution's outputs within the quantizers' initial
    # [-6, 6] ranges (three passes hardly move them), so nothing saturates.
    batch = np.random.default_rng(0).uniform(-1, 1, (4, 16, 20, 3)).astype("float32")
    twin = translate.to_tf_keras(model)
    np.testing.assert_allclose(twin(batch).numpy(), np.asarray(model(batch)), atol=1e-6)

    qat_model = quantize_model(model)
    for _ in range(3):  # training-mode passes calibrate the quantizer ranges
        qat_model(batch, training=True)
    flatbuffer = export.to_tflite(qat_model, quantization="int8")
    assert_int8_graph(flatbuffer)
    (resize,) = export.op_tensor_types(flatbuffer, ops=[OPS[interpolation]])
    assert (resize["input"], resize["output"]) == ("INT8", "INT8")
    runner = export.LiteRTModel(flatbuffer)
    expected = qat_model(batch, training=False).numpy()
    scale = runner.output_details[0]["quantization"][0]
    np.testing.assert_allclose(runner.predict(batch), expected, atol=3 * scale)


def test_resizing_options_without_a_tf_keras_twin_are_refused():
    model = upsampling_model("bilinear", antialias=True)
    with pytest.raises(ValueError, match="'up' of type Resizing: Keras 3 only option 'antialias'"):
        quantize_model(model)

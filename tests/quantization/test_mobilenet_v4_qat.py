"""QAT and int8 TFLite of MobileNetV4 (arXiv:2404.10518): Mobile MQA, GELU, layer scale."""

import dataclasses

import keras
import numpy as np
import pytest

import keras_mobilenets
from keras_mobilenets import blocks, export, quantization, specs
from keras_mobilenets.specs.uib_spec import cn, mqa, uib
from tests import helpers as shared
from tests.quantization import helpers

BN = specs.BatchNormSpec(epsilon=1e-5, momentum=0.9)


def _tiny_hybrid():
    """Conv block, Mobile MQA (key / value down-sampled), UIB with GELU and layer scale."""
    rows = [
        ("stem_", cn(16, k=3, s=2)),
        ("mqa_", mqa(16, heads=2, key_dim=8, kv_stride=2)),
        ("uib_", dataclasses.replace(
            uib(16, start=3, mid=3, e=2, act="gelu", layer_scale=True), exp=32)),
    ]
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, -1.0, name="rescaling")(inputs)
    for prefix, row in rows:
        x = blocks.build_block(x, row, {"base": prefix, "add": f"{prefix}add"}, BN)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(4, name="logits")(x))
    shared.randomize_batch_norm(model)
    for layer in model.layers:  # layer scale 0.5, not 1e-5, so that the branch matters
        if layer.name.endswith("layer_scale"):
            layer.set_weights([np.full(layer.weights[0].shape, 0.5, "float32")])
    return model


@pytest.mark.slow
def test_attention_gelu_and_layer_scale_quantize_and_run_in_int8():
    model = _tiny_hybrid()
    images = helpers.images(batch=16, size=32)
    qat = quantization.quantize_model(model, calibration_data=images)
    helpers.assert_same_float_weights(model, qat)
    float_out = np.asarray(model(images, training=False))
    qat_out = np.asarray(qat(images, training=False))
    spread = float_out.max() - float_out.min()
    assert np.abs(qat_out - float_out).max() < 0.1 * spread
    flatbuffer = export.to_tflite(qat, quantization="int8")
    helpers.assert_int8_graph(flatbuffer)
    runner = export.LiteRTModel(flatbuffer)
    ops = runner.op_histogram()
    assert ops.get("BATCH_MATMUL", 0) == 2 and ops.get("SOFTMAX", 0) == 1, ops
    assert ops.get("GELU", 0) == 2, ops
    # Integer-only, and XNNPACK takes both int8 BATCH_MATMULs (the "batch_matmul" rewrite).
    assert "BATCH_MATMUL" not in [row["op"] for row in export.non_delegated_ops(flatbuffer)]
    np.testing.assert_allclose(runner.predict(images), qat_out, atol=0.1 * spread)


@pytest.mark.slow
@pytest.mark.parametrize("variant", [
    "conv_small",  # Mobile MQA's QAT stays in the default suite through the tiny hybrid above
    pytest.param("hybrid_medium", marks=pytest.mark.end_to_end),
    pytest.param("conv_medium", marks=pytest.mark.acceptance),
    pytest.param("conv_large", marks=pytest.mark.acceptance),
    pytest.param("hybrid_large", marks=pytest.mark.acceptance),
])
def test_every_variant_quantizes_and_exports_int8(variant):
    title = "".join(part.capitalize() for part in variant.split("_"))
    model = getattr(keras_mobilenets, f"MobileNetV4{title}")(
        input_shape=(64, 64, 3), classes=8, classifier_activation=None
    )
    images = helpers.images(batch=8, size=64)
    qat = quantization.quantize_model(model, calibration_data=images)
    flatbuffer = export.to_tflite(qat, quantization="int8")
    helpers.assert_int8_graph(flatbuffer)
    predictions = export.LiteRTModel(flatbuffer).predict(images)
    assert predictions.shape == (8, 8) and np.isfinite(predictions).all()


@pytest.mark.acceptance
def test_conv_small_int8_agrees_with_its_qat_model_on_shapes():
    """A Conv-Small trained briefly on shapes: its int8 file's top-1 = the QAT model's.

    Minutes of training, and measured to pass once only: an acceptance test
    (``python -m pytest -m acceptance``), outside the default suite and CI.

    At 32x32 the target (>= 0.98 on 200 test images) is met; at 64x64
    ``benchmarks/mobilenet_v4_int8.py`` (24,000 images, 2 epochs, residual branches damped
    to 0.1, float accuracy 0.93, about 7 minutes) measures 1.000 for the same variant and
    for Conv-Medium and Conv-Large (see docs/mobilenet_v4.md).
    """
    from keras_mobilenets.datasets import shapes
    from keras_mobilenets.quantization._tf_keras import tf_keras

    size = 32
    x, y = shapes.load("train", num_images=500, image_size=size)
    x_test, _ = shapes.load("test", num_images=200, image_size=size)
    x, x_test = x.astype("float32"), x_test.astype("float32")
    keras.utils.set_random_seed(0)
    model = keras_mobilenets.MobileNetV4ConvSmall(
        input_shape=(size, size, 3), classes=shapes.NUM_CLASSES, classifier_activation=None,
        dropout_rate=0.0)
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=50, epochs=6, verbose=0)
    qat = quantization.quantize_model(model, calibration_data=x[:256])
    qat.compile(tf_keras.optimizers.Adam(1e-4),
                tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x[:200], y[:200], batch_size=50, epochs=1, verbose=0)
    qat_logits = qat.predict(x_test, batch_size=100, verbose=0)
    assert len(np.unique(np.argmax(qat_logits, axis=-1))) > 1  # not a constant model
    int8_logits = export.LiteRTModel(export.to_tflite(qat, quantization="int8")).predict(x_test)
    agreement = np.mean(np.argmax(int8_logits, -1) == np.argmax(qat_logits, -1))
    assert agreement >= 0.98, agreement


@pytest.mark.slow
def test_per_channel_rescaling_and_mqa_norm_compute_as_in_the_int8_file():
    """The QAT model rounds the per-channel constants as the int8 file stores them.

    The converter stores the scale and offset vectors of an int8 MUL / ADD per tensor in 8
    bits (a channel 1/50 of the largest keeps about 5 levels); the QAT model must compute
    with those values, or every later layer starts from a different input (before this,
    ~13% of the rescaled pixels of a MobileNetV4 differed by one int8 step).
    """
    from ai_edge_litert.interpreter import Interpreter

    from keras_mobilenets.layers import StandaloneBatchNorm
    from keras_mobilenets.quantization._tf_keras import tf_keras

    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Rescaling([0.017, 0.0011, 0.0004], [-2.1, -0.03, 0.45],
                               name="rescaling")(inputs)
    norm = StandaloneBatchNorm(epsilon=1e-5, name="norm")
    x = norm(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(4, name="logits")(x))
    norm.set_weights([np.array([1.0, 0.9, 1.1], "float32"),
                      np.array([0.1, -0.2, 0.05], "float32"),
                      np.array([0.0, 0.1, -0.1], "float32"),
                      np.array([1.0, 40.0, 900.0], "float32")])  # scales 1 to 1/30
    images = helpers.images(batch=4, size=16)
    qat = quantization.quantize_model(model, calibration_data=images)
    probe = tf_keras.Model(qat.input, [qat.get_layer("quant_rescaling").output,
                                       qat.get_layer("quant_norm").output])
    expected = probe.predict(images, verbose=0)
    interpreter = Interpreter(model_content=export.to_tflite(qat, quantization="int8"),
                              experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    adds = [op["outputs"][0] for op in interpreter._get_ops_details() if op["op_name"] == "ADD"]
    assert len(adds) == 2, adds
    detail = interpreter.get_input_details()[0]
    scale, zero_point = detail["quantization"]
    for i, image in enumerate(images):
        if scale:  # an int8 input
            info = np.iinfo(detail["dtype"])
            image = np.round(image / scale + zero_point).clip(info.min, info.max)
        interpreter.set_tensor(detail["index"], image[None].astype(detail["dtype"]))
        interpreter.invoke()
        for index, reference in zip(adds, expected):
            step, zero = interpreter._get_tensor_details(index, 0)["quantization"]
            actual = (interpreter.get_tensor(index).astype("float32") - zero) * step
            mismatched = np.abs(actual - reference[i]) > 0.5 * step
            assert mismatched.mean() < 0.01, (index, mismatched.mean())

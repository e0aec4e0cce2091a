"""int8 rewrites for XNNPACK (ShuffleNet V1) and the report of ops XNNPACK does not take."""

import logging

import keras
import numpy as np
import pytest

import keras_mobilenets as km
from keras_mobilenets import export
from keras_mobilenets.training import reestimate_batch_norm
from tests.helpers import random_images

pytest.importorskip("ai_edge_litert")

SHAPE = (64, 64, 3)


def _images(batch=8, seed=0):
    return random_images(SHAPE, batch=batch, seed=seed, low=-1.0, high=1.0)


@pytest.fixture(scope="module")
def shufflenet():
    """ShuffleNet 0.25x g=3 (logits) with realistic BN statistics; int8 files with and
    without the rewrites (built once)."""
    model = km.ShuffleNet(groups=3, scale=0.25, input_shape=SHAPE, classes=10,
                          classifier_activation=None)
    reestimate_batch_norm(model, _images(seed=5))
    data = _images(batch=16, seed=6)
    return {
        "model": model,
        "plain": export.to_tflite(model, quantization="int8", representative_data=data,
                                  int8_rewrites=()),
        "rewritten": export.to_tflite(model, quantization="int8", representative_data=data),
    }


def _grouped_convs(flatbuffer):
    runner = export.LiteRTModel(flatbuffer)
    details = runner._interpreter._get_ops_details()
    tensors = {t["index"]: t["shape"] for t in runner._interpreter.get_tensor_details()}
    return [op for op in details if op["op_name"] == "CONV_2D"
            and tensors[op["inputs"][0]][-1] != tensors[op["inputs"][1]][-1]]


def test_plain_int8_shufflenet_has_ops_xnnpack_does_not_take(shufflenet):
    ops = export.op_histogram(shufflenet["plain"])
    assert ops["TRANSPOSE"] == 15 and ops["RESHAPE"] == 30 and ops["AVERAGE_POOL_2D"] == 3
    slow = export.non_delegated_ops(shufflenet["plain"])
    assert sorted({(row["op"], row["dtype"]) for row in slow}) == [
        ("AVERAGE_POOL_2D", "int8"), ("RELU", "int8")
    ]
    assert len(slow) == 6
    report = export.op_report(shufflenet["plain"])
    assert ("Not delegated to XNNPACK (builtin kernels): AVERAGE_POOL_2D x3 (int8), "
            "RELU x3 (int8)") in report


def test_rewritten_int8_shufflenet_runs_whole_on_xnnpack_with_the_same_outputs(shufflenet):
    rewritten = shufflenet["rewritten"]
    ops = export.op_histogram(rewritten)
    assert not {"TRANSPOSE", "RESHAPE", "AVERAGE_POOL_2D", "RELU"} & set(ops)
    assert ops["CONV_2D"] == 33 and ops["DEPTHWISE_CONV_2D"] == 16 + 3
    # The 15 expand convolutions followed by a shuffle are dense now; the 16 projections
    # stay grouped (densifying them is opt-in).
    assert len(_grouped_convs(shufflenet["plain"])) == 31
    assert len(_grouped_convs(rewritten)) == 16
    assert export.non_delegated_ops(rewritten) == []
    assert export.op_report(rewritten).endswith("XNNPACK delegates every op.")
    images = _images(batch=4, seed=7)
    plain = export.LiteRTModel(shufflenet["plain"]).predict(images)
    actual = export.LiteRTModel(rewritten).predict(images)
    # The same integer arithmetic: the 1/9 of the average pool as a depthwise convolution
    # may round one step differently, nothing else changes.
    step = export.LiteRTModel(rewritten).output_details[0]["quantization"][0]
    np.testing.assert_allclose(actual, plain, atol=2 * step)
    expected = shufflenet["model"].predict(images, verbose=0).ravel()
    # As close to the float model as the unrewritten file (random weights, 16 calibration
    # images: ~0.93 either way).
    correlation = np.corrcoef(actual.ravel(), expected)[0, 1]
    assert correlation > 0.85
    assert correlation > np.corrcoef(plain.ravel(), expected)[0, 1] - 0.01


def test_each_rewrite_alone_and_counts(shufflenet):
    plain = shufflenet["plain"]
    expected = {"shuffle": 15, "grouped": 31, "average_pool": 3, "relu": 3}
    for name, count in expected.items():
        _, counts = export.rewrite_int8_for_xnnpack(plain, rewrites=(name,))
        assert counts == {name: count}
    _, counts = export.rewrite_int8_for_xnnpack(plain)
    assert counts == {"shuffle": 15, "average_pool": 3, "relu": 3, "batch_matmul": 0}
    integer_only = [name for name in export.REWRITES if name != "float_stem"]
    everything, counts = export.rewrite_int8_for_xnnpack(plain, rewrites=integer_only)
    assert counts == {"shuffle": 15, "grouped": 16, "average_pool": 3, "relu": 3,
                      "float_ops": 0, "batch_matmul": 0}
    assert not _grouped_convs(everything)
    assert export.non_delegated_ops(everything) == []
    images = _images(batch=2, seed=8)
    np.testing.assert_array_equal(export.LiteRTModel(everything).predict(images),
                                  export.LiteRTModel(export.rewrite_int8_for_xnnpack(plain)[0])
                                  .predict(images))
    with pytest.raises(ValueError, match=r"`rewrites` must be a collection of"):
        export.rewrite_int8_for_xnnpack(plain, rewrites=("transpose",))
    with pytest.raises(ValueError, match=r"`int8_rewrites` must be a collection of"):
        export.to_tflite(shufflenet["model"], int8_rewrites="shuffle")


def test_float_stem_runs_the_first_convolution_in_float32(shufflenet):
    rewritten = shufflenet["rewritten"]
    stem, counts = export.rewrite_int8_for_xnnpack(rewritten, rewrites=("float_stem",))
    assert counts == {"float_stem": 1}
    before, after = export.op_histogram(rewritten), export.op_histogram(stem)
    assert after["DEQUANTIZE"] == before["DEQUANTIZE"] + 1
    assert after["QUANTIZE"] == before["QUANTIZE"] + 1
    assert after["CONV_2D"] == before["CONV_2D"]
    # Exactly one convolution, the first, reads float32 and has float32 weights.
    kinds = export.op_tensor_types(stem, ops=("CONV_2D",))
    assert [row["weights"] for row in kinds].count("FLOAT32") == 1
    assert kinds[0]["input"] == kinds[0]["weights"] == "FLOAT32"
    assert all(row["input"] == "INT8" for row in kinds[1:])
    assert export.non_delegated_ops(stem) == []
    # The same arithmetic but for rounding: the outputs within a few int8 steps.
    images = _images(batch=8, seed=9)
    expected = export.LiteRTModel(rewritten).predict(images)
    got = export.LiteRTModel(stem).predict(images)
    step = export.LiteRTModel(stem).output_details[0]["quantization"][0]
    assert np.abs(got - expected).max() <= 4 * step
    assert np.mean(got.argmax(-1) == expected.argmax(-1)) >= 0.875
    float32 = export.to_tflite(shufflenet["model"])
    assert export.rewrite_int8_for_xnnpack(float32, rewrites=("float_stem",)) == (
        float32, {"float_stem": 0})


def test_float_files_are_left_alone_and_fully_delegated(shufflenet):
    float32 = export.to_tflite(shufflenet["model"])
    assert export.rewrite_int8_for_xnnpack(float32)[0] == float32
    assert export.non_delegated_ops(float32) == []


def test_to_tflite_logs_one_warning_listing_non_delegated_ops(shufflenet, caplog):
    inputs = keras.Input(SHAPE)
    x = keras.layers.ZeroPadding2D(1, name="pad")(inputs)
    pooled = keras.layers.AveragePooling2D(3, strides=2, name="pool")(x)
    conv = keras.layers.Conv2D(3, 3, strides=2, padding="same", name="conv")(inputs)
    x = keras.layers.Concatenate(name="concat")([pooled, conv])
    outputs = keras.layers.ReLU(name="relu")(x)
    model = keras.Model(inputs, outputs)
    data = _images(batch=4)
    logger = "keras_mobilenets.export.tflite"
    with caplog.at_level(logging.WARNING, logger=logger):
        export.to_tflite(model, quantization="int8", representative_data=data,
                         int8_rewrites=())
    warnings = [r for r in caplog.records if r.name == logger and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "2 op(s)" in warnings[0].getMessage()
    assert "AVERAGE_POOL_2D x1 (int8), RELU x1 (int8)" in warnings[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=logger):
        export.to_tflite(model, quantization="int8", representative_data=data)
        export.to_tflite(model)
    assert not [r for r in caplog.records if r.name == logger]


def test_large_average_pools_are_left_alone():
    inputs = keras.Input((16, 16, 4))
    small = keras.layers.AveragePooling2D(3, strides=2, name="small")(inputs)  # 7x7
    large = keras.layers.AveragePooling2D(6, strides=2, name="large")(inputs)  # 6x6
    x = keras.layers.Concatenate(name="concat")(
        [keras.layers.Cropping2D(((0, 1), (0, 1)), name="crop")(small), large]
    )
    model = keras.Model(inputs, x)
    data = np.random.default_rng(0).uniform(-1, 1, (8, 16, 16, 4)).astype("float32")
    plain = export.to_tflite(model, quantization="int8", representative_data=data,
                             int8_rewrites=())
    rewritten, counts = export.rewrite_int8_for_xnnpack(plain, rewrites=("average_pool",))
    assert counts == {"average_pool": 1}
    ops = export.op_histogram(rewritten)
    assert ops["AVERAGE_POOL_2D"] == 1 and ops["DEPTHWISE_CONV_2D"] == 1
    step = export.LiteRTModel(plain).output_details[0]["quantization"][0]
    np.testing.assert_allclose(export.LiteRTModel(rewritten).predict(data),
                               export.LiteRTModel(plain).predict(data), atol=1.01 * step)


def _attention_like_model():
    # Scaled dot-product attention with a GELU: int8 BATCH_MATMUL x2, SOFTMAX, GELU.
    inputs = keras.Input((8, 16), name="tokens")
    query = keras.layers.Dense(16, name="query")(inputs)
    key = keras.layers.Dense(16, name="key")(inputs)
    value = keras.layers.Dense(16, name="value")(inputs)
    scores = keras.ops.matmul(query, keras.ops.transpose(key, (0, 2, 1))) * 0.25
    weights = keras.layers.Softmax(name="attention")(scores)
    x = keras.ops.matmul(weights, value)
    x = keras.layers.Activation("gelu", name="gelu")(keras.layers.Dense(16, name="mlp")(x))
    return keras.Model(inputs, keras.layers.Dense(4, name="logits")(x))


def test_float_ops_put_int8_attention_and_gelu_on_xnnpack(caplog):
    model = _attention_like_model()
    data = np.random.default_rng(0).normal(size=(16, 8, 16)).astype("float32")
    logger = "keras_mobilenets.export.tflite"
    with caplog.at_level(logging.WARNING, logger=logger):
        plain = export.to_tflite(model, quantization="int8", representative_data=data,
                                 int8_rewrites=())
    slow = sorted({(row["op"], row["dtype"]) for row in export.non_delegated_ops(plain)})
    assert slow == [("BATCH_MATMUL", "int8"), ("GELU", "int8"), ("SOFTMAX", "int8")]
    (warning,) = [r.getMessage() for r in caplog.records if r.name == logger]
    assert "int8_rewrites=(*export.DEFAULT_REWRITES, 'float_ops')" in warning

    fast, counts = export.rewrite_int8_for_xnnpack(plain, rewrites=("float_ops",))
    assert counts == {"float_ops": 4}
    assert export.non_delegated_ops(fast) == []
    ops = export.op_histogram(fast)
    assert ops["DEQUANTIZE"] == 6 and ops["QUANTIZE"] == 4  # each matmul reads two inputs
    assert ops["BATCH_MATMUL"] == 2 and ops["SOFTMAX"] == 1 and ops["GELU"] == 1
    # The same file through to_tflite; both files give the same int8 outputs up to the
    # rounding of float32 instead of int8 arithmetic in those four ops.
    assert export.to_tflite(model, quantization="int8", representative_data=data,
                            int8_rewrites=("float_ops",)) == fast
    # With the default rewrites too, "float_ops" comes first: "batch_matmul" then finds
    # no int8 BATCH_MATMUL left to change.
    assert export.to_tflite(model, quantization="int8", representative_data=data,
                            int8_rewrites=(*export.DEFAULT_REWRITES, "float_ops")) == fast
    step = export.LiteRTModel(plain).output_details[0]["quantization"][0]
    expected = export.LiteRTModel(plain).predict(data[:4])
    np.testing.assert_allclose(export.LiteRTModel(fast).predict(data[:4]), expected,
                               atol=3 * step)


def test_batch_matmul_rewrite_puts_int8_attention_on_xnnpack_integer_only():
    model = _attention_like_model()
    data = np.random.default_rng(0).normal(size=(16, 8, 16)).astype("float32")
    plain = export.to_tflite(model, quantization="int8", representative_data=data,
                             int8_rewrites=())
    plain_runner = export.LiteRTModel(plain)
    tensors = {t["index"]: t for t in plain_runner._interpreter.get_tensor_details()}
    zero_points = [tensors[op["inputs"][1]]["quantization"][1]
                   for op in plain_runner._interpreter._get_ops_details()
                   if op["op_name"] == "BATCH_MATMUL"]
    # queries x keys (keys transposed) and weights x values; the keys' and values'
    # calibrated ranges are not symmetric, and XNNPACK leaves both products alone.
    assert len(zero_points) == 2 and all(zero_points)
    assert [row["op"] for row in export.non_delegated_ops(plain)].count("BATCH_MATMUL") == 2
    rewritten, counts = export.rewrite_int8_for_xnnpack(plain, rewrites=("batch_matmul",))
    assert counts == {"batch_matmul": 2}
    # The default file is this one: still integer-only, only GELU and SOFTMAX left over.
    default = export.to_tflite(model, quantization="int8", representative_data=data)
    assert default == rewritten
    assert sorted((row["op"], row["dtype"]) for row in export.non_delegated_ops(default)) == [
        ("GELU", "int8"), ("SOFTMAX", "int8")
    ]
    before, after = export.op_histogram(plain), export.op_histogram(default)
    assert after["QUANTIZE"] == before.get("QUANTIZE", 0) + 2  # int8 -> int8, one per matmul
    runner = export.LiteRTModel(default)
    tensors = {t["index"]: t for t in runner._interpreter.get_tensor_details()}
    for op in runner._interpreter._get_ops_details():
        if op["op_name"] == "BATCH_MATMUL":
            rhs = tensors[op["inputs"][1]]
            assert rhs["dtype"] == np.int8 and rhs["quantization"][1] == 0
    # One more int8 rounding of the right-hand sides: the outputs stay a few int8 steps
    # from the plain file's and no further from the float model's than they are.
    images = data[:8]
    expected = np.asarray(model(images))
    plain_out = plain_runner.predict(images)
    out = runner.predict(images)
    step = runner.output_details[0]["quantization"][0]
    np.testing.assert_allclose(out, plain_out, atol=4 * step)
    assert np.abs(out - expected).mean() < 1.25 * np.abs(plain_out - expected).mean() + step


def _layer_scaled_residual(factor):
    """``x + factor * conv(x)``, the factor a 1x1 depthwise convolution (as MobileNetV4's
    layer scale)."""
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    branch = keras.layers.Conv2D(8, 3, padding="same", name="branch")(x)
    scale = keras.layers.DepthwiseConv2D(1, use_bias=False, name="layer_scale")
    branch = scale(branch)
    scale.set_weights([np.full((1, 1, 8, 1), factor, "float32")])
    return keras.Model(inputs, keras.layers.Add(name="add")([x, branch]))


def test_fresh_layer_scale_keeps_the_int8_residual_add_off_xnnpack():
    # A fresh MobileNetV4 hybrid's layer scales are 1e-5: the ADD's scaled input then has
    # a quantization scale ~1e-5 of the output's, outside what XNNPACK's int8 ADD takes,
    # so it runs on LiteRT's builtin kernel. Trained magnitudes are delegated.
    data = _images(batch=8)
    slow_ops = {}
    for factor in (1e-5, 0.3):
        flatbuffer = export.to_tflite(_layer_scaled_residual(factor), quantization="int8",
                                      representative_data=data)
        slow_ops[factor] = [row["op"] for row in export.non_delegated_ops(flatbuffer)]
    assert slow_ops == {1e-5: ["ADD"], 0.3: []}

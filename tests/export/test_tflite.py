"""TFLite export and the LiteRT runner: parity, fused ops, int8 kernels, a published model."""

import numpy as np
import pytest
import tensorflow as tf

import keras_mobilenets as km
from keras_mobilenets import export
from keras_mobilenets.training import reestimate_batch_norm
from tests.helpers import random_images, shared_data

pytest.importorskip("ai_edge_litert")

SHAPE = (96, 96, 3)


def _small(builder, **kwargs):
    """A small untrained model whose activations do not vanish with depth.

    With random kernels and unit moving variances the signal of a deep untrained net fades
    to nothing (MobileNetV3Small's logits end up the same for every image), which would make
    any parity test pass: the batch-norm statistics are re-estimated on random images.
    """
    model = builder(input_shape=SHAPE, weights=None, classes=10,
                    classifier_activation=None, **kwargs)
    reestimate_batch_norm(model, random_images(SHAPE, batch=8, seed=5))
    return model


@pytest.fixture(scope="module")
def v3small():
    """A small MobileNetV3Small, its reference logits and its float32 file (built once)."""
    model = _small(km.MobileNetV3Small, alpha=0.35)
    images = random_images(SHAPE, batch=8, seed=1)
    return {
        "model": model,
        "images": images,
        "logits": model.predict(images, verbose=0),
        "float32": export.to_tflite(model),
    }


@pytest.mark.slow
@pytest.mark.parametrize("builder, alpha", [
    (km.MobileNet, 0.25), (km.MobileNetV2, 0.35),
])
def test_float_parity_v1_v2(builder, alpha, tmp_path):
    model = _small(builder, alpha=alpha)
    images = random_images(SHAPE, batch=2)
    path = tmp_path / "nested" / "dir" / "model.tflite"
    flatbuffer = export.to_tflite(model, path)
    assert path.read_bytes() == flatbuffer
    runner = export.LiteRTModel(path)
    assert runner.input_shape == (1, *SHAPE)
    expected = model.predict(images, verbose=0)
    np.testing.assert_allclose(runner.predict(images), expected, rtol=0, atol=1e-4)
    ops = runner.op_histogram()
    # ReLU6 is fused into the convolutions, nothing runs it separately.
    assert not {"RELU6", "RELU", "MINIMUM", "MAXIMUM"} & set(ops)
    assert ops["DEPTHWISE_CONV_2D"] == (13 if builder is km.MobileNet else 17)


@pytest.mark.slow
def test_float_parity_v3small_and_fused_hard_swish(v3small):
    runner = export.LiteRTModel(v3small["float32"])
    actual = runner.predict(v3small["images"])
    assert actual.dtype == np.float32
    assert np.ptp(v3small["logits"], axis=0).max() > 0.1  # logits depend on the image
    np.testing.assert_allclose(actual, v3small["logits"], rtol=0, atol=1e-4)
    ops = runner.op_histogram()
    # 19 hard-swish layers in MobileNetV3Small, each one native HARD_SWISH op.
    assert ops["HARD_SWISH"] == 19
    assert not {"RELU6", "RELU", "MINIMUM", "MAXIMUM", "SHAPE", "PACK"} & set(ops)
    assert ops["CONV_2D"] == 43 and ops["DEPTHWISE_CONV_2D"] == 11
    assert "HARD_SWISH" in export.op_report(v3small["float32"])


@pytest.mark.slow
@pytest.mark.parametrize("quantization, tolerance", [("float16", 0.01), ("dynamic", 0.1)])
def test_float16_and_dynamic_run_and_are_close(v3small, quantization, tolerance):
    flatbuffer = export.to_tflite(v3small["model"], quantization=quantization)
    assert len(flatbuffer) < 0.6 * len(v3small["float32"])
    runner = export.LiteRTModel(flatbuffer)
    assert runner.input_dtype == np.float32
    logits = v3small["logits"]
    error = np.abs(runner.predict(v3small["images"]) - logits).max()
    assert error <= tolerance * np.abs(logits).max(), error


@pytest.mark.slow
def test_int8_ptq_is_full_integer_and_agrees_with_float(v3small):
    images = v3small["images"]
    flatbuffer = export.to_tflite(v3small["model"], quantization="int8",
                                  representative_data=tf.data.Dataset.from_tensor_slices(
                                      images).batch(4))
    runner = export.LiteRTModel(flatbuffer)
    assert runner.input_dtype == np.int8
    assert runner.output_details[0]["dtype"] == np.int8
    kernels = runner.tensor_types()
    assert len(kernels) == 43 + 11 + 0  # the top is a 1x1 conv in MobileNetV3
    for row in kernels:
        assert (row["input"], row["weights"], row["output"]) == ("INT8", "INT8", "INT8"), row
    # The default int8 file has no HARD_SWISH left: each became int8 MUL, ADD, MUL.
    assert "HARD_SWISH" not in runner.op_histogram()
    float_logits = v3small["logits"]
    int8_logits = runner.predict(images)  # quantizes the float images, dequantizes logits
    assert int8_logits.dtype == np.float32
    correlation = np.corrcoef(int8_logits.ravel(), float_logits.ravel())[0, 1]
    assert correlation > 0.9, correlation


def test_int8_io_dtypes_and_errors(v3small):
    model = v3small["model"]
    with pytest.raises(ValueError, match=r"`quantization`.*'float16'.*'int4'"):
        export.to_tflite(model, quantization="int4")
    with pytest.raises(ValueError, match=r"`representative_data`.*None"):
        export.to_tflite(model, quantization="int8")
    with pytest.raises(ValueError, match=r"`io_dtype`.*uint8.*int16"):
        export.to_tflite(model, quantization="int8", representative_data=v3small["images"],
                         io_dtype="int16")
    with pytest.raises(ValueError, match=r"`io_dtype`.*quantization='int8'"):
        export.to_tflite(model, quantization="float16", io_dtype=tf.int8)
    with pytest.raises(TypeError, match="Keras"):
        export.to_tflite(object())


def test_unknown_spatial_size_names_the_fix():
    model = km.MobileNetV3Small(alpha=0.35, weights=None, classes=10)
    with pytest.raises(ValueError, match=r"fixed `input_shape`"):
        export.to_tflite(model)


def test_runner_rejects_wrong_shapes(v3small):
    runner = export.LiteRTModel(v3small["float32"])
    with pytest.raises(ValueError, match=r"`images` must hold images of shape \(H, W, C\) = "
                                         r"\(96, 96, 3\) .*got a batch of shape \(2, 64, 64"):
        runner.predict(np.zeros((2, 64, 64, 3), "float32"))
    latency = runner.latency(runs=5, warmup=1)
    assert 0 < latency.median_ms <= latency.p90_ms


def test_time_in_rounds_alternates_the_order_and_reads_per_round_ratios(v3small, monkeypatch):
    calls = []
    medians = iter([50.0, 50.0, 2.0, 1.0, 4.0, 2.0, 3.0, 6.0])  # warm-ups, then round by round

    def fake_latency(runner, runs, warmup, seed=0):
        calls.append((runner.model_content, runs, warmup))
        return export.Latency(median_ms=next(medians), p90_ms=0.0, runs=runs)

    monkeypatch.setattr(export.LiteRTModel, "latency", fake_latency)
    files = {"float32": v3small["float32"],
             "float16": export.to_tflite(v3small["model"], quantization="float16")}
    times = export.time_in_rounds(files, rounds=3, runs=7, warmup=2)
    # Warm-ups (2 runs each), then rounds in order float32, float16 / float16, float32 / ...
    order = [files["float32"], files["float16"]]
    assert [c[0] for c in calls] == order + order + order[::-1] + order
    assert [c[1:] for c in calls] == [(2, 0)] * 2 + [(7, 0)] * 6
    assert times.rounds == {"float32": (2.0, 2.0, 3.0), "float16": (1.0, 4.0, 6.0)}
    assert times.median_ms("float16") == 4.0
    assert times.spread_ms("float16") == export.Spread(4.0, 1.0, 6.0)
    # Per-round ratios 0.5, 2.0, 2.0: their median, not the ratio of the medians (2.0 / 2.0).
    assert times.ratio("float16", "float32") == export.Spread(2.0, 0.5, 2.0)
    assert times.ratio("float16", "float32").text() == "2.00 (0.50–2.00)"
    with pytest.raises(KeyError, match="no file named 'int8'"):
        times.ratio("int8", "float32")


@pytest.mark.parametrize("kwargs, message", [
    ({"rounds": 0}, "rounds"), ({"runs": 0}, "runs"), ({"warmup": -1}, "warmup"),
])
def test_time_in_rounds_names_a_bad_argument(v3small, kwargs, message):
    with pytest.raises(ValueError, match=message):
        export.time_in_rounds({"float32": v3small["float32"]}, **kwargs)
    with pytest.raises(ValueError, match="`files` must name at least one file"):
        export.time_in_rounds({})


def test_time_in_rounds_times_real_files_and_runners(v3small):
    runner = export.LiteRTModel(v3small["float32"], num_threads=1)
    times = export.time_in_rounds({"bytes": v3small["float32"], "runner": runner},
                                  num_threads=1, rounds=2, runs=3, warmup=1)
    assert all(len(values) == 2 and min(values) > 0 for values in times.rounds.values())
    assert times.ratio("runner", "bytes").low > 0


def test_compare_rows_get_latency_and_ratio_from_one_timing(v3small, tmp_path):
    from keras_mobilenets.export import compare

    path = tmp_path / "float32.tflite"
    path.write_bytes(v3small["float32"])
    rows = [compare.Row("Keras float", 0.5), compare.Row("a", 0.5), compare.Row("b", 0.5)]
    timed = compare.with_latency(rows, {"a": str(path), "b": str(path)}, reference="a",
                                 rounds=3, runs=2)
    assert timed[0] == rows[0]
    assert timed[1].latency_ms > 0 and timed[1].latency_ratio is None
    assert timed[2].latency_ms > 0 and 0 < timed[2].latency_ratio.low <= timed[2].latency_ratio.high
    table = compare.format_table(timed)
    assert table.splitlines()[0].endswith("vs float32")
    assert timed[2].latency_ratio.text() in table.splitlines()[3]
    with pytest.raises(ValueError, match="`reference` must name one of the timed files"):
        compare.with_latency(rows, {"a": str(path)}, reference="float32")


def test_published_uint8_mobilenet_v2_names_grace_hopper():
    from PIL import Image

    model_path = shared_data("models/mobilenet_v2_1.0_224_quant.tflite")
    image_path = shared_data("images/grace_hopper.jpg")
    labels = shared_data("labels/imagenet_labels.txt").read_text().splitlines()
    runner = export.LiteRTModel(model_path)
    assert runner.input_shape == (1, 224, 224, 3) and runner.input_dtype == np.uint8
    image = np.asarray(Image.open(image_path).convert("RGB").resize((224, 224)), "uint8")
    probabilities = runner.predict(image[None])
    assert probabilities.shape == (1, 1001) and probabilities.dtype == np.float32
    assert labels[int(probabilities[0].argmax())] == "military uniform"
    assert runner.tensor_types()[0]["input"] == "UINT8"


@pytest.mark.slow
def test_tf_keras_qat_model_converts_to_int8_without_representative_data():
    tf_keras = pytest.importorskip("tf_keras")
    tfmot = pytest.importorskip("tensorflow_model_optimization")
    inputs = tf_keras.Input((32, 32, 3))
    x = tf_keras.layers.Conv2D(8, 3, strides=2, use_bias=False)(inputs)
    x = tf_keras.layers.BatchNormalization()(x)
    x = tf_keras.layers.ReLU(6.0)(x)
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    outputs = tf_keras.layers.Dense(4)(x)
    qat = tfmot.quantization.keras.quantize_model(tf_keras.Model(inputs, outputs))
    images = random_images((32, 32, 3), batch=4, low=-1.0, high=1.0)
    qat(images, training=True)  # sets the quantizers' ranges
    runner = export.LiteRTModel(export.to_tflite(qat, quantization="int8"))
    assert runner.input_dtype == np.int8
    kernels = runner.tensor_types()
    assert [row["op"] for row in kernels] == ["CONV_2D", "FULLY_CONNECTED"]
    assert all(row["input"] == row["weights"] == row["output"] == "INT8" for row in kernels)
    expected = qat.predict(images, verbose=0)
    np.testing.assert_allclose(runner.predict(images), expected, atol=0.1 * np.abs(expected).max())


@pytest.fixture(scope="module")
def v3small_int8_native(v3small):
    return export.to_tflite(
        v3small["model"], quantization="int8", representative_data=v3small["images"],
        int8_hard_swish="native",
    )


@pytest.mark.parametrize("mode", ["int8", "float"])
def test_hard_swish_rewrite_matches_the_native_int8_file(v3small, v3small_int8_native, mode):
    native = export.LiteRTModel(v3small_int8_native)
    assert native.op_histogram()["HARD_SWISH"] == 19
    flatbuffer, counts = export.rewrite_int8_hard_swish(v3small_int8_native, mode)
    assert counts["int8"] + counts["float"] == 19
    rewritten = export.LiteRTModel(flatbuffer)
    ops = rewritten.op_histogram()
    if mode == "int8":
        assert counts["int8"] == 19
        assert "HARD_SWISH" not in ops and "DEQUANTIZE" not in ops
        assert ops["MUL"] == native.op_histogram()["MUL"] + 2 * 19
    else:
        assert ops["HARD_SWISH"] == 19 and ops["DEQUANTIZE"] == 19
    # Same kernels with the same int8 tensors (op positions shift by the inserted ops).
    def kernels(runner):
        return [{k: v for k, v in row.items() if k != "index"} for row in runner.tensor_types()]

    assert kernels(rewritten) == kernels(native)
    # The rewrite rounds differently from the native int8 kernel, op by op (outputs move by
    # a few quantization steps); it must stay as close to the float model as native int8.
    step = native.output_details[0]["quantization"][0]
    images, float_logits = v3small["images"], v3small["logits"]
    native_logits, rewritten_logits = native.predict(images), rewritten.predict(images)
    native_error = np.abs(native_logits - float_logits).mean()
    rewritten_error = np.abs(rewritten_logits - float_logits).mean()
    assert rewritten_error <= 1.25 * native_error + step, (rewritten_error, native_error)
    agreement = np.mean(rewritten_logits.argmax(1) == native_logits.argmax(1))
    assert agreement >= 0.75, agreement


def test_hard_swish_rewrite_rejects_unknown_modes(v3small_int8_native, v3small):
    with pytest.raises(ValueError, match=r"`mode`.*'int8'.*'bf16'"):
        export.rewrite_int8_hard_swish(v3small_int8_native, "bf16")
    with pytest.raises(ValueError, match=r"`int8_hard_swish`.*'native'"):
        export.to_tflite(v3small["model"], quantization="int8",
                         representative_data=v3small["images"], int8_hard_swish="fast")

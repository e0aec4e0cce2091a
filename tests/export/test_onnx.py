"""ONNX export and the ONNX Runtime runner: parity with Keras, int8 kernels, errors, quiet.

The default suite builds one tiny MobileNetV3Small (32x32) and its float32 and
post-training int8 files once; every builder family, the heads and the QAT files are in
the end-to-end tier (``test_onnx_families.py``, ``test_onnx_int8.py``).
"""

import numpy as np
import pytest

import keras_mobilenets as km
from keras_mobilenets import export
from keras_mobilenets.training import reestimate_batch_norm
from tests.helpers import random_images

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

SHAPE = (32, 32, 3)


@pytest.fixture(scope="module")
def v3small(tmp_path_factory):
    """A tiny MobileNetV3Small, its logits, and its float32 and int8 files (built once)."""
    model = km.MobileNetV3Small(input_shape=SHAPE, weights=None, classes=10, alpha=0.35,
                                classifier_activation=None)
    # Untrained activations fade with depth: re-estimated batch norms keep them alive.
    reestimate_batch_norm(model, random_images(SHAPE, batch=8, seed=5))
    images = random_images(SHAPE, batch=8, seed=1)
    path = tmp_path_factory.mktemp("onnx") / "nested" / "float32.onnx"
    return {
        "model": model,
        "images": images,
        "logits": model.predict(images, verbose=0),
        "path": path,
        "float32": export.to_onnx(model, path),
        "int8": export.to_onnx(model, quantization="int8", calibration_data=images),
    }


def test_float32_file_matches_keras_and_is_written(v3small):
    assert v3small["path"].read_bytes() == v3small["float32"]
    runner = export.OnnxModel(v3small["path"])
    assert runner.input_shape == (None, *SHAPE)
    assert runner.input_details[0]["dtype"] == np.float32
    assert runner.output_details[0]["shape"] == (None, 10)
    logits = v3small["logits"]
    assert np.ptp(logits, axis=0).max() > 0.1  # the logits depend on the image
    actual = runner.predict(v3small["images"])
    assert actual.dtype == np.float32 and actual.shape == logits.shape
    np.testing.assert_allclose(actual, logits, rtol=1e-5, atol=1e-4)
    ops = runner.op_histogram()
    assert ops["Conv"] == 54 and not {"QuantizeLinear", "DequantizeLinear"} & set(ops)


def test_int8_file_holds_qdq_pairs_and_runs_integer_convolutions(v3small):
    runner = export.OnnxModel(v3small["int8"])
    ops = runner.op_histogram()
    assert ops["QuantizeLinear"] > 50 and ops["DequantizeLinear"] > 50
    optimized = runner.optimized_op_histogram()
    assert optimized["QLinearConv"] >= 20, optimized
    assert runner.input_details[0]["dtype"] == np.float32
    int8_logits = runner.predict(v3small["images"])
    assert int8_logits.dtype == np.float32
    correlation = np.corrcoef(int8_logits.ravel(), v3small["logits"].ravel())[0, 1]
    assert correlation > 0.9, correlation


def test_predict_runs_any_batch_size_and_latency_is_timed(v3small):
    runner = export.OnnxModel(v3small["float32"], num_threads=1)
    images = random_images(SHAPE, batch=70, seed=3)  # more than one chunk of MAX_BATCH
    expected = v3small["model"].predict(images, verbose=0)
    np.testing.assert_allclose(runner.predict(images), expected, rtol=1e-5, atol=1e-4)
    latency = runner.latency(runs=3, warmup=1)
    assert isinstance(latency, export.Latency)
    assert latency.runs == 3 and 0 < latency.median_ms <= latency.p90_ms
    with pytest.raises(ValueError, match=r"`runs` must be >= 1"):
        runner.latency(runs=0)


def test_export_prints_nothing(v3small, capfd):
    capfd.readouterr()
    export.to_onnx(v3small["model"], quantization="int8", calibration_data=v3small["images"])
    export.OnnxModel(v3small["float32"]).predict(v3small["images"][:1])
    out, err = capfd.readouterr()
    assert out == "" and err == "", (out, err)


def test_post_training_int8_export_does_not_need_sympy(v3small, monkeypatch):
    """sympy is not in the ``onnx`` extra: ONNX Runtime's symbolic shape inference
    (which imports it) is skipped, as fixed-size CNNs need only ONNX's own."""
    import sys

    for name in [name for name in sys.modules if name == "sympy" or name.startswith("sympy.")
                 or name.endswith("symbolic_shape_infer")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sympy", None)  # `import sympy` raises ImportError
    content = export.to_onnx(v3small["model"], quantization="int8",
                             calibration_data=v3small["images"][:2])
    assert export.OnnxModel(content).op_histogram()["QuantizeLinear"] > 50


def test_bad_export_arguments_name_the_argument(v3small):
    model = v3small["model"]
    with pytest.raises(ValueError, match=r"`quantization` must be one of \(None, 'int8'\), "
                                         r"got 'float16'"):
        export.to_onnx(model, quantization="float16")
    with pytest.raises(ValueError, match=r"`calibration_data` is required.*None"):
        export.to_onnx(model, quantization="int8")
    with pytest.raises(ValueError, match=r"`calibration_data` must hold images of shape "
                                         r"\(H, W, C\) = \(32, 32, 3\).*\(4, 64, 64, 3\)"):
        export.to_onnx(model, quantization="int8",
                       calibration_data=random_images((64, 64, 3), batch=4))
    with pytest.raises(ValueError, match=r"`opset`"):
        export.to_onnx(model, opset=9)
    with pytest.raises(TypeError, match=r"`model` must be a Keras 3 or tf_keras model, got str"):
        export.to_onnx("model.keras")


def test_runner_errors_name_the_file_and_the_images(v3small, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ONNX file .*missing\.onnx.* does not exist"):
        export.OnnxModel(tmp_path / "missing.onnx")
    text = tmp_path / "notes.onnx"
    text.write_text("not a model")
    with pytest.raises(ValueError, match=r"notes\.onnx' is not an ONNX model"):
        export.OnnxModel(text)
    with pytest.raises(ValueError, match=r"The bytes are not an ONNX model"):
        export.OnnxModel(b"\x00\x01")
    with pytest.raises(TypeError, match=r"`model` must be an \.onnx path or bytes, got int"):
        export.OnnxModel(3)
    runner = export.OnnxModel(v3small["float32"])
    with pytest.raises(ValueError, match=r"`images` must hold images of shape \(H, W, C\) = "
                                         r"\(32, 32, 3\).*\(2, 48, 48, 3\)"):
        runner.predict(random_images((48, 48, 3)))


def test_an_invalid_converted_file_names_the_ops_onnx_lacks():
    import onnx
    from onnx import helper

    from keras_mobilenets.export.onnx import _check_proto

    node = helper.make_node("PartitionedCall", ["x"], ["y"])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    with pytest.raises(ValueError, match=r"tf2onnx could not convert .*\(PartitionedCall\)"):
        _check_proto(proto, onnx)

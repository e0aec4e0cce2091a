"""int8 weights per output channel for QAT ONNX files: the grid found, the graph rewritten."""

import numpy as np
import pytest

from keras_mobilenets.export.onnx_int8_weights import grid_steps, int8_weights

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import helper, numpy_helper  # noqa: E402


def test_grid_steps_recover_each_rows_step_exactly():
    rng = np.random.default_rng(0)
    # Per-tensor integers (|k| <= 127) times a per-row factor, as a depthwise kernel
    # fake-quantized per tensor and a folded batch norm give: rows whose largest integer
    # is below 127 too.
    integers = rng.integers(-127, 128, size=(6, 9))
    integers[:, 0] = np.where(integers[:, 0] == 0, 5, integers[:, 0])
    integers[2] = np.clip(integers[2], -40, 40)
    integers[2, 0] = 37
    factors = rng.uniform(0.01, 3.0, size=6) * 0.004
    rows = (integers * factors[:, None]).astype(np.float32)
    steps = grid_steps(rows)
    assert steps is not None
    recovered = rows / steps[:, None]
    np.testing.assert_allclose(recovered, np.round(recovered), atol=1e-3)
    # The integers found are the ones used, up to a common multiple per row.
    multiple = np.round(recovered[:, 0]) / integers[:, 0]
    np.testing.assert_array_equal(np.round(recovered), integers * multiple[:, None])
    assert np.all(np.abs(np.round(recovered)) <= 127)


def test_grid_steps_of_zero_rows_and_off_grid_rows():
    assert grid_steps(np.zeros((2, 4)))[0] == 1.0
    # Random floats lie on no grid of at most 127 levels: no steps, the weights stay float.
    assert grid_steps(np.random.default_rng(1).normal(size=(3, 64))) is None


def _conv_model(weights, depthwise=False):
    channels = weights.shape[0]
    conv = helper.make_node("Conv", ["x", "w"], ["y"], group=channels if depthwise else 1,
                            pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [conv], "conv",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 8, 6, 6])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, channels, 6, 6])],
        [numpy_helper.from_array(weights, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])


def _run(proto, x):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("depthwise", [False, True], ids=["conv", "depthwise"])
def test_on_grid_weights_become_int8_and_compute_the_same(depthwise):
    rng = np.random.default_rng(2)
    shape = (8, 1, 3, 3) if depthwise else (8, 8, 3, 3)
    weights = (rng.integers(-127, 128, size=shape)
               * rng.uniform(1e-3, 1e-2, size=(8, 1, 1, 1))).astype(np.float32)
    x = rng.normal(size=(1, 8, 6, 6)).astype(np.float32)
    expected = _run(_conv_model(weights, depthwise), x)
    proto = int8_weights(_conv_model(weights, depthwise))
    onnx.checker.check_model(proto)
    stored = {tensor.name: numpy_helper.to_array(tensor) for tensor in proto.graph.initializer}
    assert stored["w/int8"].dtype == np.int8 and stored["w/int8"].shape == shape
    assert stored["w/scale"].shape == (8,)
    assert [node.op_type for node in proto.graph.node] == ["DequantizeLinear", "Conv"]
    np.testing.assert_allclose(_run(proto, x), expected, rtol=1e-5, atol=1e-5)


def test_off_grid_weights_stay_float32():
    weights = np.random.default_rng(3).normal(size=(8, 8, 3, 3)).astype(np.float32)
    proto = int8_weights(_conv_model(weights))
    assert [node.op_type for node in proto.graph.node] == ["Conv"]
    assert numpy_helper.to_array(proto.graph.initializer[0]).dtype == np.float32

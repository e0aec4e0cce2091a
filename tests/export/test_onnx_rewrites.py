"""export.onnx_rewrites: the rewritten files compute what tf2onnx's files compute, and ONNX
Runtime runs them with fewer float32 ops.

"Compute" is checked with ONNX Runtime's graph optimizations off (each op as written, QDQ
pairs as float32 rounding), on files of random-weight models (batch norms re-estimated;
QAT models calibrated, not trained) written by ``to_onnx`` with the rewrites and without.
"""

import keras
import numpy as np
import pytest

import keras_mobilenets as km
from keras_mobilenets import export
from keras_mobilenets.export import onnx as onnx_export
from keras_mobilenets.export import onnx_rewrites
from keras_mobilenets.training import reestimate_batch_norm

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

SIZE = 64


def _files(model, **kwargs):
    """(tf2onnx's file, the rewritten file) of ``model`` (float32 or QAT)."""
    rewritten = export.to_onnx(model, **kwargs)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(onnx_export, "_rewrite_for_onnx_runtime", lambda *args: None)
        return export.to_onnx(model, **kwargs), rewritten


def _run_as_written(content, images):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(content, options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: images})[0]


def _ops(content):
    return [node.op_type for node in onnx.load_from_string(content).graph.node]


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (8, SIZE, SIZE, 3)).astype("float32")


def _model(builder, images, **kwargs):
    keras.utils.set_random_seed(0)
    model = builder(input_shape=(SIZE, SIZE, 3), weights=None, classes=5,
                    classifier_activation=None, **kwargs)
    reestimate_batch_norm(model, images)
    return model


def _qat(model, images):
    pytest.importorskip("tensorflow_model_optimization")
    from keras_mobilenets import quantization

    return quantization.quantize_model(model, calibration_data=images)


@pytest.fixture(scope="module")
def shufflenet_v2(images):
    return _model(km.ShuffleNetV2, images, scale=0.5)


@pytest.fixture(scope="module")
def mobilenet_v3(images):
    return _model(km.MobileNetV3Small, images, alpha=0.75, dropout_rate=0.0)


def test_float_shufflenet_shuffles_are_channels_first_and_exact(shufflenet_v2, images):
    plain, rewritten = _files(shufflenet_v2)
    np.testing.assert_array_equal(_run_as_written(rewritten, images),
                                  _run_as_written(plain, images))
    shuffles = sum(isinstance(layer, km.layers.ChannelShuffle) for layer in shufflenet_v2.layers)
    assert shuffles == 16
    # Each shuffle's channels-last 5-D transpose became a channels-first one.
    perms = [list(a.ints) for node in onnx.load_from_string(rewritten).graph.node
             if node.op_type == "Transpose" for a in node.attribute]
    assert perms.count([0, 2, 1, 3, 4]) == shuffles and [0, 1, 2, 4, 3] not in perms
    # ONNX Runtime cancels the transposes around them (measured: 64 -> 17).
    assert (export.OnnxModel(rewritten).optimized_op_histogram()["Transpose"]
            < export.OnnxModel(plain).optimized_op_histogram()["Transpose"] / 2)


def test_qat_shufflenet_runs_every_convolution_in_int8(shufflenet_v2, images):
    plain, rewritten = _files(_qat(shufflenet_v2, images), quantization="int8")
    np.testing.assert_array_equal(_run_as_written(rewritten, images),
                                  _run_as_written(plain, images))
    # tf2onnx's file left the 19 convolutions before a concatenation (no QuantizeLinear of
    # their own: ONNX Runtime fuses each with its ReLU) and the 4 after the stem's max
    # pooling or a split in float32.
    plain_ops = export.OnnxModel(plain).optimized_op_histogram()
    assert plain_ops["FusedConv"] + plain_ops["Conv"] == 23
    ops = export.OnnxModel(rewritten).optimized_op_histogram()
    assert ops["Conv"] + ops["FusedConv"] == 0
    assert ops["QLinearConv"] == _ops(rewritten).count("Conv") == 56
    assert ops["QLinearConcat"] == _ops(rewritten).count("Concat")
    # Only the input's QuantizeLinear and the logits' DequantizeLinear stay float32 work.
    assert ops["QuantizeLinear"] <= 1 and ops["DequantizeLinear"] <= 1


def test_hard_swishes_are_one_op_each(mobilenet_v3, images):
    plain, rewritten = _files(mobilenet_v3)
    np.testing.assert_allclose(_run_as_written(rewritten, images),
                               _run_as_written(plain, images), rtol=1e-5, atol=1e-5)
    hard_swishes = _ops(rewritten).count("HardSwish")
    assert hard_swishes == 19  # MobileNetV3Small: 8 of its 11 blocks, 3 convolutions
    assert _ops(plain).count("Clip") - _ops(rewritten).count("Clip") == hard_swishes
    # Below opset 14 ONNX has no HardSwish: the file keeps tf2onnx's ops.
    assert "HardSwish" not in _ops(export.to_onnx(mobilenet_v3, opset=13))


def test_qat_hard_swish_modes(mobilenet_v3, images):
    qat = _qat(mobilenet_v3, images)
    plain, exact = _files(qat, quantization="int8")
    reference = _run_as_written(plain, images)
    # "float" (default): the QAT file's values, each hard-swish one float32 op.
    np.testing.assert_allclose(_run_as_written(exact, images), reference, rtol=1e-5, atol=1e-5)
    assert _ops(exact).count("HardSwish") == 19
    # "int8": integer ops where ONNX Runtime dequantized and quantized around float32 ones.
    integer = export.to_onnx(qat, quantization="int8", int8_hard_swish="int8")
    float_ops = export.OnnxModel(exact).optimized_op_histogram()
    integer_ops = export.OnnxModel(integer).optimized_op_histogram()
    assert integer_ops["QLinearMul"] >= float_ops["QLinearMul"] + 19
    assert integer_ops["QuantizeLinear"] <= float_ops["QuantizeLinear"] - 19
    values = _run_as_written(integer, images)
    assert np.corrcoef(values.ravel(), reference.ravel())[0, 1] > 0.95
    with pytest.raises(ValueError, match="int8_hard_swish.*'float', 'int8'"):
        export.to_onnx(qat, quantization="int8", int8_hard_swish="fast")


def _pad_graph(pad_value, zero_point):
    """x -> QuantizeLinear(0.5, zero_point) -> DequantizeLinear -> Pad(pad_value) -> y."""
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    constants = [numpy_helper.from_array(np.array(0.5, np.float32), "scale"),
                 numpy_helper.from_array(np.array(zero_point, np.uint8), "zero"),
                 numpy_helper.from_array(np.array([0, 1, 0, 1], np.int64), "pads"),
                 numpy_helper.from_array(np.array(pad_value, np.float32), "value")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "scale", "zero"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["d"]),
             helper.make_node("Pad", ["d", "pads", "value"], ["y"])]
    graph = helper.make_graph(
        nodes, "pad", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 6])], constants)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("pad_value, moved", [(0.0, True), (1.5, True), (0.25, False)])
def test_pad_moves_after_the_dequantize_only_with_a_value_on_the_grid(pad_value, moved):
    proto = _pad_graph(pad_value, zero_point=3)
    plain = proto.SerializeToString()
    assert onnx_rewrites.dequantize_after_data_moves(proto) == int(moved)
    onnx.checker.check_model(proto)
    assert [n.op_type for n in proto.graph.node][-1] == ("DequantizeLinear" if moved else "Pad")
    x = np.array([[-1.0, 0.5, 2.0, 7.0]], np.float32)
    np.testing.assert_array_equal(_run_as_written(proto.SerializeToString(), x),
                                  _run_as_written(plain, x))

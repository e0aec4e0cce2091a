"""A QAT model's fake-quantized weights written into its ONNX file as int8 per output channel.

tf2onnx stores a quantization-aware model's weights as float32 constants: TensorFlow folds
each weight's fake quantization into the constant, and tf2onnx folds the batch norm that
follows a convolution into it too. ONNX Runtime then quantizes such float weights itself
when it loads the file (its ``WeightBiasQuantization`` optimizer), per tensor; with the
batch norms' per-channel factors folded in, that rounds the weights of depthwise
convolutions coarsely. Measured on shapes models at 32x32 (AMD EPYC, onnxruntime 1.32),
their int8 files agreed with the QAT models on 0.74 (MobileNetV2) and 0.705
(ShuffleNetV2) of held-out images; written as below, 0.83 and 0.835 (their int8 TFLite
files: 0.855 and 0.785).

Yet those float weights are still integers times one step per output channel: the QAT
model's weight grid (per channel, or per tensor for depthwise kernels) times the folded
batch norm's factor. ``int8_weights`` finds that step for each channel and writes the
integers as an int8 constant with a ``DequantizeLinear`` (its ``axis`` the output
channel), which ONNX Runtime fuses into its integer kernels as they are: the file
computes the QAT model's weights exactly, and is about a third of the size. Weights not
on such a grid (not quantized by the QAT model) stay float32.

Example:
    >>> proto = int8_weights(proto)  # a tf2onnx ModelProto of a QAT model
"""

import numpy as np

from keras_mobilenets.export._onnx import import_onnx_tool

#: Largest integer magnitude of a weight (symmetric int8 with narrow range, as tfmot's).
LEVELS = 127
#: How far (in steps) a weight may lie from its grid point and still count as on it:
#: float32 products of a grid point and a batch-norm factor are off by about 1e-5.
TOLERANCE = 1e-3
#: The weight input's output-channel axis, per op (Conv: OIHW; MatMul: (in, out)).
OUTPUT_AXIS = {"Conv": 0, "MatMul": 1}


def grid_steps(rows, levels=LEVELS, tolerance=TOLERANCE):
    """The largest step per row whose integer multiples (at most ``levels``) hold the row.

    Args:
        rows: 2-D float array, one output channel's weights per row.
        levels: Largest integer magnitude.
        tolerance: How far from an integer (in steps) a weight may be.

    Returns:
        A float64 array with one step per row (1.0 for an all-zero row), or None when some
        row lies on no such grid.

    Example:
        >>> grid_steps(np.array([[0.3, -0.1, 0.2]]))  # 3, -1 and 2 times 0.1
        array([0.1])
    """
    rows = np.asarray(rows, dtype=np.float64)
    top = np.abs(rows).max(axis=1)
    steps = np.where(top > 0, np.nan, 1.0)
    for level in range(levels, 0, -1):
        open_rows = np.isnan(steps)
        if not open_rows.any():
            break
        step = top[open_rows] / level
        scaled = rows[open_rows] / step[:, None]
        on_grid = np.abs(scaled - np.round(scaled)).max(axis=1) <= tolerance
        steps[np.flatnonzero(open_rows)[on_grid]] = step[on_grid]
    return None if np.isnan(steps).any() else steps


def int8_weights(proto):
    """Writes on-grid float weights of Conv and MatMul nodes as int8 + DequantizeLinear.

    Args:
        proto: An ``onnx.ModelProto`` (changed in place), e.g. tf2onnx's file of a QAT model.

    Returns:
        ``proto``, each Conv weight (and 2-D MatMul weight) that is a float32 constant used
        by that node only and lies on an int8 grid per output channel replaced by int8
        integers, their steps and a per-channel ``DequantizeLinear``.

    Example:
        >>> proto = int8_weights(onnx.load("qat.onnx"))
    """
    numpy_helper = import_onnx_tool("onnx.numpy_helper")
    helper = import_onnx_tool("onnx.helper")
    graph = proto.graph
    constants = {tensor.name: tensor for tensor in graph.initializer}
    uses = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    dequantize_nodes = []
    for node in graph.node:
        axis = OUTPUT_AXIS.get(node.op_type)
        name = node.input[1] if axis is not None and len(node.input) > 1 else None
        if name not in constants or uses[name] != 1:
            continue
        weights = numpy_helper.to_array(constants[name])
        if weights.dtype != np.float32 or weights.ndim != (4 if node.op_type == "Conv" else 2):
            continue
        steps = grid_steps(np.moveaxis(weights, axis, 0).reshape(weights.shape[axis], -1))
        if steps is None:
            continue
        shape = [1] * weights.ndim
        shape[axis] = -1
        integers = np.round(weights / steps.reshape(shape)).astype(np.int8)
        graph.initializer.remove(constants[name])
        graph.initializer.extend([
            numpy_helper.from_array(integers, f"{name}/int8"),
            numpy_helper.from_array(steps.astype(np.float32), f"{name}/scale"),
            numpy_helper.from_array(np.zeros(len(steps), np.int8), f"{name}/zero_point"),
        ])
        dequantize_nodes.append(helper.make_node(
            "DequantizeLinear", [f"{name}/int8", f"{name}/scale", f"{name}/zero_point"],
            [name], name=f"{name}/dequantize", axis=axis))
    nodes = dequantize_nodes + list(graph.node)  # constants first: the graph stays sorted
    del graph.node[:]
    graph.node.extend(nodes)
    return proto

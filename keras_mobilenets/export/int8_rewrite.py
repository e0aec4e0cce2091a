"""Rewrites of converted int8 files so that XNNPACK runs ShuffleNet V1 and MobileNetV4 fast.

Why: a full-int8 ShuffleNet V1 ran 1.9-3.3x slower than its float32 file. Its grouped 1x1
convolutions are slow in XNNPACK's int8 kernels, every channel shuffle costs a
RESHAPE -> TRANSPOSE -> RESHAPE, and XNNPACK does not delegate int8 AVERAGE_POOL_2D (the
strided units' shortcut) nor a standalone int8 RELU (after their concatenation), so those
run on the builtin kernels between delegated pieces (``export.op_report`` lists them).

How (all exact up to int8 rounding; ``benchmarks/int8_speed.py`` measures the result):

- ``fold_channel_shuffles``: a CONV_2D whose output only feeds a channel shuffle
  (RESHAPE to ``(..., g, n)``, TRANSPOSE of the last two axes, RESHAPE back) becomes one
  CONV_2D writing the shuffled channels directly: its output channels (filter rows, bias,
  per-channel scales) are permuted, and a grouped filter is written out as the equivalent
  dense one, zeros outside the diagonal blocks (zeros quantize exactly; each output
  channel keeps its scale).
- ``densify_grouped_convs`` (not by default): every other int8 grouped CONV_2D becomes
  the same dense convolution. XNNPACK's int8 dense 1x1 convolution is faster than its
  grouped one at ShuffleNet's widths despite g times the multiply-adds (small groups leave
  its int8 kernels mostly requantizing), but in whole models the gain is a few percent for
  a much larger file.
- ``average_pools_as_depthwise``: an int8 AVERAGE_POOL_2D with "VALID" padding and a
  window of at most ``MAX_POOL_AREA`` pixels is a DEPTHWISE_CONV_2D whose weights are all
  ``1 / (rows * cols)`` (int8 127, scale ``1 / (127 * rows * cols)``, zero bias). Larger
  windows (e.g. LR-ASPP's pooled gate) are left alone.
- ``relus_as_adds``: a standalone int8 RELU is an ADD of zero with a fused RELU.
- ``batch_matmuls_for_xnnpack``: XNNPACK takes an int8 BATCH_MATMUL only when its
  right-hand side has zero point 0, as weights have; in MobileNetV4's attention the keys
  and values are activations with asymmetric ranges, so its BATCH_MATMULs ran on LiteRT's
  builtin kernel (a learnt Hybrid-Medium's int8 file at 256x256 took 1.21x its float32
  file's time, 0.45x with this rewrite; 2 threads). Each such right-hand side is
  requantized to zero point 0 by an int8 -> int8 QUANTIZE (its scale grows by ``max(128 +
  z, 127 - z) / 127`` for zero point z, 1.2 for the largest z of that file, 25: one more
  rounding; the file's outputs stayed as close to the float model's as before).
- ``float_ops_off_xnnpack`` (not by default: the file stops being integer-only): every
  int8 op of ``FLOAT_OPS`` (BATCH_MATMUL, SOFTMAX and GELU, which XNNPACK does not take in
  int8: MobileNetV4's attention and GELU) runs in float32 between a DEQUANTIZE of its
  inputs and a QUANTIZE to its int8 output, as ``int8_hard_swish="float"`` does for
  hard-swish, so that XNNPACK delegates it.
- ``float_stem`` (not by default: the file stops being integer-only): the first int8
  CONV_2D (the stem, 3 input channels, XNNPACK's slowest int8 convolution on x86 without
  VNNI: docs/speed.md's profile) runs in float32 between a DEQUANTIZE and a QUANTIZE.

Example:
    >>> fast, counts = rewrite_int8_for_xnnpack(int8_bytes)
    >>> counts
    {'shuffle': 15, 'average_pool': 3, 'relu': 3, 'batch_matmul': 0}
"""

import numpy as np

from keras_mobilenets.export._litert import import_litert
from keras_mobilenets.export.rewrite import _Graph

REWRITES = ("shuffle", "grouped", "average_pool", "relu", "float_ops", "batch_matmul",
            "float_stem")
# Applied in this order: "float_ops" first, so the BATCH_MATMULs it runs in float32 are left
# to it.
# "grouped" is left out by default: measured on ShuffleNet 1.0x g=8 (224, 1 thread) it saves
# 3% of the time (12.3 -> 11.9 ms) for a 54% larger file (5.8 -> 9.0 MB).
DEFAULT_REWRITES = ("shuffle", "average_pool", "relu", "batch_matmul")
# Largest AVERAGE_POOL_2D window (rows * cols) written as a depthwise convolution.
MAX_POOL_AREA = 25
# int8 ops that XNNPACK does not delegate and "float_ops" runs in float32 (op, version).
FLOAT_OPS = {"BATCH_MATMUL": 1, "SOFTMAX": 1, "GELU": 1}


class _Model:
    """A parsed file with what the rewrites need: tensors, buffers, producers, consumers."""

    def __init__(self, flatbuffer):
        self.schema = import_litert("schema_py_generated")
        self.utils = import_litert("tools.flatbuffer_utils")
        self.model = self.utils.read_model_from_bytearray(bytearray(flatbuffer))
        self.subgraph = self.model.subgraphs[0]
        self.graph = _Graph(self.model, self.subgraph, self.schema)

    def builtin(self, operator):
        code = self.model.operatorCodes[operator.opcodeIndex]
        return max(code.builtinCode, code.deprecatedBuiltinCode)

    def is_op(self, operator, name):
        return self.builtin(operator) == getattr(self.schema.BuiltinOperator, name)

    def tensor(self, index):
        return self.subgraph.tensors[index]

    def consumers(self):
        found = {}
        for operator in self.subgraph.operators:
            for index in operator.inputs:
                if index >= 0:
                    found.setdefault(index, []).append(operator)
        return found

    def data(self, index, dtype):
        tensor = self.tensor(index)
        raw = self.model.buffers[tensor.buffer].data
        if raw is None:
            return None
        return np.frombuffer(np.asarray(raw, np.uint8).tobytes(), dtype).reshape(tensor.shape)

    def is_int8(self, index):
        return self.tensor(index).type == self.schema.TensorType.INT8

    def quantization(self, scales, zero_points, dimension):
        params = self.schema.QuantizationParametersT()
        params.scale = [float(s) for s in scales]
        params.zeroPoint = [int(z) for z in zero_points]
        params.quantizedDimension = int(dimension)
        return params

    def serialize(self):
        """The file's bytes, without the data of buffers no op reads any more."""
        used = {i for op in self.subgraph.operators for i in (*op.inputs, *op.outputs)}
        used.update(self.subgraph.inputs)
        used.update(self.subgraph.outputs)
        live = {self.tensor(i).buffer for i in used if i >= 0}
        for index, tensor in enumerate(self.subgraph.tensors):
            if index not in used and tensor.buffer not in live and tensor.buffer > 0:
                self.model.buffers[tensor.buffer].data = None
        return bytes(self.utils.convert_object_to_bytearray(self.model))


def _same_quantization(a, b):
    qa, qb = a.quantization, b.quantization
    return (
        qa is not None and qb is not None
        and list(qa.scale) == list(qb.scale) and list(qa.zeroPoint) == list(qb.zeroPoint)
    )


def _grouped_int8_conv(m, operator):
    """(input channels, groups) of an int8 1x1 CONV_2D, or None if it is anything else."""
    if not m.is_op(operator, "CONV_2D") or len(operator.inputs) < 2:
        return None
    x_index, w_index = operator.inputs[0], operator.inputs[1]
    if not (m.is_int8(x_index) and m.is_int8(w_index)):
        return None
    weights = m.tensor(w_index)
    if weights.shape is None or list(weights.shape[1:3]) != [1, 1]:
        return None
    channels, group_channels = m.tensor(x_index).shape[-1], weights.shape[-1]
    if m.data(w_index, np.int8) is None or channels % group_channels:
        return None
    return channels, channels // group_channels


def _shuffle_chain(m, consumers, output):
    """The (reshape, transpose, reshape) ops of a channel shuffle reading ``output``."""
    chain, index = [], output
    for name in ("RESHAPE", "TRANSPOSE", "RESHAPE"):
        readers = consumers.get(index, [])
        if len(readers) != 1 or not m.is_op(readers[0], name) or index in m.subgraph.outputs:
            return None
        chain.append(readers[0])
        index = readers[0].outputs[0]
    split, final = m.tensor(chain[0].outputs[0]), m.tensor(chain[2].outputs[0])
    perm = m.data(chain[1].inputs[1], np.int32)
    source = m.tensor(output)
    if (
        len(split.shape) != 5 or perm is None or list(perm) != [0, 1, 2, 4, 3]
        or list(final.shape) != list(source.shape)
        or list(split.shape[:3]) != list(source.shape[:3])
        or not _same_quantization(source, final)
    ):
        return None
    return chain, int(split.shape[3])


def _dense_conv(m, operator, channels, groups, order):
    """Rewrites ``operator`` (grouped 1x1 int8 CONV_2D) as dense, output channels ``order``."""
    x_index, w_index = operator.inputs[0], operator.inputs[1]
    weights = m.data(w_index, np.int8)
    filters, group_in = weights.shape[0], weights.shape[-1]
    dense = np.zeros((filters, 1, 1, channels), np.int8)
    per_group = filters // groups
    for o in range(filters):
        start = (o // per_group) * group_in
        dense[o, :, :, start:start + group_in] = weights[o]
    old = m.tensor(w_index)
    scales = np.asarray(old.quantization.scale)
    zero_points = np.asarray(old.quantization.zeroPoint)
    if len(scales) == filters:
        scales, zero_points = scales[order], zero_points[order]
    new_weights = m.graph.tensor(
        f"{_name(old)}/dense", dense.shape, m.schema.TensorType.INT8,
        m.quantization(scales, zero_points, 0), dense[order],
    )
    inputs = [x_index, new_weights]
    if len(operator.inputs) > 2 and operator.inputs[2] >= 0:
        bias_index = operator.inputs[2]
        bias = m.tensor(bias_index)
        values = m.data(bias_index, np.int32)
        quant = bias.quantization
        bias_scales = np.asarray(quant.scale)
        bias_zeros = np.asarray(quant.zeroPoint)
        if len(bias_scales) == filters:
            bias_scales, bias_zeros = bias_scales[order], bias_zeros[order]
        inputs.append(m.graph.tensor(
            f"{_name(bias)}/dense", bias.shape, bias.type,
            m.quantization(bias_scales, bias_zeros, 0), values[order],
        ))
    operator.inputs = inputs


def _name(tensor):
    return tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)


def fold_channel_shuffles(m):
    """Folds each shuffle that follows an int8 1x1 CONV_2D into it; returns the count."""
    consumers = m.consumers()
    removed, count = set(), 0
    for operator in list(m.subgraph.operators):
        conv = _grouped_int8_conv(m, operator)
        if conv is None:
            continue
        found = _shuffle_chain(m, consumers, operator.outputs[0])
        if found is None:
            continue
        chain, groups = found
        filters = m.tensor(operator.outputs[0]).shape[-1]
        per_group = filters // groups
        # Shuffled channel a * groups + b is channel b * per_group + a of the conv's output.
        order = np.array([(p % groups) * per_group + p // groups for p in range(filters)])
        _dense_conv(m, operator, *conv, order)
        operator.outputs = [chain[2].outputs[0]]
        removed.update(id(op) for op in chain)
        count += 1
    m.subgraph.operators = [op for op in m.subgraph.operators if id(op) not in removed]
    return count


def densify_grouped_convs(m):
    """Writes every remaining int8 grouped 1x1 CONV_2D as a dense one; returns the count."""
    count = 0
    for operator in m.subgraph.operators:
        conv = _grouped_int8_conv(m, operator)
        if conv is None or conv[1] == 1:
            continue
        filters = m.tensor(operator.outputs[0]).shape[-1]
        _dense_conv(m, operator, *conv, np.arange(filters))
        count += 1
    return count


def average_pools_as_depthwise(m):
    """Rewrites int8 "VALID" AVERAGE_POOL_2D ops as DEPTHWISE_CONV_2D; returns the count."""
    schema, count = m.schema, 0
    for operator in m.subgraph.operators:
        if not m.is_op(operator, "AVERAGE_POOL_2D") or not m.is_int8(operator.inputs[0]):
            continue
        pool = operator.builtinOptions
        x = m.tensor(operator.inputs[0])
        area = pool.filterHeight * pool.filterWidth
        if pool.padding != schema.Padding.VALID or x.quantization is None or (
            area > MAX_POOL_AREA
        ):
            continue
        rows, cols, channels = pool.filterHeight, pool.filterWidth, x.shape[-1]
        weight_scale = 1.0 / (127.0 * rows * cols)
        name = f"{_name(x)}/average_pool"
        weights = m.graph.tensor(
            f"{name}/weights", (1, rows, cols, channels), schema.TensorType.INT8,
            m.quantization([weight_scale] * channels, [0] * channels, 3),
            np.full((1, rows, cols, channels), 127, np.int8),
        )
        bias_scale = x.quantization.scale[0] * weight_scale
        bias = m.graph.tensor(
            f"{name}/bias", (channels,), schema.TensorType.INT32,
            m.quantization([bias_scale] * channels, [0] * channels, 0),
            np.zeros(channels, np.int32),
        )
        options = schema.DepthwiseConv2DOptionsT()
        options.padding, options.strideH, options.strideW = pool.padding, pool.strideH, pool.strideW
        options.depthMultiplier, options.dilationHFactor, options.dilationWFactor = 1, 1, 1
        options.fusedActivationFunction = pool.fusedActivationFunction
        operator.opcodeIndex = m.graph.opcode(schema.BuiltinOperator.DEPTHWISE_CONV_2D, 3)
        operator.inputs = [operator.inputs[0], weights, bias]
        operator.builtinOptionsType = schema.BuiltinOptions.DepthwiseConv2DOptions
        operator.builtinOptions = options
        count += 1
    return count


def relus_as_adds(m):
    """Rewrites standalone int8 RELU ops as ADD(x, 0) with a fused RELU; returns the count."""
    schema, count = m.schema, 0
    for operator in m.subgraph.operators:
        if not m.is_op(operator, "RELU") or not m.is_int8(operator.inputs[0]):
            continue
        x = m.tensor(operator.inputs[0])
        zero = m.graph.tensor(
            f"{_name(x)}/zero", [], schema.TensorType.INT8,
            m.quantization([x.quantization.scale[0]], [0], 0), np.array([0], np.int8),
        )
        added = m.graph.op(schema.BuiltinOperator.ADD, 2, [operator.inputs[0], zero],
                           operator.outputs, "AddOptions", schema.ActivationFunctionType.RELU)
        operator.opcodeIndex, operator.inputs = added.opcodeIndex, added.inputs
        operator.builtinOptionsType = added.builtinOptionsType
        operator.builtinOptions = added.builtinOptions
        count += 1
    return count


def batch_matmuls_for_xnnpack(m):
    """Requantizes each int8 BATCH_MATMUL's right-hand side to zero point 0, which XNNPACK
    needs to take the op; returns the count.

    The right-hand side's scale grows to cover the same range: ``max(128 + z, 127 - z) /
    127`` times the old one for zero point z.
    """
    schema, count, operators = m.schema, 0, []
    for operator in m.subgraph.operators:
        if not m.is_op(operator, "BATCH_MATMUL") or not all(
            m.is_int8(index) for index in (*operator.inputs, *operator.outputs)
        ):
            operators.append(operator)
            continue
        rhs_index = operator.inputs[1]
        rhs = m.tensor(rhs_index)
        scale, zero_point = rhs.quantization.scale[0], rhs.quantization.zeroPoint[0]
        if zero_point != 0:
            wider = scale * max(128 + zero_point, 127 - zero_point) / 127.0
            symmetric = m.graph.tensor(f"{_name(rhs)}/symmetric", rhs.shape,
                                       schema.TensorType.INT8, m.quantization([wider], [0], 0))
            operators.append(m.graph.op(schema.BuiltinOperator.QUANTIZE, 2, [rhs_index],
                                        [symmetric]))
            operator.inputs = [operator.inputs[0], symmetric, *operator.inputs[2:]]
            count += 1
        operators.append(operator)
    m.subgraph.operators = operators
    return count


def float_ops_off_xnnpack(m):
    """Runs every int8 op of ``FLOAT_OPS`` in float32 (dequantize, op, quantize); returns
    the count."""
    schema, count, operators = m.schema, 0, []
    versions = {getattr(schema.BuiltinOperator, name): version
                for name, version in FLOAT_OPS.items()}
    for operator in m.subgraph.operators:
        builtin = m.builtin(operator)
        if builtin not in versions or not m.is_int8(operator.outputs[0]):
            operators.append(operator)
            continue
        inputs = []
        for index in operator.inputs:
            if index < 0 or not m.is_int8(index):
                inputs.append(index)
                continue
            x = m.tensor(index)
            inputs.append(m.graph.tensor(f"{_name(x)}/float", x.shape, schema.TensorType.FLOAT32))
            operators.append(m.graph.op(schema.BuiltinOperator.DEQUANTIZE, 2, [index],
                                        [inputs[-1]]))
        y_index = operator.outputs[0]
        y = m.tensor(y_index)
        y_float = m.graph.tensor(f"{_name(y)}/float", y.shape, schema.TensorType.FLOAT32)
        operator.opcodeIndex = m.graph.opcode(builtin, versions[builtin])
        operator.inputs, operator.outputs = inputs, [y_float]
        operators.append(operator)
        operators.append(m.graph.op(schema.BuiltinOperator.QUANTIZE, 2, [y_float], [y_index]))
        count += 1
    m.subgraph.operators = operators
    return count


def float_stem(m):
    """Runs the first int8 CONV_2D (the stem: few input channels, where XNNPACK's int8
    kernel is slowest) in float32: dequantize, CONV_2D with dequantized weights and bias,
    quantize. Returns the count (0 or 1)."""
    schema = m.schema
    operators = m.subgraph.operators
    position = next((i for i, op in enumerate(operators)
                     if m.is_op(op, "CONV_2D") and m.is_int8(op.inputs[0])), None)
    if position is None:
        return 0
    stem = operators[position]
    x_index, w_index = stem.inputs[0], stem.inputs[1]
    x, w, y_index = m.tensor(x_index), m.tensor(w_index), stem.outputs[0]
    w_scales = np.asarray(w.quantization.scale, np.float32)
    weights = m.data(w_index, np.int8).astype(np.float32)
    weights *= w_scales.reshape(-1, *([1] * (weights.ndim - 1)))
    float32 = schema.TensorType.FLOAT32
    inputs = [m.graph.tensor(f"{_name(x)}/float", x.shape, float32),
              m.graph.tensor(f"{_name(w)}/float", w.shape, float32, data=weights)]
    if len(stem.inputs) > 2 and stem.inputs[2] >= 0:
        bias = m.tensor(stem.inputs[2])
        values = m.data(stem.inputs[2], np.int32).astype(np.float32)
        values *= np.asarray(bias.quantization.scale, np.float32)
        inputs.append(m.graph.tensor(f"{_name(bias)}/float", bias.shape, float32,
                                     data=values))
    y = m.tensor(y_index)
    y_float = m.graph.tensor(f"{_name(y)}/float", y.shape, float32)
    dequantize = m.graph.op(schema.BuiltinOperator.DEQUANTIZE, 2, [x_index], [inputs[0]])
    quantize = m.graph.op(schema.BuiltinOperator.QUANTIZE, 2, [y_float], [y_index])
    stem.opcodeIndex = m.graph.opcode(schema.BuiltinOperator.CONV_2D, 1)
    stem.inputs, stem.outputs = inputs, [y_float]
    m.subgraph.operators = [*operators[:position], dequantize, stem, quantize,
                            *operators[position + 1:]]
    return 1


_STEPS = {
    "shuffle": fold_channel_shuffles,
    "grouped": densify_grouped_convs,
    "average_pool": average_pools_as_depthwise,
    "relu": relus_as_adds,
    "float_ops": float_ops_off_xnnpack,
    "batch_matmul": batch_matmuls_for_xnnpack,
    "float_stem": float_stem,
}


def rewrite_int8_for_xnnpack(flatbuffer, rewrites=DEFAULT_REWRITES):
    """Applies the int8 rewrites of this module to a TFLite file.

    Float ops are left as they are, so a float file comes back unchanged.

    Args:
        flatbuffer: The TFLite file as bytes.
        rewrites: Which rewrites to apply, a subset of ``REWRITES``: "shuffle"
            (``fold_channel_shuffles``), "grouped" (``densify_grouped_convs``),
            "average_pool", "relu", "batch_matmul" (``batch_matmuls_for_xnnpack``),
            "float_ops" (``float_ops_off_xnnpack``, applied before "batch_matmul") and
            "float_stem" (``float_stem``, last); by default ``DEFAULT_REWRITES`` (all but
            "grouped", "float_ops" and "float_stem").

    Returns:
        ``(new_flatbuffer, counts)``: the rewritten bytes and how many ops each rewrite
        changed, e.g. ``{"shuffle": 15, "average_pool": 3, "relu": 3, "batch_matmul": 0}``.

    Raises:
        ValueError: If ``rewrites`` names an unknown rewrite.

    Example:
        >>> fast, counts = rewrite_int8_for_xnnpack(int8_bytes, rewrites=("shuffle",))
    """
    unknown = [name for name in rewrites if name not in REWRITES]
    if isinstance(rewrites, str) or unknown:
        raise ValueError(
            f"`rewrites` must be a collection of {REWRITES}, got {rewrites!r}."
        )
    m = _Model(flatbuffer)
    counts = {name: _STEPS[name](m) for name in REWRITES if name in rewrites}
    if not any(counts.values()):
        return bytes(flatbuffer), counts
    return m.serialize(), counts

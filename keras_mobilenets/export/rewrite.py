"""Rewrites of converted int8 files that make MobileNetV3 fast on CPUs.

Why: the converter turns every hard-swish into one HARD_SWISH op (whatever Keras
formulation is used). XNNPACK, LiteRT's CPU delegate, runs HARD_SWISH only in float32, so
in a full-int8 file each int8 HARD_SWISH falls back to the builtin kernel (~30x slower
than float per element) and cuts the delegated graph into pieces: int8 MobileNetV3Small ran
~3x slower than its float32 file (as keras.applications' plain int8 conversions still do:
benchmarks/zoo_speed.py).

How: each int8 HARD_SWISH ``y = x * relu6(x + 3) / 6`` is replaced by ops XNNPACK runs:

- ``"int8"`` (pure integer, default):
  ``x6 = MUL(x, 1/6)`` (scale s_x / 6: the same integers), ``g = ADD(x6, 0.5)`` with a
  fused RELU and output scale 1/255, zero point -128 (so int8 saturation at 127 is the clip
  at 1.0), ``y = MUL(x, g)`` into the original output tensor.
- ``"float"``: ``DEQUANTIZE -> HARD_SWISH (float32) -> QUANTIZE``; not integer-only.

The "int8" rewrite keeps the file integer-only; where an op's scales fall outside XNNPACK's
int8 ADD/MUL limits (seen only in untrained models with vanishing activations) XNNPACK
leaves its new ops to the builtin kernels, which is logged. The tests check rewritten files
against the unrewritten ones (no further from the float model than native int8).
"""

import logging

import numpy as np

from keras_mobilenets.export._litert import import_litert

logger = logging.getLogger(__name__)

HARD_SWISH_MODES = ("int8", "float", "native")

# XNNPACK's accepted scale ratios for int8 ADD (input / output) and MUL (product / output).
_ADD_RATIO = (2.0**-10, 2.0**8)
_MUL_RATIO = (2.0**-16, 2.0**8)


class _Graph:
    """Helpers to append tensors, buffers and operator codes to one subgraph of a ModelT."""

    def __init__(self, model, subgraph, schema):
        self.model, self.subgraph, self.schema = model, subgraph, schema

    def opcode(self, builtin, version):
        for index, code in enumerate(self.model.operatorCodes):
            if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin and (
                code.version == version
            ):
                return index
        code = self.schema.OperatorCodeT()
        code.builtinCode = builtin
        code.deprecatedBuiltinCode = min(builtin, 127)
        code.version = version
        self.model.operatorCodes.append(code)
        return len(self.model.operatorCodes) - 1

    def quantization(self, scale, zero_point):
        params = self.schema.QuantizationParametersT()
        params.scale = [float(scale)]
        params.zeroPoint = [int(zero_point)]
        params.quantizedDimension = 0
        return params

    def tensor(self, name, shape, dtype, quantization=None, data=None):
        tensor = self.schema.TensorT()
        tensor.name = name
        tensor.shape = list(shape)
        tensor.type = dtype
        tensor.quantization = quantization
        tensor.buffer = 0
        if data is not None:
            buffer = self.schema.BufferT()
            buffer.data = np.frombuffer(np.asarray(data).tobytes(), np.uint8).copy()
            self.model.buffers.append(buffer)
            tensor.buffer = len(self.model.buffers) - 1
        self.subgraph.tensors.append(tensor)
        return len(self.subgraph.tensors) - 1

    def int8_constant(self, name, value):
        """A scalar int8 constant holding ``value`` exactly (q = 127)."""
        return self.tensor(
            name, [], self.schema.TensorType.INT8, self.quantization(value / 127.0, 0),
            np.array([127], np.int8),
        )

    def op(self, builtin, version, inputs, outputs, options=None, activation=None):
        operator = self.schema.OperatorT()
        operator.opcodeIndex = self.opcode(builtin, version)
        operator.inputs, operator.outputs = list(inputs), list(outputs)
        if options is not None:
            kind = getattr(self.schema.BuiltinOptions, options)
            params = getattr(self.schema, f"{options}T")()
            params.fusedActivationFunction = activation
            operator.builtinOptionsType, operator.builtinOptions = kind, params
        return operator


def _within(ratio, bounds):
    return bounds[0] <= ratio < bounds[1]


def _integer_fits_xnnpack(x_scale, y_scale):
    """Whether the three int8 ops of the "int8" rewrite are inside XNNPACK's scale limits."""
    x6_scale, gate_scale = x_scale / 6.0, 1.0 / 255.0
    return (
        _within((x_scale * (1.0 / 6.0 / 127.0)) / x6_scale, _MUL_RATIO)
        and _within(x6_scale / gate_scale, _ADD_RATIO)
        and _within((0.5 / 127.0) / gate_scale, _ADD_RATIO)
        and _within(x_scale * gate_scale / y_scale, _MUL_RATIO)
    )


def _integer_ops(graph, x_index, y_index, name):
    schema = graph.schema
    x = graph.subgraph.tensors[x_index]
    x_scale, x_zero = x.quantization.scale[0], x.quantization.zeroPoint[0]
    int8 = schema.TensorType.INT8
    sixth = graph.int8_constant(f"{name}/one_sixth", 1.0 / 6.0)
    half = graph.int8_constant(f"{name}/one_half", 0.5)
    x6 = graph.tensor(f"{name}/x_over_6", x.shape, int8, graph.quantization(x_scale / 6.0, x_zero))
    gate = graph.tensor(f"{name}/gate", x.shape, int8, graph.quantization(1.0 / 255.0, -128))
    ops, act = schema.BuiltinOperator, schema.ActivationFunctionType
    return [
        graph.op(ops.MUL, 2, [x_index, sixth], [x6], "MulOptions", act.NONE),
        graph.op(ops.ADD, 2, [x6, half], [gate], "AddOptions", act.RELU),
        graph.op(ops.MUL, 2, [x_index, gate], [y_index], "MulOptions", act.NONE),
    ]


def _float_ops(graph, x_index, y_index, name):
    schema = graph.schema
    x, y = graph.subgraph.tensors[x_index], graph.subgraph.tensors[y_index]
    x_float = graph.tensor(f"{name}/x_float", x.shape, schema.TensorType.FLOAT32)
    y_float = graph.tensor(f"{name}/y_float", y.shape, schema.TensorType.FLOAT32)
    ops = schema.BuiltinOperator
    return [
        graph.op(ops.DEQUANTIZE, 2, [x_index], [x_float]),
        graph.op(ops.HARD_SWISH, 1, [x_float], [y_float]),
        graph.op(ops.QUANTIZE, 2, [y_float], [y_index]),
    ]


def rewrite_int8_hard_swish(flatbuffer, mode="int8"):
    """Replaces every int8 HARD_SWISH op of a TFLite file by ops XNNPACK runs fast.

    Args:
        flatbuffer: The TFLite file as bytes.
        mode: "int8" (pure-integer MUL/ADD/MUL), "float" (dequantize, float hard-swish,
            quantize) or "native" (no change).

    Returns:
        ``(new_flatbuffer, counts)``: the rewritten bytes and a dict with how many ops were
        rewritten each way (``{"int8": n, "float": 0}`` in "int8" mode).

    Raises:
        ValueError: If ``mode`` is unknown.

    Example:
        >>> fast, counts = rewrite_int8_hard_swish(int8_bytes)
        >>> counts
        {'int8': 19, 'float': 0}
    """
    if mode not in HARD_SWISH_MODES:
        raise ValueError(f"`mode` must be one of {HARD_SWISH_MODES}, got {mode!r}.")
    counts = {"int8": 0, "float": 0}
    if mode == "native":
        return bytes(flatbuffer), counts
    schema = import_litert("schema_py_generated")
    utils = import_litert("tools.flatbuffer_utils")
    model = utils.read_model_from_bytearray(bytearray(flatbuffer))
    off_xnnpack = []
    for subgraph in model.subgraphs:
        graph = _Graph(model, subgraph, schema)
        operators = []
        for operator in subgraph.operators:
            code = model.operatorCodes[operator.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            x_index, y_index = operator.inputs[0], operator.outputs[0]
            x, y = subgraph.tensors[x_index], subgraph.tensors[y_index]
            if builtin != schema.BuiltinOperator.HARD_SWISH or x.type != schema.TensorType.INT8:
                operators.append(operator)
                continue
            name = x.name.decode() if isinstance(x.name, bytes) else str(x.name)
            name = f"{name}/hard_swish"
            if mode == "int8" and not _integer_fits_xnnpack(
                x.quantization.scale[0], y.quantization.scale[0]
            ):
                off_xnnpack.append(name)
            build = _integer_ops if mode == "int8" else _float_ops
            operators.extend(build(graph, x_index, y_index, name))
            counts[mode] += 1
        subgraph.operators = operators
    if off_xnnpack:
        logger.warning(
            "%d of %d HARD_SWISH ops have scales outside XNNPACK's int8 limits; their int8 ops "
            "will run on the builtin kernels (int8_hard_swish='float' avoids this): %s",
            len(off_xnnpack), counts["int8"], ", ".join(off_xnnpack),
        )
    return bytes(utils.convert_object_to_bytearray(model)), counts

"""Rewrites of tf2onnx's files that ONNX Runtime runs faster (all but one exact).

tf2onnx converts the channels-last TensorFlow graph op by op, wrapping convolutions in
transposes to ONNX's channels-first layout, and ONNX Runtime fuses a QAT file's
QuantizeLinear/DequantizeLinear (QDQ) pairs into integer kernels only around the ops it
knows. Four patterns of our networks defeat both (measured with ``benchmarks/onnx_speed.py``):

- ``channels_first_shuffles``: a channel shuffle (ShuffleNet V1/V2) is a 5-D reshape,
  transpose and reshape in channels-last layout between two transposes; ONNX Runtime runs
  such 5-D transposes very slowly on two threads (ShuffleNetV2 0.5 at 224x224, float32,
  onnxruntime 1.32 on a 2-core Intel Xeon with AMX: 8 ms, one thread 1.9 ms). Written in
  channels-first layout, the shuffle moves whole feature maps, and the transposes around
  it cancel (2 threads: 1.6 ms).
- ``hard_swish_ops``: tf2onnx writes MobileNetV3's hard-swish ``x * relu6(x + 3) / 6`` as
  four ops (Add, Clip, Mul, Mul); ONNX's one ``HardSwish`` op (opset 14) is fused by ONNX
  Runtime into the convolution before it (float32 MobileNetV3Small 0.75, same machine,
  1 thread: 2.2 ms -> 1.7 ms).
- ``dequantize_after_data_moves``: ops that only move or select values (Transpose,
  Reshape, Slice, Split, MaxPool, Pad, ...) after a per-tensor DequantizeLinear run on the
  integers instead, with the DequantizeLinear after them, so that the next convolution
  sees a quantized input (a QAT model quantizes the input of a max pooling, not its
  output: ShuffleNet's stem ran in float32).
- ``quantize_concat_inputs``: a QAT model quantizes a concatenation's output, not its
  inputs; a convolution feeding it has no QuantizeLinear of its own and stays float32
  (19 of ShuffleNetV2's 56). Each such input gets the output's QuantizeLinear/
  DequantizeLinear pair (concatenating values already on the output's grid changes
  nothing).

These are exact: with ONNX Runtime's optimizations off, a rewritten file computes what it
computed before (``HardSwish`` to float32 rounding). One more, ``int8_hard_swishes``, is
not: it computes a QAT file's hard-swishes with integer ops, as ``rewrite_int8_hard_swish``
does in int8 TFLite files (the hard-sigmoid ``x / 6 + 1/2`` quantized on 1/255 steps, so its
int8 saturation is the clip), where ONNX Runtime would dequantize, compute in float32 and
quantize again around each.

Example:
    >>> proto = channels_first_shuffles(proto)  # a tf2onnx ModelProto
"""

import numpy as np

from keras_mobilenets.export._onnx import import_onnx_tool

#: Ops that only move or select values: the same on the integers as on the dequantized
#: values (per-tensor scale > 0: MaxPool's order is kept).
DATA_MOVES = ("Transpose", "Reshape", "Slice", "Split", "MaxPool", "Pad", "Squeeze",
              "Unsqueeze", "Flatten")
#: Opset of ONNX's ``HardSwish``.
HARD_SWISH_OPSET = 14


class _Graph:
    """An ONNX graph's initializers as arrays, producers and consumers, and edits."""

    def __init__(self, proto):
        self.onnx = import_onnx_tool("onnx")
        self.graph = proto.graph
        self.constants = {tensor.name: self.onnx.numpy_helper.to_array(tensor)
                          for tensor in self.graph.initializer}
        self.producer = {name: node for node in self.graph.node for name in node.output}
        self.consumers = {}
        for node in self.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    def node(self, op_type, inputs, outputs, **attributes):
        return self.onnx.helper.make_node(op_type, inputs, outputs, **attributes)

    def constant(self, name, value):
        """Adds an initializer; returns its name."""
        self.graph.initializer.append(self.onnx.numpy_helper.from_array(value, name))
        self.constants[name] = value
        return name

    def made_by(self, name, op_type):
        node = self.producer.get(name)
        return node if node is not None and node.op_type == op_type else None

    def is_scalar(self, name, value=None):
        array = self.constants.get(name)
        return (array is not None and array.size == 1
                and (value is None or np.isclose(float(array.ravel()[0]), value, rtol=1e-6)))

    def per_tensor_dequantize(self, name):
        """The per-tensor DequantizeLinear that makes ``name``, or None."""
        node = self.made_by(name, "DequantizeLinear")
        if node is None or len(node.input) != 3 or not all(
                self.is_scalar(i) for i in node.input[1:]):
            return None
        return node

    def replace(self, replacements):
        """Puts each ``{id(node): [new nodes]}`` in place and drops nodes nobody uses."""
        nodes = []
        for node in self.graph.node:
            nodes.extend(replacements.get(id(node), [node]))
        used = {output.name for output in self.graph.output}
        kept = []
        for node in reversed(nodes):  # sorted graph: consumers come after producers
            if any(name in used for name in node.output):
                kept.append(node)
                used.update(_inputs_of(node))
        del self.graph.node[:]
        self.graph.node.extend(reversed(kept))
        unused = [tensor for tensor in self.graph.initializer if tensor.name not in used]
        for tensor in unused:
            self.graph.initializer.remove(tensor)
        return len(replacements)


def _inputs_of(node):
    """The names a node reads, those its subgraphs (a Loop's body, an If's branches) read
    from outside included."""
    names = list(node.input)
    for attribute in node.attribute:
        for subgraph in [attribute.g] * attribute.HasField("g") + list(attribute.graphs):
            for inner in subgraph.node:
                names.extend(_inputs_of(inner))
    return names


def _perm(node):
    return [list(attribute.ints) for attribute in node.attribute if attribute.name == "perm"][0]


def channels_first_shuffles(proto):
    """Rewrites tf2onnx's channels-last channel shuffles in channels-first layout.

    The pattern: ``Transpose(0,2,3,1)`` (from channels-first), an optional per-tensor
    DequantizeLinear, ``Reshape(-1,H,W,g,n) -> Transpose(0,1,2,4,3) -> Reshape(-1,H,W,g*n)``.
    It becomes ``Reshape(-1,g,n,H,W) -> Transpose(0,2,1,3,4) -> Reshape(-1,g*n,H,W) ->
    Transpose(0,2,3,1)`` (then the DequantizeLinear), which ONNX Runtime cancels against
    the transposes that follow.

    Args:
        proto: An ``onnx.ModelProto``, changed in place.

    Returns:
        The number of shuffles rewritten.

    Example:
        >>> channels_first_shuffles(onnx.load("shufflenet_v2.onnx"))
        16
    """
    graph = _Graph(proto)
    replacements = {}
    for last in graph.graph.node:
        swap = last.op_type == "Reshape" and graph.made_by(last.input[0], "Transpose")
        first = swap and graph.made_by(swap.input[0], "Reshape")
        if not first or _perm(swap) != [0, 1, 2, 4, 3]:
            continue
        split_shape = graph.constants.get(first.input[1])
        if split_shape is None or len(split_shape) != 5 or len(
                graph.constants.get(last.input[1], ())) != 4:
            continue
        dequantize = graph.per_tensor_dequantize(first.input[0])
        to_channels_last = graph.made_by(
            dequantize.input[0] if dequantize else first.input[0], "Transpose")
        if to_channels_last is None or _perm(to_channels_last) != [0, 2, 3, 1]:
            continue
        _, height, width, groups, per_group = (int(v) for v in split_shape)
        prefix = f"{last.output[0]}/channels_first"
        shuffled = f"{prefix}/channels_last" if dequantize else last.output[0]
        nodes = [
            graph.node("Reshape", [to_channels_last.input[0], graph.constant(
                f"{prefix}/split_shape",
                np.array([-1, groups, per_group, height, width], np.int64))], [f"{prefix}/split"]),
            graph.node("Transpose", [f"{prefix}/split"], [f"{prefix}/swapped"],
                       perm=[0, 2, 1, 3, 4]),
            graph.node("Reshape", [f"{prefix}/swapped", graph.constant(
                f"{prefix}/shape", np.array([-1, groups * per_group, height, width], np.int64))],
                [f"{prefix}/shuffled"]),
            graph.node("Transpose", [f"{prefix}/shuffled"], [shuffled], perm=[0, 2, 3, 1]),
        ]
        if dequantize:
            nodes.append(graph.node("DequantizeLinear", [shuffled, *dequantize.input[1:]],
                                    [last.output[0]]))
        replacements[id(last)] = nodes
    return graph.replace(replacements)


def _hard_swishes(graph):
    """``(multiply, x)`` of each ``Mul(x, Mul(Clip(Add(x, 3), 0, 6), 1/6))``."""
    found = []
    for multiply in graph.graph.node:
        if multiply.op_type != "Mul":
            continue
        for x, gate in (tuple(multiply.input), tuple(multiply.input)[::-1]):
            scale = graph.made_by(gate, "Mul")
            sixth = scale and [i for i in scale.input if graph.is_scalar(i, 1 / 6)]
            clip = sixth and len(sixth) == 1 and graph.made_by(
                [i for i in scale.input if i != sixth[0]][0], "Clip")
            if not clip or len(clip.input) != 3 or not (
                    graph.is_scalar(clip.input[1], 0) and graph.is_scalar(clip.input[2], 6)):
                continue
            add = graph.made_by(clip.input[0], "Add")
            if add and x in add.input and any(graph.is_scalar(i, 3) for i in add.input):
                found.append((multiply, x))
                break
    return found


def hard_swish_ops(proto):
    """Writes each ``x * relu6(x + 3) / 6`` as one ONNX ``HardSwish`` (opset >= 14).

    Args:
        proto: An ``onnx.ModelProto``, changed in place.

    Returns:
        The number of hard-swishes rewritten (0 below opset 14).

    Example:
        >>> hard_swish_ops(onnx.load("mobilenet_v3_small.onnx"))
        19
    """
    if _default_opset(proto) < HARD_SWISH_OPSET:
        return 0
    graph = _Graph(proto)
    return graph.replace({id(multiply): [graph.node("HardSwish", [x], list(multiply.output))]
                          for multiply, x in _hard_swishes(graph)})


def _default_opset(proto):
    return max(entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx"))


def dequantize_after_data_moves(proto):
    """Moves per-tensor DequantizeLinear nodes after the data moves (``DATA_MOVES``) they feed.

    ``DequantizeLinear -> Slice`` becomes ``Slice -> DequantizeLinear`` (the integers are
    sliced), repeatedly, so that a chain of such ops runs on the integers. A Pad's constant
    is written as its integer (skipped where it is not on the grid).

    Args:
        proto: An ``onnx.ModelProto`` with QDQ pairs, changed in place.

    Returns:
        The number of ops moved.

    Example:
        >>> dequantize_after_data_moves(onnx.load("qat_shufflenet_v2.onnx"))
        66
    """
    total = 0
    while True:
        graph = _Graph(proto)
        replacements = {}
        for move in graph.graph.node:
            dequantize = (move.op_type in DATA_MOVES and move.input
                          and graph.per_tensor_dequantize(move.input[0]))
            if not dequantize or (move.op_type == "MaxPool" and len(move.output) > 1):
                continue
            inputs = [dequantize.input[0], *move.input[1:]]
            if move.op_type == "Pad" and not _integer_pad_value(graph, move, dequantize, inputs):
                continue
            integers = [f"{name}/quantized" for name in move.output]
            moved = graph.node(move.op_type, inputs, integers)
            moved.attribute.extend(move.attribute)
            replacements[id(move)] = [moved] + [
                graph.node("DequantizeLinear", [integer, *dequantize.input[1:]], [name])
                for integer, name in zip(integers, move.output)]
        if not replacements:
            return total
        total += graph.replace(replacements)


def _integer_pad_value(graph, pad, dequantize, inputs):
    """Sets ``inputs``' constant value to the integer of the Pad's value; False if none is."""
    mode = [a.s for a in pad.attribute if a.name == "mode"]
    if mode and mode[0] != b"constant":
        return True
    value = 0.0
    if len(pad.input) > 2 and pad.input[2]:
        if not graph.is_scalar(pad.input[2]):
            return False
        value = float(graph.constants[pad.input[2]].ravel()[0])
    scale, zero_point = (graph.constants[name] for name in dequantize.input[1:])
    integer = value / float(scale) + int(zero_point)
    info = np.iinfo(zero_point.dtype)
    if abs(integer - round(integer)) > 1e-6 or not info.min <= round(integer) <= info.max:
        return False
    name = graph.constant(f"{pad.output[0]}/quantized_value",
                          np.array(round(integer), zero_point.dtype))
    if len(inputs) > 2:
        inputs[2] = name
    else:
        inputs.append(name)
    return True


def quantize_concat_inputs(proto):
    """Gives each input of a quantized Concat the output's QuantizeLinear/DequantizeLinear.

    For a Concat whose only consumer is a per-tensor QuantizeLinear, each input that no
    DequantizeLinear makes is quantized (and dequantized) with the output's scale and zero
    point, so that ONNX Runtime fuses the op that makes it (a convolution) with its own
    QuantizeLinear, and the Concat into an integer concatenation.

    Args:
        proto: An ``onnx.ModelProto`` with QDQ pairs, changed in place.

    Returns:
        The number of inputs quantized.

    Example:
        >>> quantize_concat_inputs(onnx.load("qat_shufflenet_v2.onnx"))
        19
    """
    graph = _Graph(proto)
    replacements, count = {}, 0
    for concat in graph.graph.node:
        users = graph.consumers.get(concat.output[0], []) if concat.op_type == "Concat" else []
        if len(users) != 1 or users[0].op_type != "QuantizeLinear" or len(
                users[0].input) != 3 or not all(graph.is_scalar(i) for i in users[0].input[1:]):
            continue
        params = list(users[0].input[1:])
        nodes = []
        for position, name in enumerate(concat.input):
            if graph.made_by(name, "DequantizeLinear") or name in graph.constants:
                continue
            prefix = f"{concat.output[0]}/input{position}"
            nodes += [graph.node("QuantizeLinear", [name, *params], [f"{prefix}/quantized"]),
                      graph.node("DequantizeLinear", [f"{prefix}/quantized", *params],
                                 [f"{prefix}/dequantized"])]
            concat.input[position] = f"{prefix}/dequantized"
            count += 1
        if nodes:
            replacements[id(concat)] = nodes + [concat]
    graph.replace(replacements)
    return count


def int8_hard_swishes(proto):
    """Computes a QAT file's hard-swishes with integer ops (not exact: see the module).

    Each ``DequantizeLinear(x) -> x * relu6(x + 3) / 6 -> QuantizeLinear`` becomes
    ``g = QuantizeLinear(x / 6 + 1/2)`` on steps of 1/255 (zero point the type's minimum:
    saturation clips g to [0, 1]; ``x / 6`` is x's integers with a sixth of its scale) and
    ``QuantizeLinear(x * g)``, which ONNX Runtime runs as QLinearAdd and QLinearMul.

    Args:
        proto: An ``onnx.ModelProto`` with QDQ pairs, changed in place.

    Returns:
        The number of hard-swishes rewritten.

    Example:
        >>> int8_hard_swishes(onnx.load("qat_mobilenet_v3_small.onnx"))
        19
    """
    graph = _Graph(proto)
    replacements = {}
    for multiply, x in _hard_swishes(graph):
        users = graph.consumers.get(multiply.output[0], [])
        dequantize = graph.per_tensor_dequantize(x)
        if dequantize is None or len(users) != 1 or users[0].op_type != "QuantizeLinear":
            continue
        integers, scale, zero_point = dequantize.input
        dtype = graph.constants[zero_point].dtype
        prefix = f"{multiply.output[0]}/int8"
        constant = graph.constant
        # g's steps of 1/255 from the type's minimum: saturation is the clip to [0, 1].
        gate_params = [constant(f"{prefix}/gate_scale", np.array(1 / 255, np.float32)),
                       constant(f"{prefix}/gate_zero", np.array(np.iinfo(dtype).min, dtype))]
        replacements[id(multiply)] = [
            graph.node("DequantizeLinear", [integers, constant(
                f"{prefix}/sixth_scale", (graph.constants[scale] / np.float32(6)).astype(
                    np.float32)), zero_point], [f"{prefix}/sixth"]),
            graph.node("DequantizeLinear", [constant(f"{prefix}/half", np.array(1, dtype)),
                                            constant(f"{prefix}/half_scale",
                                                     np.array(0.5, np.float32)),
                                            constant(f"{prefix}/half_zero", np.array(0, dtype))],
                       [f"{prefix}/half_value"]),
            graph.node("Add", [f"{prefix}/sixth", f"{prefix}/half_value"], [f"{prefix}/shifted"]),
            graph.node("QuantizeLinear", [f"{prefix}/shifted", *gate_params], [f"{prefix}/gate"]),
            graph.node("DequantizeLinear", [f"{prefix}/gate", *gate_params],
                       [f"{prefix}/gate_value"]),
            graph.node("Mul", [x, f"{prefix}/gate_value"], list(multiply.output)),
        ]
    return graph.replace(replacements)


"""Reading a TFLite flatbuffer: op histogram, tensor dtypes of the kernels, a text report.

The file is parsed with LiteRT's flatbuffer schema (``ai_edge_litert.tools.flatbuffer_utils``),
so nothing is executed and the answer is the graph as written by the converter.
``non_delegated_ops`` is the runtime side: it loads the file in LiteRT's interpreter, which
hands every op it can to XNNPACK (its CPU delegate), and lists the ops left to the builtin
kernels; those are usually much slower (int8 HARD_SWISH, AVERAGE_POOL_2D, RELU, ...) and
each one cuts the delegated graph in two.
"""

import collections


from keras_mobilenets.export import delegation
from keras_mobilenets.export._litert import import_litert
from keras_mobilenets.export.delegation import summarize_non_delegated  # noqa: F401

KERNEL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def _model_bytes(model_or_bytes):
    """Flatbuffer bytes of a path, bytes, a ``LiteRTModel`` or a Keras model (float32)."""
    if hasattr(model_or_bytes, "inputs") and hasattr(model_or_bytes, "layers"):
        from keras_mobilenets.export.tflite import to_tflite

        return to_tflite(model_or_bytes)
    try:
        return delegation.flatbuffer_bytes(model_or_bytes)
    except TypeError:
        raise TypeError(
            "Expected TFLite bytes, a .tflite path, a LiteRTModel or a Keras model, got "
            f"{type(model_or_bytes).__name__}."
        ) from None


def _parse(model_or_bytes):
    """(ModelT, flatbuffer_utils) of the main subgraph's model."""
    utils = import_litert("tools.flatbuffer_utils")
    return utils.convert_bytearray_to_object(_model_bytes(model_or_bytes)), utils


def _op_name(model, utils, operator):
    name = utils.opcode_to_name(model, operator.opcodeIndex)
    if name == "CUSTOM":
        custom = model.operatorCodes[operator.opcodeIndex].customCode
        name = f"CUSTOM:{custom.decode() if isinstance(custom, bytes) else custom}"
    return name or f"UNKNOWN_{operator.opcodeIndex}"


def _tensor_type(model, utils, subgraph, index):
    if index is None or index < 0:
        return None
    return utils.type_to_name(subgraph.tensors[index].type)


def op_histogram(model_or_bytes):
    """Counts the ops of the main subgraph by name.

    Args:
        model_or_bytes: TFLite bytes, a .tflite path, a ``LiteRTModel`` or a Keras model
            (converted to float32 first).

    Returns:
        A ``collections.Counter`` such as ``{"CONV_2D": 43, "HARD_SWISH": 19, ...}``.

    Example:
        >>> op_histogram(to_tflite(model))["HARD_SWISH"]
        19
    """
    model, utils = _parse(model_or_bytes)
    subgraph = model.subgraphs[0]
    return collections.Counter(_op_name(model, utils, op) for op in subgraph.operators or [])


def op_tensor_types(model_or_bytes, ops=KERNEL_OPS):
    """Dtypes of the input, weights, bias and output of every op named in ``ops``.

    Args:
        model_or_bytes: TFLite bytes, a .tflite path, a ``LiteRTModel`` or a Keras model.
        ops: Op names to report; by default the kernels (CONV_2D, DEPTHWISE_CONV_2D,
            FULLY_CONNECTED). None reports every op.

    Returns:
        A list (graph order) of dicts with keys ``index``, ``op``, ``input``, ``weights``,
        ``bias`` and ``output``, the values being TFLite type names ("INT8", "FLOAT32",
        ...) or None for an absent operand.

    Example:
        >>> all(t["input"] == "INT8" for t in op_tensor_types(int8_bytes))
        True
    """
    model, utils = _parse(model_or_bytes)
    subgraph = model.subgraphs[0]
    rows = []
    for index, operator in enumerate(subgraph.operators or []):
        name = _op_name(model, utils, operator)
        if ops is not None and name not in ops:
            continue
        inputs = list(operator.inputs) + [None, None, None]
        rows.append({
            "index": index,
            "op": name,
            "input": _tensor_type(model, utils, subgraph, inputs[0]),
            "weights": _tensor_type(model, utils, subgraph, inputs[1]),
            "bias": _tensor_type(model, utils, subgraph, inputs[2]),
            "output": _tensor_type(model, utils, subgraph, operator.outputs[0]),
        })
    return rows


def non_delegated_ops(model_or_bytes, num_threads=1):
    """The ops of a file that LiteRT's XNNPACK delegate does not take, in graph order.

    See :func:`keras_mobilenets.export.delegation.non_delegated_ops`; this one also takes a
    Keras model (converted to float32 first).

    Example:
        >>> ops = [row["op"] for row in non_delegated_ops(int8_bytes)]  # e.g. SOFTMAX
    """
    return delegation.non_delegated_ops(_model_bytes(model_or_bytes), num_threads)


def op_report(model_or_bytes):
    """A text table of op counts and the dtypes each op runs in.

    Args:
        model_or_bytes: TFLite bytes, a .tflite path, a ``LiteRTModel`` or a Keras model
            (converted to float32 first).

    Returns:
        A multi-line string: the file size, then one line per op name with its count and
        the dtype combinations seen (``input/weights -> output``), then the ops XNNPACK
        does not delegate (see ``non_delegated_ops``; left out when ai-edge-litert's
        interpreter is not installed).

    Example:
        >>> print(op_report(to_tflite(model, quantization="int8", representative_data=x)))
    """
    content = _model_bytes(model_or_bytes)
    rows = op_tensor_types(content, ops=None)
    counts = collections.Counter(row["op"] for row in rows)
    dtypes = collections.defaultdict(collections.Counter)
    for row in rows:
        operands = "/".join(t for t in (row["input"], row["weights"]) if t)
        dtypes[row["op"]][f"{operands or '-'} -> {row['output']}"] += 1
    width = max([len(name) for name in counts] + [2])
    lines = [f"TFLite file: {len(content) / 1024:.1f} KiB, {sum(counts.values())} ops"]
    for name, count in counts.most_common():
        combos = ", ".join(f"{combo} x{n}" for combo, n in dtypes[name].most_common())
        lines.append(f"  {name:<{width}} {count:>4}  {combos}")
    try:
        slow = non_delegated_ops(content)
    except ImportError:
        return "\n".join(lines)
    if slow:
        lines.append(f"Not delegated to XNNPACK (builtin kernels): {summarize_non_delegated(slow)}")
    else:
        lines.append("XNNPACK delegates every op.")
    return "\n".join(lines)

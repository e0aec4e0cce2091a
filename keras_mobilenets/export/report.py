"""Reading a TFLite flatbuffer: op histogram, tensor dtypes of the kernels, a text report.

The file is parsed with LiteRT's flatbuffer schema (``ai_edge_litert.tools.flatbuffer_utils``),
so nothing is executed and the answer is the graph as written by the converter.
``non_delegated_ops`` is the runtime side: it loads the file in LiteRT's interpreter, which
hands every op it can to XNNPACK (its CPU delegate), and lists the ops left to the builtin
kernels; those are usually much slower (int8 HARD_SWISH, AVERAGE_POOL_2D, RELU, ...) and
each one cuts the delegated graph in two.
"""

import collections
import os

import numpy as np

from keras_mobilenets.export._litert import import_litert

KERNEL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def _model_bytes(model_or_bytes):
    """Flatbuffer bytes of a path, bytes, a ``LiteRTModel`` or a Keras model (float32)."""
    if isinstance(model_or_bytes, (bytes, bytearray)):
        return bytes(model_or_bytes)
    if isinstance(model_or_bytes, (str, os.PathLike)):
        with open(model_or_bytes, "rb") as f:
            return f.read()
    content = getattr(model_or_bytes, "model_content", None)
    if isinstance(content, bytes):
        return content
    if hasattr(model_or_bytes, "inputs") and hasattr(model_or_bytes, "layers"):
        from keras_mobilenets.export.tflite import to_tflite

        return to_tflite(model_or_bytes)
    raise TypeError(
        "Expected TFLite bytes, a .tflite path, a LiteRTModel or a Keras model, got "
        f"{type(model_or_bytes).__name__}."
    )


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

    The file is loaded in ``ai_edge_litert``'s interpreter (which applies XNNPACK by
    default); each delegated partition shows up there as one DELEGATE node whose inputs
    and outputs bound it. An op is delegated when it lies inside such a partition (it is
    reached walking back from the partition's outputs without crossing its inputs).

    Args:
        model_or_bytes: TFLite bytes, a .tflite path, a ``LiteRTModel`` or a Keras model
            (converted to float32 first).
        num_threads: Interpreter threads (does not change what is delegated).

    Returns:
        A list of dicts with keys ``index``, ``op``, ``dtype`` (the numpy name of the
        op's first input, e.g. "int8") and ``output`` (whether the op computes only model
        outputs), empty when XNNPACK runs the whole graph.

    Raises:
        ImportError: If ai-edge-litert is not installed.

    Example:
        >>> ops = [row["op"] for row in non_delegated_ops(int8_bytes)]  # e.g. SOFTMAX
    """
    interpreter_module = import_litert("interpreter")
    interpreter = interpreter_module.Interpreter(
        model_content=_model_bytes(model_or_bytes), num_threads=num_threads
    )
    interpreter.allocate_tensors()
    # The interpreter's node list (a private but long-standing API): the file's ops, then
    # one DELEGATE node per delegated partition.
    nodes = interpreter._get_ops_details()
    producer = {}
    for node in nodes:
        if node["op_name"] != "DELEGATE":
            for tensor in node["outputs"]:
                producer[int(tensor)] = node["index"]
    delegated = set()
    for node in nodes:
        if node["op_name"] != "DELEGATE":
            continue
        boundary = {int(t) for t in node["inputs"]}
        stack, seen = [int(t) for t in node["outputs"]], set()
        while stack:
            tensor = stack.pop()
            if tensor in seen or tensor in boundary or tensor not in producer:
                continue
            seen.add(tensor)
            delegated.add(producer[tensor])
            stack.extend(int(t) for t in nodes[producer[tensor]]["inputs"] if t >= 0)
    graph_outputs = {int(detail["index"]) for detail in interpreter.get_output_details()}
    rows = []
    for node in nodes:
        if node["op_name"] == "DELEGATE" or node["index"] in delegated:
            continue
        types = node.get("operand_types") or [None]
        dtype = None if types[0] is None else np.dtype(types[0]).name
        rows.append({"index": node["index"], "op": node["op_name"], "dtype": dtype,
                     "output": all(int(t) in graph_outputs for t in node["outputs"])})
    return rows


def summarize_non_delegated(rows):
    """One line naming the ops of ``non_delegated_ops``, e.g. "RELU x3 (int8), SOFTMAX x1 (int8)".

    Example:
        >>> summarize_non_delegated([{"index": 7, "op": "RELU", "dtype": "int8"}])
        'RELU x1 (int8)'
    """
    counts = collections.Counter((row["op"], row["dtype"]) for row in rows)
    return ", ".join(f"{op} x{n} ({dtype})" for (op, dtype), n in sorted(counts.items()))


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

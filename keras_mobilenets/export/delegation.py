"""Which ops of a TFLite file LiteRT's XNNPACK delegate leaves to the builtin kernels.

The file is loaded in LiteRT's interpreter, which hands every op it can to XNNPACK (its CPU
delegate); the ops left to the builtin kernels are usually much slower (int8 HARD_SWISH,
AVERAGE_POOL_2D, RELU, ...) and each one cuts the delegated graph in two. ``to_tflite``
warns with these; ``report.op_report`` lists them.

Example:
    >>> [row["op"] for row in non_delegated_ops(int8_bytes)]
    ['SOFTMAX']
"""

import collections
import os

import numpy as np

from keras_mobilenets import quiet
from keras_mobilenets.export._litert import import_litert


#: The file identifier of a TFLite flatbuffer, at bytes 4:8 (after the root offset).
TFLITE_IDENTIFIER = b"TFL3"


def check_tflite_bytes(content, source=None):
    """Raises ``ValueError`` unless ``content`` starts like a TFLite flatbuffer.

    Args:
        content: The file's bytes.
        source: What they came from, for the message (a quoted path), or None for bytes
            given as such.

    Raises:
        ValueError: ``"<source> is not a TFLite model (...)"`` (``"The bytes are not
            ..."`` without ``source``), saying what was found.

    Example:
        >>> check_tflite_bytes(b"not a model", "'notes.txt'")
        Traceback (most recent call last):
        ...
        ValueError: 'notes.txt' is not a TFLite model (bytes 4:8 are b'a mo', not the
        TFLite file identifier b'TFL3'); pass a .tflite file, e.g. one written by ...
    """
    if len(content) < 8:
        found = f"it is {len(content)} bytes long"
    elif content[4:8] != TFLITE_IDENTIFIER:
        found = f"bytes 4:8 are {bytes(content[4:8])!r}"
    else:
        return
    subject = "The bytes are" if source is None else f"{source} is"
    raise ValueError(
        f"{subject} not a TFLite model ({found}, not the TFLite file identifier "
        f"{TFLITE_IDENTIFIER!r}); pass a .tflite file, e.g. one written by export.to_tflite."
    )


def read_tflite(path):
    """The bytes of the TFLite file at ``path``, checked (the one place .tflite paths are read).

    Raises:
        FileNotFoundError: If there is no file at ``path`` (named).
        ValueError: If the file is not a TFLite model (``check_tflite_bytes``).

    Example:
        >>> len(read_tflite("model_int8.tflite"))
        283744
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        what = "is a directory, not a file" if os.path.isdir(path) else "does not exist"
        raise FileNotFoundError(f"TFLite file {path!r} {what}.")
    with open(path, "rb") as f:
        content = f.read()
    check_tflite_bytes(content, repr(path))
    return content


def flatbuffer_bytes(model):
    """Bytes of TFLite bytes, a .tflite path or a ``LiteRTModel``, checked to be TFLite.

    Raises:
        TypeError: For anything else.
        FileNotFoundError: For a path with no file.
        ValueError: If the bytes or the file are not a TFLite model (``check_tflite_bytes``).
    """
    if isinstance(model, (bytes, bytearray)):
        check_tflite_bytes(model)
        return bytes(model)
    if isinstance(model, (str, os.PathLike)):
        return read_tflite(model)
    content = getattr(model, "model_content", None)
    if isinstance(content, bytes):
        return content
    raise TypeError(
        f"Expected TFLite bytes, a .tflite path or a LiteRTModel, got {type(model).__name__}."
    )


def non_delegated_ops(model_or_bytes, num_threads=1):
    """The ops of a file that LiteRT's XNNPACK delegate does not take, in graph order.

    The file is loaded in ``ai_edge_litert``'s interpreter (which applies XNNPACK by
    default); each delegated partition shows up there as one DELEGATE node whose inputs
    and outputs bound it. An op is delegated when it lies inside such a partition (it is
    reached walking back from the partition's outputs without crossing its inputs).

    Args:
        model_or_bytes: TFLite bytes, a .tflite path or a ``LiteRTModel``.
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
    with quiet.native_log_filter():  # LiteRT's "INFO: Created ... XNNPACK delegate" line
        interpreter = interpreter_module.Interpreter(
            model_content=flatbuffer_bytes(model_or_bytes), num_threads=num_threads
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

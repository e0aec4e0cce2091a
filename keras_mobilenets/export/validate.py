"""Checks that keep broken numbers out of exported files: finite weights, valid scales, a run.

``to_tflite`` refuses a model whose variables hold NaN or inf (``check_finite_weights``),
a converted file with a non-finite or non-positive quantization scale
(``check_flatbuffer_scales``), and a file that LiteRT cannot load and invoke
(``check_runs_in_litert``). The run happens in a separate Python process, so that a file
which makes the runtime abort (a model trained into huge weights once wrote an int8 file
that killed Python with exit code 134) costs an error message, not the caller's process.

Example:
    >>> check_finite_weights(model)
    >>> check_runs_in_litert(to_tflite(model))
"""

import logging
import os
import subprocess
import sys
import tempfile

import numpy as np

from keras_mobilenets.export._litert import import_litert

logger = logging.getLogger(__name__)

#: Seconds the LiteRT check may take before it counts as a failure.
RUN_TIMEOUT = 300

# Loads the file, allocates, invokes once on zero inputs; exit code 0 and "ok" on success.
_RUN_SCRIPT = """
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
interpreter = Interpreter(model_path=sys.argv[1], num_threads=1)
interpreter.allocate_tensors()
for detail in interpreter.get_input_details():
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
interpreter.invoke()
for detail in interpreter.get_output_details():
    interpreter.get_tensor(detail["index"])
print("ok")
"""


def _variable_name(variable):
    return getattr(variable, "path", None) or variable.name


def nonfinite_variables(model):
    """Names of the variables of ``model`` (Keras 3 or tf_keras) holding NaN or inf.

    Example:
        >>> nonfinite_variables(model)
        []
    """
    return [
        _variable_name(variable)
        for variable in model.weights
        if np.issubdtype(np.dtype(variable.dtype.name if hasattr(variable.dtype, "name")
                                  else variable.dtype), np.floating)
        and not np.all(np.isfinite(np.asarray(variable)))
    ]


def check_finite_weights(model, action="export"):
    """Raises ``ValueError`` naming the variables of ``model`` that hold NaN or inf.

    Args:
        model: A Keras 3 or tf_keras model.
        action: What is refused, for the message (e.g. "export", "quantize").

    Example:
        >>> check_finite_weights(model, "quantize")
    """
    bad = nonfinite_variables(model)
    if bad:
        shown = ", ".join(bad[:20]) + (" ..." if len(bad) > 20 else "")
        raise ValueError(
            f"Cannot {action} {model.name!r}: {len(bad)} variable(s) hold NaN or inf: {shown}. "
            "Training diverged (e.g. too high a learning rate) or the weights are corrupt."
        )


def check_flatbuffer_scales(flatbuffer):
    """Raises ``ValueError`` naming the tensors of a TFLite file with invalid quantization.

    A scale must be finite and > 0, a zero point an integer in range; LiteRT rejects the
    rest (e.g. ``unsupported scale value (-nan)``).

    Example:
        >>> check_flatbuffer_scales(to_tflite(qat_model, quantization="int8"))
    """
    utils = import_litert("tools.flatbuffer_utils")
    model = utils.convert_bytearray_to_object(bytearray(flatbuffer))
    bad = []
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            quantization = tensor.quantization
            scale = getattr(quantization, "scale", None) if quantization is not None else None
            if scale is None or len(scale) == 0:
                continue
            scale = np.asarray(scale, dtype="float64")
            if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
                name = tensor.name.decode() if isinstance(tensor.name, bytes) else tensor.name
                bad.append(f"{name} (scale {scale[:4].tolist()})")
    if bad:
        shown = "; ".join(bad[:10]) + (" ..." if len(bad) > 10 else "")
        raise ValueError(
            f"The converted file has {len(bad)} tensor(s) with an invalid quantization scale "
            f"(NaN, inf or <= 0): {shown}. Their ranges are degenerate; calibrate the QAT "
            "model (quantization.calibrate) or fix the diverged weights."
        )


def check_runs_in_litert(flatbuffer, timeout=RUN_TIMEOUT):
    """Loads and invokes a TFLite file once in a separate Python process.

    Args:
        flatbuffer: The file's bytes.
        timeout: Seconds before the run counts as failed.

    Returns:
        True if the file ran, False if LiteRT is not installed (nothing was checked).

    Raises:
        ValueError: If LiteRT fails to load, allocate or invoke the file, or the process
            dies (e.g. aborts with exit code 134); the message has the exit status and the
            end of the process' error output.

    Example:
        >>> check_runs_in_litert(to_tflite(model))
        True
    """
    try:
        import_litert("interpreter")
    except ImportError:
        logger.info("ai-edge-litert is not installed: the exported file was not test-run.")
        return False
    with tempfile.TemporaryDirectory(prefix="keras_mobilenets_check_") as folder:
        path = os.path.join(folder, "model.tflite")
        with open(path, "wb") as f:
            f.write(flatbuffer)
        try:
            result = subprocess.run(
                [sys.executable, "-c", _RUN_SCRIPT, path], capture_output=True, text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise ValueError(
                f"LiteRT did not finish loading and invoking the converted file within "
                f"{timeout} s."
            ) from None
    if result.returncode != 0 or "ok" not in result.stdout.split():
        how = (f"was killed by signal {-result.returncode}" if result.returncode < 0
               else f"exited with status {result.returncode}")
        errors = [line for line in result.stderr.strip().splitlines() if "INFO:" not in line]
        details = " | ".join(line.strip() for line in errors[-2:])
        raise ValueError(
            f"LiteRT cannot run the converted file: a test run (load, allocate, one invoke on "
            f"zeros) {how}: {details or 'no error output'}. The model's weights or "
            "quantization ranges are likely degenerate (huge, NaN or zero-width)."
        )
    return True

"""The one place that imports onnx, onnxruntime and tf2onnx (the optional ``onnx`` extra),
lazily, with the tools' own log lines and warnings kept from the user."""

import contextlib
import importlib
import logging
import warnings

INSTALL_HINT = "pip install keras-mobilenets[onnx]"
#: The extra's packages: import name -> distribution name.
PACKAGES = {"onnx": "onnx", "onnxruntime": "onnxruntime", "tf2onnx": "tf2onnx"}


def import_onnx_tool(name):
    """Imports ``onnx``, ``onnxruntime`` or ``tf2onnx`` (or a submodule), with an
    actionable error when it is missing.

    Args:
        name: A module of the extra, e.g. "onnxruntime" or "onnxruntime.quantization".

    Returns:
        The imported module.

    Raises:
        ImportError: If the package is not installed; the message names it and the extra.

    Example:
        >>> ort = import_onnx_tool("onnxruntime")
    """
    package = PACKAGES[name.split(".")[0]]
    try:
        with quiet_tools():  # tf2onnx's import warns about numpy and TensorFlow APIs
            return importlib.import_module(name)
    except ImportError as error:
        raise ImportError(
            f"ONNX export and ONNX Runtime need {package} (with onnx, onnxruntime and "
            f"tf2onnx: the `onnx` extra); install them with `{INSTALL_HINT}`."
        ) from error


@contextlib.contextmanager
def quiet_tools():
    """Keeps tf2onnx's and onnxruntime's Python log records and warnings from the user.

    tf2onnx logs a traceback at WARNING level when one of its graph optimizers fails on a
    graph (its transpose optimizer does on a convolution without bias followed by a scalar
    addition, then keeps the graph unoptimized: onnxruntime removes those transposes when
    it loads the file), and INFO lines about every conversion step. Inside the block the
    ``tf2onnx`` logger passes on ERROR records only, and Python warnings are ignored.

    Example:
        >>> with quiet_tools():
        ...     proto, _ = tf2onnx.convert.from_function(function, signature)
    """
    tool_logger = logging.getLogger("tf2onnx")
    level = tool_logger.level
    tool_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        tool_logger.setLevel(level)

"""The one place that imports ``ai_edge_litert`` (the optional ``tflite`` extra), lazily."""

import importlib

INSTALL_HINT = "pip install keras-mobilenets[tflite]"


def import_litert(module="interpreter"):
    """Imports ``ai_edge_litert.<module>``, with an actionable error when it is missing.

    Args:
        module: Submodule of ``ai_edge_litert``, e.g. "interpreter" or
            "tools.flatbuffer_utils".

    Returns:
        The imported module.

    Raises:
        ImportError: If ai-edge-litert is not installed; the message names the extra.

    Example:
        >>> interpreter = import_litert("interpreter")
    """
    try:
        return importlib.import_module(f"ai_edge_litert.{module}")
    except ImportError as error:
        raise ImportError(
            "Running and inspecting TFLite files needs the LiteRT runtime (ai-edge-litert); "
            f"install it with `{INSTALL_HINT}`."
        ) from error

"""The one place that imports ``ai_edge_litert`` (the optional ``tflite`` extra), lazily."""

import importlib
from importlib import metadata

INSTALL_HINT = "pip install keras-mobilenets[tflite]"
#: setup.cfg's floor: ``tools.flatbuffer_utils`` (read and rewrite files) first shipped in
#: 2.1.0, whose int8 RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR gave zeros for part of the
#: output (tests/quantization/test_resizing.py); 2.2.0 is the oldest that runs our files.
MIN_VERSION = "2.2"


def import_litert(module="interpreter"):
    """Imports ``ai_edge_litert.<module>``, with an actionable error when it is missing.

    Args:
        module: Submodule of ``ai_edge_litert``, e.g. "interpreter" or
            "tools.flatbuffer_utils".

    Returns:
        The imported module.

    Raises:
        ImportError: If ai-edge-litert is not installed, or is older than ``MIN_VERSION``
            and lacks ``module``; the message names the extra and the version needed.

    Example:
        >>> interpreter = import_litert("interpreter")
    """
    try:
        return importlib.import_module(f"ai_edge_litert.{module}")
    except ImportError as error:
        try:
            installed = metadata.version("ai-edge-litert")
        except metadata.PackageNotFoundError:
            raise ImportError(
                "Running and inspecting TFLite files needs the LiteRT runtime (ai-edge-litert); "
                f"install it with `{INSTALL_HINT}`."
            ) from error
        raise ImportError(
            f"ai-edge-litert {installed} has no `ai_edge_litert.{module}`; keras_mobilenets "
            f"needs ai-edge-litert>={MIN_VERSION}: upgrade it with `{INSTALL_HINT}`."
        ) from error

"""TFLite export (float32 / float16 / dynamic / int8) and a LiteRT runner; ONNX export
(float32 / int8) and an ONNX Runtime runner.

``to_tflite`` needs only TensorFlow; ``LiteRTModel`` and the op report need the optional
LiteRT runtime (``pip install keras-mobilenets[tflite]``), ``to_onnx`` and ``OnnxModel``
the ``onnx`` extra (onnx, onnxruntime, tf2onnx), each imported on first use.

Example:
    >>> from keras_mobilenets import export
    >>> flatbuffer = export.to_tflite(model, "model.tflite")
    >>> export.LiteRTModel(flatbuffer).predict(images)
    >>> export.time_in_rounds({"float32": flatbuffer, "int8": int8_bytes}).ratio("int8", "float32")
    >>> print(export.op_report(flatbuffer))
    >>> export.OnnxModel(export.to_onnx(model, "model.onnx")).predict(images)
"""

from keras_mobilenets.export.int8_rewrite import (
    DEFAULT_REWRITES,
    REWRITES,
    rewrite_int8_for_xnnpack,
)
from keras_mobilenets.export.litert import Latency, LiteRTModel
from keras_mobilenets.export.onnx import to_onnx
from keras_mobilenets.export.onnx_runtime import OnnxModel
from keras_mobilenets.export.report import (
    KERNEL_OPS,
    non_delegated_ops,
    op_histogram,
    op_report,
    op_tensor_types,
)
from keras_mobilenets.export.rewrite import HARD_SWISH_MODES, rewrite_int8_hard_swish
from keras_mobilenets.export.tflite import QUANTIZATIONS, to_tflite
from keras_mobilenets.export.timing import RoundTimes, Spread, time_in_rounds

__all__ = [
    "DEFAULT_REWRITES",
    "HARD_SWISH_MODES",
    "KERNEL_OPS",
    "Latency",
    "LiteRTModel",
    "OnnxModel",
    "QUANTIZATIONS",
    "REWRITES",
    "RoundTimes",
    "Spread",
    "non_delegated_ops",
    "op_histogram",
    "op_report",
    "op_tensor_types",
    "rewrite_int8_for_xnnpack",
    "rewrite_int8_hard_swish",
    "time_in_rounds",
    "to_onnx",
    "to_tflite",
]

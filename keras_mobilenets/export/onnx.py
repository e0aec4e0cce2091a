"""Keras model -> ONNX file, float32 or int8 (QDQ), for ONNX Runtime.

The model is traced as ``model(x, training=False)`` in a ``tf.function`` (batch size left
open, spatial size from the model) inside ``grouped_conv.exporting()`` and converted by
tf2onnx (``tf2onnx.convert.from_function``). Two int8 routes, both writing
QuantizeLinear/DequantizeLinear (QDQ) pairs that ONNX Runtime fuses into its integer
kernels (QLinearConv, QLinearAdd, QLinearGlobalAveragePool, ...) when it loads the file:

- a quantization-aware (tfmot QAT) model: tf2onnx turns its FakeQuantWithMinMaxVars ops
  into QDQ pairs with the trained ranges (onnx/tensorflow-onnx PR 1301), so the file
  computes what the QAT model computes;
- a float model with ``calibration_data``: post-training quantization of the float file
  with ``onnxruntime.quantization.quantize_static`` (QDQ format, int8 weights per output
  channel, int8 activations, min/max calibration), after its pre-processing
  (``quant_pre_process``: shape inference, batch norms folded). Weights use 7 of their 8
  bits (``reduce_range``), as ONNX Runtime advises for x86 CPUs without VNNI, whose int8
  dot products saturate 16-bit sums: with all 8 bits a tiny MobileNetV3Small's int8
  logits correlated 0.85 with its float ones on such a CPU (AMD EPYC, AVX2), 0.98 with 7.

Measured on a 2-core AMD EPYC (AVX2, no VNNI) at 224x224, onnxruntime 1.32, random
weights: the QAT route (calibrated, untrained) ran MobileNetV3Small's convolutions as
QLinearConv (45 to 54 of 54) in 16 ms, ``quantize_static`` left 25 of them in float32
between DequantizeLinear and QuantizeLinear (those feeding the hard-swishes' Mul/Add) and
ran in 34 ms (float32: 12 ms). So a float model quantized through the package's QAT route
(``quantization.quantize_model(model, calibration_data)`` then ``to_onnx``) is the faster
file; this module sits below ``quantization`` and does not import it.

The file is then rewritten for ONNX Runtime (``onnx_rewrites``: channel shuffles in
channels-first layout, one HardSwish op per hard-swish, integer data moves and
concatenation inputs in int8 files), which computes the same values faster.

A QAT model's weights reach the file as float32 constants (TensorFlow folds their fake
quantization in, tf2onnx the batch norms); ``onnx_int8_weights.int8_weights`` writes them
back as the int8 integers they are, per output channel, so that ONNX Runtime does not
requantize them per tensor (which cost MobileNetV2 and ShuffleNetV2 files a tenth of
their agreement with the QAT model).

Example:
    >>> from keras_mobilenets import export
    >>> content = export.to_onnx(model, "model.onnx")
    >>> export.OnnxModel("model.onnx").predict(images)
"""

import contextlib
import logging
import os
import tempfile

import keras
import tensorflow as tf

from keras_mobilenets import _checks, imagenet, quiet
from keras_mobilenets.export import onnx_rewrites, validate
from keras_mobilenets.export._onnx import import_onnx_tool, quiet_tools
from keras_mobilenets.export.onnx_int8_weights import int8_weights
from keras_mobilenets.export.onnx_runtime import OnnxModel
from keras_mobilenets.export.tflite import (
    _fixed_input_specs,
    _is_qat_model,
    _is_tf_keras_model,
    write_file,
)
from keras_mobilenets.layers import grouped_conv

logger = logging.getLogger(__name__)

QUANTIZATIONS = (None, "int8")
#: How an int8 file computes hard-swish (``to_onnx``'s ``int8_hard_swish``).
INT8_HARD_SWISH_MODES = ("float", "int8")
#: The oldest opset with per-channel QuantizeLinear/DequantizeLinear (an ``axis``).
MIN_OPSET = 13


def _check_opset(opset, tf2onnx):
    newest = max(tf2onnx.constants.OPSET_TO_IR_VERSION)
    if opset is not None:
        _checks.check_int("opset", opset, minimum=MIN_OPSET, maximum=newest)


@contextlib.contextmanager
def _plain_grouped_convolutions(model):
    """tf_keras runs a grouped convolution (a QAT ShuffleNet's) in a jit-compiled
    ``tf.function``, a PartitionedCall tf2onnx cannot convert: inside the block those
    layers call TensorFlow's grouped convolution op directly (ONNX Conv with ``group``)."""
    grouped = []
    for layer in model.layers if _is_tf_keras_model(model) else ():  # Keras 3: exporting()
        for candidate in (layer, getattr(layer, "layer", None)):  # QuantizeWrapper's layer
            if getattr(candidate, "groups", 1) > 1 and hasattr(candidate, "convolution_op"):
                grouped.append(candidate)
    for layer in grouped:
        layer._jit_compiled_convolution_op = layer.convolution_op
    try:
        yield
    finally:
        for layer in grouped:
            del layer._jit_compiled_convolution_op


def _check_proto(proto, onnx):
    """``onnx.checker`` with an error that names the ops the file cannot hold."""
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as error:
        unknown = sorted({node.op_type for node in proto.graph.node
                          if not node.domain and not onnx.defs.has(node.op_type)})
        reason = " ".join(str(error).split())[:200]
        raise ValueError(
            "tf2onnx could not convert this model to a valid ONNX file"
            + (f": it left TensorFlow ops ONNX does not have ({', '.join(unknown)})"
               if unknown else "") + f" ({reason})."
        ) from None


def _convert(model, opset, tf2onnx):
    """The ONNX ``ModelProto`` of ``model(x, training=False)``, batch size left open."""
    specs = _fixed_input_specs(model, batch=None, file_kind="ONNX")

    def serve(*inputs):
        return model(inputs[0] if len(inputs) == 1 else list(inputs), training=False)

    function = tf.function(serve, input_signature=specs)
    # The file's ops must not depend on this machine's TensorFlow kernels: grouped
    # convolutions are traced as TensorFlow's one native op (an ONNX Conv with `group`).
    with grouped_conv.exporting(), _plain_grouped_convolutions(model), \
            quiet.native_log_filter(), quiet_tools():
        proto, _ = tf2onnx.convert.from_function(function, input_signature=specs, opset=opset)
    return proto


def _calibration_batch(model, calibration_data):
    expected_shape = tuple(model.inputs[0].shape[1:])
    batch = _checks.check_input_batch(
        "calibration_data", calibration_data, expected_shape,
        imagenet.expected_input_range(model), allow_sample=True,
    )
    if not len(batch):
        raise ValueError("`calibration_data` must hold at least one image, got none.")
    return batch.astype("float32")


def _quantize_static(proto, batch):
    """Post-training int8 (QDQ, per-channel weights) of a float ``ModelProto``."""
    onnx = import_onnx_tool("onnx")
    ort_quantization = import_onnx_tool("onnxruntime.quantization")
    input_name = proto.graph.input[0].name

    class Reader(ort_quantization.CalibrationDataReader):
        def __init__(self):
            self._samples = iter(batch[i:i + 1] for i in range(len(batch)))

        def get_next(self):
            sample = next(self._samples, None)
            return None if sample is None else {input_name: sample}

    with tempfile.TemporaryDirectory(prefix="keras_mobilenets_onnx_") as folder:
        float_path = os.path.join(folder, "float32.onnx")
        prepared = os.path.join(folder, "prepared.onnx")
        int8_path = os.path.join(folder, "int8.onnx")
        onnx.save(proto, float_path)
        with quiet_tools(), quiet.native_log_filter():
            ort_quantization.quant_pre_process(float_path, prepared, skip_symbolic_shape=True)
            ort_quantization.quantize_static(
                prepared, int8_path, Reader(), quant_format=ort_quantization.QuantFormat.QDQ,
                per_channel=True, reduce_range=True,
                activation_type=ort_quantization.QuantType.QInt8,
                weight_type=ort_quantization.QuantType.QInt8,
                calibrate_method=ort_quantization.CalibrationMethod.MinMax,
            )
        return onnx.load(int8_path)


def _rewrite_for_onnx_runtime(proto, quantized, int8_hard_swish="float"):
    """``onnx_rewrites``' rewrites (in place) of tf2onnx's file: the exact ones, and with
    ``int8_hard_swish="int8"`` the integer hard-swish of a file with QDQ pairs (before
    ``hard_swish_ops`` takes the pattern)."""
    onnx_rewrites.channels_first_shuffles(proto)
    if quantized:
        if int8_hard_swish == "int8":
            onnx_rewrites.int8_hard_swishes(proto)
        _rewrite_qdq_pairs(proto)
    onnx_rewrites.hard_swish_ops(proto)


def _rewrite_qdq_pairs(proto):
    """The rewrites that concern QDQ pairs only (in place)."""
    onnx_rewrites.dequantize_after_data_moves(proto)
    onnx_rewrites.quantize_concat_inputs(proto)


def to_onnx(model, path=None, *, quantization=None, calibration_data=None, opset=None,
            int8_hard_swish="float"):
    """Converts a Keras model to an ONNX file (float32, or int8 with QDQ pairs).

    Args:
        model: A Keras 3 model with fixed input sizes (any model of this package, with or
            without a user's head: classifiers, backbones, SSDLite's raw outputs or its
            post-processed detector from ``detection.inference_model``, LR-ASPP),
            or a tfmot QAT tf_keras model (``quantization.quantize_model``).
        path: Optional file to write (parent directories are created).
        quantization: None (float32) or "int8" (QuantizeLinear/DequantizeLinear around
            every quantized op; float32 inputs and outputs). A QAT model takes "int8"
            only and keeps its trained ranges.
        calibration_data: For "int8" of a float model: a numpy batch of images in the
            model's input range (e.g. raw [0, 255] pixels for models with
            ``include_preprocessing``), a few hundred training images. Ignored (with a
            warning) otherwise.
        opset: ONNX opset, from 13 to the newest tf2onnx writes (18 in tf2onnx 1.17);
            None lets tf2onnx choose (15 in 1.17).
        int8_hard_swish: How the int8 file of a QAT model computes MobileNetV3's
            hard-swishes: "float" (ONNX Runtime dequantizes, computes in float32 and
            quantizes: the QAT model's values) or "int8" (integer ops, as ``to_tflite``'s
            default: faster, each value off by up to a third of a step; see
            ``export.onnx_rewrites``). A post-training int8 file keeps its quantizer's
            float32 hard-swishes either way.

    Returns:
        The ONNX file as ``bytes`` (also written to ``path`` when given). It is checked
        with ``onnx.checker`` and loaded once in ONNX Runtime first; when a check fails
        nothing is written.

    Raises:
        ImportError: Without onnx, onnxruntime or tf2onnx (``pip install
            keras-mobilenets[onnx]``).
        TypeError: If ``model`` is neither a Keras 3 nor a tf_keras model.
        ValueError: On an unknown ``quantization``, ``opset`` or ``int8_hard_swish``,
            "int8" of a float model without ``calibration_data`` or with data that does not
            fit the model's input (named: wrong shape, dtype, NaN or inf, values outside the
            model's range), a QAT model without "int8" or a float tf_keras model with
            "int8", a model input with an unknown spatial size, NaN or inf in the model's
            variables.
        RuntimeError: With another Keras backend than TensorFlow.

    Example:
        >>> model = keras_mobilenets.MobileNetV3Small(input_shape=(224, 224, 3))
        >>> content = to_onnx(model, "v3.onnx")
        >>> int8 = to_onnx(model, "v3_int8.onnx", quantization="int8",
        ...                calibration_data=images)
    """
    _checks.require_tensorflow_backend("export.to_onnx")
    _checks.check_choice("quantization", quantization, QUANTIZATIONS)
    _checks.check_choice("int8_hard_swish", int8_hard_swish, INT8_HARD_SWISH_MODES)
    tf_keras_model = _is_tf_keras_model(model)
    if not tf_keras_model and not isinstance(model, keras.Model):
        raise TypeError(
            f"`model` must be a Keras 3 or tf_keras model, got {type(model).__name__}."
        )
    tf2onnx = import_onnx_tool("tf2onnx")
    _check_opset(opset, tf2onnx)
    is_qat = tf_keras_model and _is_qat_model(model)
    if is_qat and quantization != "int8":
        raise ValueError(
            "A quantization-aware (QAT) model exports as int8: pass quantization='int8' "
            f"(got quantization={quantization!r}), or export the float model it was made from."
        )
    if tf_keras_model and not is_qat and quantization == "int8":
        raise ValueError(
            "quantization='int8' of a tf_keras model needs a QAT model "
            "(quantization.quantize_model); got a float tf_keras model."
        )
    calibration = None
    if quantization == "int8" and not is_qat:
        if calibration_data is None:
            raise ValueError(
                "`calibration_data` is required for quantization='int8' of a model that was "
                "not quantization-aware trained (calibration needs sample inputs, e.g. a few "
                "hundred training images); got calibration_data=None."
            )
        calibration = _calibration_batch(model, calibration_data)
    elif calibration_data is not None:
        logger.warning("`calibration_data` is only used for quantization='int8' of a float "
                       "model; ignored.")
    validate.check_finite_weights(model, "export")

    proto = _convert(model, opset, tf2onnx)
    if is_qat:
        proto = int8_weights(proto)
    _rewrite_for_onnx_runtime(proto, is_qat, int8_hard_swish)
    if calibration is not None:  # quantizes the rewritten float file (the faster one)
        proto = _quantize_static(proto, calibration)
        _rewrite_qdq_pairs(proto)
    _check_proto(proto, import_onnx_tool("onnx"))
    content = proto.SerializeToString()
    OnnxModel(content, num_threads=1)  # ONNX Runtime loads it (or raises)
    if path is not None:
        write_file(path, content)
    return content

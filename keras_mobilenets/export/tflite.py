"""Keras model -> TFLite flatbuffer with ``tf.lite.TFLiteConverter``.

Keras 3 models are exported with ``keras.export.ExportArchive`` (``training=False``, batch
fixed to 1, spatial size from the model) into a temporary SavedModel, which the converter
reads with ``from_saved_model``. This is the path ``TFLiteConverter.from_keras_model`` takes
internally for Keras 3 in TF 2.21, done explicitly so that (a) a failed export raises instead
of silently falling back to the Keras 2 path and (b) the graph is fully static (no
SHAPE/PACK ops for a dynamic batch). The converter keeps fused ops: hard-swish becomes
HARD_SWISH and ReLU6 is fused into CONV_2D / DEPTHWISE_CONV_2D.

tf_keras (Keras 2) models, e.g. tensorflow-model-optimization QAT models, are traced
(``model(x, training=False)`` for a batch of 1) into a concrete function that the converter
reads with ``from_concrete_functions``: the same ops and int8 outputs as tfmot's documented
``from_keras_model`` (checked on MobileNet 0.25), without its dynamic-batch SHAPE/PACK ops
and ~6x faster (it exports a whole SavedModel first). A QAT model is recognised by its tfmot
quantize layers and needs no representative data for "int8".

Every file is checked before it is returned or written (``export.validate``): the model's
variables must be finite, a quantized file's scales finite and positive, and the file must
load and invoke once in LiteRT, run in a separate Python process so that a file that makes
the runtime abort raises a ``ValueError`` here instead of killing the caller.
"""

import functools
import logging
import os
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_mobilenets import _checks, imagenet, quiet
from keras_mobilenets.export import delegation, validate
from keras_mobilenets.export.int8_rewrite import (
    DEFAULT_REWRITES,
    FLOAT_OPS,
    REWRITES,
    rewrite_int8_for_xnnpack,
)
from keras_mobilenets.export.rewrite import HARD_SWISH_MODES, rewrite_int8_hard_swish
from keras_mobilenets.layers import grouped_conv

logger = logging.getLogger(__name__)

QUANTIZATIONS = (None, "float16", "dynamic", "int8")
_IO_DTYPES = {"float32": tf.float32, "int8": tf.int8, "uint8": tf.uint8}
_QAT_LAYER_CLASSES = ("QuantizeLayer", "QuantizeWrapper", "QuantizeWrapperV2")


# Ops that cost next to nothing when they only compute a model output (a classifier's
# final softmax over its logits): listed by op_report, but no reason for a warning.
_CHEAP_OUTPUT_OPS = ("SOFTMAX", "QUANTIZE", "DEQUANTIZE")


def write_file(path, content):
    """Writes the bytes ``content`` to ``path``, creating its parent directories."""
    directory = os.path.dirname(os.fspath(path))
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, "wb") as f:
        f.write(content)


def _warn_non_delegated(flatbuffer):
    """Logs one warning listing the ops XNNPACK will not delegate (none: no warning)."""
    try:
        slow = delegation.non_delegated_ops(flatbuffer)
    except ImportError:
        logger.debug("ai-edge-litert is not installed: ops XNNPACK delegates not checked.")
        return
    slow = [row for row in slow if not (row["output"] and row["op"] in _CHEAP_OUTPUT_OPS)]
    if slow:
        hint = ""
        if any(row["op"] in FLOAT_OPS and row["dtype"] == "int8" for row in slow):
            hint = (" int8_rewrites=(*export.DEFAULT_REWRITES, 'float_ops') runs the int8 "
                    f"{'/'.join(FLOAT_OPS)} ops in float32, which XNNPACK takes (the file is "
                    "then no longer integer-only).")
        logger.warning(
            "%d op(s) of this TFLite file will not be delegated to XNNPACK and run on "
            "LiteRT's slower builtin kernels: %s (see keras_mobilenets.export.op_report).%s",
            len(slow), delegation.summarize_non_delegated(slow), hint,
        )


def _is_tf_keras_model(model):
    tf_keras = sys.modules.get("tf_keras")
    return tf_keras is not None and isinstance(model, tf_keras.Model)


def _is_qat_model(model):
    """Whether a tf_keras model holds tfmot quantize layers (quantization-aware trained)."""
    for layer in model.layers:
        for cls in type(layer).__mro__:
            if cls.__name__ in _QAT_LAYER_CLASSES and cls.__module__.startswith(
                "tensorflow_model_optimization"
            ):
                return True
    return False


def _check_io_dtype(io_dtype, quantization):
    """Returns the tf dtype of the inputs/outputs, validating ``io_dtype``."""
    allowed = tuple(_IO_DTYPES)
    if io_dtype is None:
        return tf.int8 if quantization == "int8" else tf.float32
    try:
        name = tf.as_dtype(io_dtype).name
    except TypeError:
        name = None
    if name not in _IO_DTYPES:
        raise ValueError(f"`io_dtype` must be None or one of {allowed}, got {io_dtype!r}.")
    if quantization != "int8" and name != "float32":
        raise ValueError(
            f"`io_dtype` can be {allowed} only with quantization='int8'; with "
            f"quantization={quantization!r} it must be None or 'float32', got {io_dtype!r}."
        )
    return _IO_DTYPES[name]


def _fixed_input_specs(model, batch=1, file_kind="TFLite"):
    """TensorSpecs with ``batch`` (None: any) and the model's spatial size; raises if a
    size is None (the message names ``file_kind``)."""
    specs = []
    for tensor in model.inputs:
        shape = tuple(tensor.shape)
        if any(dim is None for dim in shape[1:]):
            raise ValueError(
                f"{file_kind} export needs fixed input sizes, but model input {tensor.name!r} has "
                f"shape {shape}. Build the model with a fixed `input_shape`, e.g. "
                "MobileNetV3Small(input_shape=(224, 224, 3)), and copy the weights over "
                "(`new.set_weights(model.get_weights())`)."
            )
        specs.append(tf.TensorSpec((batch, *shape[1:]), dtype=tensor.dtype, name=tensor.name))
    return specs


def _representative_dataset(data, expected_shape, value_range, errors):
    """A converter ``representative_dataset``: yields one ``[sample]`` (batch of 1) at a time.

    ``data`` is a numpy array (a batch), a ``tf.data.Dataset``, a generator, or a callable
    returning an iterable. Elements may be batches or single samples; tuples ``(x, y)`` or
    ``(x,)`` contribute ``x``. Each element is checked (``_checks.check_input_batch``)
    against the model's input shape and ``value_range`` as it is read; the ``ValueError``
    of a bad element is also appended to ``errors``, for ``to_tflite`` to raise it in
    place of the converter's own error.
    """

    def samples():
        if isinstance(data, np.ndarray) or tf.is_tensor(data):
            elements = [data]
        elif isinstance(data, tf.data.Dataset):
            elements = data.as_numpy_iterator()
        elif callable(data):
            elements = data()
        else:
            elements = data
        try:
            for element in elements:
                if isinstance(element, (tuple, list)):
                    element = element[0]
                batch = _checks.check_input_batch(
                    "representative_data", element, expected_shape, value_range,
                    allow_sample=True, element="an element",
                )
                for sample in batch.astype("float32"):
                    yield [sample[None]]
        except ValueError as error:
            errors.append(error)
            raise

    return samples


def _check_representative_data(data, expected_shape, value_range):
    """Checks what can be checked before conversion: arrays whole, the kind of ``data``."""
    if isinstance(data, np.ndarray) or tf.is_tensor(data):
        _checks.check_input_batch("representative_data", data, expected_shape, value_range,
                                  allow_sample=True)
    elif isinstance(data, (str, bytes, dict)) or not (
        callable(data) or hasattr(data, "__iter__")
    ):
        raise ValueError(
            "`representative_data` must be a numpy array, a tf.data.Dataset, a generator or "
            f"a callable returning an iterable of batches, got {type(data).__name__}."
        )


def _serve(model, postprocess):
    """``model(x, training=False)``, followed by ``postprocess`` when given."""
    if postprocess is None:
        return functools.partial(model.__call__, training=False)
    return lambda x: postprocess(model(x, training=False))


def _keras3_converter(model, export_dir, postprocess=None):
    """A converter reading a SavedModel of ``model`` (inference mode, batch 1)."""
    specs = _fixed_input_specs(model)
    signature = specs[0] if len(specs) == 1 else specs
    archive = keras.export.ExportArchive()
    archive.track(model)
    if isinstance(postprocess, keras.layers.Layer):
        archive.track(postprocess)
    archive.add_endpoint("serve", _serve(model, postprocess), input_signature=[signature])
    archive.write_out(export_dir, verbose=False)
    return tf.lite.TFLiteConverter.from_saved_model(export_dir)


def _tf_keras_converter(model, postprocess=None):
    """A converter reading ``model(x, training=False)`` traced for a batch of 1."""
    specs = _fixed_input_specs(model)
    holder = tf.Module()
    holder.model_variables = list(model.variables)
    serve = _serve(model, postprocess)
    holder.serve = tf.function(
        lambda *inputs: serve(inputs[0] if len(inputs) == 1 else list(inputs)),
        input_signature=specs,
    )
    return tf.lite.TFLiteConverter.from_concrete_functions(
        [holder.serve.get_concrete_function()], holder
    )


def to_tflite(
    model, path=None, *, quantization=None, representative_data=None, io_dtype=None,
    int8_hard_swish="int8", postprocess=None, int8_rewrites=DEFAULT_REWRITES,
):
    """Converts a Keras model to a TFLite flatbuffer.

    Args:
        model: A Keras 3 model with fixed input sizes (any model of this package, with or
            without a user's head), or a tf_keras model such as a tfmot QAT model.
        path: Optional file to write (parent directories are created).
        quantization: None (float32), "float16" (float16 weights), "dynamic" (int8 weights,
            float activations) or "int8" (full integer: int8 kernels and activations,
            ``TFLITE_BUILTINS_INT8`` only).
        representative_data: Calibration inputs for "int8", in the model's input range
            (e.g. raw [0, 255] pixels for models with ``include_preprocessing``): a numpy
            batch, a ``tf.data.Dataset`` (of batches or samples, ``(x, y)`` allowed), a
            generator, or a callable returning one. Batches are split into single samples.
            Required for post-training int8 of a float model; optional for a QAT model.
        io_dtype: Dtype of the file's inputs and outputs with "int8": tf.int8 (default),
            tf.uint8 or tf.float32 (quantize/dequantize ops added inside). Other
            quantizations keep float32 inputs and outputs.
        int8_hard_swish: With "int8", how hard-swish is written (see ``export.rewrite``):
            "int8" (default) replaces each int8 HARD_SWISH op, which XNNPACK does not run,
            by int8 MUL/ADD/MUL (integer-only, ~5x faster MobileNetV3 on CPUs); "float"
            by dequantize/float HARD_SWISH/quantize; "native" keeps the HARD_SWISH op
            (for runtimes with a fast int8 hard-swish kernel).
        postprocess: Optional callable (e.g. a Keras layer such as detection's
            ``SSDPostprocess``) applied to the model's outputs inside the exported graph;
            it sees float tensors. With "int8" the network stays integer and the ops of
            ``postprocess`` without int8 kernels run in float (``TFLITE_BUILTINS`` is
            allowed besides ``TFLITE_BUILTINS_INT8``); ``io_dtype`` then applies to the
            inputs only, the outputs keep ``postprocess``'s dtypes.
        int8_rewrites: With "int8", the rewrites of ``export.int8_rewrite`` to apply
            (``()`` for none): channel shuffles folded into the preceding 1x1
            convolution ("shuffle"), AVERAGE_POOL_2D as DEPTHWISE_CONV_2D
            ("average_pool"), standalone RELU as ADD with a fused RELU ("relu"), the
            right-hand side of each int8 BATCH_MATMUL requantized to zero point 0
            ("batch_matmul": MobileNetV4's attention products on XNNPACK), all four by
            default; grouped 1x1 convolutions written dense ("grouped", opt-in: a bit
            faster, much larger); int8 BATCH_MATMUL, SOFTMAX and GELU run in float32
            between DEQUANTIZE and QUANTIZE ("float_ops", opt-in: the attention's softmax
            and Hybrid-Large's GELUs then run on XNNPACK too, and the file is no longer
            integer-only). They replace int8 ops XNNPACK runs slowly or not at all.

    After conversion, when ai-edge-litert is installed, the file is loaded once in its
    interpreter and ONE warning lists the ops that XNNPACK will not delegate (see
    ``export.op_report``), if any: they run on slower builtin kernels.

    Returns:
        The TFLite flatbuffer as ``bytes``. Before it is returned (and written to ``path``)
        it is checked: its quantization scales must be finite and > 0, and LiteRT must
        load and invoke it once in a separate Python process (skipped when ai-edge-litert
        is not installed). When a check fails nothing is written: a file already at
        ``path`` is left as it was.

    Raises:
        ValueError: On an unknown ``quantization`` or ``io_dtype``, "int8" without
            ``representative_data`` for a non-QAT model, ``representative_data`` (an
            array, or any element of a dataset or generator) that does not fit the
            model's input (the message names it, what it got and the input shape: a
            wrong shape, which the converter would otherwise resize silently, a
            non-numeric dtype, NaN or inf, values outside [0, 255] or scaled to [0, 1]
            for a model with built-in preprocessing), a model input with an
            unknown spatial size, a model with NaN or inf in its variables (named), a
            converted file with invalid scales (tensors named) or one that LiteRT cannot
            run (the message says how the test run failed).
        TypeError: If ``model`` is neither a Keras 3 nor a tf_keras model.
        RuntimeError: With another Keras backend than TensorFlow.

    Example:
        >>> model = keras_mobilenets.MobileNetV3Small(input_shape=(224, 224, 3))
        >>> flatbuffer = to_tflite(model, "v3.tflite")
        >>> int8 = to_tflite(model, quantization="int8", representative_data=images)
    """
    _checks.require_tensorflow_backend("export.to_tflite")
    _checks.check_choice("quantization", quantization, QUANTIZATIONS)
    _checks.check_choice("int8_hard_swish", int8_hard_swish, HARD_SWISH_MODES)
    if isinstance(int8_rewrites, str) or not all(r in REWRITES for r in int8_rewrites):
        raise ValueError(
            f"`int8_rewrites` must be a collection of {REWRITES}, got {int8_rewrites!r}."
        )
    io_type = _check_io_dtype(io_dtype, quantization)
    tf_keras_model = _is_tf_keras_model(model)
    if not tf_keras_model and not isinstance(model, keras.Model):
        raise TypeError(
            f"`model` must be a Keras 3 or tf_keras model, got {type(model).__name__}."
        )
    is_qat = tf_keras_model and _is_qat_model(model)
    if quantization == "int8" and representative_data is None and not is_qat:
        raise ValueError(
            "`representative_data` is required for quantization='int8' of a model that was "
            "not quantization-aware trained (calibration needs sample inputs, e.g. a few "
            "hundred training images); got representative_data=None."
        )
    if postprocess is not None and not callable(postprocess):
        raise ValueError(
            f"`postprocess` must be None or a callable, got {type(postprocess).__name__}."
        )
    validate.check_finite_weights(model, "export")
    if quantization != "int8" and representative_data is not None:
        logger.warning("`representative_data` is only used with quantization='int8'; ignored.")
    data_errors = []
    if quantization == "int8" and representative_data is not None:
        expected_shape = tuple(model.inputs[0].shape[1:])
        value_range = imagenet.expected_input_range(model)
        _check_representative_data(representative_data, expected_shape, value_range)

    # The file's ops must not depend on this machine's TensorFlow kernels: grouped
    # convolutions are traced (and converted) as TensorFlow's one native op.
    with (tempfile.TemporaryDirectory(prefix="keras_mobilenets_export_") as export_dir,
          grouped_conv.exporting()):
        if tf_keras_model:
            converter = _tf_keras_converter(model, postprocess)
        else:
            converter = _keras3_converter(model, export_dir, postprocess)
        if quantization is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif quantization == "int8":
            if not is_qat:
                # For a QAT model the ranges come from its fake-quant ops; TF 2.21's
                # converter rejects this setting without a representative dataset
                # ("For full integer quantization, a `representative_dataset` must be
                # specified") before it looks for them, and converts to int8 kernels anyway.
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                if postprocess is not None:
                    converter.target_spec.supported_ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
            converter.inference_input_type = io_type
            if postprocess is None:
                converter.inference_output_type = io_type
            if representative_data is not None:
                converter.representative_dataset = _representative_dataset(
                    representative_data, expected_shape, value_range, data_errors
                )
        try:
            with quiet.native_log_filter():  # the calibration's "fully_quantize: ..." line
                flatbuffer = converter.convert()
        except Exception:
            if data_errors:  # a bad element: our message, not the converter's trace
                raise data_errors[0] from None
            raise
    if quantization == "int8" and int8_hard_swish != "native":
        flatbuffer, counts = rewrite_int8_hard_swish(flatbuffer, int8_hard_swish)
        if any(counts.values()):
            logger.info("Rewrote int8 HARD_SWISH ops: %s", counts)
    if quantization == "int8" and int8_rewrites:
        flatbuffer, counts = rewrite_int8_for_xnnpack(flatbuffer, int8_rewrites)
        if any(counts.values()):
            logger.info("Rewrote int8 ops for XNNPACK: %s", counts)
    if quantization in ("int8", "dynamic"):
        try:
            validate.check_flatbuffer_scales(flatbuffer)
        except ImportError:
            logger.info("ai-edge-litert is not installed: quantization scales not checked.")
    validate.check_runs_in_litert(flatbuffer)
    _warn_non_delegated(flatbuffer)

    if path is not None:
        write_file(path, flatbuffer)
    return flatbuffer

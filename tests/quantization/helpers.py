"""Helpers of the QAT tests: int8 TFLite conversion, op/tensor-type report, weight checks.

TFLite conversion: ``convert_int8`` traces ``qat_model(x, training=False)`` for a batch
of 1 into a concrete function held by a bare ``tf.Module`` with the model's variables,
then converts with ``tf.lite.Optimize.DEFAULT`` and int8 input/output.
``TFLiteConverter.from_keras_model(qat_model)`` would first export a tf_keras SavedModel,
tracing every layer: ~80 s per model on this machine instead of ~13 s. Checked once for
MobileNet 0.25: both files have the same ops with the same tensor types (from_keras_model
adds SHAPE/STRIDED_SLICE/PACK for its dynamic batch size) and give identical int8 outputs.
"""

import collections

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert import interpreter as litert

WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def images(batch=8, seed=0, size=64):
    return np.random.default_rng(seed).uniform(0, 255, (batch, size, size, 3)).astype("float32")


def convert_int8(qat_model):
    """int8 TFLite flatbuffer of a QAT model (int8 input and output)."""
    holder = tf.Module()
    holder.model_variables = list(qat_model.variables)
    spec = tf.TensorSpec((1, *qat_model.input_shape[1:]), tf.float32)
    holder.serve = tf.function(lambda x: qat_model(x, training=False), input_signature=[spec])
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [holder.serve.get_concrete_function()], holder
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def interpreter(flatbuffer):
    # Without the default XNNPACK delegate, so the op list shows the model's own ops.
    result = litert.Interpreter(
        model_content=flatbuffer,
        experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    result.allocate_tensors()
    return result


def op_report(runner):
    """Counter of (op name, input dtypes, output dtypes) over the flatbuffer's ops."""
    tensors = {d["index"]: d for d in runner.get_tensor_details()}

    def dtypes(indices):
        return tuple(np.dtype(tensors[i]["dtype"]).name for i in indices if i >= 0)

    return collections.Counter(
        (op["op_name"], dtypes(op["inputs"]), dtypes(op["outputs"]))
        for op in runner._get_ops_details()
    )


def assert_int8_graph(report):
    """Every conv / fully connected runs in int8 and no op has a float tensor."""
    weighted = {key for key in report if key[0] in WEIGHTED_OPS}
    assert weighted, report
    for name, inputs, outputs in weighted:
        assert inputs[:2] == ("int8", "int8") and outputs == ("int8",), (name, inputs, outputs)
        assert inputs[2:] in ((), ("int32",)), (name, inputs)  # optional int32 bias
    float_ops = {key for key in report if "float32" in key[1] + key[2]}
    assert not float_ops, float_ops


def run_tflite(runner, batch):
    """Runs an int8 interpreter on a float batch, returns dequantized float outputs."""
    (inp,), (out,) = runner.get_input_details(), runner.get_output_details()
    in_scale, in_zero = inp["quantization"]
    out_scale, out_zero = out["quantization"]
    results = []
    for image in batch:
        q = np.clip(np.round(image / in_scale + in_zero), -128, 127).astype(np.int8)
        runner.set_tensor(inp["index"], q[None])
        runner.invoke()
        results.append((runner.get_tensor(out["index"])[0].astype("float32") - out_zero) * out_scale)
    return np.stack(results)


def _keras3_name(name):
    return {"depthwise_kernel": "kernel"}.get(name, name)


def assert_same_float_weights(model, qat_model):
    """Every weighted Keras 3 layer's weights equal the float weights of its quant_ wrapper.

    Compared by variable name (kernel, bias, gamma, moving_mean, ...): tfmot replaces a
    quantized kernel attribute by its fake-quant tensor, so the wrapper, not the inner
    layer, holds the variables (next to its quantizer ranges, named ``quant_<layer>/``).
    tf_keras names the depthwise kernel ``depthwise_kernel``, Keras 3 ``kernel``.
    """
    checked = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            checked += assert_same_float_weights(layer, qat_model)
            continue
        if not layer.weights:
            continue
        wrapper = qat_model.get_layer(f"quant_{layer.name}")
        prefix = f"{layer.name}/"
        actual = {
            _keras3_name(v.name[len(prefix):].split(":")[0]): v.numpy()
            for v in wrapper.weights
            if v.name.startswith(prefix)
        }
        expected = {v.name: np.asarray(v) for v in layer.weights}
        assert sorted(actual) == sorted(expected), layer.name
        for key, value in expected.items():
            np.testing.assert_array_equal(actual[key], value, err_msg=f"{layer.name}/{key}")
        checked += 1
    return checked

"""Helpers of the QAT tests: int8 export checks and weight checks.

int8 files are made with ``export.to_tflite(qat_model, quantization="int8")`` (a QAT model
needs no representative data) and inspected with ``export.op_tensor_types``.
"""

import keras
import numpy as np

from keras_mobilenets import export

WEIGHTED_OPS = export.KERNEL_OPS


def images(batch=8, seed=0, size=64):
    return np.random.default_rng(seed).uniform(0, 255, (batch, size, size, 3)).astype("float32")


def assert_int8_graph(flatbuffer):
    """Every conv / fully connected runs in int8 and no op has a float tensor."""
    rows = export.op_tensor_types(flatbuffer, ops=None)
    kernels = [row for row in rows if row["op"] in WEIGHTED_OPS]
    assert kernels, rows
    for row in kernels:
        assert (row["input"], row["weights"], row["output"]) == ("INT8", "INT8", "INT8"), row
        assert row["bias"] in (None, "INT32"), row
    float_ops = [row for row in rows if "FLOAT32" in (row["input"], row["weights"],
                                                     row["bias"], row["output"])]
    assert not float_ops, float_ops


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

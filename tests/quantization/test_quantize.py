"""quantize_model: Keras 3 -> tf_keras QAT model, weights, training, int8 TFLite, errors.

TFLite conversion: the tests trace ``qat_model(x, training=False)`` into a concrete
function held by a bare ``tf.Module`` with the model's variables, then convert with
``tf.lite.Optimize.DEFAULT`` and int8 input/output. This produces the same file as
``TFLiteConverter.from_keras_model(qat_model)`` but skips the tf_keras SavedModel tracing
of every layer that makes ``from_keras_model`` take ~80 s per model on this machine (vs
~13 s) -- too slow for the test suite.
"""

import collections

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_mobilenets as km
from keras_mobilenets.quantization import load_qat_model, quantize_model, save_qat_model
from tests.helpers import randomize_batch_norm

pytest.importorskip("tf_keras")
pytest.importorskip("tensorflow_model_optimization")
litert = pytest.importorskip("ai_edge_litert.interpreter")

from keras_mobilenets.quantization._tf_keras import tf_keras  # noqa: E402

SIZE = 64
CLASSES = 5
VARIANTS = {
    "mobilenet_v1_0.25": lambda: km.MobileNet(
        input_shape=(SIZE, SIZE, 3), alpha=0.25, classes=CLASSES
    ),
    "mobilenet_v2_0.35": lambda: km.MobileNetV2(
        input_shape=(SIZE, SIZE, 3), alpha=0.35, classes=CLASSES
    ),
    "mobilenet_v3_small": lambda: km.MobileNetV3Small(
        input_shape=(SIZE, SIZE, 3), classes=CLASSES
    ),
    "mobilenet_v3_large": lambda: km.MobileNetV3Large(
        input_shape=(SIZE, SIZE, 3), classes=CLASSES
    ),
    "mobilenet_v3_small_minimalistic": lambda: km.MobileNetV3Small(
        input_shape=(SIZE, SIZE, 3), minimalistic=True, classes=CLASSES
    ),
}
WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def images(batch=8, seed=0, size=SIZE):
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


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request):
    """(name, float Keras 3 model with random BN statistics, its QAT model).

    Shared by the tests of one variant; the training test (defined last) changes the
    QAT model's weights, so the weight and agreement tests run before it.
    """
    keras.utils.set_random_seed(0)
    model = VARIANTS[request.param]()
    randomize_batch_norm(model)
    return request.param, model, quantize_model(model)


def test_float_weights_are_copied(variant):
    _, model, qat_model = variant
    assert isinstance(qat_model, tf_keras.Model)
    assert assert_same_float_weights(model, qat_model) > 10


def test_untrained_qat_features_follow_the_float_model(variant):
    """Before training, QAT features differ from float ones by quantization noise only.

    Compared on the last feature map (input of ``avg_pool``), which is input dependent
    (the random-weight logits are nearly the same for every image, so argmax agreement
    would test nothing). The untrained QAT model quantizes every activation with its
    initial range [-6, 6] (8-bit step 0.047) instead of calibrated ranges, and errors
    accumulate over 30-60 layers: measured correlations are 0.93-0.99, so > 0.9 leaves a
    margin while a wrong weight, a missing layer or a swapped input would give ~0.
    """
    _, model, qat_model = variant
    float_features = keras.Model(model.input, model.get_layer("avg_pool").input)
    qat_features = tf_keras.Model(qat_model.input, qat_model.get_layer("quant_avg_pool").input)
    batch = images()
    expected = np.asarray(float_features(batch)).ravel()
    actual = qat_features(batch, training=False).numpy().ravel()
    assert np.corrcoef(expected, actual)[0, 1] > 0.9


def test_qat_trains_and_converts_to_int8(variant):
    name, _, qat_model = variant
    qat_model.compile(
        optimizer=tf_keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        run_eagerly=True,  # 3 steps: tracing the train function would cost more
    )
    batch = images()
    labels = np.arange(len(batch)) % CLASSES
    losses = [float(qat_model.train_on_batch(batch, labels)) for _ in range(3)]
    assert np.all(np.isfinite(losses)), losses
    assert losses[-1] < losses[0], (name, losses)

    runner = interpreter(convert_int8(qat_model))
    assert runner.get_input_details()[0]["dtype"] == np.int8
    assert runner.get_output_details()[0]["dtype"] == np.int8
    assert_int8_graph(op_report(runner))
    probabilities = run_tflite(runner, batch[:2])
    expected = qat_model(batch[:2], training=False).numpy()
    # int8 softmax output has a step of 1/256; the rest is integer-arithmetic rounding.
    np.testing.assert_allclose(probabilities, expected, atol=0.05)


def test_nested_backbone_with_user_head():
    backbone = km.MobileNetV2(input_shape=(SIZE, SIZE, 3), alpha=0.35, include_top=False)
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = backbone(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = keras.layers.Dropout(0.1, name="head_dropout")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="head_logits")(x)
    model = keras.Model(inputs, outputs, name="user_model")

    qat_model = quantize_model(model)

    names = {layer.name for layer in qat_model.layers}
    assert {"quant_block_16_project", "quant_head_logits", "quant_head_dropout"} <= names
    assert assert_same_float_weights(model, qat_model) > 10
    batch = images(batch=2)
    assert qat_model(batch).shape == (2, 3)

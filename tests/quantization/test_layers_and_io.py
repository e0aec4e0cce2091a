"""Twins, QuantizeConfigs on a tiny ShuffleNet-style model, save/load, bad arguments."""

import os
import sys
import warnings

import keras
import numpy as np
import pytest

import keras_mobilenets as km
from keras_mobilenets.quantization import load_qat_model, quantize_model, save_qat_model

pytest.importorskip("tf_keras")
pytest.importorskip("tensorflow_model_optimization")
litert = pytest.importorskip("ai_edge_litert.interpreter")

from keras_mobilenets import export  # noqa: E402
from tests import helpers  # noqa: E402
from tests.quantization.helpers import (  # noqa: E402
    assert_int8_graph,
    assert_same_float_weights,
    images,
)
from keras_mobilenets.quantization import layers as twins  # noqa: E402
from keras_mobilenets.quantization import translate  # noqa: E402
from keras_mobilenets.quantization._tf_keras import tf_keras  # noqa: E402

SIZE = 32


def tiny_model():
    """Every layer kind needing care: grouped conv, shuffle, concat, pools, SE, preprocessing."""
    L = keras.layers
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = L.Rescaling(1 / 127.5, offset=-1.0, name="rescaling")(inputs)
    x = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem")(x)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = km.HardSwish(name="stem_act")(x)
    y = L.Conv2D(8, 1, groups=2, use_bias=False, name="gconv")(x)
    y = L.BatchNormalization(name="gconv_bn")(y)
    y = L.ReLU(name="gconv_relu")(y)
    y = km.ChannelShuffle(groups=2, name="shuffle")(y)
    y = L.ZeroPadding2D(((0, 1), (0, 1)), name="dw_pad")(y)
    y = L.DepthwiseConv2D(3, strides=2, use_bias=False, name="dw")(y)
    y = L.BatchNormalization(name="dw_bn")(y)
    shortcut = L.AveragePooling2D(3, strides=2, padding="same", name="shortcut_pool")(x)
    x = L.Concatenate(name="concat")([shortcut, y])
    gate = L.GlobalAveragePooling2D(keepdims=True, name="se_pool")(x)
    gate = L.Conv2D(4, 1, name="se_reduce")(gate)
    gate = L.ReLU(name="se_relu")(gate)
    gate = L.Conv2D(16, 1, name="se_expand")(gate)
    gate = km.HardSigmoid(name="se_gate")(gate)
    x = L.Multiply(name="se_multiply")([x, gate])
    x = L.MaxPooling2D(3, strides=2, padding="same", name="max_pool")(x)
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = L.Dense(4, name="logits")(x)
    return keras.Model(inputs, outputs, name="tiny")


def test_twins_compute_what_the_keras3_layers_compute():
    x = np.linspace(-5, 5, 2 * 3 * 3 * 6, dtype="float32").reshape(2, 3, 3, 6)
    pairs = [
        (km.HardSwish(), twins.HardSwish()),
        (km.HardSigmoid(), twins.HardSigmoid()),
        (km.ChannelShuffle(groups=3), twins.ChannelShuffle(groups=3)),
        (keras.layers.Rescaling(0.5, offset=-1.0), twins.QATRescaling(0.5, offset=-1.0)),
    ]
    for keras3_layer, twin in pairs:
        np.testing.assert_allclose(twin(x).numpy(), np.asarray(keras3_layer(x)), atol=1e-6)
        clone = type(twin).from_config(twin.get_config())
        assert clone.get_config() == twin.get_config()


@pytest.mark.parametrize("groups", [0, 2.0, True, "2"])
def test_twin_channel_shuffle_rejects_bad_groups_like_the_keras3_layer(groups):
    for layer_class in (km.ChannelShuffle, twins.ChannelShuffle):
        with pytest.raises(ValueError, match=f"`groups` must be an int >= 1, got {groups!r}"):
            layer_class(groups=groups)


def test_translation_is_exact_in_float():
    model = tiny_model()
    twin = translate.to_tf_keras(model)
    batch = images(batch=2, size=SIZE)
    np.testing.assert_allclose(twin(batch).numpy(), np.asarray(model(batch)), atol=1e-5)
    assert [layer.name for layer in twin.layers] == [layer.name for layer in model.layers]


def test_weights_trained_in_the_twin_copy_back_into_a_nested_model():
    # What fit_phase does under several workers: train the tf_keras twin, copy back.
    from keras_mobilenets.finetune import build_classifier, set_backbone_trainable
    from keras_mobilenets.training import all_layers

    model = build_classifier(3, "MobileNetV3Small", image_size=32, weights=None, alpha=0.35,
                             minimalistic=True)
    set_backbone_trainable(model, False)
    twin = translate.to_tf_keras(model)  # the backbone's layers are flattened into it
    assert not twin.get_layer("conv").trainable and twin.get_layer("head_predictions").trainable
    batch = images(batch=4, size=32)
    before = np.asarray(model(batch, training=False))
    twin.compile(tf_keras.optimizers.SGD(0.5), "sparse_categorical_crossentropy")
    twin.fit(batch, np.array([0, 1, 2, 0]), epochs=2, verbose=0)
    expected = twin(batch, training=False).numpy()
    assert np.max(np.abs(expected - before)) > 1e-3
    copied = translate.copy_weights_from_tf_keras(twin, model)
    assert copied == sum(1 for layer in all_layers(model) if layer.weights)
    np.testing.assert_allclose(np.asarray(model(batch, training=False)), expected, atol=1e-5)
    with pytest.raises(ValueError, match="has no twin in"):
        translate.copy_weights_from_tf_keras(translate.to_tf_keras(tiny_model()), model)


@pytest.mark.slow
def test_tiny_shufflenet_style_model_quantizes_and_runs_in_int8():
    model = tiny_model()
    qat_model = quantize_model(model)
    assert assert_same_float_weights(model, qat_model) == 9
    qat_model.compile(tf_keras.optimizers.Adam(1e-2), run_eagerly=True,
                      loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    batch = images(size=SIZE)
    labels = np.arange(len(batch)) % 4
    losses = [float(qat_model.train_on_batch(batch, labels)) for _ in range(3)]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses

    flatbuffer = export.to_tflite(qat_model, quantization="int8")
    assert_int8_graph(flatbuffer)
    builtin = litert.Interpreter(
        model_content=flatbuffer,
        experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    builtin.allocate_tensors()
    grouped = [
        d for d in builtin.get_tensor_details()
        if len(d["shape"]) == 4 and tuple(d["shape"]) == (8, 1, 1, 4)
    ]
    assert grouped, "grouped conv kernel (8 filters of 4 input channels) not found"
    runner = export.LiteRTModel(flatbuffer)  # default runtime: XNNPACK takes grouped convs
    logits = runner.predict(batch[:2])
    expected = qat_model(batch[:2], training=False).numpy()
    scale = runner.output_details[0]["quantization"][0]
    np.testing.assert_allclose(logits, expected, atol=4 * scale + 0.05 * np.abs(expected).max())


def test_save_and_load_round_trip(tmp_path):
    qat_model = quantize_model(tiny_model())
    batch = images(batch=4, size=SIZE)
    # One training-mode pass moves the quantizer ranges away from their initial values.
    qat_model(batch, training=True)
    qat_model.compile(tf_keras.optimizers.Adam(1e-3), "mse")
    path = os.path.join(tmp_path, "tiny.h5")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        save_qat_model(qat_model, path)
    # tf_keras' advice to use its .keras format (which QAT models cannot load back) is not shown.
    assert not [w for w in caught if "HDF5" in str(w.message)], [str(w.message) for w in caught]
    loaded = load_qat_model(path)
    np.testing.assert_array_equal(
        loaded(batch, training=False).numpy(), qat_model(batch, training=False).numpy()
    )
    for a, b in zip(loaded.get_weights(), qat_model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_bad_save_path(tmp_path):
    qat_model = quantize_model(tiny_model())
    with pytest.raises(ValueError, match=r"must end with \.h5"):
        save_qat_model(qat_model, os.path.join(tmp_path, "model.tflite"))
    with pytest.raises(ValueError, match=r"use a \.h5 path"):
        save_qat_model(qat_model, os.path.join(tmp_path, "model.keras"))
    with pytest.raises(ValueError, match="tf_keras model"):
        save_qat_model(tiny_model(), os.path.join(tmp_path, "model.h5"))


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)

    def call(self, inputs):
        return self.dense(inputs)


def test_not_a_functional_keras3_model():
    with pytest.raises(ValueError, match="got str"):
        quantize_model("mobilenet")
    with pytest.raises(ValueError, match="got Dense"):
        quantize_model(keras.layers.Dense(2))
    sequential = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="Sequential or subclassed"):
        quantize_model(sequential)
    with pytest.raises(ValueError, match="Sequential or subclassed"):
        quantize_model(Subclassed())
    tf_keras_model = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="got a tf_keras model"):
        quantize_model(tf_keras_model)


def test_unsupported_layers_are_named():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(x)
    with pytest.raises(ValueError, match=r"'double' of type Lambda.*Supported layer types"):
        quantize_model(keras.Model(inputs, x))

    class MyReLU(keras.layers.ReLU):
        pass

    y = MyReLU(name="my_relu")(inputs)
    with pytest.raises(ValueError, match="'my_relu' of type MyReLU"):
        quantize_model(keras.Model(inputs, y))

    z = keras.layers.Conv2D(4, 3, activation="elu", name="elu_conv")(inputs)
    with pytest.raises(ValueError, match="'elu_conv' of type Conv2D: activation 'elu'"):
        quantize_model(keras.Model(inputs, z))

    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(inputs)
    v = keras.layers.BatchNormalization(name="head_bn")(pooled)
    with pytest.raises(ValueError, match="BatchNormalization 'head_bn': it follows 'pool'"):
        quantize_model(keras.Model(inputs, keras.layers.Dense(2, name="fc")(v)))

    seq = keras.Sequential([keras.layers.Dense(2)], name="inner_seq")
    w = seq(keras.layers.Flatten()(inputs))
    with pytest.raises(ValueError, match="'inner_seq' of type Sequential"):
        quantize_model(keras.Model(inputs, w))


def test_import_does_not_need_tf_keras(tmp_path):
    env = helpers.environment()
    env.pop("TF_USE_LEGACY_KERAS", None)
    result = helpers.run_python([helpers.SCRIPTS / "import_without_tf_keras.py"], tmp_path, env)
    assert result.returncode == 0, result.stderr[-2000:]


def test_missing_tf_keras_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "tf_keras", None)
    monkeypatch.delitem(sys.modules, "keras_mobilenets.quantization._tf_keras")
    with pytest.raises(ImportError, match=r"pip install keras-mobilenets\[qat\]"):
        __import__("keras_mobilenets.quantization._tf_keras")

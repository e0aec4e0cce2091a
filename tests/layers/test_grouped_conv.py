"""GroupedConv2D: Conv2D's numbers and weights; the native or the split kernel, by support."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_mobilenets.layers import grouped_conv
from keras_mobilenets.layers.grouped_conv import Conv2D as GroupedConv2D
from tests.helpers import assert_config_round_trip, assert_keras_round_trip


def _pair(filters, kernel_size, **kwargs):
    """A GroupedConv2D and a Conv2D with the same config and weights, built on 12 channels."""
    ours = GroupedConv2D(filters, kernel_size, **kwargs)
    ours.build((None, None, None, 12))
    reference = keras.layers.Conv2D.from_config(ours.get_config())
    reference.build((None, None, None, 12))
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=w.shape).astype("float32") for w in ours.get_weights()]
    ours.set_weights(weights)
    reference.set_weights(weights)
    return ours, reference


LAYER_CASES = [
    (24, 1, {"groups": 3, "use_bias": False}),
    (16, 1, {"groups": 4, "use_bias": True}),
    (12, 1, {"groups": 3, "strides": 2}),
    (6, 3, {"groups": 2, "strides": 2, "padding": "same"}),
    (6, 3, {"groups": 3, "dilation_rate": 2, "padding": "same"}),
    (8, 1, {"groups": 1}),
]


def _outputs_and_gradients(layer, x, gradients=True):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * y)
    if not gradients:
        return [y]
    return [y, *tape.gradient(loss, [x, *layer.trainable_weights])]


@pytest.mark.parametrize("kernel", [None, *grouped_conv.KERNELS])
@pytest.mark.parametrize("filters, kernel_size, kwargs", LAYER_CASES)
def test_outputs_and_gradients_equal_grouped_conv2d(monkeypatch, kernel, filters, kernel_size,
                                                    kwargs):
    # kernel None: the one this TensorFlow chooses; else forced (the native kernel's
    # gradient only where it exists: forward only with TensorFlow's Eigen kernels).
    gradients = True
    if kernel is not None:
        monkeypatch.setattr(grouped_conv, "grouped_kernel", lambda: kernel)
        gradients = kernel == "split" or grouped_conv.native_grouped_gradient_supported()
    ours, reference = _pair(filters, kernel_size, **kwargs)
    x = tf.constant(np.random.default_rng(1).normal(size=(2, 9, 9, 12)).astype("float32"))
    actual = _outputs_and_gradients(ours, x, gradients)
    expected = _outputs_and_gradients(reference, x, gradients)  # keras (XLA if grouped)
    assert len(actual) == (2 + len(reference.trainable_weights) if gradients else 1)
    for a, e in zip(actual, expected):  # float32 sums in another order
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(e).max()))


def test_kernel_choice_follows_the_cpu_gradient():
    # The probe's answer is whether this TensorFlow differentiates a grouped convolution on
    # the CPU (oneDNN kernels: yes; Eigen's: no). CI runs the suite both ways.
    x = tf.ones((1, 3, 3, 6))
    try:
        with tf.device("/CPU:0"), tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.nn.convolution(x, tf.ones((1, 1, 2, 6)))
        tape.gradient(y, x)
        differentiable = True
    except tf.errors.InvalidArgumentError as error:
        assert "grouped convolutions are not supported" in str(error)
        differentiable = False
    assert grouped_conv.native_grouped_gradient_supported() is differentiable
    assert grouped_conv.grouped_kernel() == ("native" if differentiable else "split")


@pytest.mark.parametrize("jit_compile", [False, True])
def test_kernel_trains_inside_tf_function(jit_compile):
    layer, reference = _pair(24, 1, groups=3)
    x = tf.constant(np.random.default_rng(4).normal(size=(4, 5, 5, 12)).astype("float32"))

    @tf.function(jit_compile=jit_compile)
    def gradients(layer):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(layer(x)))
        return tape.gradient(loss, layer.trainable_weights)

    for actual, expected in zip(gradients(layer), gradients(reference)):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-4)


def test_grouped_pointwise_equals_numpy_formula():
    ours, _ = _pair(6, 1, groups=3, use_bias=False)
    x = np.random.default_rng(2).normal(size=(1, 4, 5, 12)).astype("float32")
    kernel = ours.get_weights()[0][0, 0]  # (12 // 3, 6)
    expected = np.concatenate(
        [x[..., 4 * g:4 * (g + 1)] @ kernel[:, 2 * g:2 * (g + 1)] for g in range(3)], axis=-1
    )
    np.testing.assert_allclose(ours(x), expected, rtol=1e-5, atol=1e-5)


def test_weights_have_conv2d_shapes_and_names():
    ours, reference = _pair(24, 1, groups=3, use_bias=False)
    assert [w.shape for w in ours.weights] == [(1, 1, 4, 24)]
    assert [w.path.split("/")[-1] for w in ours.weights] == ["kernel"]
    assert [w.shape for w in reference.weights] == [(1, 1, 4, 24)]


def test_config_and_keras_round_trip(tmp_path):
    layer = GroupedConv2D(12, 1, groups=3, use_bias=False, name="grouped")
    clone = assert_config_round_trip(layer)
    assert clone.groups == 3 and clone.name == "grouped"
    inputs = keras.Input((5, 5, 6))
    outputs = GroupedConv2D(9, 1, groups=3, name="grouped")(inputs)
    model = keras.Model(inputs, outputs)
    data = np.random.default_rng(3).normal(size=(2, 5, 5, 6)).astype("float32")
    loaded = assert_keras_round_trip(model, data, tmp_path)
    assert type(loaded.get_layer("grouped")) is GroupedConv2D


def test_indivisible_channels_are_a_value_error():
    with pytest.raises(ValueError, match="groups"):
        GroupedConv2D(10, 1, groups=3)
    with pytest.raises(ValueError, match="groups"):
        GroupedConv2D(9, 1, groups=3)(np.zeros((1, 2, 2, 4), "float32"))


def _forward_op_types(layer, shape):
    graph = tf.function(lambda x: layer(x)).get_concrete_function(
        tf.TensorSpec(shape, "float32")).graph
    return sorted(op.type for op in graph.get_operations()
                  if op.type not in ("Placeholder", "IdentityN", "Identity", "NoOp"))


@pytest.mark.parametrize("filters, kernel_size, kwargs", LAYER_CASES[:4])
def test_exporting_traces_the_native_op_where_training_splits(
        monkeypatch, filters, kernel_size, kwargs):
    # A machine without the native gradient (Eigen) trains with per-group ops, but what
    # it exports must be the same graph as on a oneDNN machine: one grouped Conv2D.
    monkeypatch.setattr(grouped_conv, "native_grouped_gradient_supported", lambda: False)
    ours, _ = _pair(filters, kernel_size, **kwargs)
    training_ops = _forward_op_types(ours, (2, 9, 9, 12))
    with grouped_conv.exporting():
        exported_ops = _forward_op_types(ours, (2, 9, 9, 12))
    assert training_ops.count("Conv2D") + training_ops.count("MatMul") == kwargs["groups"]
    assert exported_ops.count("Conv2D") == 1 and "MatMul" not in exported_ops
    assert grouped_conv.grouped_kernel() == "split"  # the context is left


def test_both_kernels_convert_to_the_same_tflite_ops(monkeypatch):
    from keras_mobilenets import export

    inputs = keras.Input((8, 8, 12))
    outputs = GroupedConv2D(24, 1, groups=3)(inputs)
    model = keras.Model(inputs, GroupedConv2D(6, 3, groups=3, padding="same")(outputs))
    histograms = {}
    for supported in (True, False):
        monkeypatch.setattr(grouped_conv, "native_grouped_gradient_supported",
                            lambda supported=supported: supported)
        histograms[supported] = export.op_histogram(export.to_tflite(model))
    assert histograms[False] == histograms[True] == {"CONV_2D": 2}

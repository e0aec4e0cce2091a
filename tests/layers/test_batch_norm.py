"""BatchNormalization: keras' numbers and weights, TensorFlow's fused kernel in training."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_mobilenets.layers.batch_norm import MIN_EPSILON, BatchNormalization
from tests.helpers import assert_config_round_trip, assert_keras_round_trip

X = np.random.default_rng(0).normal(2.0, 3.0, size=(4, 5, 6, 8)).astype("float32")


def _pair(**kwargs):
    """Our layer and keras' with the same config and random (positive-variance) weights."""
    ours = BatchNormalization(**kwargs)
    ours.build(X.shape)
    reference = keras.layers.BatchNormalization.from_config(ours.get_config())
    reference.build(X.shape)
    rng = np.random.default_rng(1)
    reference.set_weights([rng.uniform(0.5, 2.0, w.shape).astype("float32")
                           for w in reference.get_weights()])
    ours.set_weights(reference.get_weights())
    return ours, reference


def _train_step(layer, x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(y ** 3)
    return [y, *tape.gradient(loss, [x, *layer.trainable_weights])]


@pytest.mark.parametrize("kwargs", [
    {"epsilon": 1e-5, "momentum": 0.9},
    {"epsilon": 1e-3, "momentum": 0.99, "center": False},
    {"epsilon": 1e-3, "scale": False},
])
def test_training_outputs_gradients_and_moving_statistics_equal_keras(kwargs):
    ours, reference = _pair(**kwargs)
    x = tf.constant(X)
    for actual, expected in zip(_train_step(ours, x), _train_step(reference, x)):
        scale = float(np.abs(expected).max())
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5 * scale)
    # Moving statistics updated alike (the fused kernel's variance is Bessel-corrected).
    for actual, expected in zip(ours.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(actual, expected, rtol=1e-6)
    np.testing.assert_allclose(ours(X, training=False), reference(X, training=False),
                               rtol=0, atol=1e-5)


def test_the_fused_kernel_runs_in_training_only():
    ours, _ = _pair(epsilon=1e-3)

    def graph_ops(training):
        function = tf.function(lambda x: ours(x, training=training))
        graph = function.get_concrete_function(tf.TensorSpec(X.shape)).graph
        return {op.type for op in graph.get_operations()}

    ops = graph_ops(True)
    assert "FusedBatchNormV3" in ops and "Mean" not in ops
    assert "FusedBatchNormV3" not in graph_ops(False)
    # Frozen (trainable=False) layers normalise with their moving statistics, as keras' do.
    ours.trainable = False
    assert "FusedBatchNormV3" not in graph_ops(True)
    small, reference = _pair(epsilon=MIN_EPSILON / 10)  # below the kernel's limit: keras' code
    np.testing.assert_array_equal(small(X, training=True), reference(X, training=True))


def test_weights_files_move_between_keras_and_ours(tmp_path):
    def model(layer_class):
        inputs = keras.Input((5, 6, 8))
        outputs = layer_class(name="bn")(inputs)
        return keras.Model(inputs, outputs)

    ours, reference = model(BatchNormalization), model(keras.layers.BatchNormalization)
    rng = np.random.default_rng(2)
    reference.set_weights([rng.uniform(0.5, 2.0, w.shape) for w in reference.get_weights()])
    reference.save_weights(tmp_path / "keras.weights.h5")
    ours.load_weights(tmp_path / "keras.weights.h5")
    for a, b in zip(ours.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_config_and_keras_round_trip(tmp_path):
    layer = BatchNormalization(epsilon=1e-5, momentum=0.9, name="bn")
    clone = assert_config_round_trip(layer)
    assert clone.epsilon == 1e-5 and clone.momentum == 0.9
    inputs = keras.Input((5, 6, 8))
    model = keras.Model(inputs, BatchNormalization(name="bn")(inputs))
    loaded = assert_keras_round_trip(model, X, tmp_path)
    assert type(loaded.get_layer("bn")) is BatchNormalization

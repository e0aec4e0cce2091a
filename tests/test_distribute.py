"""tf.distribute: strategies by name, and MirroredStrategy training equal to one device."""

import json
import sys

import pytest

from keras_mobilenets import distribute
from keras_mobilenets.training import batch_norm_layers
from tests import background

# Runs in a fresh process: logical devices must be configured before TensorFlow starts.
# Trains the same small model from the same weights on the same 4 batches (global batch 16,
# SGD) on one device and under MirroredStrategy over two logical CPUs (8 images per
# replica), with synchronized batch norms and, as a control, with per-replica batch norms.
MIRRORED_SCRIPT = r"""
import json
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
import keras_mobilenets
from keras_mobilenets.datasets import shapes
from keras_mobilenets.distribute import strategy_from_name, synchronize_batch_norm

images, labels = shapes.load("train", num_images=64, image_size=32)
data = tf.data.Dataset.from_tensor_slices((images.astype("float32"), labels)).batch(16)
keras.utils.set_random_seed(0)
initial = None


def train(strategy, synchronized):
    global initial
    with strategy.scope():
        model = keras_mobilenets.MobileNetV3Small(
            input_shape=(32, 32, 3), alpha=0.35, minimalistic=True, classes=5,
            dropout_rate=0.0, weights=None)
        initial = model.get_weights() if initial is None else initial
        model.set_weights(initial)
        if synchronized:
            synchronize_batch_norm(model)
        model.compile(keras.optimizers.SGD(1e-3), "sparse_categorical_crossentropy")
    start = np.concatenate([np.ravel(v.numpy()) for v in model.trainable_weights])
    losses = model.fit(data, epochs=1, verbose=0).history["loss"]  # 4 steps
    weights = np.concatenate([np.ravel(v.numpy()) for v in model.trainable_weights])
    return model.distribute_strategy.num_replicas_in_sync, start, weights, losses


_, start, single, single_losses = train(tf.distribute.get_strategy(), True)
mirrored = strategy_from_name("mirrored", devices=["/cpu:0", "/cpu:1"])
result = {"update": float(np.max(np.abs(single - start))), "single_losses": single_losses}
for name, synchronized in (("synchronized", True), ("per_replica", False)):
    replicas, _, weights, losses = train(mirrored, synchronized)
    result[name] = {"replicas": replicas, "max_weight_difference":
                    float(np.max(np.abs(weights - single))), "losses": losses}
print("RESULT " + json.dumps(result))
"""


background.register("mirrored-vs-one-device",
                    lambda folder: {"args": [sys.executable, "-c", MIRRORED_SCRIPT]})


@pytest.mark.slow
@pytest.mark.background("mirrored-vs-one-device")
def test_mirrored_training_matches_one_device():
    process, _ = background.result("mirrored-vs-one-device")
    assert process.returncode == 0, process.stderr[-3000:]
    line = next(x for x in process.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    synchronized, per_replica = result["synchronized"], result["per_replica"]
    assert synchronized["replicas"] == per_replica["replicas"] == 2
    # Training moved the weights by ~1e-2. With synchronized batch norms the two replicas
    # compute what one device computes, only with float32 sums in another order (two
    # partial sums, then an all-reduce): the weights differ by ~1e-7 after the 4 steps.
    # The tolerance, 1e-5, is ~100x that and ~1000x below the update. (With a 10x larger
    # learning rate this tiny model, whose batch-norm statistics cover 8 values per replica
    # in the last stages, amplifies rounding differences within a few steps.)
    assert result["update"] > 5e-3
    assert synchronized["max_weight_difference"] < 1e-5
    assert synchronized["losses"] == pytest.approx(result["single_losses"], rel=1e-5)
    # Control: with per-replica batch norms (statistics of 8 images instead of 16) the
    # same comparison sees a difference of the order of the update itself.
    assert per_replica["max_weight_difference"] > 1e-3


def test_strategy_from_name():
    import tensorflow as tf

    assert distribute.strategy_from_name("default") is tf.distribute.get_strategy()
    assert distribute.strategy_from_name("mirrored", devices=["/cpu:0"]).num_replicas_in_sync == 1
    with pytest.raises(ValueError, match=r"`strategy` must be one of .*'gpu'"):
        distribute.strategy_from_name("gpu")
    with pytest.raises(ValueError, match="`devices` only applies to strategy='mirrored'"):
        distribute.strategy_from_name("default", devices=["/cpu:0"])
    with pytest.raises(ValueError, match="`strategy='tpu'`: no TPU found"):
        distribute.strategy_from_name("tpu")


def test_synchronize_batch_norm_covers_nested_models():
    from keras_mobilenets.finetune import build_classifier

    model = build_classifier(3, "MobileNetV3Small", image_size=32, weights=None, alpha=0.35,
                             minimalistic=True)
    norms = batch_norm_layers(model)
    assert distribute.synchronize_batch_norm(model) == len(norms) > 0
    assert all(layer.synchronized for layer in norms)

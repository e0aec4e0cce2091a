"""MirroredStrategy over two logical CPUs against one device (run by tests/test_distribute.py).

Runs in a fresh process: logical devices must be configured before TensorFlow starts.
Trains the same small model from the same weights on the same 4 batches (global batch 16,
SGD) on one device and under MirroredStrategy over two logical CPUs (8 images per
replica), with synchronized batch norms and, as a control, with per-replica batch norms,
and prints ``RESULT {json}``: the update of one device, the weight differences and losses.
"""

import json

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import keras_mobilenets  # noqa: E402
from keras_mobilenets.datasets import shapes  # noqa: E402
from keras_mobilenets.distribute import strategy_from_name, synchronize_batch_norm  # noqa: E402

images, labels = shapes.load("train", num_images=64, image_size=32)
data = tf.data.Dataset.from_tensor_slices((images.astype("float32"), labels)).batch(16)
keras.utils.set_random_seed(0)
initial = None


def train(strategy, synchronized):
    global initial
    with strategy.scope():
        model = keras_mobilenets.MobileNetV3Small(
            input_shape=(32, 32, 3), alpha=0.35, minimalistic=False, classes=5,
            dropout_rate=0.0, weights=None)
        initial = model.get_weights() if initial is None else initial
        model.set_weights(initial)
        if synchronized:
            model = synchronize_batch_norm(model)
        model.compile(keras.optimizers.SGD(3e-3), "sparse_categorical_crossentropy")
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

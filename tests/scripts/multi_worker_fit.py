"""``fit_phase`` as one MultiWorkerMirroredStrategy worker, or on one device (run by
tests/test_distribute.py).

As each of two workers (TF_CONFIG set) and, for reference, on one device: fit_phase trains a
Keras 3 classifier (4 SGD steps, global batch 16) and then its QAT model (calibrated, 4
steps). The weights go to the .npz file argv[1]; prints ``RESULT {json}``.
"""

import json
import os
import sys

import numpy as np
import tensorflow as tf

# Created before any other TensorFlow operation, as MultiWorkerMirroredStrategy requires.
if "TF_CONFIG" in os.environ:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
else:
    strategy = tf.distribute.get_strategy()

import keras  # noqa: E402
from keras_mobilenets import finetune  # noqa: E402
from keras_mobilenets.datasets import shapes  # noqa: E402
from keras_mobilenets.distribute import is_multi_worker, synchronize_batch_norm  # noqa: E402
from keras_mobilenets.quantization import quantize_model  # noqa: E402
from keras_mobilenets.training import reestimate_batch_norm  # noqa: E402

images, labels = shapes.load("train", num_images=64, image_size=32)
images = images.astype("float32")
data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
keras.utils.set_random_seed(0)
model = finetune.build_classifier(5, "MobileNetV3Small", image_size=32, weights=None,
                                  dropout_rate=0.0, alpha=0.35, minimalistic=True)
model = synchronize_batch_norm(model)
reestimate_batch_norm(model, images)  # random kernels: realistic statistics
start = [w.copy() for w in model.get_weights()]
phase = finetune.fit_phase(model, data, epochs=1, learning_rate=1e-3, optimizer="sgd",
                           strategy=strategy, verbose=0)
trained = model.get_weights()
with strategy.scope():
    qat = quantize_model(model, calibration_data=images[:16])
qat_phase = finetune.fit_phase(qat, data, epochs=1, learning_rate=1e-4, optimizer="sgd",
                               strategy=strategy, verbose=0)
np.savez(sys.argv[1], **{f"start/{i}": w for i, w in enumerate(start)},
         **{f"trained/{i}": w for i, w in enumerate(trained)},
         **{f"qat/{v.name}/{i}": v.numpy() for i, v in enumerate(qat.weights)})
print("RESULT " + json.dumps({
    "multi_worker": is_multi_worker(strategy), "replicas": strategy.num_replicas_in_sync,
    "loss": phase.history["loss"], "qat_loss": qat_phase.history["loss"]}))

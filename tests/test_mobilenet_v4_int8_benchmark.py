"""benchmarks/mobilenet_v4_int8.py trains on batches reshuffled every epoch.

With a global seed set (the benchmark sets one before building each model), Keras 3's
``model.fit(x, y, shuffle=True)`` on numpy arrays draws the same permutation every epoch:
every epoch had the same 32-image batches, and MobileNetV4 learnt those fixed batches
(through its batch norms' batch statistics in training mode) rather than the shapes. On
this project's CPU, Conv-Small at 64x64 with 2,000 images and 3 epochs (Adam 1e-3) reported
0.71 training accuracy in its third epoch while the trained model classified 0.46 of its
training images (training mode, other batches) and 0.21 of the test images.
"""

import keras
import numpy as np

from tests import helpers

SCRIPT = helpers.REPO / "benchmarks" / "mobilenet_v4_int8.py"


class _Recorder(keras.Model):
    """A one-weight model that keeps the labels of every batch ``fit`` gives it."""

    def __init__(self):
        inputs = keras.Input((32, 32, 3))
        pooled = keras.layers.GlobalAveragePooling2D()(inputs)
        super().__init__(inputs, keras.layers.Dense(5)(pooled))
        self.seen = []

    def compile(self, **kwargs):
        super().compile(run_eagerly=True, **kwargs)

    def train_step(self, data):
        _, y = data
        self.seen.append(np.asarray(y))
        return {"batches": len(self.seen)}


def test_float_training_batches_change_from_epoch_to_epoch():
    script = helpers.load_script(SCRIPT)
    images = np.zeros((40, 32, 32, 3), "float32")
    labels = np.arange(40, dtype="int32")  # an image's label is its index
    keras.utils.set_random_seed(0)  # as script.build does before training
    model = _Recorder()
    script.train_float(model, images, labels, epochs=2, batch_size=8, learning_rate=1e-3)
    first, second = np.concatenate(model.seen[:5]), np.concatenate(model.seen[5:])
    assert len(model.seen) == 10
    np.testing.assert_array_equal(np.sort(first), labels)  # each epoch: every image once
    np.testing.assert_array_equal(np.sort(second), labels)
    assert not np.array_equal(first, second)
    # Not the same batches either, in another order.
    batches = {tuple(sorted(b)) for b in model.seen[:5]}
    assert not all(tuple(sorted(b)) in batches for b in model.seen[5:])

import keras
import numpy as np

from keras_mobilenets.training import reestimate_batch_norm
from tests.helpers import random_images


def test_reestimate_batch_norm_sets_the_data_statistics():
    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(4, 3, padding="same", name="conv")
    norm = keras.layers.BatchNormalization(momentum=0.9, name="bn")
    inner = keras.Model(inputs, norm(conv(inputs)), name="inner")
    outer_inputs = keras.Input((8, 8, 3))
    model = keras.Model(outer_inputs, keras.layers.ReLU()(inner(outer_inputs)))
    images = random_images((8, 8, 3), batch=32, low=-1.0, high=1.0)
    assert reestimate_batch_norm(model, images, batch_size=32) == 1  # found inside `inner`
    features = np.asarray(conv(images))
    np.testing.assert_allclose(norm.moving_mean, features.mean(axis=(0, 1, 2)), atol=1e-5)
    np.testing.assert_allclose(norm.moving_variance, features.var(axis=(0, 1, 2)), rtol=1e-3)
    assert norm.momentum == 0.9


def test_reestimate_batch_norm_averages_batches():
    inputs = keras.Input((4, 4, 2))
    norm = keras.layers.BatchNormalization()
    model = keras.Model(inputs, norm(inputs))
    images = np.concatenate([np.zeros((4, 4, 4, 2)), np.full((4, 4, 4, 2), 2.0)]).astype("float32")
    reestimate_batch_norm(model, images, batch_size=4)
    np.testing.assert_allclose(norm.moving_mean, [1.0, 1.0])  # mean of batch means 0 and 2
    np.testing.assert_allclose(norm.moving_variance, [0.0, 0.0], atol=1e-6)

"""Training-time augmentation and small helpers on ``(images, labels)`` datasets.

Augmentation runs in the ``tf.data`` pipeline, not in the model, so the model stays a plain
network for QAT and TFLite.

Example:
    >>> from keras_mobilenets.finetune import data
    >>> train = data.augment(train, data.augmentation(seed=0))
    >>> calibration = data.take_images(train, 256)
"""

import keras
import numpy as np
import tensorflow as tf

from keras_mobilenets import _checks


def augmentation(seed=0, flip=True, rotation=0.05, zoom=0.1, contrast=0.1):
    """Keras preprocessing layers for training-time augmentation of [0, 255] images.

    Args:
        seed: Seed of the random layers.
        flip: Random horizontal flips.
        rotation: Largest rotation as a fraction of a full turn (0 disables).
        zoom: Largest zoom in or out as a fraction of the size (0 disables).
        contrast: Largest contrast change as a fraction (0 disables).

    Returns:
        A ``keras.layers.Pipeline`` (call it with ``training=True``, or use
        :func:`augment`): unlike a ``keras.Sequential``, it stays in TensorFlow inside a
        ``tf.data`` map, so it augments ``tf.data`` pipelines on every Keras backend.

    Example:
        >>> train = augment(train, augmentation(rotation=0.1))
    """
    _checks.check_int("seed", seed, minimum=0)
    layers = []
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if rotation:
        layers.append(keras.layers.RandomRotation(rotation, seed=seed + 1))
    if zoom:
        layers.append(keras.layers.RandomZoom(zoom, seed=seed + 2))
    if contrast:
        layers.append(keras.layers.RandomContrast(contrast, value_range=(0, 255), seed=seed + 3))
    return keras.layers.Pipeline(layers, name="augmentation")


def augment(dataset, layers):
    """Applies augmentation ``layers`` to the images of a dataset of ``(images, labels)``.

    The batches go through the layers one at a time: the random layers draw from one seed
    generator, so that a seeded run draws the same transformations for the same batches
    every time (parallel calls would draw in the order the threads happen to run).

    Example:
        >>> train = augment(train, augmentation())
    """
    return dataset.map(lambda x, y: (layers(x, training=True), y)).prefetch(tf.data.AUTOTUNE)


def arrays_dataset(images, labels, batch_size, shuffle_seed=None):
    """Batches of numpy ``images`` (as float32) and ``labels``, reshuffled each epoch if seeded.

    The images are kept in their own dtype (uint8 images take a quarter of the memory) and
    cast batch by batch.

    Example:
        >>> train = arrays_dataset(x_train, y_train, 32, shuffle_seed=0)
    """
    _checks.check_int("batch_size", batch_size, minimum=1)
    data = tf.data.Dataset.from_tensor_slices(
        (np.asarray(images), np.asarray(labels, dtype="int32"))
    )
    if shuffle_seed is not None:
        data = data.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y))
    return data.prefetch(tf.data.AUTOTUNE)


def take_images(dataset, count):
    """The first ``count`` images of a dataset of ``(images, labels)`` batches, as numpy.

    Example:
        >>> calibration = take_images(train, 256)
    """
    _checks.check_int("count", count, minimum=1)
    parts, total = [], 0
    for images, _ in dataset:
        parts.append(np.asarray(images))
        total += len(parts[-1])
        if total >= count:
            break
    return np.concatenate(parts)[:count]


def dataset_arrays(dataset):
    """All ``(images, labels)`` of a batched dataset as two numpy arrays.

    Example:
        >>> x_val, y_val = dataset_arrays(validation)
    """
    images, labels = [], []
    for x, y in dataset:
        images.append(np.asarray(x))
        labels.append(np.asarray(y))
    return np.concatenate(images), np.concatenate(labels)

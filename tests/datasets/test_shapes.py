"""The synthetic shapes dataset: determinism, formats, box/mask agreement, learnability."""

import keras
import numpy as np
import pytest

from keras_mobilenets.datasets import shapes


def test_same_seed_same_data_and_prefix_stability():
    a_images, a_labels = shapes.load("train", num_images=20, seed=3)
    b_images, b_labels = shapes.load("train", num_images=20, seed=3)
    np.testing.assert_array_equal(a_images, b_images)
    np.testing.assert_array_equal(a_labels, b_labels)
    c_images, _ = shapes.load("train", num_images=10, seed=3)
    np.testing.assert_array_equal(c_images, a_images[:10])
    d_images, _ = shapes.load("train", num_images=20, seed=4)
    assert not np.array_equal(a_images, d_images)


@pytest.mark.parametrize("task", shapes.TASKS)
def test_splits_differ(task):
    train, _ = shapes.load("train", num_images=30, task=task)
    test, _ = shapes.load("test", num_images=30, task=task)
    flat_train = {image.tobytes() for image in train}
    assert not flat_train & {image.tobytes() for image in test}


def test_classification_shapes_dtypes_and_balance():
    images, labels = shapes.load("test", num_images=100, image_size=48)
    assert images.shape == (100, 48, 48, 3) and images.dtype == np.uint8
    assert labels.shape == (100,) and labels.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(labels, minlength=5), [20] * 5)
    assert images.std() > 20  # not blank


def test_detection_boxes_match_segmentation_masks():
    images, targets = shapes.load("train", num_images=40, task="detection", max_objects=3)
    seg_images, masks = shapes.load("train", num_images=40, task="segmentation", max_objects=3)
    np.testing.assert_array_equal(images, seg_images)  # same scenes
    boxes, labels = targets["boxes"], targets["labels"]
    assert boxes.shape == (40, 3, 4) and boxes.dtype == np.float32
    assert labels.shape == (40, 3) and labels.dtype == np.int32
    assert masks.shape == (40, 64, 64) and masks.dtype == np.uint8
    valid = labels >= 0
    assert valid[:, 0].all() and (valid.sum(1) > 1).any()
    np.testing.assert_array_equal(boxes[~valid], -1)
    assert set(np.unique(labels[valid])) == set(range(5))
    for i in range(40):
        covered = np.zeros((64, 64), bool)
        for box, label in zip(boxes[i][valid[i]], labels[i][valid[i]]):
            x0, y0, x1, y1 = box.astype(int)
            assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
            region = masks[i, y0:y1, x0:x1]
            # The box is tight around pixels of its class (every border row/column is hit)...
            hit = region == label + 1
            assert hit[0].any() and hit[-1].any() and hit[:, 0].any() and hit[:, -1].any()
            # ...and holds no other object.
            assert set(np.unique(region)) <= {0, label + 1}
            covered[y0:y1, x0:x1] |= hit
        # every object pixel of the mask lies in a box of its class
        assert np.array_equal(covered, masks[i] > 0)


def test_as_dataset_batches():
    dataset = shapes.as_dataset("train", num_images=10, task="detection", batch_size=4,
                                shuffle=True)
    images, targets = next(iter(dataset))
    assert images.shape == (4, 64, 64, 3) and images.dtype.name == "float32"
    assert targets["boxes"].shape == (4, 3, 4) and targets["labels"].shape == (4, 3)
    assert sum(int(x.shape[0]) for x, _ in dataset) == 10


@pytest.mark.parametrize("kwargs, message", [
    (dict(split="val"), r"`split` must be one of \('train', 'test'\), got 'val'"),
    (dict(task="depth"), r"`task` must be one of .*'segmentation'\), got 'depth'"),
    (dict(num_images=0), r"`num_images` must be an int >= 1, got 0"),
    (dict(image_size=16), r"`image_size` must be an int >= 32, got 16"),
    (dict(seed=-1), r"`seed` must be an int >= 0, got -1"),
    (dict(max_objects=2.5), r"`max_objects` must be an int >= 1, got 2.5"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        shapes.load(**kwargs)


def test_bad_batch_size():
    with pytest.raises(ValueError, match=r"`batch_size` must be an int >= 1, got 0"):
        shapes.as_dataset(num_images=4, batch_size=0)


def _conv_block(filters):
    return [
        keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
        keras.layers.BatchNormalization(momentum=0.9),
        keras.layers.ReLU(),
        keras.layers.MaxPooling2D(),
    ]


@pytest.mark.slow
def test_small_cnn_learns_the_classes():
    """Shape, not colour, decides the class: a small CNN must generalise to the test split."""
    x_train, y_train = shapes.load("train", num_images=1500, image_size=48)
    x_test, y_test = shapes.load("test", num_images=300, image_size=48)
    model = keras.Sequential([
        keras.Input((48, 48, 3)),
        keras.layers.Rescaling(1 / 127.5, offset=-1),
        *_conv_block(16), *_conv_block(32), *_conv_block(64),
        keras.layers.GlobalMaxPooling2D(),
        keras.layers.Dense(shapes.NUM_CLASSES),
    ])
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=5, batch_size=50, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy > 0.6, accuracy  # chance is 0.2; about 0.95 here

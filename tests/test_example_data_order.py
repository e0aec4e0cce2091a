"""The detection and segmentation examples' training data: the same seed, the same batches.

The examples augment in their ``tf.data`` pipelines with random ops that keep one state (a
Keras seed generator, TensorFlow's stateful random ops); mapped with parallel calls they
drew in the order the threads happened to run, so that on two cores two runs of the same
seed trained on differently augmented batches. Mapped one call at a time they draw in data
order. These tests build each pipeline twice in one process, as a run does (seeds set
first), and compare two epochs of batches element by element. Measured with the parallel
maps on a 2-core x86 CPU: both tests failed pinned to both cores and passed pinned to one
(the threads then ran in order), so the check bites on a machine with several cores.
"""

import pathlib

import keras
import numpy as np
import pytest

from keras_mobilenets.datasets import shapes
from tests import helpers

pytestmark = pytest.mark.slow

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _epochs(dataset, count=2):
    """Every array of ``count`` passes over ``dataset``, flattened, in order."""
    import tensorflow as tf

    arrays = []
    for _ in range(count):
        for batch in dataset:
            arrays.extend(np.asarray(t) for t in tf.nest.flatten(batch))
    return arrays


def _assert_same(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_segmentation_example_batches_repeat_for_a_seed():
    example = helpers.load_script(EXAMPLES / "train_lraspp_shapes.py")
    config = example.Config(image_size=48, train_images=96, batch_size=8, seed=3)
    images, masks = shapes.load("train", config.train_images, config.image_size,
                                task="segmentation", seed=config.seed)

    def batches():
        keras.utils.set_random_seed(config.seed)
        return _epochs(example.training_data(config, images, masks))

    first = batches()
    _assert_same(first, batches())
    # Augmented: the images are not the generated ones in another order only.
    shuffled = {a.tobytes() for a in np.asarray(images, "float32")}
    assert any(image.tobytes() not in shuffled for image in first[0])


def test_detection_example_batches_repeat_for_a_seed():
    pytest.importorskip("pycocotools")
    from keras_mobilenets import detection

    example = helpers.load_script(EXAMPLES / "train_ssdlite_shapes.py")
    config = example.Config(image_size=64, train_images=64, batch_size=8, seed=3,
                            extra_channels=(32,))
    size = (config.image_size, config.image_size)
    keras.utils.set_random_seed(config.seed)
    images, targets = shapes.load("train", config.train_images, config.image_size,
                                  task="detection", seed=config.seed)
    model = detection.SSDLite(config.backbone, num_classes=shapes.NUM_CLASSES,
                              input_shape=(*size, 3),
                              backbone_kwargs={**dict(config.backbone_kwargs), "alpha": 0.35},
                              extra_channels=config.extra_channels)
    encoder = detection.TargetEncoder(detection.DefaultBoxes.from_model(model), size)

    def batches():
        keras.utils.set_random_seed(config.seed)
        augmenter = detection.Augmenter(size, crop=True)
        return _epochs(example.dataset(images, targets, config, encoder, augmenter,
                                       shuffle=True))

    _assert_same(batches(), batches())

"""segmentation_augmentation: masks move with their images, in tf.data."""

import numpy as np
import pytest
import tensorflow as tf

from keras_mobilenets.datasets import shapes
from keras_mobilenets.segmentation import segmentation_augmentation

STEP = 40  # image value per class id: the image encodes its own mask


def encoded_pairs(count=8, size=48):
    _, masks = shapes.load("train", num_images=count, image_size=size, task="segmentation")
    images = np.repeat((masks.astype("float32") * STEP)[..., None], 3, axis=-1)
    return images, masks


def test_masks_stay_aligned_with_image_content_in_tf_data():
    images, masks = encoded_pairs()
    augment = segmentation_augmentation(scale_range=(0.6, 1.6), seed=3)
    dataset = tf.data.Dataset.from_tensor_slices((images, masks)).batch(4).map(augment)
    out_images, out_masks = (np.concatenate(parts) for parts in zip(*dataset.as_numpy_iterator()))
    assert out_images.shape == images.shape and out_masks.shape == masks.shape
    assert out_masks.dtype == np.uint8
    assert set(np.unique(out_masks)) <= set(np.unique(masks))
    # Something moved (flips and scales), yet inside each region the bilinear image still
    # reads the nearest-neighbour mask. "Inside": the 5x5 window has one label (at a
    # content scale up to 1.6, two output pixels span more than one input pixel, so the
    # window covers every input pixel the bilinear sample mixes).
    assert np.mean(out_masks != masks) > 0.02
    inner = np.ones_like(out_masks, dtype=bool)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            inner &= np.roll(out_masks, (dy, dx), axis=(1, 2)) == out_masks
    # The frame's outermost pixels are left out: where zooming out reflects the content,
    # TF's bilinear sample there also mixes the pixel beyond the edge (nearest does not).
    inner[:, [0, -1], :] = inner[:, :, [0, -1]] = False
    decoded = out_images[..., 0] / STEP
    np.testing.assert_allclose(decoded[inner], out_masks[inner], atol=0.02)
    assert inner.mean() > 0.7


def test_flip_only_is_an_exact_mirror():
    images, masks = encoded_pairs(count=16)
    out_images, out_masks = segmentation_augmentation(scale_range=None, seed=0)(
        tf.constant(images), tf.constant(masks)
    )
    out_masks = out_masks.numpy()
    flipped = [np.array_equal(o, m[:, ::-1]) for o, m in zip(out_masks, masks)]
    kept = [np.array_equal(o, m) for o, m in zip(out_masks, masks)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)
    np.testing.assert_array_equal(out_images.numpy()[..., 0], out_masks * STEP)


def test_bad_arguments():
    for kwargs, message in [
        (dict(scale_range=(0.4, 1.0)), r"`scale_range` must be \(low, high\) with 0.5 <= low"),
        (dict(scale_range=(1.5, 1.0)), r"`scale_range` .* got \(1.5, 1.0\)"),
        (dict(scale_range=2.0), r"`scale_range` .* got 2.0"),
        (dict(flip="yes"), r"`flip` must be True or False, got 'yes'"),
        (dict(seed=-1), r"`seed` must be None or an int >= 0, got -1"),
    ]:
        with pytest.raises(ValueError, match=message):
            segmentation_augmentation(**kwargs)

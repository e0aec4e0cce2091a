"""Training augmentation for segmentation: random horizontal flip and random scale.

As in the segmentation recipes LR-ASPP (arXiv:1905.02244) is trained with, the image and
its mask move together: Keras' image augmentation layers take
``{"images": ..., "segmentation_masks": ...}`` and apply one random transformation to
both, interpolating the image bilinearly and the mask by nearest neighbour (class ids are
never blended). The random scale is ``keras.layers.RandomZoom`` with the aspect ratio kept
and reflected borders (so the image and mask stay consistent where the zoomed-out content
does not cover the frame); the output keeps the input size. The random layers draw from
one seed generator: map without ``num_parallel_calls`` for the same draws on every run of a
seed (parallel calls draw in the order the threads happen to run).

Example:
    >>> augment = segmentation_augmentation(scale_range=(0.75, 1.5), seed=0)
    >>> dataset = dataset.map(augment)  # batches of (images, masks)
"""

import keras

from keras_mobilenets import _checks

_MIN_SCALE = 0.5  # RandomZoom zooms out by at most a factor of 2


def check_scale_range(scale_range):
    """Validates ``scale_range``; returns it as a pair of floats.

    Raises:
        ValueError: Unless ``scale_range`` is ``(low, high)`` with ``0.5 <= low <= high``.

    Example:
        >>> check_scale_range((0.75, 1.5))
        (0.75, 1.5)
    """
    if (
        isinstance(scale_range, (tuple, list)) and len(scale_range) == 2
        and all(_checks.is_number(v) for v in scale_range)
        and _MIN_SCALE <= scale_range[0] <= scale_range[1]
    ):
        return float(scale_range[0]), float(scale_range[1])
    raise ValueError(
        f"`scale_range` must be (low, high) with {_MIN_SCALE} <= low <= high (content scale "
        f"factors, 1 = unchanged), got {scale_range!r}."
    )


def segmentation_augmentation(*, flip=True, scale_range=(0.75, 1.5), seed=None):
    """A function augmenting batches of images and masks alike, for ``tf.data`` ``map``.

    Args:
        flip: Flip each image and its mask horizontally with probability 1/2.
        scale_range: ``(low, high)`` content scale factors, drawn uniformly per image
            (> 1 zooms in and crops, < 1 zooms out with reflected borders); ``low >= 0.5``.
            None disables scaling.
        seed: Optional int seed of the random transformations.

    Returns:
        ``augment(images, masks) -> (images, masks)`` for batches: images
        ``(batch, rows, cols, channels)``, masks ``(batch, rows, cols)`` of class ids (the
        output masks keep their dtype and hold only input labels).

    Raises:
        ValueError: On a bad argument.

    Example:
        >>> dataset = datasets.shapes.as_dataset("train", task="segmentation")
        >>> dataset = dataset.map(segmentation_augmentation(seed=0))
    """
    _checks.check_bool("flip", flip)
    _checks.check_int("seed", seed, minimum=0, allow_none=True)
    layers = []
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed, name="flip"))
    if scale_range is not None:
        low, high = check_scale_range(scale_range)
        # RandomZoom's factor f maps to a zoom 1 + f of the sampling grid, i.e. a content
        # scale 1 / (1 + f); negative factors zoom in.
        factor = (1.0 / high - 1.0, 1.0 / low - 1.0)
        layers.append(keras.layers.RandomZoom(
            factor, fill_mode="reflect", interpolation="bilinear",
            seed=None if seed is None else seed + 1, name="scale",
        ))
    pipeline = keras.layers.Pipeline(layers, name="segmentation_augmentation")

    def augment(images, masks):
        if not layers:
            return images, masks
        out = pipeline({"images": images, "segmentation_masks": masks[..., None]})
        return out["images"], keras.ops.cast(out["segmentation_masks"][..., 0], masks.dtype)

    return augment

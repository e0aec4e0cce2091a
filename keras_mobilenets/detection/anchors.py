"""SSD default boxes (Liu et al. 2016, arXiv:1512.02325, Section 2.2 "Choosing scales and
aspect ratios for default boxes"), laid out as torchvision's ``DefaultBoxGenerator``.

For ``m`` feature maps the scales are ``s_k = min_ratio + (max_ratio - min_ratio) * k /
(m - 1)`` with ``s_m = 1``. At every location of map ``k`` (centers ``((j + 0.5) / cols,
(i + 0.5) / rows)``) the boxes are, in this order: ``s_k x s_k``, ``s'_k x s'_k`` with
``s'_k = sqrt(s_k s_{k+1})``, then for each aspect ratio ``a``: ``s_k sqrt(a) x s_k /
sqrt(a)`` and ``s_k / sqrt(a) x s_k sqrt(a)`` (width x height, relative to the image).
Boxes are ordered map by map, row by row, column by column, box by box, which is the
order of the head's ``Reshape`` of an ``(rows, cols, boxes * k)`` map.

Example:
    >>> boxes = DefaultBoxes(feature_map_shapes=((20, 20), (10, 10), (5, 5), (3, 3),
    ...                                          (2, 2), (1, 1)))
    >>> boxes.boxes().shape
    (3234, 4)
"""

import dataclasses
import math

import numpy as np

from keras_mobilenets import _checks
from keras_mobilenets.detection.heads import head_layers

DEFAULT_ASPECT_RATIOS = (2.0, 3.0)
MIN_RATIO = 0.2
MAX_RATIO = 0.95


@dataclasses.dataclass(frozen=True)
class DefaultBoxes:
    """The default boxes (anchors) of an SSD model.

    Attributes:
        feature_map_shapes: ``(rows, cols)`` of each prediction map, largest first.
        aspect_ratios: Aspect ratios (> 0) per map: one tuple per map, or one tuple used
            for every map (the default ``(2, 3)`` gives 6 boxes per location).
        min_ratio: Scale of the first map's boxes, relative to the image.
        max_ratio: Scale of the last map's boxes (``0 < min_ratio < max_ratio``).
        clip: Clip box widths and heights to ``[0, 1]`` (torchvision's default).

    Raises:
        ValueError: On an invalid field (the message names it and its value).

    Example:
        >>> DefaultBoxes(((4, 4), (2, 2))).boxes_per_location
        (6, 6)
    """

    feature_map_shapes: tuple
    aspect_ratios: tuple = DEFAULT_ASPECT_RATIOS
    min_ratio: float = MIN_RATIO
    max_ratio: float = MAX_RATIO
    clip: bool = True

    def __post_init__(self):
        shapes = self.feature_map_shapes
        if not isinstance(shapes, (tuple, list)) or not shapes:
            raise ValueError(
                f"`feature_map_shapes` must be a non-empty sequence of (rows, cols), got {shapes!r}."
            )
        shapes = tuple(_checks.check_size_pair(f"feature_map_shapes[{k}]", s)
                       for k, s in enumerate(shapes))
        ratios = self.aspect_ratios
        if isinstance(ratios, (tuple, list)) and ratios and all(
            _checks.is_number(r) and r > 0 for r in ratios
        ):
            ratios = (tuple(ratios),) * len(shapes)
        if (not isinstance(ratios, (tuple, list)) or len(ratios) != len(shapes) or not all(
            isinstance(r, (tuple, list)) and all(_checks.is_number(a) and a > 0 for a in r)
            for r in ratios
        )):
            raise ValueError(
                "`aspect_ratios` must be a sequence of numbers > 0 (for every map) or one such "
                f"sequence per feature map ({len(shapes)}), got {self.aspect_ratios!r}."
            )
        if not (_checks.is_number(self.min_ratio) and _checks.is_number(self.max_ratio)
                and 0 < self.min_ratio < self.max_ratio):
            raise ValueError(
                "`min_ratio` and `max_ratio` must be numbers with 0 < min_ratio < max_ratio, got "
                f"{self.min_ratio!r} and {self.max_ratio!r}."
            )
        _checks.check_bool("clip", self.clip)
        object.__setattr__(self, "feature_map_shapes", shapes)
        object.__setattr__(self, "aspect_ratios", tuple(tuple(float(a) for a in r) for r in ratios))

    @property
    def scales(self):
        """``s_1 .. s_m`` and the extra ``s_{m+1} = 1``."""
        count = len(self.feature_map_shapes)
        if count == 1:
            return (float(self.min_ratio), 1.0)
        step = (self.max_ratio - self.min_ratio) / (count - 1)
        return tuple(float(self.min_ratio + step * k) for k in range(count)) + (1.0,)

    @property
    def boxes_per_location(self):
        """Number of boxes at each location, per map (``2 + 2 * len(aspect ratios)``)."""
        return tuple(2 + 2 * len(ratios) for ratios in self.aspect_ratios)

    @property
    def num_boxes(self):
        """Total number of default boxes."""
        return sum(rows * cols * n for (rows, cols), n in
                   zip(self.feature_map_shapes, self.boxes_per_location))

    def sizes(self, k):
        """``(width, height)`` pairs of the boxes of map ``k``, relative to the image."""
        scales = self.scales
        s_k = scales[k]
        extra = math.sqrt(s_k * scales[k + 1])
        pairs = [(s_k, s_k), (extra, extra)]
        for ratio in self.aspect_ratios[k]:
            root = math.sqrt(ratio)
            pairs += [(s_k * root, s_k / root), (s_k / root, s_k * root)]
        pairs = np.asarray(pairs, dtype="float64")
        return np.clip(pairs, 0.0, 1.0) if self.clip else pairs

    def boxes(self):
        """All default boxes as a float32 ``(num_boxes, 4)`` array in ``"rel_xyxy"``."""
        per_map = []
        for k, (rows, cols) in enumerate(self.feature_map_shapes):
            sizes = self.sizes(k)
            cy, cx = np.meshgrid((np.arange(rows) + 0.5) / rows, (np.arange(cols) + 0.5) / cols,
                                 indexing="ij")
            centers = np.stack([cx, cy], -1).reshape(-1, 1, 2)
            half = sizes[None, :, :] / 2.0
            per_map.append(np.concatenate([centers - half, centers + half], -1).reshape(-1, 4))
        return np.concatenate(per_map).astype("float32")

    def get_config(self):
        """The fields as plain lists and numbers (JSON-friendly)."""
        return {
            "feature_map_shapes": [list(s) for s in self.feature_map_shapes],
            "aspect_ratios": [list(r) for r in self.aspect_ratios],
            "min_ratio": float(self.min_ratio),
            "max_ratio": float(self.max_ratio),
            "clip": self.clip,
        }

    @classmethod
    def from_model(cls, model, aspect_ratios=DEFAULT_ASPECT_RATIOS, min_ratio=MIN_RATIO,
                   max_ratio=MAX_RATIO, clip=True):
        """The default boxes of a model built by ``SSDLite`` (read from its head layers).

        The feature map shapes are read from the model; the other arguments must be the
        ones the model was built with (the defaults are ``SSDLite``'s). The number of
        boxes per location is checked against the model's box head.

        Raises:
            ValueError: If ``model`` has no SSDLite head, or the aspect ratios do not
                give the number of boxes its head predicts.

        Example:
            >>> DefaultBoxes.from_model(SSDLite("MobileNetV3Small", num_classes=5,
            ...                                 input_shape=(128, 128, 3))).num_boxes
        """
        heads = head_layers(model)
        boxes = cls(tuple(shape for shape, _ in heads), aspect_ratios, min_ratio, max_ratio, clip)
        predicted = tuple(n for _, n in heads)
        if predicted != boxes.boxes_per_location:
            raise ValueError(
                f"`aspect_ratios` {aspect_ratios!r} give {boxes.boxes_per_location} boxes per "
                f"location, but the head of model {model.name!r} predicts {predicted}; pass "
                "the aspect ratios the model was built with."
            )
        return boxes

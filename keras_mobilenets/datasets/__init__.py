"""The embedded default data: a deterministic synthetic shapes dataset (numpy only).

Example:
    >>> from keras_mobilenets.datasets import shapes
    >>> images, labels = shapes.load("train", num_images=1000)
"""

from keras_mobilenets.datasets import shapes

__all__ = ["shapes"]

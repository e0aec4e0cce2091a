"""Data without a download, and folders of images read safely.

* :mod:`~keras_mobilenets.datasets.shapes`: the embedded default data, a deterministic
  synthetic shapes dataset (numpy only);
* :mod:`~keras_mobilenets.datasets.image_folders`: folders of class sub-folders of images as
  checked ``tf.data`` datasets;
* :mod:`~keras_mobilenets.datasets.image_files`: Pillow decoding of the files users collect
  (EXIF orientation, grayscale, CMYK, 16-bit, transparency) and the report of bad files.

Example:
    >>> from keras_mobilenets.datasets import image_folders, shapes
    >>> images, labels = shapes.load("train", num_images=1000)
    >>> train, val, class_names = image_folders.image_folder_datasets("flower_photos")
"""

from keras_mobilenets.datasets import image_files, image_folders, shapes

__all__ = ["image_files", "image_folders", "shapes"]

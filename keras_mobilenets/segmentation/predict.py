"""Segmentation of a photograph with a pretrained LR-ASPP: a class mask at the photo's
size, each class's share of the pixels, and the photo saved beside its mask in VOC colours.

Example:
    >>> from keras_mobilenets import segmentation
    >>> model = segmentation.LRASPP("MobileNetV3Large", weights="voc")
    >>> found = segmentation.segment_image("cats_and_dogs.jpg", model)
    >>> [(name, round(share, 2)) for _, name, share in found["classes"]]
    [('background', 0.61), ('dog', 0.22), ('cat', 0.17)]
    >>> segmentation.draw_segmentation("cats_and_dogs.jpg", found, "segmentation.png")
    'segmentation.png'
"""

import numpy as np

from keras_mobilenets.datasets.labels import VOC_CLASS_NAMES, check_class_names
from keras_mobilenets.photos import font, load_photo, model_size, resize_photo


def segment_image(image, model, class_names=None):
    """Runs a segmentation model on one photo and returns its mask at the photo's size.

    The photo is resized (bilinearly) to the model's input; the logits are resized back
    to the photo's size (bilinearly) before the arg-max over classes.

    Args:
        image: Path of an image file (EXIF orientation applied) or an ``(height, width,
            3)`` array of [0, 255] RGB pixels.
        model: A model from [0, 255] images to logits ``(batch, rows, cols, classes)``,
            e.g. ``segmentation.LRASPP("MobileNetV3Large", weights="voc")``.
        class_names: One name per class of the model (default Pascal VOC's 21,
            ``datasets.labels.VOC_CLASS_NAMES``).

    Returns:
        A dict: ``"mask"`` int32 ``(height, width)`` class indices, ``"classes"`` a list of
        ``(class index, name, pixel share)`` for every class found, largest share first
        (the shares sum to 1), and ``"num_classes"``.

    Raises:
        ValueError: On a missing or unreadable image, or fewer class names than classes.

    Example:
        >>> segment_image("cats_and_dogs.jpg", model)["mask"].shape
        (480, 640)
    """
    import keras

    photo = load_photo(image)
    rows, cols = model_size(model)
    logits = model(resize_photo(photo, (rows, cols))[None], training=False)
    num_classes = int(logits.shape[-1])
    names = check_class_names(class_names, num_classes, VOC_CLASS_NAMES)
    height, width = photo.shape[:2]
    logits = keras.ops.image.resize(keras.ops.cast(logits, "float32"), (height, width),
                                    interpolation="bilinear")
    mask = np.asarray(keras.ops.argmax(logits, axis=-1))[0].astype("int32")
    counts = np.bincount(mask.ravel(), minlength=num_classes)
    found = [(int(index), names[index], float(counts[index] / mask.size))
             for index in np.argsort(-counts, kind="stable") if counts[index]]
    return {"mask": mask, "classes": found, "num_classes": num_classes}


def draw_segmentation(image, segmentation, path):
    """Saves the photo beside its mask in Pascal VOC colours, with a legend of the classes
    found drawn on the mask.

    Args:
        image: The photo ``segment_image`` ran on (path or array).
        segmentation: ``segment_image``'s dict.
        path: The file to write (format from the extension); the picture is the photo's
            height and twice its width.

    Returns:
        ``path``.

    Raises:
        ValueError: If the photo's size differs from the mask's.

    Example:
        >>> draw_segmentation("cats_and_dogs.jpg", found, "segmentation.png")
        'segmentation.png'
    """
    from PIL import Image, ImageDraw

    from keras_mobilenets.plotting import class_colors, masks_to_rgb

    photo = load_photo(image)
    mask = np.asarray(segmentation["mask"])
    if tuple(photo.shape[:2]) != tuple(mask.shape):
        raise ValueError(
            f"`image` of size {photo.shape[:2]} is not the photo of `segmentation` (mask "
            f"size {mask.shape})."
        )
    height, width = mask.shape
    colors = class_colors(segmentation["num_classes"])
    picture = Image.new("RGB", (2 * width, height))
    picture.paste(Image.fromarray(np.clip(photo, 0, 255).astype("uint8")), (0, 0))
    picture.paste(Image.fromarray(masks_to_rgb(mask[None], len(colors))[0]), (width, 0))
    draw = ImageDraw.Draw(picture)
    size = max(10, round(min(height, width) / 30))
    text_font = font(size)
    y = size // 2
    for index, name, share in segmentation["classes"]:
        x = width + size // 2
        text = f"{name} {100 * share:.1f}%"
        right = draw.textbbox((x + size + 4, y), text, font=text_font)[2]
        draw.rectangle((x - 2, y - 2, right + 2, y + size + 2), fill=(255, 255, 255))
        draw.rectangle((x, y, x + size, y + size), fill=tuple(int(c) for c in colors[index]),
                       outline=(0, 0, 0))
        draw.text((x + size + 4, y), text, fill=(0, 0, 0), font=text_font)
        y += size + 6
    picture.save(path)
    return path

"""Detection on a photograph with a pretrained SSDLite: boxes in the photo's pixels,
COCO names, and the photo saved with its boxes.

Example:
    >>> from keras_mobilenets import detection
    >>> model = detection.SSDLite("MobileNetV3Large", weights="coco")
    >>> found = detection.detect_image("cats_and_dogs.jpg", model, score_threshold=0.5)
    >>> found["names"][:2]
    ['dog', 'cat']
    >>> detection.draw_detections("cats_and_dogs.jpg", found, "detections.png")
    'detections.png'
"""

import numpy as np

from keras_mobilenets import _checks
from keras_mobilenets.datasets.labels import COCO_CATEGORY_NAMES, check_class_names
from keras_mobilenets.photos import font, load_photo, model_size, resize_photo

BOX_WIDTH_FRACTION = 0.004  # outline width, as a fraction of the photo's longer side


def detect_image(image, model, score_threshold=0.5, iou_threshold=0.55, max_detections=100,
                 class_names=None):
    """Runs an SSDLite model on one photo and returns its detections in the photo's pixels.

    The photo is resized (bilinearly, aspect not kept) to the model's input, the model's
    raw predictions go through ``inference_model``'s post-processing, and the boxes are
    scaled back to the photo's size.

    Args:
        image: Path of an image file (EXIF orientation applied) or an ``(height, width,
            3)`` array of [0, 255] RGB pixels.
        model: A model built by ``detection.SSDLite`` (raw predictions) that takes [0, 255]
            pixels, e.g. ``SSDLite("MobileNetV3Large", weights="coco")``.
        score_threshold: Smallest score kept, in [0, 1].
        iou_threshold: Non-maximum suppression IoU, in (0, 1].
        max_detections: Most detections returned (>= 1).
        class_names: Names indexed by torchvision's class id (index 0 the background);
            default COCO's 91 (``datasets.labels.COCO_CATEGORY_NAMES``).

    Returns:
        A dict, best score first: ``"boxes"`` float32 ``(N, 4)`` as ``(x0, y0, x1, y1)``
        photo pixels, ``"scores"`` ``(N,)``, ``"labels"`` ``(N,)`` int class ids (label + 1,
        torchvision's numbering), ``"names"`` the N class names, and ``"image_size"``
        ``(height, width)`` of the photo.

    Raises:
        ValueError: On a missing or unreadable image, a bad threshold, or fewer class names
            than the model's classes.

    Example:
        >>> found = detect_image("cats_and_dogs.jpg", model, score_threshold=0.5)
        >>> found["boxes"].shape
        (2, 4)
    """
    from keras_mobilenets.detection.postprocess import inference_model

    _checks.check_number("score_threshold", score_threshold, low=0, high=1)
    names = check_class_names(class_names, 2, COCO_CATEGORY_NAMES)
    photo = load_photo(image)
    rows, cols = model_size(model)
    detector = inference_model(model, score_threshold=score_threshold,
                               iou_threshold=iou_threshold, max_detections=max_detections)
    outputs = detector(resize_photo(photo, (rows, cols))[None], training=False)
    count = int(np.asarray(outputs["num_detections"])[0])
    boxes = np.asarray(outputs["boxes"])[0, :count].astype("float32")
    height, width = photo.shape[:2]
    boxes = boxes * np.array([width / cols, height / rows] * 2, dtype="float32")
    labels = np.asarray(outputs["labels"])[0, :count].astype("int64") + 1
    if labels.size and labels.max() >= len(names):
        raise ValueError(
            f"`class_names` must name every class of the model (ids up to {labels.max()}), "
            f"got {len(names)} names."
        )
    return {
        "boxes": boxes,
        "scores": np.asarray(outputs["scores"])[0, :count].astype("float32"),
        "labels": labels,
        "names": [names[label] for label in labels],
        "image_size": (height, width),
    }


def draw_detections(image, detections, path, colors=None):
    """Saves the photo with each detection's box, labelled with its name and score.

    Args:
        image: The photo ``detect_image`` ran on (path or array).
        detections: ``detect_image``'s dict.
        path: The file to write (format from the extension, e.g. ``.png``); the picture
            has the photo's size.
        colors: ``(num_classes, 3)`` uint8 colours indexed by class id (default
            ``plotting.class_colors``, with white for the background's black).

    Returns:
        ``path``.

    Raises:
        ValueError: If the photo's size differs from the detections' ``image_size``.

    Example:
        >>> draw_detections("cats_and_dogs.jpg", found, "detections.png")
        'detections.png'
    """
    from PIL import Image, ImageDraw

    from keras_mobilenets.plotting import class_colors

    photo = load_photo(image)
    if tuple(photo.shape[:2]) != tuple(detections["image_size"]):
        raise ValueError(
            f"`image` of size {photo.shape[:2]} is not the photo of `detections` "
            f"(image_size {tuple(detections['image_size'])})."
        )
    labels = np.asarray(detections["labels"], dtype="int64")
    if colors is None:
        colors = class_colors(int(labels.max(initial=0)) + 1)
    picture = Image.fromarray(np.clip(photo, 0, 255).astype("uint8"))
    draw = ImageDraw.Draw(picture)
    height, width = photo.shape[:2]
    line = max(1, round(BOX_WIDTH_FRACTION * max(height, width)))
    text_font = font(max(height, width) / 50)
    for box, label, name, score in zip(np.asarray(detections["boxes"]), labels,
                                       detections["names"], detections["scores"]):
        color = tuple(int(c) for c in colors[label]) if label > 0 else (255, 255, 255)
        x0, y0, x1, y1 = (float(v) for v in box)
        draw.rectangle((x0, y0, x1, y1), outline=color, width=line)
        text = f"{name} {float(score):.2f}"
        left, top, right, bottom = draw.textbbox((x0, y0), text, font=text_font)
        shift = min(bottom - top + 2, y0)
        draw.rectangle((left, top - shift, right + 2, bottom - shift), fill=color)
        draw.text((x0 + 1, y0 - shift), text, fill=(0, 0, 0) if sum(color) > 300
                  else (255, 255, 255), font=text_font)
    picture.save(path)
    return path

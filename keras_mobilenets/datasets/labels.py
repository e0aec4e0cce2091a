"""Class names of the pretrained heads: COCO as torchvision numbers it (91 ids, with the
background and the "N/A" ids COCO left unused) and Pascal VOC's 21 segmentation classes.

``detection.SSDLite(weights="coco")`` predicts label ``k`` for torchvision's id ``k + 1``
(the background is not a label here), so its name is ``COCO_CATEGORY_NAMES[k + 1]``.

Example:
    >>> COCO_CATEGORY_NAMES[1], VOC_CLASS_NAMES[15]
    ('person', 'person')
"""

COCO_CATEGORY_NAMES = (
    "__background__", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train",
    "truck", "boat", "traffic light", "fire hydrant", "N/A", "stop sign", "parking meter",
    "bench", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
    "giraffe", "N/A", "backpack", "umbrella", "N/A", "N/A", "handbag", "tie", "suitcase",
    "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
    "skateboard", "surfboard", "tennis racket", "bottle", "N/A", "wine glass", "cup", "fork",
    "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot",
    "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "N/A",
    "dining table", "N/A", "N/A", "toilet", "N/A", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "N/A",
    "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)

VOC_CLASS_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)


def check_class_names(class_names, count, default):
    """``class_names`` (or ``default`` when None) as a tuple holding at least ``count`` names.

    Raises:
        ValueError: If ``class_names`` is not a sequence of at least ``count`` strings.

    Example:
        >>> check_class_names(None, 21, VOC_CLASS_NAMES)[0]
        'background'
    """
    names = default if class_names is None else class_names
    if (isinstance(names, str) or not hasattr(names, "__len__") or len(names) < count
            or not all(isinstance(name, str) for name in names)):
        raise ValueError(
            f"`class_names` must be a sequence of at least {count} strings (one per class of "
            f"the model), got {class_names!r}."
        )
    return tuple(names)

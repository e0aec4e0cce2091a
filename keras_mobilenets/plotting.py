"""Figures saved to a file: image grids, and image | prediction | ground truth comparisons.

Built on ``matplotlib.figure.Figure`` directly (no pyplot), so it never switches the
user's matplotlib backend and works without a display. matplotlib is imported when the
function is called (it comes with the ``test`` and ``all`` extras).

Example:
    >>> save_image_grid(images[:8], "grid.png", draw=lambda axis, i: axis.set_title(str(i)))
"""

import numpy as np

from keras_mobilenets import _checks


def save_image_grid(images, path, draw=None, columns=4, dpi=80):
    """Saves ``images`` as a grid, each optionally annotated by ``draw``.

    Args:
        images: Images in [0, 255], shape ``(N, height, width, 3)``.
        path: The file to write (the format follows its extension, e.g. ``.png``).
        draw: Optional ``draw(axis, index)`` called after image ``index`` is shown on its
            matplotlib axis, to add boxes, labels or an overlay.
        columns: Images per row (int >= 1).
        dpi: Resolution of the saved file.

    Returns:
        ``path``.

    Raises:
        ValueError: If ``columns`` is not an int >= 1 or ``images`` is not a non-empty
            batch of RGB images.

    Example:
        >>> save_image_grid(images[:8], "grid.png")
        'grid.png'
    """
    from matplotlib.figure import Figure

    _checks.check_int("columns", columns, minimum=1)
    images = _checked_images("images", images)
    rows = -(-len(images) // columns)
    figure = Figure(figsize=(2.5 * columns, 2.5 * rows))
    for index, axis in enumerate(np.ravel(figure.subplots(rows, columns, squeeze=False))):
        axis.axis("off")
        if index < len(images):
            axis.imshow(np.clip(images[index], 0, 255).astype("uint8"))
            if draw is not None:
                draw(axis, index)
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    return path


def _checked_images(name, images):
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or not len(images):
        raise ValueError(
            f"`{name}` must be a non-empty batch (N, height, width, 3), got shape {images.shape}."
        )
    return images


def class_colors(num_classes):
    """One distinct RGB colour (uint8) per class, class 0 (background) black.

    The Pascal VOC palette scheme: the bits of the class index are spread over the red,
    green and blue channels, from the most significant bit of each down, so neighbouring
    classes get clearly different colours.

    Example:
        >>> class_colors(3).tolist()
        [[0, 0, 0], [128, 0, 0], [0, 128, 0]]
    """
    _checks.check_int("num_classes", num_classes, minimum=1)
    colors = np.zeros((num_classes, 3), dtype="uint8")
    for index in range(num_classes):
        value, shift = index, 7
        while value:
            for channel in range(3):
                colors[index, channel] |= ((value >> channel) & 1) << shift
            value >>= 3
            shift -= 1
    return colors


def masks_to_rgb(masks, num_classes):
    """Class-index masks ``(N, height, width)`` as RGB images in their class colours.

    Example:
        >>> masks_to_rgb(np.zeros((1, 4, 4), int), 3).shape
        (1, 4, 4, 3)
    """
    masks = np.asarray(masks)
    if masks.min(initial=0) < 0 or masks.max(initial=0) >= num_classes:
        raise ValueError(
            f"`masks` must hold class indices in [0, {num_classes}), got values from "
            f"{masks.min()} to {masks.max()}."
        )
    return class_colors(num_classes)[masks]


def save_comparison(panels, path, legend=None, dpi=80, colors=None):
    """Saves one row per image with one panel per column, e.g. image | prediction | truth.

    Args:
        panels: ``[(title, images, draw)]``, one per column: the column's title, its
            images in [0, 255] ``(N, height, width, 3)`` (the same N for every column)
            and an optional ``draw(axis, index)`` that adds boxes or labels.
        path: The file to write (the format follows its extension, e.g. ``.png``).
        legend: Optional ``[(class name, RGB colour)]`` shown under the panels (colours
            as uint8 triples or floats in [0, 1]).
        dpi: Resolution of the saved file.
        colors: None for full colour, or an int in [2, 256]: a PNG with a palette of at
            most that many colours (a fraction of the size, for documentation pages).

    Returns:
        ``path``.

    Raises:
        ValueError: If ``panels`` is empty or its image batches differ in length, or
            ``colors`` is not None or an int in [2, 256].

    Example:
        >>> save_comparison([("image", x, None), ("prediction", masks_to_rgb(p, 4), None),
        ...                  ("ground truth", masks_to_rgb(y, 4), None)], "masks.png",
        ...                 legend=list(zip(names, class_colors(4))))
        'masks.png'
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    if not panels:
        raise ValueError("`panels` must name at least one column, got none.")
    _checks.check_int("colors", colors, minimum=2, maximum=256, allow_none=True)
    columns = [(title, _checked_images(f"panels[{title!r}]", images), draw)
               for title, images, draw in panels]
    count = len(columns[0][1])
    if any(len(images) != count for _, images, _ in columns):
        raise ValueError(
            f"`panels` must hold the same number of images in every column, got "
            f"{[len(images) for _, images, _ in columns]}."
        )
    figure = Figure(figsize=(2.5 * len(columns), 2.5 * count + (0.6 if legend else 0)))
    axes = figure.subplots(count, len(columns), squeeze=False)
    for column, (title, images, draw) in enumerate(columns):
        axes[0, column].set_title(title)
        for index in range(count):
            axis = axes[index, column]
            axis.axis("off")
            axis.imshow(np.clip(images[index], 0, 255).astype("uint8"))
            if draw is not None:
                draw(axis, index)
    if legend:
        handles = [Patch(color=np.asarray(color, dtype="float32") / (
            255.0 if np.asarray(color).dtype.kind in "ui" else 1.0), label=name)
            for name, color in legend]
        figure.legend(handles=handles, loc="lower center", ncols=min(len(handles), 6),
                      frameon=False)
        figure.tight_layout(rect=(0, 0.6 / figure.get_figheight(), 1, 1))
    else:
        figure.tight_layout()
    if colors is None:
        figure.savefig(path, dpi=dpi)
    else:
        _save_with_palette(figure, path, dpi, colors)
    return path


def _save_with_palette(figure, path, dpi, colors):
    """Saves ``figure`` as a PNG with a palette of ``colors`` colours (no dithering)."""
    import io

    from PIL import Image  # comes with matplotlib

    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=dpi, format="png")
    buffer.seek(0)
    image = Image.open(buffer).convert("RGB")
    image.quantize(colors, dither=Image.Dither.NONE).save(path, format="png", optimize=True)

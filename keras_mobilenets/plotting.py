"""A grid of images saved to a file, for the examples' detection and segmentation figures.

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

    _checks.check_positive_int("columns", columns)
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or not len(images):
        raise ValueError(
            f"`images` must be a non-empty batch (N, height, width, 3), got shape {images.shape}."
        )
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

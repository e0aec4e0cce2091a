"""save_image_grid: the examples' figures."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from keras_mobilenets.plotting import save_image_grid  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def test_grid_calls_draw_once_per_image_and_writes_a_png(tmp_path):
    images = np.random.default_rng(0).uniform(0, 255, (5, 16, 16, 3))
    drawn = []
    path = save_image_grid(images, str(tmp_path / "grid.png"),
                           draw=lambda axis, index: drawn.append(index), columns=2)
    assert drawn == [0, 1, 2, 3, 4]
    with open(path, "rb") as figure:
        assert figure.read(8) == PNG


@pytest.mark.parametrize("kwargs, message", [
    ({"columns": 0}, "`columns` must be an int >= 1, got 0"),
    ({"images": np.zeros((2, 8, 8))}, r"`images` must be a non-empty batch .* \(2, 8, 8\)"),
])
def test_bad_arguments_are_named(kwargs, message, tmp_path):
    arguments = {"images": np.zeros((2, 8, 8, 3)), "path": str(tmp_path / "x.png"), **kwargs}
    with pytest.raises(ValueError, match=message):
        save_image_grid(**arguments)

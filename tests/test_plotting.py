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


def test_class_colors_are_the_pascal_voc_palette():
    from keras_mobilenets.plotting import class_colors

    colors = class_colors(21)
    # Published Pascal VOC colours: background, aeroplane, horse, person, tvmonitor.
    assert colors[[0, 1, 13, 15, 20]].tolist() == [
        [0, 0, 0], [128, 0, 0], [192, 0, 128], [192, 128, 128], [0, 64, 128]]
    assert len({tuple(c) for c in class_colors(64).tolist()}) == 64


def test_comparison_has_a_row_per_image_a_column_per_panel_and_a_legend(tmp_path):
    from matplotlib import image as mpimg

    from keras_mobilenets.plotting import class_colors, masks_to_rgb, save_comparison

    images = np.full((2, 16, 16, 3), 255.0)
    masks = np.zeros((2, 16, 16), int)
    masks[:, 4:12, 4:12] = 2
    drawn = []
    path = save_comparison(
        [("image", images, lambda axis, i: drawn.append(i)),
         ("prediction", masks_to_rgb(masks, 3), None),
         ("ground truth", masks_to_rgb(masks, 3), None)],
        str(tmp_path / "compare.png"), legend=list(zip(["bg", "a", "b"], class_colors(3))))
    assert drawn == [0, 1]
    picture = mpimg.imread(path)[..., :3]
    # Class 2's colour (green, 0/128/0) shows in the mask panels and in the legend.
    green = np.all(np.abs(picture - np.array([0, 128 / 255, 0])) < 0.02, axis=-1)
    assert green.sum() > 100
    with pytest.raises(ValueError, match=r"same number of images in every column, got \[2, 1\]"):
        save_comparison([("a", images, None), ("b", images[:1], None)], str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\), got values from 0 to 5"):
        masks_to_rgb(np.where(masks > 0, 5, 0), 3)


def test_comparison_with_a_palette_is_smaller_and_keeps_the_picture(tmp_path):
    from PIL import Image

    from keras_mobilenets.plotting import save_comparison

    noisy = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3))
    panels = [("image", noisy, None), ("again", noisy, None)]
    full = save_comparison(panels, str(tmp_path / "full.png"))
    small = save_comparison(panels, str(tmp_path / "small.png"), colors=64)
    with Image.open(full) as full_image, Image.open(small) as small_image:
        assert small_image.mode == "P" and len(small_image.getcolors()) <= 64
        assert small_image.size == full_image.size
        difference = np.abs(np.asarray(small_image.convert("RGB"), "float32")
                            - np.asarray(full_image.convert("RGB"), "float32"))
    assert difference.mean() < 20  # the same picture, in fewer colours
    assert (tmp_path / "small.png").stat().st_size < (tmp_path / "full.png").stat().st_size / 2
    for bad in (1, 257, 2.5):
        with pytest.raises(ValueError, match=rf"`colors`.*got {bad}"):
            save_comparison(panels, str(tmp_path / "x.png"), colors=bad)

"""Folders of images as users collect them: bad files reported, odd ones decoded as expected."""

import io
import json
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_mobilenets.datasets import image_files, image_folders

RED, BLUE = (255, 0, 0), (0, 0, 255)


def _jpeg_bytes(image, **options):
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, **options)
    return buffer.getvalue()


def _upright():
    """32 rows x 16 columns: top half red, bottom half blue."""
    pixels = np.zeros((32, 16, 3), dtype="uint8")
    pixels[:16] = RED
    pixels[16:] = BLUE
    return Image.fromarray(pixels)


def write_messy_folder(root):
    """A class folder of good files and one of every kind of odd or bad file."""
    cats, dogs = root / "cats", root / "dogs"
    cats.mkdir(parents=True)
    dogs.mkdir()
    for index in range(3):
        good = Image.fromarray(np.full((16, 16, 3), 40 * index + 20, "uint8"))
        good.save(cats / f"good_{index}.png")
    (cats / "corrupt.jpg").write_bytes(os.urandom(600))
    noisy = Image.fromarray(np.random.RandomState(0).randint(0, 255, (64, 64, 3), "uint8"))
    full = _jpeg_bytes(noisy)
    (cats / "truncated.jpg").write_bytes(full[:len(full) // 2])
    (cats / "notes.txt").write_text("where the photos come from")
    (cats / ".DS_Store").write_bytes(b"\0\1hidden")  # hidden: ignored, not reported
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(dogs / "cmyk.jpg", quality=95)
    Image.fromarray(np.full((16, 16), 100, "uint8")).save(dogs / "gray.png")
    gray16 = np.zeros((16, 16), "uint16")
    gray16[:8] = 65535
    gray16[8:, :8] = 32896  # 128 * 257
    Image.fromarray(gray16).save(dogs / "gray16.png")
    rgba = np.zeros((16, 16, 4), "uint8")
    rgba[:, :8] = (255, 0, 0, 255)  # the right half stays fully transparent
    Image.fromarray(rgba).save(dogs / "rgba.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    stored = _upright().transpose(Image.Transpose.ROTATE_90)  # what a sideways camera stores
    (dogs / "rotated.jpg").write_bytes(_jpeg_bytes(stored, exif=exif.tobytes()))
    return root


def test_odd_images_decode_as_users_expect(tmp_path):
    dogs = write_messy_folder(tmp_path) / "dogs"
    with Image.open(dogs / "cmyk.jpg") as image:
        assert image.mode == "CMYK"
    np.testing.assert_allclose(image_files.decode_image(dogs / "cmyk.jpg"),
                               np.broadcast_to(RED, (16, 16, 3)), atol=8)

    np.testing.assert_array_equal(image_files.decode_image(dogs / "gray.png"),
                                  np.full((16, 16, 3), 100))

    with Image.open(dogs / "gray16.png") as image:
        assert image.mode in ("I;16", "I")  # 16 bits per pixel as stored
    gray16 = image_files.decode_image(dogs / "gray16.png")
    assert gray16.dtype == np.uint8 and gray16.shape == (16, 16, 3)
    assert (gray16[:8] == 255).all() and (gray16[8:, :8] == 128).all()
    assert (gray16[8:, 8:] == 0).all()

    rgba = image_files.decode_image(dogs / "rgba.png")
    np.testing.assert_array_equal(rgba[:, :8], np.broadcast_to(RED, (16, 8, 3)))
    np.testing.assert_array_equal(rgba[:, 8:], np.full((16, 8, 3), 255))  # on white

    with Image.open(dogs / "rotated.jpg") as image:
        assert image.size == (32, 16)  # stored sideways: 32 wide, 16 high
    rotated = image_files.decode_image(dogs / "rotated.jpg")
    assert rotated.shape == (32, 16, 3)  # upright: 32 high, 16 wide
    np.testing.assert_allclose(rotated[2:14].mean(axis=(0, 1)), RED, atol=12)
    np.testing.assert_allclose(rotated[18:30].mean(axis=(0, 1)), BLUE, atol=12)


def test_scan_skips_and_reports_every_bad_file(tmp_path):
    root = write_messy_folder(tmp_path)
    scan = image_folders.scan_image_folder(root)
    assert scan.class_names == ("cats", "dogs")
    assert scan.counts() == {"cats": 3, "dogs": 5}
    reasons = {os.path.basename(entry.path): entry.reason for entry in scan.skipped}
    assert set(reasons) == {"corrupt.jpg", "truncated.jpg", "notes.txt"}
    assert reasons["corrupt.jpg"].startswith("cannot decode: cannot identify image file")
    assert "truncated" in reasons["truncated.jpg"]
    assert reasons["notes.txt"].startswith("not an image file (extension '.txt'")
    assert not any(".DS_Store" in path for path in scan.paths)

    files = image_files.write_report(scan.skipped, tmp_path)
    with open(files["json"]) as f:
        listed = json.load(f)
    assert {os.path.basename(entry["path"]) for entry in listed} == set(reasons)
    text = open(files["txt"]).read()
    assert f"{root / 'cats' / 'notes.txt'}: not an image file" in text
    assert image_files.write_report((), tmp_path) == {}  # nothing skipped: old report goes
    assert not os.path.exists(files["txt"]) and not os.path.exists(files["json"])


def test_datasets_read_only_good_files_through_pillow(tmp_path, caplog):
    root = write_messy_folder(tmp_path)
    with pytest.raises(ValueError, match=r"3 file\(s\) cannot be used as images.*\n.*corrupt"):
        image_folders.image_folder_datasets(root, image_size=32, strict=True)

    with caplog.at_level(logging.WARNING, logger="keras_mobilenets.datasets"):
        train, val, class_names = image_folders.image_folder_datasets(
            root, image_size=32, batch_size=3, validation_split=0, seed=0)
    assert val is None and class_names == ["cats", "dogs"]
    assert "3 file(s) of" in caplog.text and "notes.txt" in caplog.text
    images = np.concatenate([x for x, _ in train])
    labels = np.concatenate([y for _, y in train])
    assert images.shape == (8, 32, 32, 3) and images.dtype == np.float32
    assert sorted(labels.tolist()) == [0, 0, 0, 1, 1, 1, 1, 1]
    means = sorted(round(float(image.mean()), 1) for image in images)
    assert 100.0 in means  # the grayscale PNG, upscaled, still 100 everywhere
    # Two passes over the training data: reshuffled, same images.
    again = np.concatenate([x for x, _ in train])
    assert sorted(image.mean() for image in again) == sorted(image.mean() for image in images)


def test_a_file_spoilt_after_the_check_does_not_stop_training(tmp_path, caplog):
    root = write_messy_folder(tmp_path)
    scan = image_folders.scan_image_folder(root)
    (root / "dogs" / "gray.png").write_bytes(b"broken since the check")
    train, _, _ = image_folders.image_folder_datasets(
        root, image_size=32, batch_size=4, validation_split=0, scan=scan)
    with caplog.at_level(logging.WARNING, logger="keras_mobilenets.datasets"):
        images = np.concatenate([x for x, _ in train])  # no InvalidArgumentError
    assert "skipped" not in caplog.text  # the scan's owner reports those
    assert len(images) == 8
    assert sum(not image.any() for image in images) == 1  # a black stand-in
    assert "gray.png cannot be decoded any more" in caplog.text


def test_too_few_images_for_a_validation_split_is_explained(tmp_path):
    for name in ("cats", "dogs"):
        (tmp_path / name).mkdir()
        for index in range(2):
            Image.new("RGB", (8, 8)).save(tmp_path / name / f"{index}.png")
    with pytest.raises(ValueError, match=r"`validation_split` 0.2 of the 4 usable images .*"
                                         r"\(cats: 2, dogs: 2\) holds 0 validation images; "
                                         r"add images \(at least 5"):
        image_folders.image_folder_datasets(tmp_path, image_size=32)
    train, val, _ = image_folders.image_folder_datasets(tmp_path, image_size=32,
                                                        validation_split=0.25)
    assert sum(len(y) for _, y in train) == 3 and sum(len(y) for _, y in val) == 1


def test_tensorflow_alone_would_fail_on_these_files(tmp_path):
    """The reason for the check: TensorFlow's decoder stops on a corrupt file."""
    root = write_messy_folder(tmp_path)
    data = tf.io.read_file(str(root / "cats" / "corrupt.jpg"))
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.io.decode_image(data, channels=3)

"""``detect`` and ``segment`` on a real photograph with the small torchvision reference
checkpoints (tests/reference/torchvision: width 0.25, random weights): the printed
detections are the post-processed model outputs scaled to the photo, the pictures have the
photo's aspect, the segmentation shares sum to 1 and the mask is drawn in VOC colours."""

import os

import keras
import numpy as np
import pytest

from keras_mobilenets import cli, detection, plotting, segmentation
from keras_mobilenets.cli import pretrained
from keras_mobilenets.datasets.labels import COCO_CATEGORY_NAMES, VOC_CLASS_NAMES
from tests.helpers import shared_data

REFERENCE = os.path.join(os.path.dirname(__file__), "reference", "torchvision")
SSD_PTH = os.path.join(REFERENCE, "ssdlite_mobilenet_v3_large_0.25.pth")
LRASPP_PTH = os.path.join(REFERENCE, "lraspp_mobilenet_v3_large_0.25.pth")
PHOTO = "images/cats_and_dogs.jpg"
SCORE = 0.3  # the random 3-class reference model scores about 1/3


def reference_detector(weights=SSD_PTH):
    return detection.SSDLite("MobileNetV3Large", weights=weights, num_classes=3,
                             input_shape=(160, 160, 3), extra_channels=(128, 64, 64, 32),
                             backbone_kwargs={"alpha": 0.25})


def reference_segmenter(weights=LRASPP_PTH):
    return segmentation.LRASPP("MobileNetV3Large", weights=weights, num_classes=21,
                               input_shape=(64, 64, 3), alpha=0.25)


def colour_segmenter():
    """Logits from each pixel's colour (random weights of the reference model predict one
    class everywhere): several classes on a photograph."""
    inputs = keras.Input((48, 64, 3))
    layer = keras.layers.Conv2D(21, 1)
    outputs = layer(inputs)
    kernel = np.random.default_rng(0).normal(size=(1, 1, 3, 21)).astype("float32")
    layer.set_weights([kernel, np.zeros(21, "float32")])
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def detector():
    return reference_detector()


@pytest.fixture(scope="module")
def segmenter():
    return reference_segmenter()


def expected_detections(model, image, score_threshold):
    """The photo resized by Keras' loader, post-processed, boxes scaled to the photo."""
    photo = keras.utils.img_to_array(keras.utils.load_img(image))
    batch = keras.utils.img_to_array(keras.utils.load_img(
        image, target_size=(160, 160), interpolation="bilinear"))[None]
    out = detection.inference_model(model, score_threshold=score_threshold)(batch)
    count = int(np.asarray(out["num_detections"])[0])
    height, width = photo.shape[:2]
    boxes = np.asarray(out["boxes"])[0, :count] * np.array([width / 160, height / 160] * 2)
    labels = np.asarray(out["labels"])[0, :count] + 1
    return boxes, np.asarray(out["scores"])[0, :count], labels, (height, width)


def test_class_names_match_the_shared_label_files():
    coco = shared_data("labels/coco_labels.txt").read_text().split("\n")[:90]
    assert len(COCO_CATEGORY_NAMES) == 91 and COCO_CATEGORY_NAMES[0] == "__background__"
    assert [name.lower() for name in COCO_CATEGORY_NAMES[1:]] == coco
    voc = shared_data("labels/pascal_voc_segmentation_labels.txt").read_text().split("\n")
    assert list(VOC_CLASS_NAMES) == voc[:21]


def test_detect_image_is_the_postprocessed_output_in_photo_pixels(detector, tmp_path):
    image = shared_data(PHOTO)
    found = detection.detect_image(image, detector, score_threshold=SCORE)
    boxes, scores, labels, size = expected_detections(detector, str(image), SCORE)
    assert len(scores) > 0 and found["image_size"] == size
    np.testing.assert_allclose(found["boxes"], boxes, atol=1e-3)
    np.testing.assert_allclose(found["scores"], scores, atol=1e-6)
    np.testing.assert_array_equal(found["labels"], labels)
    assert found["names"] == [COCO_CATEGORY_NAMES[label] for label in labels]
    assert found["boxes"][:, 2].max() > 160  # photo pixels, not the model's
    path = detection.draw_detections(image, found, str(tmp_path / "boxes.png"))
    from PIL import Image

    with Image.open(path) as saved:
        assert saved.size == (size[1], size[0])


def test_detect_command_prints_the_detections(monkeypatch, capsys, tmp_path):
    image = shared_data(PHOTO)
    built = []

    def build(weights):
        built.append(weights)
        return reference_detector(weights)

    monkeypatch.setattr(pretrained, "build_detector", build)
    assert cli.main(["detect", str(image), "--weights", SSD_PTH, "--score-threshold",
                     str(SCORE), "--output-dir", str(tmp_path / "out")]) == 0
    assert built == [SSD_PTH]
    lines = capsys.readouterr().out.strip().splitlines()
    boxes, scores, labels, (height, width) = expected_detections(
        reference_detector(), str(image), SCORE)
    assert f"({width}x{height}, SSDLite" in lines[0] and f"{len(scores)} detections" in lines[0]
    rows = lines[1:-1]
    assert len(rows) == len(scores)
    for row, box, score, label in zip(rows, boxes, scores, labels):
        name, rest = row.split(". ", 1)[1].rsplit("  [", 1)
        printed_name, printed_score = name.rsplit(maxsplit=1)
        assert printed_name.strip() == COCO_CATEGORY_NAMES[label]
        assert abs(float(printed_score) - score) <= 5e-4
        np.testing.assert_allclose([float(v) for v in rest.rstrip("]").split(",")], box,
                                   atol=0.051)
    path = tmp_path / "out" / "cats_and_dogs_detections.png"
    assert lines[-1] == f"saved {path}" and path.is_file()
    from PIL import Image

    with Image.open(path) as saved:
        assert saved.size[0] * height == saved.size[1] * width


@pytest.mark.parametrize("model", ["reference", "colour"])
def test_segment_image_shares_and_voc_colours(model, segmenter, tmp_path):
    image = shared_data(PHOTO)
    found = segmentation.segment_image(
        image, segmenter if model == "reference" else colour_segmenter())
    photo = keras.utils.img_to_array(keras.utils.load_img(image))
    height, width = photo.shape[:2]
    mask = found["mask"]
    assert mask.shape == (height, width) and found["num_classes"] == 21
    assert len(found["classes"]) >= (1 if model == "reference" else 3)
    assert sum(share for _, _, share in found["classes"]) == pytest.approx(1.0, abs=1e-9)
    for index, name, share in found["classes"]:
        assert name == VOC_CLASS_NAMES[index]
        assert share == pytest.approx(np.mean(mask == index))
    shares = [share for _, _, share in found["classes"]]
    assert shares == sorted(shares, reverse=True)
    path = segmentation.draw_segmentation(image, found, str(tmp_path / "mask.png"))
    from PIL import Image

    with Image.open(path) as saved:
        assert saved.size == (2 * width, height)
        pixels = np.asarray(saved.convert("RGB"))
    palette = plotting.class_colors(21)
    assert palette[15].tolist() == [192, 128, 128]  # VOC's person
    legend_rows = (len(found["classes"]) + 1) * (max(10, round(min(height, width) / 30)) + 6)
    np.testing.assert_array_equal(pixels[legend_rows:, width:], palette[mask[legend_rows:]])
    np.testing.assert_array_equal(pixels[:, :width], photo.astype("uint8"))


def test_segment_command_prints_shares(monkeypatch, capsys, tmp_path):
    image = shared_data(PHOTO)
    monkeypatch.setattr(pretrained, "build_segmenter", reference_segmenter)
    assert cli.main(["segment", str(image), "--weights", LRASPP_PTH,
                     "--output-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [line.split() for line in lines[1:-1]]
    assert all(name in VOC_CLASS_NAMES for name, _ in rows)
    assert sum(float(share.rstrip("%")) for _, share in rows) == pytest.approx(100, abs=0.05)
    path = tmp_path / "cats_and_dogs_segmentation.png"
    assert lines[-1] == f"saved {path}" and path.is_file()


@pytest.mark.parametrize("command", ["detect", "segment"])
def test_bad_inputs_give_one_line_errors(command, capsys, tmp_path):
    missing = str(tmp_path / "missing.jpg")
    assert cli.main([command, missing]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"keras-mobilenets {command}: error: `image` {missing!r}: no such file."
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    assert cli.main([command, str(text)]) == 1
    assert "is not a readable image" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, str(text), "--weights", "imagenet"])
    assert exit_info.value.code == 2
    keyword = "coco" if command == "detect" else "voc"
    assert f"--weights: must be {keyword!r} or an existing torchvision checkpoint" in (
        capsys.readouterr().err)


def test_bad_library_arguments(detector):
    with pytest.raises(ValueError, match="score_threshold"):
        detection.detect_image(np.zeros((8, 8, 3)), detector, score_threshold=2)
    with pytest.raises(ValueError, match="`image` must be an image path or a"):
        detection.detect_image(np.zeros((8, 8)), detector)
    with pytest.raises(ValueError, match="`class_names` must be a sequence"):
        detection.detect_image(np.zeros((8, 8, 3)), detector, class_names="person")
    with pytest.raises(SystemExit):
        cli.main(["detect", "x.jpg", "--score-threshold", "1.5"])

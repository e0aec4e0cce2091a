"""ImageNet class index shipped with the package, preprocessing and decode_predictions."""

import json

import numpy as np
import pytest

from keras_mobilenets import imagenet
from tests import helpers
from tests.helpers import shared_data


def test_class_index_has_1000_sorted_wordnet_ids():
    index = imagenet.class_index()
    assert len(index) == 1000
    wnids = [wnid for wnid, _ in index]
    assert wnids == sorted(wnids) and len(set(wnids)) == 1000
    assert all(w.startswith("n") and len(w) == 9 and w[1:].isdigit() for w in wnids)
    assert index[0] == ("n01440764", "tench")
    assert index[652] == ("n03763968", "military_uniform")
    assert index[999] == ("n15075141", "toilet_tissue")


def test_class_index_is_keras_format_package_data():
    import importlib.resources

    text = importlib.resources.files("keras_mobilenets").joinpath(
        "data/imagenet_class_index.json").read_text()
    raw = json.loads(text)
    assert sorted(raw, key=int) == [str(i) for i in range(1000)]
    assert all(isinstance(v, list) and len(v) == 2 for v in raw.values())


def test_class_names_match_the_shared_imagenet_labels():
    path = shared_data("labels/imagenet_labels.txt")
    lines = path.read_text().splitlines()
    assert len(lines) == 1001 and lines[0] == "background"
    for i, (_, name) in enumerate(imagenet.class_index()):
        # The labels file holds every synonym ("tench, Tinca tinca"); ours the first one.
        assert name.replace("_", " ") == lines[i + 1].split(",")[0].strip(), i


def test_one_hot_scores_decode_to_their_class():
    scores = np.zeros((2, 1000), dtype="float32")
    scores[0, 652] = 1.0
    scores[1, 88] = 0.7
    scores[1, 1] = 0.2
    decoded = imagenet.decode_predictions(scores, top=2)
    assert decoded[0][0] == ("n03763968", "military_uniform", 1.0)
    assert [d[1] for d in decoded[1]] == ["macaw", "goldfish"]
    assert decoded[1][0][2] == pytest.approx(0.7)


@pytest.mark.parametrize("preds, top, match", [
    (np.zeros((1, 1001)), 5, r"`preds` must have shape \(batch, 1000\)"),
    (np.zeros(1000), 5, r"`preds` must have shape"),
    (np.zeros((1, 1000)), 0, r"`top` must be an int in \[1, 1000\], got 0"),
])
def test_decode_predictions_rejects_bad_input(preds, top, match):
    with pytest.raises(ValueError, match=match):
        imagenet.decode_predictions(preds, top=top)


def test_preprocess_input_modes():
    np.testing.assert_allclose(imagenet.preprocess_input([0.0, 127.5, 255.0]), [-1, 0, 1])
    x = np.array([3.0])
    assert imagenet.preprocess_input(x, mode="none") is x
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    pixel = np.array([[10.0, 128.0, 250.0]])
    np.testing.assert_allclose(
        imagenet.preprocess_input(pixel, mode="torch"), (pixel / 255.0 - mean) / std, rtol=1e-5
    )
    with pytest.raises(ValueError, match="`mode` must be one of"):
        imagenet.preprocess_input(x, mode="caffe")


def test_shared_data_skips_when_a_file_is_absent(tmp_path, monkeypatch):
    monkeypatch.setattr(helpers, "SHARED_DATA", tmp_path)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "present.txt").write_text("tench")
    assert helpers.shared_data("labels/present.txt") == tmp_path / "labels" / "present.txt"
    with pytest.raises(pytest.skip.Exception, match="shared data not available: .*absent.txt"):
        helpers.shared_data("labels/absent.txt")

"""``keras-mobilenets predict IMAGE``: top-5 ImageNet classes of a real photograph."""

import numpy as np
import pytest

import keras_mobilenets
from keras_mobilenets import cli, imagenet
from keras_mobilenets.weights import download
from tests.helpers import randomize_batch_norm, shared_data
from tests.weights.conftest import keras_home, publish, save_legacy_h5, server  # noqa: F401

V3_SMALL = "weights_mobilenet_v3_small_224_1.0_float.h5"


def expected_top5(model, image):
    import keras

    picture = keras.utils.load_img(image, target_size=(224, 224))
    batch = np.expand_dims(keras.utils.img_to_array(picture), 0)
    return imagenet.decode_predictions(np.asarray(model(batch, training=False)), top=5)[0]


TOP5 = [652, 88, 1, 2, 3]


def with_clear_top5(model):
    """Biases the logits so the top 5 classes are TOP5 whatever the image, far apart."""
    kernel, bias = model.get_layer("logits").get_weights()
    bias[TOP5] = [100.0, 80.0, 60.0, 40.0, 20.0]
    model.get_layer("logits").set_weights([kernel, bias])
    return model


def printed_classes(out):
    lines = out.strip().splitlines()  # get_file's progress bar may come first
    header = next(i for i, line in enumerate(lines) if "(MobileNetV3Small, weights=" in line)
    assert len(lines) == header + 6, out
    return [line.split()[1] for line in lines[header + 1:]]


def test_predict_with_served_imagenet_weights(publish, capsys):
    image = shared_data("images/grace_hopper.jpg")
    source = keras_mobilenets.MobileNetV3Small(weights=None)
    randomize_batch_norm(source)
    publish(with_clear_top5(source), V3_SMALL)

    assert cli.main(["predict", str(image), "--model", "MobileNetV3Small"]) == 0
    names = printed_classes(capsys.readouterr().out)
    assert names == [name for _, name, _ in expected_top5(source, image)]
    assert names == [imagenet.class_index()[i][1] for i in TOP5]


def test_predict_with_a_weights_path(tmp_path, capsys, monkeypatch):
    image = shared_data("images/grace_hopper.jpg")
    monkeypatch.setenv(download.BASE_URL_ENV, "http://127.0.0.1:9/never-used")
    source = keras_mobilenets.MobileNetV3Small(weights=None)
    randomize_batch_norm(source, seed=1)
    with_clear_top5(source)
    path = save_legacy_h5(source, str(tmp_path / "small.h5"))

    assert cli.main(["predict", str(image), "--weights", path, "--top", "5"]) == 0
    names = printed_classes(capsys.readouterr().out)
    assert names == [name for _, name, _ in expected_top5(source, image)]
    assert names == [imagenet.class_index()[i][1] for i in TOP5]


def test_predict_reports_bad_arguments(tmp_path, capsys):
    image = shared_data("images/grace_hopper.jpg")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["predict", str(image), "--weights", str(tmp_path / "none.h5")])
    assert exit_info.value.code == 2
    assert ("must be one of 'imagenet', 'imagenet_torchvision', 'none' or an existing weights "
            "file") in capsys.readouterr().err


def test_predict_names_a_missing_or_unreadable_image(tmp_path, capsys, monkeypatch):
    # The image is checked before any weights are fetched (no server is reachable here).
    monkeypatch.setenv(download.BASE_URL_ENV, "http://127.0.0.1:9/never-used")
    missing = tmp_path / "missing.jpg"
    assert cli.main(["predict", str(missing)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"keras-mobilenets predict: error: `image` {str(missing)!r}: no such file."
    )
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    assert cli.main(["predict", str(broken)]) == 1
    err = capsys.readouterr().err
    assert f"`image` {str(broken)!r} is not a readable image" in err
    assert "BytesIO" not in err


def test_predict_with_random_weights_and_a_wrong_weights_file(tmp_path, capsys):
    image = shared_data("images/grace_hopper.jpg")
    assert cli.main(["predict", str(image), "--weights", "None", "--image-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "(MobileNetV3Small, weights=none):" in out
    assert len(out.strip().splitlines()) == 6
    # Weights of another architecture: one short line naming the file, not Keras' report.
    other = keras_mobilenets.MobileNetV2(weights=None, alpha=0.35, input_shape=(64, 64, 3))
    path = tmp_path / "v2.weights.h5"
    other.save_weights(str(path))
    assert cli.main(["predict", str(image), "--weights", str(path), "--image-size", "64"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 800, err
    assert f"`weights` file {str(path)!r} does not match the architecture" in err

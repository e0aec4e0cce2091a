"""``keras-mobilenets evaluate``: model files side by side on a folder of labelled images."""

import importlib.util
import re
import shutil

import numpy as np
import pytest

from keras_mobilenets import cli, export
from keras_mobilenets.datasets import image_files, shapes
from keras_mobilenets.finetune import build_classifier, evaluate_files, write_shapes_folder
from keras_mobilenets.finetune.file_evaluation import top_k_accuracy
from tests import helpers
from tests.test_quiet_output import ESCAPES, NATIVE_LOG, unsilenced_environment

CLASSES = (*sorted(shapes.CLASS_NAMES), "zz_copies")  # six classes: top-5 is not always 1.0
BROKEN = "0.broken.png"  # first in its class folder (sorted): --limit counts it


def classifier(num_classes, image_size, seed):
    """A small random classifier whose scores differ from image to image."""
    model = build_classifier(num_classes, "MobileNetV3Small", image_size=image_size,
                             weights=None, alpha=0.35, minimalistic=True)
    helpers.randomize_batch_norm(model, seed=seed)
    return model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A six-class folder of 40x40 images with one corrupt file and a two-class one; a 32x32
    six-class model as .keras, float32 and int8 .tflite; a 40x40 six-class and a 32x32
    two-class .keras (the Keras models are returned too, under "models")."""
    pytest.importorskip("ai_edge_litert")
    root = tmp_path_factory.mktemp("evaluate")
    data, two = root / "data", root / "two_classes"
    write_shapes_folder(data, num_images=40, image_size=40, seed=1)
    shutil.copytree(data / "circle", data / CLASSES[-1])
    for name in ("circle", "square"):
        shutil.copytree(data / name, two / name)
    (data / "circle" / BROKEN).write_bytes(b"\x89PNG not a png")
    paths = {"data": data, "two_classes_data": two}
    models = {"keras": classifier(len(CLASSES), 32, seed=0),
              "keras40": classifier(len(CLASSES), 40, seed=1),
              "two_classes": classifier(2, 32, seed=2)}
    for name, model in models.items():
        paths[name] = root / f"{name}.keras"
        model.save(paths[name])
    paths["float32"] = root / "model_float32.tflite"
    export.to_tflite(models["keras"], paths["float32"])
    calibration = helpers.random_images((32, 32, 3), batch=8)
    paths["int8"] = root / "model_int8.tflite"
    export.to_tflite(models["keras"], paths["int8"], quantization="int8",
                     representative_data=calibration)
    return {"models": models, **{name: str(path) for name, path in paths.items()}}


def folder_images(data_dir, size):
    """What evaluate gives the models: every usable image resized, and its label."""
    import tensorflow as tf

    paths, labels = [], []
    for label, name in enumerate(CLASSES):
        for path in sorted((data_dir / name).iterdir()):
            if path.name != BROKEN:
                paths.append(path)
                labels.append(label)
    images = np.stack([tf.image.resize(image_files.decode_image(path), size).numpy()
                       for path in paths])
    return images, np.array(labels)


def test_accuracies_are_those_of_the_models_on_the_same_images(files):
    import pathlib

    result = evaluate_files(files["data"], [files["keras"], files["float32"], files["int8"],
                                            files["keras40"], files["keras"]],
                            latency_runs=2)
    assert result.class_names == CLASSES and result.images == 48
    assert [str(entry.path).endswith(BROKEN) for entry in result.skipped] == [True]
    keras_row, float32_row, int8_row, keras40_row, again = result.rows
    images, labels = folder_images(pathlib.Path(files["data"]), (32, 32))
    scores = files["models"]["keras"].predict(images, batch_size=32, verbose=0)
    assert keras_row.top1 == float(np.mean(scores.argmax(-1) == labels))
    assert keras_row.top5 == top_k_accuracy(scores, labels, 5) < 1.0
    assert keras_row.agreement == again.agreement == 1.0  # the first file, and itself
    assert again.top1 == keras_row.top1
    int8_scores = export.LiteRTModel(files["int8"]).predict(images)
    assert int8_row.top1 == float(np.mean(int8_scores.argmax(-1) == labels))
    assert int8_row.agreement == float(np.mean(int8_scores.argmax(-1) == scores.argmax(-1)))
    assert float32_row.agreement >= 0.99
    # Another input size: the images are resized to 40x40 for that model.
    images40, _ = folder_images(pathlib.Path(files["data"]), (40, 40))
    scores40 = np.asarray(files["models"]["keras40"](images40, training=False))
    assert keras40_row.input_size == (40, 40)
    assert keras40_row.top1 == float(np.mean(scores40.argmax(-1) == labels))
    for row in result.rows:
        assert row.size_kib > 0 and row.latency_ms > 0
    assert result.rows[0].latency_ratio is None
    assert all(0 < row.latency_ratio.low <= row.latency_ratio.median <= row.latency_ratio.high
               for row in result.rows[1:])


def test_top5_is_na_with_fewer_than_five_classes(files, capsys):
    assert cli.main(["evaluate", files["two_classes_data"], "--model", files["two_classes"],
                     "--limit", "3", "--latency-runs", "1"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith(files["two_classes"]))
    assert row.split()[3] == "n/a"
    assert "Accuracy on 6 images of" in out and ", the first 3 files of each class" in out


def test_top_k_accuracy():
    scores = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]])
    assert top_k_accuracy(scores, np.array([1, 1]), 1) == 0.0
    assert top_k_accuracy(scores, np.array([1, 1]), 2) == 1.0
    assert top_k_accuracy(scores, np.array([2, 2]), 2) == 0.5


@pytest.mark.slow
def test_the_command_prints_the_table_and_names_skipped_files_quietly(files, tmp_path):
    # In its own process, as users run it: the --limit, the skipped file, no native logs.
    process = helpers.run_python(
        ["-m", "keras_mobilenets", "evaluate", files["data"], "--model", files["float32"],
         files["int8"], "--limit", "2", "--latency-runs", "3"],
        tmp_path, env=unsilenced_environment())
    output = process.stdout + process.stderr
    assert process.returncode == 0, output[-3000:]
    assert not NATIVE_LOG.search(output), output
    assert not any(code in output for code in ESCAPES), repr(output)
    # The first 2 files of each of 6 classes, the corrupt one skipped and named.
    assert f"{files['data']}/circle/{BROKEN}: cannot decode" in process.stdout
    assert f"Accuracy on 11 images of {files['data']}, the first 2 files" in process.stdout
    assert "images 11/11" in process.stdout  # a plain progress line, not a terminal's bar
    lines = process.stdout.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("file ")):]
    assert table[0].split() == ["file", "input", "top-1", "top-5", "agreement", "size",
                                "KiB", "latency", "ms", "vs", "first"]
    assert [line.split()[0] for line in table[1:3]] == [files["float32"], files["int8"]]
    assert table[1].split()[1] == "32x32" and table[1].split()[4] == "1.0000"


@pytest.mark.parametrize("arguments, message", [
    (["{missing}", "--model", "{keras}"],
     r"argument DATA_DIR: `data_dir` '.*missing' does not exist"),
    (["{no_classes}", "--model", "{keras}"],
     r"argument DATA_DIR: .* must hold at least 2 class sub-folders, found 0"),
    (["{data}", "--model", "{keras}", "model.h5"],
     r"argument --model: must be a file ending in .keras, .tflite, .onnx, got 'model.h5'"),
    (["{data}", "--model", "{missing}.tflite"],
     r"argument --model: model file '.*missing.tflite' does not exist"),
    (["{data}"], r"the following arguments are required: --model"),
    (["{data}", "--model", "{keras}", "--limit", "0"],
     r"argument --limit: must be an int >= 1, got '0'"),
])
def test_bad_arguments_give_one_error_line(files, tmp_path, capsys, arguments, message):
    (tmp_path / "no_classes").mkdir()
    paths = {**files, "missing": tmp_path / "missing", "no_classes": tmp_path / "no_classes"}
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["evaluate", *[argument.format(**paths) for argument in arguments]])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert re.search(message, err.splitlines()[-1]), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 2  # usage + error


def test_a_model_of_other_classes_gives_one_error_line(files, capsys):
    assert cli.main(["evaluate", files["two_classes_data"], "--model", files["float32"]]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        f"keras-mobilenets evaluate: error: '{files['float32']}' gives 6 class scores "
        f"(output shape (1, 6)) but '{files['two_classes_data']}' has 2 class sub-folders "
        "(circle, square).")


def onnx_runner_missing():
    return not hasattr(export, "OnnxModel") or importlib.util.find_spec("onnxruntime") is None


@pytest.mark.skipif(not onnx_runner_missing(), reason="the ONNX runner is installed")
def test_onnx_without_its_runner_gives_one_error_line(files, tmp_path, capsys):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not read")
    assert cli.main(["evaluate", files["data"], "--model", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("keras-mobilenets evaluate: error: ") and "Traceback" not in err
    assert "need onnxruntime" in err and "keras-mobilenets[onnx]" in err, err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.end_to_end
@pytest.mark.skipif(onnx_runner_missing(), reason="needs export.OnnxModel and onnxruntime")
def test_onnx_file_agrees_with_its_keras_model(files, tmp_path):
    path = str(tmp_path / "model.onnx")
    model = files["models"]["keras"]
    model(np.zeros((1, 32, 32, 3), "float32"))  # Keras exports ONNX of called models only
    model.export(path, format="onnx", verbose=False)  # tf2onnx: NHWC float32 input
    result = evaluate_files(files["data"], [files["keras"], path], latency_runs=2)
    assert result.rows[1].agreement >= 0.99
    assert result.rows[1].top1 == pytest.approx(result.rows[0].top1, abs=0.03)


def test_open_model_refuses_bad_files(tmp_path):
    from keras_mobilenets.export import runners

    with pytest.raises(ValueError, match=r"'model.h5' is no model file this can run: the "
                                         r"name must end in .keras, .tflite, .onnx"):
        runners.open_model("model.h5")
    with pytest.raises(FileNotFoundError, match=r"model file '.*missing.keras' does not exist"):
        runners.open_model(tmp_path / "missing.keras")
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"'.*bad.keras' cannot be loaded as a Keras model"):
        runners.open_model(tmp_path / "bad.keras")

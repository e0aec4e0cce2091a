"""``keras-mobilenets finetune``: the fine-tuning workflow from the command line."""

import os
import re

import pytest

from keras_mobilenets import cli, export
from tests import helpers


END_TO_END = [
    "finetune", "--weights", "none", "--minimalistic", "--alpha", "0.35", "--image-size", "32",
    "--batch-size", "8", "--shapes-images", "30", "--epochs", "1", "--fine-tune-epochs", "1",
    "--qat", "--qat-epochs", "1", "--latency-runs", "5",
    "--optimizer", "sgd",  # traces in half the time of Adam (run by the resume test)
    "--export", "shapes_int8.tflite", "--output-dir", "run",
]


@pytest.mark.slow
@pytest.mark.end_to_end
def test_finetune_trains_quantizes_exports_and_prints_the_table(tmp_path):
    pytest.importorskip("tf_keras")
    pytest.importorskip("ai_edge_litert")
    # The command as users run it, in its own process.
    process = helpers.run_python(["-m", "keras_mobilenets", *END_TO_END], tmp_path)
    out = process.stdout
    assert process.returncode == 0, out[-3000:] + process.stderr[-5000:]
    output = tmp_path / "run"
    int8 = output / "shapes_int8.tflite"  # --export is relative to --output-dir
    # Steps, Keras progress bars and the table with one row per model and file.
    for step in ("[1/6]", "[3/6] 1 epoch with the backbone frozen",
                 "[4/6] 1 epoch with the backbone unfrozen", "[5/6] 1 epoch of quantization",
                 "[6/6]"):
        assert step in out
    assert "You are saving your model as an HDF5 file" not in out + process.stderr
    assert "[====" not in out  # the QAT phase shows Keras 3's progress bars, as the others
    assert "3/3" in out and "accuracy:" in out  # Progbar: 24 training images / batch 8
    table = out[out.index("model   "):]
    names = ("Keras float", "Keras QAT", "TFLite float32", "TFLite int8 (QAT)")
    rows = {name: line.split()[len(name.split()):] for line in table.splitlines()
            for name in names if line.startswith(name + " ")}
    assert set(rows) == set(names)
    # The float32 file computes what the Keras model computes.
    assert float(rows["TFLite float32"][1]) == 1.0
    assert float(rows["TFLite int8 (QAT)"][2]) < 0.6 * float(rows["TFLite float32"][2])
    # Files: a checkpoint per epoch of each phase, the models, a full-integer int8 file.
    for phase, name in (("frozen", "epoch_01.weights.h5"), ("fine_tune", "epoch_01.weights.h5"),
                        ("qat", "epoch_01.h5")):
        assert os.path.isfile(output / "checkpoints" / phase / name)
    assert not os.listdir(output / "backup")  # each phase's backup goes when it completes
    for name in ("model.keras", "qat_model.h5", "model_float32.tflite", "settings.json"):
        assert os.path.isfile(output / name)
    kernels = export.op_tensor_types(str(int8))
    assert kernels and all(row["input"] == row["output"] == "INT8" for row in kernels)


@pytest.mark.slow
@pytest.mark.end_to_end
def test_finetune_exports_onnx_files_and_prints_their_rows(tmp_path):
    pytest.importorskip("tf_keras")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    arguments = [a if a != "shapes_int8.tflite" else "shapes_int8.onnx" for a in END_TO_END]
    process = helpers.run_python(["-m", "keras_mobilenets", *arguments], tmp_path)
    out = process.stdout
    assert process.returncode == 0, out[-3000:] + process.stderr[-5000:]
    assert "Traceback" not in out + process.stderr
    output = tmp_path / "run"
    table = out[out.index("model   "):]
    names = ("Keras float", "Keras QAT", "ONNX float32", "ONNX int8 (QAT)")
    rows = {name: line.split()[len(name.split()):] for line in table.splitlines()
            for name in names if line.startswith(name + " ")}
    assert set(rows) == set(names), table
    assert float(rows["ONNX float32"][1]) == 1.0  # agrees with the Keras model
    assert float(rows["ONNX int8 (QAT)"][3]) > 0  # a latency was measured
    assert os.path.isfile(output / "model_float32.onnx")
    runner = export.OnnxModel(output / "shapes_int8.onnx")
    assert runner.op_histogram()["QuantizeLinear"] > 10
    assert runner.optimized_op_histogram()["QLinearConv"] > 10


@pytest.mark.parametrize("arguments, message", [
    (["{missing}"], r"argument DATA_DIR: `data_dir` '.*missing' does not exist"),
    (["{one_class}"], r"argument DATA_DIR: .* must hold at least 2 class sub-folders, found 1"),
    (["--epochs", "-1"], r"argument --epochs: must be an int >= 0, got '-1'"),
    (["--image-size", "16"], r"argument --image-size: must be an int >= 32, got '16'"),
    (["--export", "model.pb"],
     r"argument --export: must be a path ending in .tflite or .onnx, got 'model.pb'"),
    (["--weights", "{missing}"],
     r"argument --weights: must be one of 'imagenet', 'imagenet_torchvision', 'none' or an"),
    (["--model", "ShuffleNetV2", "--alpha", "0.5"],
     r"argument --alpha: ShuffleNetV2 has no `alpha` argument"),
    (["--validation-split", "1"], r"argument --validation-split: must be a number in \[0, 1\)"),
    (["--strategy", "gpus"], r"argument --strategy: invalid choice: 'gpus'"),
])
def test_finetune_rejects_bad_arguments(tmp_path, capsys, arguments, message):
    (tmp_path / "one_class" / "cats").mkdir(parents=True)
    (tmp_path / "one_class" / "cats" / "cat.png").write_bytes(b"")
    paths = {"missing": tmp_path / "missing", "one_class": tmp_path / "one_class"}
    arguments = [argument.format(**paths) for argument in arguments]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["finetune", *arguments, "--output-dir", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)
    assert not os.path.exists(tmp_path / "out")


def test_finetune_strict_stops_before_training_with_the_list(tmp_path, capsys):
    from PIL import Image

    for name in ("cats", "dogs"):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for index in range(3):
            Image.new("RGB", (8, 8)).save(tmp_path / "photos" / name / f"{index}.png")
    (tmp_path / "photos" / "dogs" / "corrupt.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    out = tmp_path / "out"
    code = cli.main(["finetune", str(tmp_path / "photos"), "--strict", "--weights", "NONE",
                     "--output-dir", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    assert "keras-mobilenets finetune: error: `data_dir`" in captured.err
    assert f"{tmp_path / 'photos' / 'dogs' / 'corrupt.jpg'}: cannot decode" in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert os.path.isfile(out / "skipped_files.txt")
    assert not os.path.exists(out / "checkpoints")  # stopped before training


@pytest.mark.parametrize("text, weights", [("none", None), ("NONE", None), ("None", None),
                                           ("ImageNet", "imagenet")])
def test_finetune_weights_option_ignores_case(text, weights):
    args = cli.build_parser().parse_args(["finetune", "--weights", text])
    assert args.weights == weights


def test_demo_rejects_zero_epochs_in_one_line_and_documents_defaults(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--epochs", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --epochs: must be an int >= 1, got '0'" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 2  # usage + error
    with pytest.raises(SystemExit):
        cli.main(["demo", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for text in ("float training epochs (default: 6)", "(default: keras_mobilenets_runs/demo)",
                 "--seed SEED", "(default: 0)"):
        assert text in help_text


def test_finetune_and_demo_refuse_tensorflow_only_options_on_other_backends(
        tmp_path, capsys, monkeypatch):
    import keras

    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["finetune", "--qat", "--strategy", "mirrored", "--output-dir",
                  str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert re.search(r"error: keras-mobilenets finetune --qat --strategy mirrored needs the "
                     r"TensorFlow backend of Keras, but Keras runs on 'torch'\. .*"
                     r"Without --qat and --strategy mirrored the float fine-tuning runs",
                     capsys.readouterr().err)
    assert cli.main(["demo", "--output-dir", str(tmp_path / "demo")]) == 1
    assert re.search(r"keras-mobilenets demo: error: the demo \(QAT and TFLite export\) needs "
                     r"the TensorFlow backend of Keras, but Keras runs on 'torch'\. .*"
                     r"`keras-mobilenets finetune` trains float models on every backend",
                     capsys.readouterr().err)
    assert not (tmp_path / "out").exists() and not (tmp_path / "demo").exists()


def test_tables_name_the_cpu_and_say_whether_int8_was_faster(monkeypatch):
    from keras_mobilenets import results
    from keras_mobilenets.cli import training
    from keras_mobilenets.export import Spread
    from keras_mobilenets.export.compare import Row

    cpuinfo = {"model name": "AMD EPYC", "cpu family": "25", "model": "17"}
    monkeypatch.setattr(results, "_cpuinfo_field", lambda names: cpuinfo.get(names[0]))
    assert results._cpu_model() == "AMD EPYC (family 25 model 17)"
    cpuinfo.pop("cpu family")  # ARM: no family, the name alone
    assert results._cpu_model() == "AMD EPYC"
    monkeypatch.setattr(results, "cpu_features", lambda: ["avx2", "fma"])
    monkeypatch.setattr(results, "_cpu_model", lambda: "Some CPU")
    assert results.cpu_description() == "Some CPU; AVX2, FMA"
    assert "on this CPU (Some CPU; AVX2, FMA)" in training.latency_note()
    float32 = Row("TFLite float32", 0.9, 1.0, 3.0, 0.2)
    faster = Row("TFLite int8 (QAT)", 0.9, 1.0, 1.0, 0.1, Spread(0.5, 0.4, 0.6))
    spans_one = Row("TFLite int8 (QAT)", 0.9, 1.0, 1.0, 0.1, Spread(0.96, 0.7, 1.16))
    slower = Row("TFLite int8 (post-training)", 0.9, 1.0, 1.0, 0.3, Spread(1.05, 0.9, 1.2))
    assert training.int8_speed_note([float32]) == ""
    assert training.int8_speed_note([float32, faster]) == (
        "On this CPU the int8 files ran faster than the float32 file in every round.")
    assert training.int8_speed_note([float32, faster, spans_one]).startswith(
        "On this CPU the int8 files were not clearly faster than the float32 file: the "
        "per-round ratio spans 1")
    assert training.int8_speed_note([float32, faster, slower]).startswith(
        "On this CPU the int8 files were not faster than the float32 file")

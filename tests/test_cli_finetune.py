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
def test_finetune_trains_quantizes_exports_and_prints_the_table(tmp_path):
    pytest.importorskip("tf_keras")
    pytest.importorskip("ai_edge_litert")
    # The command as users run it, in its own process.
    process = helpers.run_python(["-m", "keras_mobilenets", *END_TO_END], tmp_path)
    out = process.stdout
    assert process.returncode == 0, out[-3000:] + process.stderr[-5000:]
    output, int8 = tmp_path / "run", tmp_path / "shapes_int8.tflite"
    # Steps, Keras progress bars and the table with one row per model and file.
    for step in ("[1/6]", "[3/6] 1 epochs with the backbone frozen", "[5/6]", "[6/6]"):
        assert step in out
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


@pytest.mark.parametrize("arguments, message", [
    (["{missing}"], r"argument DATA_DIR: `data_dir` '.*missing' does not exist"),
    (["{one_class}"], r"argument DATA_DIR: .* must hold at least 2 class sub-folders, found 1"),
    (["--epochs", "-1"], r"argument --epochs: must be an int >= 0, got '-1'"),
    (["--image-size", "16"], r"argument --image-size: must be an int >= 32, got '16'"),
    (["--export", "model.onnx"], r"argument --export: must be a path ending in .tflite"),
    (["--weights", "{missing}"], r"argument --weights: must be 'imagenet', 'none' or an existing"),
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

"""The LR-ASPP shapes example in smoke mode: one short training run shared by the tests.

The run (``KERAS_MOBILENETS_SMOKE=1``: MobileNetV3Small alpha 0.35 at 64x64, 64 steps)
is far too short to segment the shapes well (the example's defaults reach mean IoU >= 0.8,
see docs/segmentation.md); it shows that training moves the model from noise to the
class statistics of the data, and that the QAT model converts to an int8 file computing
what it computes.
"""

import contextlib
import io
import json
import os
import pathlib

import numpy as np
import pytest

pytest.importorskip("tf_keras")
pytest.importorskip("tensorflow_model_optimization")
pytest.importorskip("ai_edge_litert")

from keras_mobilenets import export  # noqa: E402
from keras_mobilenets.datasets import shapes  # noqa: E402
from tests import helpers  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.end_to_end]

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "train_lraspp_shapes.py"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """(Result, printed text) of the example run in smoke mode."""
    example = helpers.load_script(EXAMPLE)
    output_dir = tmp_path_factory.mktemp("lraspp")
    previous = os.environ.get(example.SMOKE_ENV)
    os.environ[example.SMOKE_ENV] = "1"
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            result = example.main(["--output-dir", str(output_dir)])
    finally:
        if previous is None:
            del os.environ[example.SMOKE_ENV]
        else:
            os.environ[example.SMOKE_ENV] = previous
    return result, printed.getvalue()


def test_smoke_run_prints_the_table_and_writes_the_files(smoke):
    result, printed = smoke
    assert result.config.image_size == 64 and result.config.qat_steps > 0  # the smoke sizes
    for name in ("Keras untrained", "Keras float", "Keras QAT", "TFLite int8 (QAT)",
                 "int8 IoU per class"):
        assert name in printed
    assert result.table() in printed
    # Smoke mode skips the float32 file (tests/export covers float32 export); the int8
    # file holds about one byte per weight.
    assert list(result.files) == ["int8", "figure"]
    # The masks overlaid on held-out images, as a PNG file.
    with open(result.files["figure"], "rb") as figure:
        assert figure.read(8) == b"\x89PNG\r\n\x1a\n"
    float_bytes = 4 * result.models["float"].count_params()
    assert 0 < os.path.getsize(result.files["int8"]) < 0.5 * float_bytes
    # The table, with the seed, the command line and the machine, as results.json.
    with open(os.path.join(result.config.output_dir, "results.json")) as f:
        record = json.load(f)
    assert record["name"] == "lraspp_shapes" and record["seed"] == result.config.seed == 0
    assert record["command"].startswith(
        "KERAS_MOBILENETS_SMOKE=1 python examples/train_lraspp_shapes.py --output-dir ")
    assert record["machine"]["cpu_count"] >= 1 and record["machine"]["tensorflow"]
    assert [row["name"] for row in record["rows"]] == [row.name for row in result.rows]
    assert record["rows"][1]["mean_iou"] == result.row("Keras float").mean_iou
    assert sum(record["int8_ops"].values()) > 0
    assert "results.json" in printed


def test_training_improves_the_held_out_mean_iou(smoke):
    result, _ = smoke
    untrained = result.row("Keras untrained").mean_iou
    trained = result.row("Keras float").mean_iou
    assert trained > untrained + 0.1, (untrained, trained)
    assert result.losses[-1] < 0.9 * result.losses[0], result.losses


def test_int8_file_is_integer_and_agrees_with_the_qat_model(smoke):
    result, _ = smoke
    path = result.files["int8"]
    rows = export.op_tensor_types(
        path, ops=("CONV_2D", "DEPTHWISE_CONV_2D", "RESIZE_BILINEAR", "MUL", "ADD")
    )
    assert {row["op"] for row in rows} == {
        "CONV_2D", "DEPTHWISE_CONV_2D", "RESIZE_BILINEAR", "MUL", "ADD"
    }
    for row in rows:
        assert row["input"] == row["output"] == "INT8", row
        if row["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            assert row["weights"] == "INT8", row
    assert result.row("TFLite int8 (QAT)").agreement >= 0.98

    # Beyond the argmax: the int8 logits follow the QAT model's to a few output steps.
    size = result.config.image_size
    images, _ = shapes.load("test", num_images=4, image_size=size, task="segmentation")
    images = images.astype("float32")
    runner = export.LiteRTModel(path)
    expected = result.models["qat"](images, training=False).numpy()
    actual = runner.predict(images)
    scale = runner.output_details[0]["quantization"][0]
    assert np.abs(actual - expected).mean() < 2 * scale
    assert np.corrcoef(actual.ravel(), expected.ravel())[0, 1] > 0.95


@pytest.mark.acceptance
def test_full_example_meets_the_segmentation_targets(tmp_path):
    """The segmentation targets at the example's defaults (several minutes; ``-m acceptance``).

    Held-out mean IoU >= 0.8, and the int8 TFLite file's argmax masks agree with the QAT
    Keras model's on >= 98% of pixels.
    """
    example = helpers.load_script(EXAMPLE)
    result = example.run(example.Config(output_dir=str(tmp_path)), verbose=0)
    assert result.row("Keras float").mean_iou >= 0.8, result.table()
    int8 = result.row("TFLite int8 (QAT)")
    assert int8.mean_iou >= 0.8, result.table()
    assert int8.agreement >= 0.98, result.table()

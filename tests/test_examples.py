"""Every example (``examples/*.py`` and ``examples/*.ipynb``) runs in smoke mode.

``KERAS_MOBILENETS_SMOKE=1`` makes each example tiny (32x32 images, a few steps). Scripts
run with the interpreter of the tests, notebooks with nbclient on an IPython kernel of the
same interpreter (tests/scripts/run_notebook.py); each in its own process, with a fresh
folder as working directory.
"""

import importlib
import json
import sys

import keras
import numpy as np
import pytest

from keras_mobilenets import export
from tests import helpers

ALL_EXAMPLES = sorted((helpers.REPO / "examples").glob("*.py")) + sorted(
    (helpers.REPO / "examples").glob("*.ipynb"))
# Examples whose smoke run has its own test module (it asserts more than a clean exit and
# shares the run between tests): running them here too would only double the cost. The
# value names the module and its constant holding the example's path.
OWN_TESTS = {
    "train_ssdlite_shapes.py": ("tests.detection.test_example", "SCRIPT"),
    "train_lraspp_shapes.py": ("tests.segmentation.test_example", "EXAMPLE"),
}
EXAMPLES = [example for example in ALL_EXAMPLES if example.name not in OWN_TESTS]
CELL_TIMEOUT_S = 300
KERNEL = "keras-mobilenets-tests"


def _assert_full_integer(path):
    kernels = export.op_tensor_types(str(path))
    assert kernels and all(row["input"] == row["output"] == "INT8" for row in kernels), kernels


def _check_notebook(stdout, folder):
    assert "TFLite int8 (QAT)" in stdout
    # Its last cell runs the int8 file on one held-out image and names both classes.
    line = next(x for x in stdout.splitlines() if x.startswith("int8 file on one image: "))
    predicted, true = line[len("int8 file on one image: "):-1].split(" (true: ")
    classes = [path.name for path in (folder / "finetune_run" / "shapes_images").iterdir()
               if path.is_dir()]
    assert len(classes) > 1 and predicted in classes and true in classes, (line, classes)
    _assert_full_integer(folder / "finetune_run" / "model_int8.tflite")


def _check_qat_to_tflite(stdout, folder):
    assert "CONV_2D" in stdout and "TFLite int8 (QAT)" in stdout
    _assert_full_integer(
        folder / "keras_mobilenets_runs" / "qat_to_tflite" / "model_int8_qat.tflite")


def _check_multi_device(stdout, folder):
    assert "MirroredStrategy with 2 replica(s)" in stdout and "Keras float" in stdout
    # The saved classifier loads and gives one probability per shapes class.
    model = keras.saving.load_model(
        folder / "keras_mobilenets_runs" / "multi_device_training" / "model.keras")
    size = model.input_shape[1]
    probabilities = np.asarray(model(np.zeros((2, size, size, 3), "float32")))
    assert probabilities.shape == (2, 5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


# What each example's smoke run must print and write, beyond exiting with status 0.
CHECKS = {
    "finetune_colab.ipynb": _check_notebook,
    "qat_to_tflite.py": _check_qat_to_tflite,
    "multi_device_training.py": _check_multi_device,
}


def _command(example, folder, env):
    """The command running ``example`` in ``folder`` (``env`` is updated for notebooks)."""
    if example.suffix != ".ipynb":
        return [example]
    # An IPython kernel of this interpreter, whatever kernels are installed.
    kernel = folder / "jupyter" / "kernels" / KERNEL
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "keras_mobilenets tests", "language": "python",
    }))
    env.update(JUPYTER_PATH=str(folder / "jupyter"), IPYTHONDIR=str(folder / "ipython"))
    return [helpers.SCRIPTS / "run_notebook.py", example, KERNEL, folder, CELL_TIMEOUT_S]


def test_every_example_is_checked():
    assert {example.name for example in EXAMPLES} == set(CHECKS)


@pytest.mark.parametrize("name, location", OWN_TESTS.items())
def test_examples_with_their_own_smoke_test_have_one(name, location):
    # The module imports only where the example's dependencies are installed (it skips
    # otherwise, as its tests do).
    module_name, constant = location
    module = importlib.import_module(module_name)
    assert getattr(module, constant) == helpers.REPO / "examples" / name


@pytest.mark.slow
@pytest.mark.end_to_end
@pytest.mark.parametrize("example", EXAMPLES, ids=[example.name for example in EXAMPLES])
def test_example_runs_in_smoke_mode(example, tmp_path):
    if example.suffix == ".ipynb":
        pytest.importorskip("nbclient")
        pytest.importorskip("ipykernel")
    folder = tmp_path / "run"
    folder.mkdir()
    env = helpers.environment(KERAS_MOBILENETS_SMOKE="1", MPLBACKEND="Agg")
    process = helpers.run_python(_command(example, folder, env), folder, env)
    output = process.stdout + process.stderr
    assert process.returncode == 0, f"{example.name} failed:\n{output[-6000:]}"
    CHECKS[example.name](process.stdout, folder)

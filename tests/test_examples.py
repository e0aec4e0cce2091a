"""Every example (``examples/*.py`` and ``examples/*.ipynb``) runs in smoke mode.

``KERAS_MOBILENETS_SMOKE=1`` makes each example tiny (32x32 images, a few steps). Scripts
run with the interpreter of the tests, notebooks with nbclient on an IPython kernel of the
same interpreter; each in its own process and folder, started with the session
(tests/background.py).
"""

import json
import sys

import pytest

from tests import background

ALL_EXAMPLES = sorted((background.REPO / "examples").glob("*.py")) + sorted(
    (background.REPO / "examples").glob("*.ipynb"))
# Examples whose smoke run has its own test module (it asserts more than a clean exit and
# shares the run between tests): running them here too would only double the cost.
OWN_TESTS = {
    "train_ssdlite_shapes.py": "tests/detection/test_example.py",
    "train_lraspp_shapes.py": "tests/segmentation/test_example.py",
}
EXAMPLES = [example for example in ALL_EXAMPLES if example.name not in OWN_TESTS]
CELL_TIMEOUT_S = 300
KERNEL = "keras-mobilenets-tests"
# What some examples must print (every example must at least exit with status 0).
EXPECTED_OUTPUT = {
    "finetune_colab.ipynb": ("TFLite int8 (QAT)", "int8 file on one image:"),
    "qat_to_tflite.py": ("CONV_2D", "TFLite int8 (QAT)"),
    "multi_device_training.py": ("MirroredStrategy with 2 replica(s)", "Keras float"),
}

# Runs a notebook with nbclient (argv: notebook, kernel name, working folder) and prints
# what its cells printed.
NOTEBOOK_RUNNER = f"""
import sys
import nbformat
from nbclient import NotebookClient

notebook = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(notebook, timeout={CELL_TIMEOUT_S}, kernel_name=sys.argv[2],
               resources={{"metadata": {{"path": sys.argv[3]}}}}).execute()
for cell in notebook.cells:
    for output in cell.get("outputs", []):
        if output.get("name") == "stdout":
            print(output["text"], end="")
"""


def _job(example):
    def make(folder):
        env = background.environment(KERAS_MOBILENETS_SMOKE="1", MPLBACKEND="Agg")
        if example.suffix != ".ipynb":
            return {"args": [sys.executable, str(example)], "env": env}
        # An IPython kernel of this interpreter, whatever kernels are installed.
        kernel = folder / "jupyter" / "kernels" / KERNEL
        kernel.mkdir(parents=True)
        (kernel / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "keras_mobilenets tests", "language": "python",
        }))
        env.update(JUPYTER_PATH=str(folder / "jupyter"), IPYTHONDIR=str(folder / "ipython"))
        return {"args": [sys.executable, "-c", NOTEBOOK_RUNNER, str(example), KERNEL,
                         str(folder)], "env": env}

    return make


for _example in EXAMPLES:
    background.register(f"example:{_example.name}", _job(_example))


def test_there_are_examples():
    names = {example.name for example in EXAMPLES}
    assert {"finetune_colab.ipynb", "qat_to_tflite.py", "multi_device_training.py"} <= names


def test_examples_with_their_own_smoke_test_have_one():
    for name, test_module in OWN_TESTS.items():
        assert (background.REPO / "examples" / name).exists(), name
        text = (background.REPO / test_module).read_text()
        assert name in text and "SMOKE" in text, (name, test_module)


@pytest.mark.slow
@pytest.mark.parametrize("example", [
    pytest.param(example.name, marks=pytest.mark.background(f"example:{example.name}"))
    for example in EXAMPLES
])
def test_example_runs_in_smoke_mode(example):
    if example.endswith(".ipynb"):
        pytest.importorskip("nbclient")
        pytest.importorskip("ipykernel")
    process, _ = background.result(f"example:{example}")
    output = process.stdout + process.stderr
    assert process.returncode == 0, f"{example} failed:\n{output[-6000:]}"
    for expected in EXPECTED_OUTPUT.get(example, ()):
        assert expected in process.stdout, f"{example}: no {expected!r} in:\n{output[-3000:]}"

"""Every example (``examples/*.py`` and ``examples/*.ipynb``) runs in smoke mode.

``KERAS_MOBILENETS_SMOKE=1`` makes each example tiny (32x32 images, a few steps). Scripts
run with the interpreter of the tests, notebooks with nbclient on an IPython kernel of the
same interpreter; each in its own process and folder. The examples of this module's run
are started together, as many at a time as there are CPU cores (an example is mostly
single-threaded graph tracing), and each test waits for its own.
"""

import concurrent.futures
import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.py")) + sorted((REPO / "examples").glob("*.ipynb"))
TIMEOUT_S = 600  # per example; the smoke runs take well under a minute each
CELL_TIMEOUT_S = 300
KERNEL = "keras-mobilenets-tests"
# What some examples must print (every example must at least exit with status 0).
EXPECTED_OUTPUT = {
    "finetune_colab.ipynb": ("TFLite int8 (QAT)", "int8 file on one image:"),
    "qat_to_tflite.py": ("CONV_2D", "TFLite int8 (QAT)"),
    "multi_device_training.py": ("MirroredStrategy with 2 replica(s)", "Keras float"),
}

# Runs a notebook with nbclient: argv = notebook, kernel name, working folder.
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


def _environment(root):
    """Smoke mode, the repository importable, an IPython kernel of this interpreter."""
    kernel_dir = root / "jupyter" / "kernels" / KERNEL
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "keras_mobilenets tests", "language": "python",
    }))
    return {
        **os.environ,
        "KERAS_MOBILENETS_SMOKE": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "JUPYTER_PATH": os.pathsep.join(filter(None, [str(root / "jupyter"),
                                                      os.environ.get("JUPYTER_PATH")])),
        "MPLBACKEND": "Agg",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "IPYTHONDIR": str(root / "ipython"),
    }


def _run(example, root, env):
    folder = root / example.stem
    folder.mkdir()
    if example.suffix == ".ipynb":
        command = [sys.executable, "-c", NOTEBOOK_RUNNER, str(example), KERNEL, str(folder)]
    else:
        command = [sys.executable, str(example)]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def started(request, tmp_path_factory):
    """``{example name: future of its CompletedProcess}`` for the examples selected."""
    if any(example.suffix == ".ipynb" for example in EXAMPLES):
        pytest.importorskip("nbclient")
        pytest.importorskip("ipykernel")
    root = tmp_path_factory.mktemp("examples")
    env = _environment(root)
    selected = {item.callspec.params["example"] for item in request.session.items
                if item.module is request.module and hasattr(item, "callspec")}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1))
    futures = {example.name: pool.submit(_run, example, root, env)
               for example in EXAMPLES if example.name in selected}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def test_there_are_examples():
    names = {example.name for example in EXAMPLES}
    assert {"finetune_colab.ipynb", "qat_to_tflite.py", "multi_device_training.py"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("example", [example.name for example in EXAMPLES])
def test_example_runs_in_smoke_mode(example, started):
    result = started[example].result()
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{example} failed:\n{output[-6000:]}"
    for expected in EXPECTED_OUTPUT.get(example, ()):
        assert expected in result.stdout, f"{example}: no {expected!r} in:\n{output[-3000:]}"

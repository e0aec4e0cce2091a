"""Subprocess jobs that start with the test session and run side by side.

The examples, the multi-device comparison and the command line's end-to-end run each need a
fresh Python process and spend most of their time tracing TensorFlow graphs on one core.
Started right after collection, as many at a time as there are CPU cores, they run while the
rest of the suite runs, instead of one after the other.

A test module registers a job when it is imported (``register``) and marks the test that
reads it (``@pytest.mark.background(name)``); ``conftest.py`` starts the jobs of the
selected tests after collection, and the test waits for its own (``result``). Under
pytest-xdist nothing starts early: each job starts when its test asks for it.

Example:
    >>> register("example:demo.py", lambda folder: {"args": [sys.executable, "demo.py"]})
    >>> process, folder = result("example:demo.py")
"""

import concurrent.futures
import os
import pathlib
import shutil
import subprocess
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
TIMEOUT_S = 600

_jobs = {}
_started = {}
_state = {"pool": None, "root": None}


def environment(**extra):
    """``os.environ`` with the repository importable, quiet TensorFlow and ``extra``."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def register(name, make):
    """Registers job ``name``: ``make(folder)`` returns ``subprocess.run`` keyword arguments
    (at least ``args``) for a run in the empty ``folder`` (its working directory)."""
    _jobs[name] = make


def start(names):
    """Starts the jobs ``names`` that have not started yet."""
    for name in names:
        if name in _started:
            continue
        if _state["pool"] is None:
            _state["pool"] = concurrent.futures.ThreadPoolExecutor(
                max_workers=max(1, os.cpu_count() or 1))
            _state["root"] = pathlib.Path(tempfile.mkdtemp(prefix="keras_mobilenets_jobs_"))
        folder = _state["root"] / name.replace(":", "_").replace("/", "_")
        folder.mkdir()
        options = {"cwd": folder, "capture_output": True, "text": True,
                   "timeout": TIMEOUT_S, "env": environment(), **_jobs[name](folder)}
        _started[name] = (_state["pool"].submit(subprocess.run, **options), folder)


def result(name):
    """``(CompletedProcess, folder)`` of job ``name``, waiting for it (started if needed)."""
    start([name])
    future, folder = _started[name]
    return future.result(), folder


def stop():
    """Waits for the running jobs, drops the others and removes their folders."""
    if _state["pool"] is not None:
        _state["pool"].shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(_state["root"], ignore_errors=True)
        _state["pool"] = _state["root"] = None
        _started.clear()

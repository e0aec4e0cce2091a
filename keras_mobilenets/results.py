"""``results.json``: the figures a run printed, with the seed, the command and the machine.

The demo (``keras-mobilenets demo``) and the examples (``examples/train_*_shapes.py``)
write one into their output folder. The figures of the README and the docs are rendered
from such files (``docs/results/render.py``), so every number there names the command,
the seed and the machine it came from.

Example:
    >>> from keras_mobilenets import results
    >>> results.write_results("runs/demo", "demo", seed=0, command="keras-mobilenets demo",
    ...                       rows=[{"name": "Keras float", "accuracy": 0.99}])
    'runs/demo/results.json'
"""

import dataclasses
import json
import os
import platform
import shlex
import sys

#: File name of the results in an output folder.
RESULTS_FILE = "results.json"


def _cpu_model():
    # platform.processor() is often just the architecture on Linux; /proc/cpuinfo names
    # the processor.
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine():
    """A description of this machine: processor, CPU counts, OS, Python, TF and Keras.

    Example:
        >>> machine()["cpu_count"]
        2
    """
    import keras
    import tensorflow as tf

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "processor": platform.processor() or platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "system": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def command_line(program, argv=None):
    """``program`` followed by the quoted arguments (``sys.argv[1:]`` when None).

    Example:
        >>> command_line("keras-mobilenets", ["demo", "--seed", "1"])
        'keras-mobilenets demo --seed 1'
    """
    argv = sys.argv[1:] if argv is None else argv
    return " ".join([program, *map(shlex.quote, map(str, argv))])


def _plain(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    if hasattr(value, "tolist"):  # numpy arrays
        return value.tolist()
    return value


def write_results(output_dir, name, seed, command, rows, settings=None, seconds=None,
                  **extra):
    """Writes ``output_dir/results.json``; returns its path.

    Args:
        output_dir: Folder of the run (created).
        name: What ran, e.g. ``"demo"``.
        seed: The run's seed.
        command: The command line that ran (see :func:`command_line`).
        rows: The result table: a list of dicts (or dataclasses) with a ``"name"``.
        settings: The run's settings (a dict or a dataclass), or None.
        seconds: Wall-clock time of the run, or None.
        **extra: More figures (JSON-compatible after numpy scalars and arrays become lists).
    """
    record = {
        "name": name,
        "seed": seed,
        "command": command,
        "machine": machine(),
        "settings": _plain(settings),
        "rows": _plain(list(rows)),
        "seconds": seconds,
        **{key: _plain(value) for key, value in extra.items()},
    }
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(os.fspath(output_dir), RESULTS_FILE)
    with open(path, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    return path

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


#: The CPU features (Linux /proc/cpuinfo flag names) that decide TensorFlow's default
#: kernels (oneDNN on x86 with AVX-512 VNNI/BF16 or AMX) and int8 speed: x86 AVX2/FMA,
#: AVX-512, AVX-512 VNNI, AVX-VNNI, AVX-512 BF16, AMX; ARM dot product and int8 matmul.
CPU_FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
                "amx_int8", "asimddp", "i8mm")


def _cpuinfo_field(names):
    """The first ``/proc/cpuinfo`` value whose key (lower case) is in ``names``, else None."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip().lower() in names:
                    return value.strip()
    except OSError:
        pass
    return None


def _cpu_model():
    # platform.processor() is often just the architecture on Linux; /proc/cpuinfo names
    # the processor, and on x86 its family and model number (which tell generations apart
    # where a virtual machine's name does not, e.g. "AMD EPYC": Zen 3 is 25/1, Zen 4 25/17).
    name = _cpuinfo_field(("model name",))
    family, model = _cpuinfo_field(("cpu family",)), _cpuinfo_field(("model",))
    if name and family and model:
        name += f" (family {family} model {model})"
    return name


def cpu_features():
    """The :data:`CPU_FEATURES` this CPU has (Linux), in that order; None where unknown.

    Example:
        >>> set(cpu_features() or ()) <= set(CPU_FEATURES)
        True
    """
    flags = _cpuinfo_field(("flags", "features"))  # x86, ARM
    if flags is None:
        return None
    present = set(flags.split())
    return [feature for feature in CPU_FEATURES if feature in present]


def cpu_description():
    """The processor and its int8-relevant features in a few words, for printed tables.

    Example:
        >>> cpu_description()
        'AMD EPYC; AVX2, FMA'
    """
    features = cpu_features()
    name = _cpu_model() or platform.processor() or platform.machine()
    if features is None:
        return name
    return f"{name}; {', '.join(f.upper() for f in features) or 'no AVX2'}"


def onednn_enabled():
    """Whether TensorFlow runs its oneDNN CPU kernels in this process, or None if unknown.

    On by default only on x86 CPUs with AVX-512 VNNI/BF16 or AMX; ``TF_ENABLE_ONEDNN_OPTS``
    (``1`` / ``0``) overrides. Read from TensorFlow's own answer (``IsMklEnabled``).

    Example:
        >>> onednn_enabled() in (True, False, None)
        True
    """
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def _version(distribution):
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def machine():
    """A description of this machine: processor and the CPU features that decide kernel
    choice and int8 speed, CPU counts, OS, Python, TensorFlow (and whether its oneDNN kernels
    are on), Keras and LiteRT.

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
        "cpu_features": cpu_features(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "system": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "onednn": onednn_enabled(),
        "keras": keras.__version__,
        "litert": _version("ai-edge-litert"),
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

"""Two runs with the same ``--seed`` on one machine: the same figures, the same files.

The demo and the detection and segmentation examples seed the data, the initialization,
the shuffling and the augmentation. Each runs twice here, in its own process (as two runs
of the command would), at smoke sizes; the two ``results.json`` files must agree on every
figure except the timings (run time, latency), and the exported ``.tflite`` files and
figures byte for byte. End-to-end tier, two smoke runs per program: measured `3 passed in
1363.58s` pinned to one core of a 2-core x86 CPU that a training run shared.
"""

import hashlib
import json

import pytest

from tests import helpers

pytest.importorskip("tf_keras")
pytest.importorskip("tensorflow_model_optimization")
pytest.importorskip("ai_edge_litert")

pytestmark = [pytest.mark.slow, pytest.mark.end_to_end]

#: Fields that measure time, and what names the run folder, not what the run computed.
TIMINGS = {"seconds", "train_seconds", "latency_ms", "latency_ratio", "command", "output_dir"}

PROGRAMS = {
    "demo": ["-m", "keras_mobilenets", "demo", "--image-size", "32", "--train-images", "64",
             "--test-images", "32", "--epochs", "1", "--alpha", "0.35", "--batch-size", "16"],
    "lraspp_shapes": [helpers.REPO / "examples" / "train_lraspp_shapes.py"],
    "ssdlite_shapes": [helpers.REPO / "examples" / "train_ssdlite_shapes.py"],
}


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _run(name, folder, seed):
    env = helpers.environment(KERAS_MOBILENETS_SMOKE="1", MPLBACKEND="Agg")
    process = helpers.run_python(
        [*PROGRAMS[name], "--seed", str(seed), "--output-dir", folder / "out"], cwd=folder,
        env=env)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    out = folder / "out"
    record = json.loads((out / "results.json").read_text())
    files = {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
             for path in sorted(out.iterdir()) if path.suffix in (".tflite", ".png")}
    return record, files


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_same_seed_gives_the_same_figures_and_files(name, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, first_files = _run(name, tmp_path / "a", seed=1)
    second, second_files = _run(name, tmp_path / "b", seed=1)
    assert first["name"] == name and first["seed"] == 1
    assert _without_timings(first) == _without_timings(second)
    assert any(path.endswith(".tflite") for path in first_files), first_files
    assert first_files == second_files

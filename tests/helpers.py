"""Shared test helpers: config / .keras round trips, reference models, shared data, and
Python subprocesses running the scripts of ``tests/scripts`` and ``examples``."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "tests" / "scripts"
# Real photographs, labels and published TFLite files (images/, labels/, models/), not in the
# repository: the folder KERAS_MOBILENETS_TEST_DATA names, by default ../shared/data.
SHARED_DATA = pathlib.Path(os.environ.get("KERAS_MOBILENETS_TEST_DATA")
                           or REPO.parent / "shared" / "data")
SUBPROCESS_TIMEOUT_S = 600


def shared_data(relative):
    """Path of a file under ``SHARED_DATA``; skips the test when it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


def random_images(shape, batch=2, seed=0, low=0.0, high=255.0):
    """A float32 batch of uniform random images."""
    rng = np.random.default_rng(seed)
    return rng.uniform(low, high, size=(batch, *shape)).astype("float32")


def run(model, inputs):
    """Runs ``model`` eagerly in inference mode and returns a numpy array."""
    return np.asarray(model(inputs, training=False))


def assert_config_round_trip(layer):
    """``from_config(get_config())`` rebuilds a layer with the same config."""
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    return clone


def assert_keras_round_trip(model, inputs, tmp_path, atol=1e-6):
    """Saves ``model`` as .keras, loads it with ``safe_mode=True``, compares outputs."""
    path = os.path.join(tmp_path, f"{model.name}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    expected = run(model, inputs)
    actual = run(loaded, inputs)
    np.testing.assert_allclose(actual, expected, atol=atol)
    return loaded


def copy_weights_by_name(source, target):
    """Copies every weighted layer of ``source`` into the same-named layer of ``target``.

    Returns the number of layers copied; fails if a weighted layer has no counterpart.
    """
    copied = 0
    for layer in source.layers:
        if not layer.weights:
            continue
        target.get_layer(layer.name).set_weights(layer.get_weights())
        copied += 1
    return copied


def randomize_batch_norm(model, seed=0):
    """Gives every BatchNormalization random statistics so parity tests exercise them."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([
                rng.uniform(0.5, 1.5, gamma.shape).astype("float32"),
                rng.normal(0, 0.1, beta.shape).astype("float32"),
                rng.normal(0, 0.1, mean.shape).astype("float32"),
                rng.uniform(0.5, 1.5, var.shape).astype("float32"),
            ])


def environment(**extra):
    """``os.environ`` with this repository importable first, quiet TensorFlow and ``extra``."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def jax_cache_environment(config):
    """Environment for JAX's persistent compilation cache under pytest's cache folder.

    JAX compiles every initializer and op once per shape; kept between test runs, the
    compilations make a rerun of the JAX script several times faster.
    """
    cache = getattr(config, "cache", None)
    if cache is None:  # -p no:cacheprovider
        return {}
    return {"JAX_COMPILATION_CACHE_DIR": str(cache.mkdir("jax_compilation_cache")),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


def run_python(arguments, cwd, env=None, timeout=SUBPROCESS_TIMEOUT_S):
    """Runs ``python *arguments`` (a script path first, or ``-m module``) with this test
    session's interpreter in ``cwd``; returns the ``CompletedProcess`` (text output)."""
    return subprocess.run([sys.executable, *map(str, arguments)], cwd=cwd,
                          env=environment() if env is None else env, capture_output=True,
                          text=True, timeout=timeout)


def printed_result(stdout):
    """The JSON object a script printed on its line starting with ``RESULT ``."""
    line = next(x for x in stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def load_script(path):
    """The Python file ``path`` (an example, benchmark or tool script) imported as a module
    named after the file, so a test can call its functions."""
    spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Interrupt(keras.callbacks.Callback):
    """Stops training (like a lost Colab runtime) when epoch ``at`` begins."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt(f"interrupted at epoch {epoch}")

"""Fixtures for the weights tests: a local HTTP server of checkpoint files, a private Keras
cache, legacy ``.h5`` files written from our own models, registry entries made to fit them."""

import dataclasses
import functools
import hashlib
import http.server
import os
import threading

import h5py
import pytest

from keras_mobilenets import registry
from keras_mobilenets.weights import download


def save_legacy_h5(model, path):
    """Writes ``model``'s weights in the legacy Keras ``.h5`` layout of the published
    checkpoints (one group per layer name), with Keras' own writer."""
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return path


def md5_of(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def checkpoint_for(file_name):
    """The registry entry with this official file name."""
    matches = [c for c in registry.checkpoints() if c.file_name == file_name]
    assert len(matches) == 1, file_name
    return matches[0]


class WeightsServer:
    """Serves the files of ``folder`` on 127.0.0.1 and records every requested path."""

    def __init__(self, folder):
        self.folder = str(folder)
        self.requests = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        handler = functools.partial(Handler, directory=self.folder)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/weights/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def path(self, file_name):
        return os.path.join(self.folder, "weights", file_name)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """A private, empty Keras cache (KERAS_HOME)."""
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


@pytest.fixture
def server(tmp_path, monkeypatch, keras_home):
    """A weights server on 127.0.0.1; KERAS_MOBILENETS_WEIGHTS_URL points at it."""
    folder = tmp_path / "served"
    (folder / "weights").mkdir(parents=True)
    weights_server = WeightsServer(folder)
    monkeypatch.setenv(download.BASE_URL_ENV, weights_server.url)
    yield weights_server
    weights_server.close()


@pytest.fixture
def publish(server, monkeypatch):
    """``publish(model, file_name, hashed=True)``: serves ``model``'s weights (a tiny
    stand-in file when ``model`` is None) under the
    official ``file_name`` and makes the registry entry's hash that of the served file
    (md5 like the published V3 hashes; ``hashed=False`` removes the hash)."""

    def _publish(model, file_name, hashed=True):
        if model is None:  # the content does not matter: a tiny weights file
            import keras

            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="dense")])
        path = save_legacy_h5(model, server.path(file_name))
        entry = checkpoint_for(file_name)
        replaced = dataclasses.replace(entry, md5=md5_of(path) if hashed else None, sha256=None)
        model_entry = next(e for e in registry.entries() if entry in e.checkpoints)
        monkeypatch.setitem(registry._ENTRIES, model_entry.name, dataclasses.replace(
            model_entry,
            checkpoints=[replaced if c == entry else c for c in model_entry.checkpoints],
        ))
        return replaced

    return _publish

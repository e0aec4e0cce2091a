"""import_litert: the one import of ai_edge_litert, with actionable errors (no LiteRT needed)."""

import importlib
from importlib import metadata

import pytest

from keras_mobilenets.export import _litert


def _missing_module(name):
    raise ModuleNotFoundError(f"No module named '{name}'", name=name)


def test_missing_litert_names_the_extra(monkeypatch):
    monkeypatch.setattr(importlib, "import_module", _missing_module)

    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    with pytest.raises(ImportError, match=r"needs the LiteRT runtime.*keras-mobilenets\[tflite\]"):
        _litert.import_litert("interpreter")


def test_too_old_litert_names_its_version_the_module_and_the_floor(monkeypatch):
    monkeypatch.setattr(importlib, "import_module", _missing_module)
    monkeypatch.setattr(metadata, "version", lambda name: "1.1.0")
    with pytest.raises(ImportError) as error:
        _litert.import_litert("tools.flatbuffer_utils")
    message = str(error.value)
    assert "ai-edge-litert 1.1.0 has no `ai_edge_litert.tools.flatbuffer_utils`" in message
    assert "ai-edge-litert>=2.2" in message


def test_floor_matches_setup_cfg():
    import configparser
    import pathlib

    config = configparser.ConfigParser()
    config.read(pathlib.Path(__file__).resolve().parents[2] / "setup.cfg")
    tflite = config["options.extras_require"]["tflite"].split()
    assert f"ai-edge-litert>={_litert.MIN_VERSION}" in tflite

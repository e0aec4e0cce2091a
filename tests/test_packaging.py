"""The wheel's metadata: what PyPI and ``pip show`` tell a newcomer about the package."""

import email
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests import helpers


@pytest.fixture(scope="module")
def metadata(tmp_path_factory):
    # Built from a copy: setuptools writes build/ and egg-info beside the sources.
    source, folder = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("setup.cfg", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(helpers.REPO / name, source)
    shutil.copytree(helpers.REPO / "keras_mobilenets", source / "keras_mobilenets",
                    ignore=shutil.ignore_patterns("__pycache__"))
    process = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(folder), str(source)],
        capture_output=True, text=True, cwd=folder)
    assert process.returncode == 0, process.stderr[-3000:]
    (wheel,) = folder.glob("keras_mobilenets-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (path,) = [name for name in names if name.endswith(".dist-info/METADATA")]
        return email.message_from_string(archive.read(path).decode()), names


def test_summary_names_every_family_and_head(metadata):
    summary = metadata[0]["Summary"]
    for name in ("MobileNet V1-V4", "ShuffleNet V1/V2", "SSDLite", "LR-ASPP", "QAT", "TFLite"):
        assert name in summary, summary


def test_license_file_ships_in_the_wheel(metadata):
    message, names = metadata
    assert message["License-File"] == "LICENSE"
    (license_path,) = [name for name in names if name.endswith("/LICENSE")]
    assert "dist-info" in license_path


def test_python_versions_agree_with_the_supported_range(metadata):
    message, _ = metadata
    assert message["Requires-Python"] == ">=3.10"
    versions = [c.rsplit(" :: ", 1)[1] for c in message.get_all("Classifier")
                if c.startswith("Programming Language :: Python :: 3.")]
    assert versions == ["3.10", "3.11", "3.12", "3.13"]

"""The documentation site builds with warnings as errors (the zoo page: tests/test_zoo.py)."""

import os
import pathlib
import subprocess
import sys

import pytest


REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_docs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    site = tmp_path / "site"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(REPO / "mkdocs.yml"), "--site-dir", str(site)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    # The API reference is generated from the docstrings, the builders' included.
    finetune_page = (site / "api" / "finetune" / "index.html").read_text()
    assert "run_finetune" in finetune_page
    assert "Fine-tunes a backbone on a folder of images" in finetune_page
    models_page = (site / "api" / "models" / "index.html").read_text()
    assert "Builds MobileNetV3-Small with keras.applications" in models_page
    for page in ("finetuning", "distributed", "qat_and_tflite", "model_zoo"):
        assert (site / page / "index.html").is_file()

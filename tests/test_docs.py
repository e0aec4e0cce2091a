"""The documentation: the generated model zoo page, and the site builds with warnings as errors."""

import os
import pathlib
import subprocess
import sys

import pytest

from keras_mobilenets import cli, zoo

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_model_zoo_page_is_the_generated_one(capsys):
    page = (REPO / "docs" / "model_zoo.md").read_text()
    assert page == zoo.model_zoo_markdown(), (
        "docs/model_zoo.md is out of date: keras-mobilenets models --markdown > docs/model_zoo.md"
    )
    assert cli.main(["models", "--markdown"]) == 0
    assert capsys.readouterr().out == page
    # One row per variant, with the registry's ImageNet weights.
    rows = [line for line in page.splitlines() if line.startswith("| ") and "`" in line]
    assert [row.split(" | ")[0][2:] for row in rows] == [v.name for v in zoo.VARIANTS]
    small = next(row for row in rows if row.startswith("| mobilenet_v3_small_1.0 |"))
    assert "| 2,554,968 |" in small and "| 224 |" in small and "| 67.5 |" in small
    assert all(row.split(" | ")[5] == "none" for row in rows if "ShuffleNet" in row)


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

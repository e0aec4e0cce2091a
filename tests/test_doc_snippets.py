"""Every ```python block of README.md and docs/*.md runs.

The blocks of a page run in order in one Python process and namespace (a later block may use
what an earlier one made), in a fresh folder, with ``KERAS_MOBILENETS_SMOKE=1`` and
matplotlib's Agg backend (tests/scripts/run_doc_blocks.py). A block that cannot run here says
why in a comment on the line before it, ``<!-- not-tested: reason -->``, and is reported as
skipped with that reason. docs/model_zoo.md is generated (tests/test_zoo.py);
docs/architecture.md, docs/development.md and docs/arm_estimate.md (shell commands that need
QEMU and root) hold no Python blocks to run.
"""

import json
import re

import pytest

from tests import helpers

PAGES = ["README.md"] + sorted(
    f"docs/{path.name}" for path in (helpers.REPO / "docs").glob("*.md")
    if path.name not in ("model_zoo.md", "architecture.md", "development.md", "arm_estimate.md"))
NOT_TESTED = re.compile(r"^<!-- not-tested: (.+?) -->$")


def code_blocks(text):
    """``[(first_line, code, reason_not_tested_or_None)]`` of the ```python blocks of ``text``
    (first_line counts from 1)."""
    lines = text.splitlines()
    blocks, start, previous = [], None, ""
    for number, line in enumerate(lines, 1):
        if start is None:
            if line.strip() == "```python":
                start, reason = number + 1, NOT_TESTED.match(previous.strip())
            elif line.strip():
                previous = line
        elif line.strip() == "```":
            blocks.append((start, "\n".join(lines[start - 1:number - 1]) + "\n",
                           reason.group(1) if reason else None))
            start, previous = None, ""
    assert start is None, f"a ```python block opened on line {start - 1} is not closed"
    return blocks


def _blocks(page):
    return code_blocks((helpers.REPO / page).read_text())


def test_code_blocks_are_found_with_their_marks():
    text = "\n".join([
        "Intro", "```python", "a = 1", "```", "", "<!-- not-tested: needs a GPU -->", "",
        "```python", "b = a", "```", "```bash", "ls", "```", "```python", "c = 2", "```",
    ])
    assert code_blocks(text) == [(3, "a = 1\n", None), (9, "b = a\n", "needs a GPU"),
                                 (15, "c = 2\n", None)]


def test_every_page_has_blocks_and_few_are_not_tested():
    blocks = {page: _blocks(page) for page in PAGES}
    assert "docs/detection.md" in blocks and all(blocks.values())
    not_tested = [(page, line) for page, found in blocks.items()
                  for line, _, reason in found if reason]
    # Downloads only: ImageNet (README), timm (MobileNetV4), COCO (pretrained, twice).
    assert len(not_tested) <= 4, not_tested


@pytest.mark.slow
@pytest.mark.end_to_end
@pytest.mark.parametrize("page", PAGES)
def test_code_blocks_run(page, tmp_path):
    runnable = [[line, code] for line, code, reason in _blocks(page) if reason is None]
    job = tmp_path / "blocks.json"
    job.write_text(json.dumps({"page": page, "blocks": runnable}))
    folder = tmp_path / "run"
    folder.mkdir()
    env = helpers.environment(KERAS_MOBILENETS_SMOKE="1", MPLBACKEND="Agg")
    process = helpers.run_python([helpers.SCRIPTS / "run_doc_blocks.py", job], folder, env)
    assert process.returncode == 0, f"{page}:\n{process.stderr[-5000:]}"
    assert helpers.printed_result(process.stdout) == {"blocks": len(runnable)}


@pytest.mark.parametrize("page, line, reason", [
    pytest.param(page, line, reason, id=f"{page}:{line}")
    for page in PAGES for line, _, reason in _blocks(page) if reason
] or [pytest.param(None, None, None, marks=pytest.mark.skip("every block is tested"))])
def test_code_block_not_tested(page, line, reason):
    pytest.skip(f"{page}, block at line {line}: {reason}")

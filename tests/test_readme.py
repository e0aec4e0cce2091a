"""The README reads in two minutes: short, quick start first, every link and picture there.

(Its code blocks run in tests/test_doc_snippets.py; its figures are checked in
tests/test_results_docs.py.)
"""

import re

from tests import helpers

README = (helpers.REPO / "README.md").read_text()
LINES = README.splitlines()
# Markdown links and images to files of the repository: [text](path) / ![alt](path).
LOCAL_LINK = re.compile(r"!?\[[^\]]*\]\((?!https?://|#)([^)\s#]+)(?:#[^)]*)?\)")
MAX_LINES = 250
MAX_PICTURE_BYTES = 200 * 1024


def test_the_readme_is_short_and_starts_with_the_quick_start():
    assert len(LINES) <= MAX_LINES, f"README.md has {len(LINES)} lines (at most {MAX_LINES})"
    quick_start = LINES.index("## Quick start")
    assert quick_start < 60
    blocks = re.findall(r"```bash\n(.*?)\n```", README, re.DOTALL)
    # Exactly two commands: the demo, then the tests; the second is what CI runs.
    assert len(blocks[:2]) == 2 and blocks[0].endswith("keras-mobilenets demo")
    assert blocks[1].endswith("python -m pytest -q")
    assert README.index(blocks[1]) < README.index("\n## ", README.index("## Quick start") + 1)


def test_every_link_and_picture_of_the_readme_is_in_the_repository():
    targets = LOCAL_LINK.findall(README)
    assert targets
    for target in targets:
        assert (helpers.REPO / target).exists(), f"README.md links to a missing {target}"
    pictures = [target for target in targets if target.endswith((".png", ".jpg", ".svg"))]
    for picture in pictures:
        size = (helpers.REPO / picture).stat().st_size
        assert size <= MAX_PICTURE_BYTES, f"{picture}: {size} bytes"

"""Runs the ```python blocks of a Markdown page in order, in one namespace, as a reader of the
page would (run by tests/test_doc_snippets.py).

Usage: ``python run_doc_blocks.py BLOCKS_JSON`` where the file holds
``{"page": "docs/x.md", "blocks": [[first_line, code], ...]}``. Each block is compiled with
the file name ``page:line`` (its first code line in the page), so a traceback points into the
page. Prints ``RESULT {"blocks": n}`` once every block has run.
"""

import json
import sys

with open(sys.argv[1]) as file:
    job = json.load(file)
namespace = {"__name__": "__main__"}
for line, code in job["blocks"]:
    # Blank lines first: line numbers in tracebacks are those of the page.
    exec(compile("\n" * (line - 1) + code, job["page"], "exec"), namespace)
print("RESULT " + json.dumps({"blocks": len(job["blocks"])}))

"""Runs a notebook with nbclient and prints what its cells printed (run by
tests/test_examples.py).

Usage: ``python run_notebook.py NOTEBOOK KERNEL_NAME WORKING_FOLDER [CELL_TIMEOUT_S]``.
A cell that raises makes nbclient raise, and this script exit with a non-zero status.
"""

import sys

import nbformat
from nbclient import NotebookClient

notebook_path, kernel_name, folder = sys.argv[1:4]
cell_timeout_s = int(sys.argv[4]) if len(sys.argv) > 4 else 300
notebook = nbformat.read(notebook_path, as_version=4)
NotebookClient(notebook, timeout=cell_timeout_s, kernel_name=kernel_name,
               resources={"metadata": {"path": folder}}).execute()
for cell in notebook.cells:
    for output in cell.get("outputs", []):
        if output.get("name") == "stdout":
            print(output["text"], end="")

"""The headless runner: figures show inline even where the shell chose a non-interactive backend."""
from __future__ import annotations

import os

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from aliqa_lib.notebook import run_notebook


def test_figures_show_inline_under_a_headless_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")               # as CI and scripts set it
    nb = new_notebook()
    params = new_code_cell("SEED = 0\nOUT_DIR = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, new_code_cell("import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "fig.ipynb")
    executed = nbformat.read(run_notebook(tmp_path / "fig.ipynb", tmp_path / "out"), as_version=4)
    shown = [o for c in executed.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(shown) == 1 and os.environ["MPLBACKEND"] == "Agg"   # and the caller's setting is back

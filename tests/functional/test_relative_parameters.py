"""A relative path given on the command line is found although the kernel runs in the notebook's folder."""
from __future__ import annotations

import json

import pandas as pd
from helpers import tiny_notebook

from aliqa_lib import cli


def test_sweep_cli_finds_a_relative_labels_file(tmp_path, monkeypatch):
    (tmp_path / "nbs").mkdir()
    nb = tiny_notebook(tmp_path / "nbs" / "nb.ipynb", "LABELS = None\nOUT_DIR = None",
                       "import aliqa_lib as al, pandas as pd\nal.record('rows', len(pd.read_csv(LABELS)), OUT_DIR)")
    work = tmp_path / "work"
    work.mkdir()
    (work / "scores.csv").write_text("name,score\na.png,1.0\nb.png,2.5\n")
    (work / "grid.json").write_text(json.dumps({"LABELS": ["scores.csv"]}))
    monkeypatch.chdir(work)
    assert cli.main(["sweep", str(nb), "--grid", "grid.json", "--out", "out"]) == 0
    table = pd.read_csv(work / "out" / "results.csv")
    assert table["rows"].tolist() == [2]

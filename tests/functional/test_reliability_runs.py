"""Issue 14, end to end: recordings land in the run's folder; a parallel sweep from an empty cache
completes every point."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from helpers import tiny_notebook

from aliqa_lib.evaluation import sweep
from aliqa_lib.notebook import run_notebook
from aliqa_lib.results import read_results


def test_record_without_a_folder_lands_in_the_run_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("ALIQA_RUN_DIR", raising=False)
    nb = tiny_notebook(tmp_path / "mine.ipynb", "SEED = 0", "import aliqa_lib as al\nal.record('double', SEED * 2)")
    run_notebook(nb, tmp_path / "tut", {"SEED": 4})                        # what `tutorial` does
    assert read_results(tmp_path / "tut" / "mine") == {"double": 8}
    with ThreadPoolExecutor(2) as pool:                                    # two kernels at once in one process
        result = sweep.run_sweep(nb, {"SEED": [1, 2, 3]}, tmp_path / "sw", executor=pool, progress=False)
    assert sorted(result.table.double) == [2, 4, 6] and result.failed == []
    assert not (tmp_path / "results.json").exists() and "ALIQA_RUN_DIR" not in os.environ
    assert result.csv.read_text().splitlines()[0] == "SEED,double"

"""The papermill sweep runner, from Python and from the command line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from aliqa_lib.evaluation import sweep


@pytest.fixture
def notebook(tmp_path):
    nb = new_notebook()
    params = new_code_cell("SEED = 0\nFAIL = False\nOUT_DIR = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, new_code_cell("import aliqa_lib as al\nif FAIL:\n    raise ValueError('boom')\n"
                                      "al.record('double', SEED * 2, OUT_DIR)\nal.record('nested', {'a': SEED}, OUT_DIR)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    return path


def test_grid_points_and_validation():
    assert sweep.grid_points({"A": [1, 2], "B": ["x"]}) == [{"A": 1, "B": "x"}, {"A": 2, "B": "x"}]
    with pytest.raises(ValueError, match="non-empty lists"):
        sweep.grid_points({"A": 3})


def test_cli_sweep_collects_results_reports_failures_and_skips_finished(notebook, tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"SEED": [1, 2], "FAIL": [False, True]}))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "aliqa_lib", "sweep", str(notebook), "--grid", str(grid), "--out", str(out),
           "--workers", "2"]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stderr.count("FAILED") == 2 and "boom" in run.stderr and "'FAIL': True" in run.stderr
    table = pd.read_csv(out / "results.csv").sort_values("SEED")
    assert table[["SEED", "FAIL", "double"]].values.tolist() == [[1, False, 2], [2, False, 4]]
    assert json.loads(table.nested.iloc[0]) == {"a": 1}
    finished = sorted(out.glob("runs/*/nb.ipynb"))
    stamps = [p.stat().st_mtime_ns for p in finished if "FAIL-False" in str(p)]
    subprocess.run(cmd, capture_output=True, text=True)
    assert [p.stat().st_mtime_ns for p in finished if "FAIL-False" in str(p)] == stamps   # not rerun


def test_python_sweep_with_any_executor(notebook, tmp_path):
    with ThreadPoolExecutor(2) as pool:
        result = sweep.run_sweep(notebook, {"SEED": [3, 4]}, tmp_path / "o", executor=pool, progress=False)
    assert sorted(result.table.double) == [6, 8] and result.failed == []
    with pytest.raises(FileNotFoundError):
        sweep.run_sweep(tmp_path / "missing.ipynb", {}, tmp_path / "o")


def test_parallel_kernels_share_the_cores(tmp_path):
    nb = new_notebook()
    params = new_code_cell("SEED = 0\nOUT_DIR = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, new_code_cell("import os\nimport torch\nimport aliqa_lib as al\n"
                                      "al.record('omp', os.environ.get('OMP_NUM_THREADS', 'unset'))\n"
                                      "al.record('torch_threads', torch.get_num_threads())")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "threads.ipynb"
    nbformat.write(nb, path)
    share = max(1, (os.cpu_count() or 1) // 2)
    table = sweep.run_sweep(path, {"SEED": [1, 2]}, tmp_path / "two", workers=2, progress=False).table
    assert table.torch_threads.tolist() == [share, share] and table.omp.astype(str).tolist() == [str(share)] * 2
    alone = sweep.run_sweep(path, {"SEED": [1]}, tmp_path / "one", workers=1, progress=False).table
    assert alone.omp.astype(str).tolist() == [os.environ.get("OMP_NUM_THREADS", "unset")]   # one kernel: left alone
    assert sweep.kernel_threads(1) is None and sweep.kernel_threads(2, cores=2) == 1
    assert sweep.kernel_threads(3, cores=16) == 5 and sweep.kernel_threads(8, cores=2) == 1

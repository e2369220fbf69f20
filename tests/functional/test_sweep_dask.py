"""The sweep on a real Dask cluster (two worker processes on localhost) gives the local run's table."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from aliqa_lib.data.store import read_labels
from aliqa_lib.evaluation import sweep

distributed = pytest.importorskip("distributed")

BODY = """import os
import numpy as np
import aliqa_lib as al
labels = al.store.read_labels(STORE)
picks = al.selection.select("random", np.zeros((len(labels.mos), 1)), BUDGET, seed=SEED)
al.record("mean_mos01", float(labels.mos01[picks].mean()), OUT_DIR)
al.record("first", int(picks[0]), OUT_DIR)
al.record("worker_pid", os.getppid(), OUT_DIR)
"""


@pytest.fixture
def store_notebook(tmp_path, smoke_store):
    """A notebook that draws BUDGET images of the smoke store with SEED and records their mean score."""
    nb = new_notebook()
    params = new_code_cell(f"STORE = {str(smoke_store)!r}\nSEED = 0\nBUDGET = 5\nOUT_DIR = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, new_code_cell(BODY)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "draw.ipynb"
    nbformat.write(nb, path)
    return path


def _table(result_csv) -> pd.DataFrame:
    """The sweep table without the column that names the process, sorted by parameters."""
    table = pd.read_csv(result_csv).drop(columns="worker_pid")
    return table.sort_values(["SEED", "BUDGET"]).reset_index(drop=True)


def test_sweep_on_a_local_dask_cluster_matches_the_local_run(store_notebook, smoke_store, tmp_path):
    grid = {"SEED": [0, 1], "BUDGET": [4, 8]}              # four points: two at a time on each side
    local = sweep.run_sweep(store_notebook, grid, tmp_path / "local", workers=2, progress=False)
    assert local.failed == [] and len(local.table) == 4
    labels = read_labels(smoke_store)                               # an independent check of one row
    row = local.table[(local.table.SEED == 1) & (local.table.BUDGET == 8)].iloc[0]
    picks = np.sort(np.random.default_rng(1).choice(len(labels.mos), size=8, replace=False))
    assert row.mean_mos01 == pytest.approx(labels.mos01[picks].mean())

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", host="127.0.0.1")
    try:
        with distributed.Client(cluster) as client:
            on_dask = sweep.run_sweep(store_notebook, grid, tmp_path / "dask",
                                      executor=client.get_executor(pure=False), progress=False)
            worker_pids = set(client.run(os.getpid).values())
        grid_file = tmp_path / "grid.json"
        grid_file.write_text(json.dumps({"SEED": [1], "BUDGET": [4, 8]}))    # the command line: two of them
        cli = subprocess.run([sys.executable, "-m", "aliqa_lib", "sweep", str(store_notebook), "--grid", str(grid_file),
                              "--out", str(tmp_path / "cli"), "--dask-scheduler", cluster.scheduler_address],
                             capture_output=True, text=True, timeout=600)
    finally:
        cluster.close()
    assert on_dask.failed == []
    pd.testing.assert_frame_equal(_table(on_dask.csv), _table(local.csv))
    assert set(pd.read_csv(on_dask.csv).worker_pid) <= worker_pids        # the kernels ran under the Dask workers
    assert cli.returncode == 0, cli.stderr
    pd.testing.assert_frame_equal(_table(tmp_path / "cli" / "results.csv"),
                                  _table(local.csv).query("SEED == 1").reset_index(drop=True))


def test_unreachable_scheduler_is_a_clear_error(store_notebook, tmp_path):
    with pytest.raises(ConnectionError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        sweep.run_sweep(store_notebook, {"SEED": [0]}, tmp_path / "o", dask_scheduler="tcp://127.0.0.1:9")
    with pytest.raises(ValueError, match="either executor or dask_scheduler"):
        sweep.run_sweep(store_notebook, {"SEED": [0]}, tmp_path / "o", executor=object(), dask_scheduler="tcp://x:1")
    assert not (tmp_path / "o").exists()

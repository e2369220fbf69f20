"""Issue 14, end to end: recordings land in the run's folder; a parallel sweep from an empty cache
completes every point; an interrupted preparation leaves nothing that lasts."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import h5py
import pandas as pd
import pytest
from helpers import tiny_notebook

from aliqa_lib.cache import cache_path
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



@pytest.mark.skipif(os.name != "posix", reason="IPC sockets are POSIX only (elsewhere the kernel stays on TCP)")
def test_kernels_talk_over_private_ipc_sockets_that_are_removed(tmp_path, monkeypatch, capfd):
    sockets = tmp_path / "tmp"
    sockets.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(sockets))                  # where the socket folder is made
    nb = tiny_notebook(tmp_path / "ipc.ipynb", "SEED = 0", f"import os\nprint(sorted(os.listdir({str(sockets)!r})))")
    run_notebook(nb, tmp_path / "tut", {"SEED": 1})
    err = capfd.readouterr().err
    assert "without encryption" not in err                                 # the kernel's TCP warning
    executed = json.loads((tmp_path / "tut" / "ipc.ipynb").read_text())
    listed = "".join(executed["cells"][-1]["outputs"][0]["text"])
    assert listed.startswith("['aliqa-kernel-")                            # the kernel ran with its folder there
    assert list(sockets.iterdir()) == []                                   # and it is gone afterwards

CACHED = """import time
import numpy as np
import aliqa_lib as al
def compute():
    time.sleep(1.0)                      # long enough for the other worker to ask for the same entry
    return np.arange(100.0)
values = al.cache.cached_array(STORE, {"kind": "sweep-test"}, compute)
votes = al.selection.votes.offline_committee_votes(STORE, progress=False)
al.record("total", float(values.sum()) + SEED)
al.record("votes", float(votes.sum()))
"""


def test_parallel_sweep_from_an_empty_cache_completes_every_point(smoke_store, tmp_path):
    store = tmp_path / "store.h5"
    shutil.copyfile(smoke_store, store)                  # a copy: its cache beside it starts empty
    nb = tiny_notebook(tmp_path / "cached.ipynb", f"SEED = 0\nSTORE = {str(store)!r}", CACHED)
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"SEED": [0, 1, 2, 3]}))
    run = subprocess.run([sys.executable, "-m", "aliqa_lib", "sweep", str(nb), "--grid", str(grid), "--out",
                          str(tmp_path / "out"), "--workers", "2"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    table = pd.read_csv(tmp_path / "out" / "results.csv").sort_values("SEED")
    assert table.total.tolist() == [4950.0, 4951.0, 4952.0, 4953.0] and table.votes.nunique() == 1
    with h5py.File(cache_path(store), "r") as fh:
        assert len(fh) == 2                              # each entry written once
    assert not list(tmp_path.glob(".*.partial"))


def _preparing(out):
    """`prepare synthetic --smoke` into `out`, returned once its partial file exists."""
    # a shell that starts this run in the background ignores SIGINT, and children inherit that: give the
    # preparation the default disposition back, so Python installs its KeyboardInterrupt handler
    proc = subprocess.Popen([sys.executable, "-m", "aliqa_lib", "prepare", "synthetic", "--smoke", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 600                            # generous: a loaded 2-core CI machine
    while not list(out.parent.glob(f".{out.name}.*.partial")) and proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the preparation wrote no partial file within 600 s")
        time.sleep(0.1)
    assert proc.poll() is None, "the preparation ended before it wrote anything"
    return proc


def test_an_interrupted_preparation_leaves_nothing_that_lasts(tmp_path):
    out = tmp_path / "store.h5"
    proc = _preparing(out)
    proc.send_signal(signal.SIGINT)                              # Ctrl-C: cleaned up at once
    assert proc.wait(120) != 0
    assert not list(tmp_path.glob(".*.partial")) and not out.exists()
    proc = _preparing(out)
    proc.kill()                                                  # SIGKILL: nothing can clean up ...
    proc.wait(60)
    (stale,) = tmp_path.glob(".*.partial")
    assert f"-{proc.pid}." in stale.name
    again = subprocess.run([sys.executable, "-m", "aliqa_lib", "prepare", "synthetic", "--smoke", "--out", str(out)],
                           capture_output=True, text=True)
    assert again.returncode == 0 and out.exists()               # ... until the next preparation of it
    assert f"removed {stale}" in again.stderr and f"left by process {proc.pid}" in again.stderr
    assert not list(tmp_path.glob(".*.partial"))

"""Issue 14: no silent wrong result from non-finite inputs, names checked before anything runs,
no partial file that outlives its process, caches safe under concurrency."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pandas as pd
import pytest
from helpers import tiny_notebook, tiny_store
from scipy import stats

from aliqa_lib import checks, cli, defaults
from aliqa_lib.cache import atomic_path, cache_path, cached_array
from aliqa_lib.evaluation import experiments, metrics, paired, sweep
from aliqa_lib.notebook import select_notebooks
from aliqa_lib.selection import strategies


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", ["random", "kcenter", "gsx", "typiclust", "probcover"])
def test_selectors_reject_non_finite_features(name, bad):
    features = np.random.default_rng(0).normal(size=(30, 4))
    features[7, 2] = bad
    with pytest.raises(ValueError, match=r"features hold 1 NaN/inf value\(s\) \(first at \(7, 2\)\)"):
        strategies.select(name, features, budget=5, seed=0)


def test_selectors_reject_non_finite_votes_and_distances():
    rng = np.random.default_rng(1)
    features, votes, distances = rng.normal(size=(12, 3)), rng.random((2, 12, 4)), rng.random((3, 5, 12))
    votes[1, 4, 0] = np.nan
    with pytest.raises(ValueError, match="al_iqa_round: votes hold 1 NaN/inf"):
        strategies.select("al_iqa_round", features, 3, votes=votes, distances=distances)
    distances[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="content: distances hold 1 NaN/inf"):
        strategies.select("content", features, 3, distances=distances)


@pytest.mark.parametrize("metric", [metrics.srcc, metrics.krcc, metrics.plcc, metrics.rmse, metrics.evaluate])
def test_metrics_reject_non_finite_predictions_and_scores(metric):
    good = [0.1, 0.4, 0.2, 0.9]
    with pytest.raises(ValueError, match=r"predictions \(pred\) hold 1 NaN/inf value\(s\) \(first at 2\)"):
        metric([0.1, 0.4, np.inf, 0.9], good)
    with pytest.raises(ValueError, match=r"scores \(mos\) hold 2 NaN/inf"):
        metric(good, [np.nan, 0.4, np.nan, 0.9])


def test_require_finite_passes_finite_and_rejects_text():
    values = np.arange(6.0).reshape(2, 3)
    assert checks.require_finite(values, "x") is values
    with pytest.raises(ValueError, match="x must be numeric"):
        checks.require_finite(np.array(["a", "b"]), "x")



@pytest.mark.parametrize("where", [(0, 0), (37, 1), (99, 2)])
def test_require_finite_checks_every_chunk_of_a_memory_mapped_pool(tmp_path, where):
    pool = np.lib.format.open_memmap(tmp_path / "pool.npy", mode="w+", dtype=np.float32, shape=(100, 3))
    pool[:] = 1.0
    pool.flush()
    readonly = np.load(tmp_path / "pool.npy", mmap_mode="r")
    checked = checks.require_finite(readonly, "pool", chunk=30)                 # 10 rows a chunk
    assert np.shares_memory(checked, readonly)                                  # no copy of the pool
    pool[where] = np.nan
    pool.flush()
    with pytest.raises(ValueError, match=rf"pool hold 1 NaN/inf value\(s\) \(first at \({where[0]}, {where[1]}\)\)"):
        checks.require_finite(np.load(tmp_path / "pool.npy", mmap_mode="r"), "pool", chunk=30)
    assert checks.require_finite(np.arange(5), "ints").dtype.kind == "i"       # integers need no check

# ---------------------------------------------------------------- names checked before anything runs



def test_unknown_notebook_is_an_error_listing_the_notebooks(tmp_path, capsys):
    for name in ("01_a.ipynb", "02_b.ipynb"):
        tiny_notebook(tmp_path / name, "SEED = 0", "")
    assert [p.name for p in select_notebooks(["02"], tmp_path)] == ["02_b.ipynb"]
    with pytest.raises(ValueError, match=r"no notebook matches \['09'\]; the notebooks are \['01_a', '02_b'\]"):
        select_notebooks(["01", "09"], tmp_path)
    out = tmp_path / "out"
    assert cli.main(["tutorial", "--only", "09", "--out", str(out)]) == 2
    assert "no notebook matches ['09']" in capsys.readouterr().err and not out.exists()


def test_unknown_parameter_is_an_error_listing_the_parameters(capsys, tmp_path):
    out = tmp_path / "out"
    assert cli.main(["tutorial", "--only", "01", "-p", "NOPE", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "has parameter(s) ['NOPE']" in err and "'SEED'" in err and not out.exists()
    assert cli.main(["tutorial", "--only", "01", "-p", "OUT_DIR", "x", "--out", str(out)]) == 2
    assert "OUT_DIR is set by the runner" in capsys.readouterr().err


def test_sweep_checks_grid_keys_before_running_any_point(tmp_path, capsys):
    nb = tiny_notebook(tmp_path / "nb.ipynb", "SEED = 0\nOUT_DIR = None", "raise RuntimeError('must not run')")
    with pytest.raises(ValueError, match=r"has no parameter\(s\) \['SEDD'\]; its parameters are \['SEED'\]"):
        sweep.run_sweep(nb, {"SEED": [0, 1], "SEDD": [1]}, tmp_path / "o", progress=False)
    with pytest.raises(ValueError, match=r"\['OUT_DIR'\] is set by the runner"):
        sweep.run_sweep(nb, {"OUT_DIR": ["x"]}, tmp_path / "o", progress=False)
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"SEDD": [1]}))
    assert cli.main(["sweep", str(nb), "--grid", str(grid), "--out", str(tmp_path / "o")]) == 2
    assert "['SEDD']" in capsys.readouterr().err and not (tmp_path / "o").exists()


# ---------------------------------------------------------------- interrupted writes leave nothing that lasts

WRITER = """
import sys, time
from aliqa_lib.cache import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"x" * 100_000)
    print("writing", flush=True)
    time.sleep(120)
"""


def _writer(target):
    """A process in the middle of writing `target` through atomic_path (it waits there)."""
    # default SIGINT disposition: a shell running the tests in the background ignores SIGINT, children inherit it
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout.readline().strip() == "writing"
    return proc


def _partials(target):
    return sorted(target.parent.glob(f".{target.name}.*.partial"))


def test_ctrl_c_removes_the_partial_file(tmp_path):
    target = tmp_path / "store.h5"
    proc = _writer(target)
    (partial,) = _partials(target)
    assert f"-{proc.pid}." in partial.name                    # the owner is in the name
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) != 0
    assert _partials(target) == [] and not target.exists()


def test_a_killed_writer_leaves_a_partial_that_the_next_write_removes_and_reports(tmp_path, caplog):
    target = tmp_path / "store.h5"
    killed, alive = _writer(target), _writer(target)
    killed.kill()
    killed.wait(30)
    foreign = tmp_path / f".{target.name}.otherhost-{killed.pid}.abc123.partial"   # another machine's
    legacy = tmp_path / f".{target.name}.k2j4x9q1.partial"                          # no owner in the name
    old_legacy = tmp_path / f".{target.name}.a1b2c3d4.partial"                     # ... untouched for two days
    for path in (foreign, legacy, old_legacy):
        path.write_bytes(b"")
    os.utime(old_legacy, (time.time() - 2 * 86400,) * 2)
    assert len(_partials(target)) == 5
    with caplog.at_level(logging.WARNING, logger="aliqa_lib.cache"), atomic_path(target) as tmp:
        tmp.write_text("done")
    assert target.read_text() == "done"
    left = _partials(target)
    assert len(left) == 3 and not any(f"-{killed.pid}." in p.name and "otherhost" not in p.name for p in left)
    assert any(f"-{alive.pid}." in p.name for p in left) and foreign in left and legacy in left
    assert f"left by process {killed.pid}" in caplog.text and "0.1 MB" in caplog.text
    assert f"removed {old_legacy}" in caplog.text and "a process of an older version" in caplog.text
    alive.send_signal(signal.SIGINT)
    alive.wait(30)


# ---------------------------------------------------------------- caches under concurrency

CACHE_USER = """
import pathlib, sys, time
import numpy as np
from aliqa_lib.cache import cached_array
store, entry, go, log = sys.argv[1:5]
print("ready", flush=True)
while not pathlib.Path(go).exists():
    time.sleep(0.01)
def compute():
    with open(log, "a") as fh:
        fh.write(entry + "\\n")
    time.sleep(0.5)
    return np.arange(1000.0) * int(entry)
print(cached_array(store, {"entry": int(entry)}, compute).sum(), flush=True)
"""


def _at_once(store, entries, tmp_path):
    """Run one process per entry, released together; return what each printed and the compute log."""
    go, log = tmp_path / "go", tmp_path / "computed.log"
    procs = [subprocess.Popen([sys.executable, "-c", CACHE_USER, str(store), str(e), str(go), str(log)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for e in entries]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    go.touch()
    outs = [proc.communicate(timeout=120) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err for _, err in outs]
    return [float(out) for out, _ in outs], sorted(log.read_text().split())


def test_processes_asking_for_one_cached_array_at_once_compute_it_once(tmp_path):
    store = tmp_path / "tiny.h5"
    tiny_store(store)
    sums, computed = _at_once(store, [3, 3, 3], tmp_path)
    assert sums == [3 * 499500.0] * 3 and computed == ["3"]
    with h5py.File(cache_path(store), "r") as fh:
        assert len(fh) == 1
    assert cached_array(store, {"entry": 3}, lambda: np.zeros(1)).sum() == 3 * 499500.0   # read, not recomputed


def test_processes_adding_different_entries_at_once_lose_none(tmp_path):
    store = tmp_path / "tiny.h5"
    tiny_store(store)
    sums, computed = _at_once(store, [1, 2, 5], tmp_path)
    assert sums == [499500.0, 2 * 499500.0, 5 * 499500.0] and computed == ["1", "2", "5"]
    with h5py.File(cache_path(store), "r") as fh:
        assert sorted(float(fh[k][:].sum()) for k in fh) == sums
    assert not _partials(cache_path(store))


# ---------------------------------------------------------------- sound comparisons


def _table(diffs: dict[tuple[str, float], list[float]], base: list[float]) -> pd.DataFrame:
    """Runs of random (`base` per seed) and of each (selector, budget) at base + its paired differences."""
    rows = []
    for budget in sorted({b for _, b in diffs}):
        rows += [dict(selector="random", budget=budget, seed=s, srcc=v) for s, v in enumerate(base)]
    for (name, budget), d in diffs.items():
        rows += [dict(selector=name, budget=budget, seed=s, srcc=base[s] + v) for s, v in enumerate(d)]
    rows += [dict(selector="full_pool", budget=1.0, seed=s, srcc=0.9) for s in range(len(base))]
    return pd.DataFrame(rows)


def test_paired_tests_agree_with_scipy():
    base = [0.41, 0.52, 0.38, 0.61, 0.47, 0.55]
    diffs = {("a", 0.1): [0.05, 0.02, 0.07, 0.03, 0.06, 0.01], ("b", 0.1): [0.04, -0.03, 0.02, -0.01, 0.05, 0.00],
             ("a", 0.25): [-0.02, 0.01, -0.04, 0.00, -0.03, 0.02]}
    s = experiments.summarise(_table(diffs, base)).set_index(["selector", "budget"])
    for key, d in diffs.items():
        x, r = np.add(base, d), np.asarray(base)
        assert s.loc[key, "p_t"] == pytest.approx(stats.ttest_rel(x, r).pvalue)
        assert s.loc[key, "t"] == pytest.approx(stats.ttest_rel(x, r).statistic)
        assert s.loc[key, "p_wilcoxon"] == pytest.approx(stats.wilcoxon(x, r).pvalue)
        half = stats.t.ppf(0.975, len(d) - 1) * np.std(d, ddof=1) / np.sqrt(len(d))   # 5 degrees of freedom
        assert s.loc[key, "vs_random_ci95"] == pytest.approx(half)
    p = [s.loc[k, "p_t"] for k in diffs]
    assert s.loc[list(diffs), "p_holm"].tolist() == pytest.approx(paired.holm(p))
    assert (s.comparisons == 3).all() and np.isnan(s.loc[("random", 0.1), "p_holm"])
    assert s.loc[("a", 0.1), "beats_random"] is True and s.loc[("b", 0.1), "beats_random"] is False
    assert s.loc[("random", 0.1), "beats_random"] is False


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01, 2 x 0.03, 1 x 0.04, then running maximum: 0.03, 0.06, 0.06
    assert paired.holm([0.04, 0.01, np.nan, 0.03]).tolist()[:2] == pytest.approx([0.06, 0.03])
    assert np.isnan(paired.holm([0.04, 0.01, np.nan, 0.03])[2]) and paired.holm([0.04, 0.01, np.nan, 0.03])[3] == 0.06
    assert paired.holm([0.5, 0.6]).tolist() == [1.0, 1.0] and paired.holm([]).size == 0


def test_no_verdict_from_too_few_seeds_and_none_from_two_standard_errors_alone():
    base = [0.4, 0.5, 0.45, 0.55]
    s = experiments.summarise(_table({("a", 0.1): [0.2, 0.21, 0.19, 0.2]}, base)).set_index("selector")
    assert s.loc["a", "beats_random"] == paired.TOO_FEW and s.loc["random", "beats_random"] == paired.TOO_FEW
    assert defaults.MIN_PAIRED_SEEDS > 4
    # 5 seeds, mean difference 2.7 standard errors: the old "two standard errors" rule said True, but the
    # paired t-test with 4 degrees of freedom needs 2.78 for p < 0.05, before any adjustment
    d = np.array([0.1, 0.0, 0.06, 0.02, 0.11])
    t = d.mean() / (d.std(ddof=1) / np.sqrt(5))
    assert 2 < t < stats.t.ppf(0.975, 4)
    s = experiments.summarise(_table({("a", 0.1): list(d)}, [0.4, 0.5, 0.45, 0.55, 0.5])).set_index("selector")
    assert s.loc["a", "p_t"] > 0.05 and s.loc["a", "beats_random"] is False


def test_a_summary_of_no_runs_still_has_its_columns():
    empty = experiments.summarise(pd.DataFrame(columns=["selector", "budget", "seed", "srcc"]))
    assert empty.empty and {"p_t", "p_wilcoxon", "p_holm", "beats_random", "comparisons"} <= set(empty.columns)
    assert empty[empty.beats_random.eq(True)].empty

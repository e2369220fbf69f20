"""Issue 14: no silent wrong result from non-finite inputs, names checked before anything runs,
no partial file that outlives its process, caches safe under concurrency."""
from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import tiny_notebook

from aliqa_lib import checks, cli
from aliqa_lib.evaluation import metrics, sweep
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

"""Metrics against scipy, hand-computed cases, the VQEG fits and degenerate input."""
import numpy as np
import pytest
from scipy import stats

from aliqa_lib.evaluation import metrics


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    mos = rng.uniform(1, 5, 200)
    pred = 1 / (1 + np.exp(-(mos - 3))) + rng.normal(0, 0.05, 200)   # monotonic but non-linear
    return pred, mos


def test_rank_and_linear_metrics_match_scipy(pair):
    pred, mos = pair
    assert metrics.srcc(pred, mos) == pytest.approx(stats.spearmanr(pred, mos)[0])
    assert metrics.krcc(pred, mos) == pytest.approx(stats.kendalltau(pred, mos)[0])
    assert metrics.plcc(pred, mos) == pytest.approx(stats.pearsonr(pred, mos)[0])
    assert metrics.rmse(pred, mos) == pytest.approx(np.sqrt(np.mean((pred - mos) ** 2)))


def test_hand_computed_cases():
    assert metrics.srcc([1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx(0.8)          # 1 - 6*2/(4*15)
    assert metrics.krcc([1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx(4 / 6)        # 5 concordant, 1 discordant
    assert metrics.rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(np.sqrt(4 / 3))
    assert metrics.plcc([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)


def test_logistic_fits_recover_a_known_mapping():
    x = np.linspace(-3, 3, 60)
    y = metrics.logistic4(x, 5.0, 1.0, 0.5, 0.7)
    assert metrics.plcc(x, y, fit="logistic4") == pytest.approx(1.0, abs=1e-6)
    assert metrics.rmse(x, y, fit="logistic4") == pytest.approx(0.0, abs=1e-4)
    assert metrics.plcc(x, y) < 0.99                                                   # raw is not linear
    y5 = metrics.logistic5(x, 3.0, 2.0, 0.0, 0.2, 3.0)
    assert metrics.rmse(x, y5, fit="logistic5") == pytest.approx(0.0, abs=1e-4)


def test_fits_improve_on_raw_and_handle_falling_relations(pair):
    pred, mos = pair
    assert metrics.rmse(pred, mos, fit="logistic4") < metrics.rmse(pred, mos)
    assert metrics.plcc(pred, mos, fit="logistic5") >= metrics.plcc(pred, mos) - 1e-9
    assert metrics.plcc(-pred, mos, fit="logistic4") == pytest.approx(metrics.plcc(pred, mos, fit="logistic4"), abs=1e-3)


def test_evaluate_records_the_fit(pair):
    out = metrics.evaluate(*pair, fit="logistic5")
    assert out["fit"] == "logistic5" and set(out) >= {"srcc", "krcc", "plcc", "rmse", "plcc_raw", "rmse_raw"}
    assert metrics.evaluate(*pair, fit=None)["fit"] is None


def test_degenerate_input():
    with pytest.warns(metrics.DegenerateInputWarning):
        assert np.isnan(metrics.srcc([1, 1, 1, 1], [1, 2, 3, 4]))
    with pytest.warns(metrics.DegenerateInputWarning):
        assert np.isnan(metrics.plcc([2, 2, 2], [1, 2, 3], fit="logistic4"))
    with pytest.raises(ValueError, match="at least 3 points"):
        metrics.srcc([1, 2], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        metrics.krcc([1, np.nan, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="has 3 values but mos has 4"):
        metrics.plcc([1, 2, 3], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="unknown fit"):
        metrics.plcc([1, 2, 3], [1, 2, 3], fit="cubic")

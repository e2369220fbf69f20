"""IQA agreement metrics: SRCC, KRCC, PLCC and RMSE, raw or after the VQEG logistic mappings."""
from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy import optimize, stats

from ..checks import require_finite

FITS = (None, "logistic4", "logistic5")


class DegenerateInputWarning(UserWarning):
    """Predictions or scores carry no ranking information (e.g. all equal)."""


def _check(pred, mos) -> tuple[np.ndarray, np.ndarray]:
    """Validate a pair of score vectors: same length, at least 3 points, no NaN."""
    pred, mos = np.asarray(pred, dtype=np.float64).ravel(), np.asarray(mos, dtype=np.float64).ravel()
    if pred.shape != mos.shape:
        raise ValueError(f"pred has {pred.size} values but mos has {mos.size}")
    if pred.size < 3:
        raise ValueError(f"need at least 3 points to correlate, got {pred.size}")
    return require_finite(pred, "predictions (pred)"), require_finite(mos, "scores (mos)")


def _constant(*arrays: np.ndarray) -> bool:
    """True (with a warning) when any vector is constant, so a correlation is undefined."""
    if any(np.ptp(a) == 0 for a in arrays):
        warnings.warn("constant predictions or scores: correlation is undefined, returning NaN",
                      DegenerateInputWarning, stacklevel=3)
        return True
    return False


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """VQEG 4-parameter logistic: (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2."""
    return (b1 - b2) / (1 + np.exp(np.clip(-(x - b3) / (abs(b4) + 1e-12), -60, 60))) + b2


def logistic5(x: np.ndarray, b1: float, b2: float, b3: float, b4: float, b5: float) -> np.ndarray:
    """VQEG 5-parameter logistic: b1 (1/2 - 1 / (1 + exp(b2 (x - b3)))) + b4 x + b5."""
    return b1 * (0.5 - 1 / (1 + np.exp(np.clip(b2 * (x - b3), -60, 60)))) + b4 * x + b5


def fit_mapping(pred, mos, fit: str | None) -> Callable[[np.ndarray], np.ndarray]:
    """Least-squares fit of a mapping from predictions to scores (None = identity): logistic4 is monotonic;
    logistic5 adds a line b4 x, which can make it fall at the edges of the predictions."""
    if fit not in FITS:
        raise ValueError(f"unknown fit {fit!r}; choose from {FITS}")
    pred, mos = _check(pred, mos)
    if fit is None or _constant(pred):
        return lambda x: np.asarray(x, dtype=np.float64)
    # Fit on standardised predictions: curve_fit's finite-difference steps are relative to each
    # parameter, so a centre that starts near (but not at) zero would never move.
    mu, sd = float(np.mean(pred)), float(np.std(pred))
    z = (pred - mu) / sd
    rising = stats.pearsonr(pred, mos)[0] >= 0
    lo, hi = float(mos.min()), float(mos.max())
    if fit == "logistic4":
        func, p0 = logistic4, [hi, lo, 0.0, 1.0] if rising else [lo, hi, 0.0, 1.0]
    else:
        func, p0 = logistic5, [hi - lo if rising else lo - hi, 2.0, 0.0, 0.0, float(np.mean(mos))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optimize.OptimizeWarning)
        params, _ = optimize.curve_fit(func, z, mos, p0=p0, maxfev=20000)
    return lambda x: func((np.asarray(x, dtype=np.float64) - mu) / sd, *params)


def srcc(pred, mos) -> float:
    """Spearman rank-order correlation (NaN with a warning for constant input)."""
    pred, mos = _check(pred, mos)
    return float("nan") if _constant(pred, mos) else float(stats.spearmanr(pred, mos)[0])


def krcc(pred, mos) -> float:
    """Kendall rank-order correlation, tau-b (NaN with a warning for constant input)."""
    pred, mos = _check(pred, mos)
    return float("nan") if _constant(pred, mos) else float(stats.kendalltau(pred, mos)[0])


def plcc(pred, mos, fit: str | None = None) -> float:
    """Pearson linear correlation of (mapped) predictions with scores."""
    pred, mos = _check(pred, mos)
    if _constant(pred, mos):
        return float("nan")
    return float(stats.pearsonr(fit_mapping(pred, mos, fit)(pred), mos)[0])


def rmse(pred, mos, fit: str | None = None) -> float:
    """Root mean squared error of (mapped) predictions against scores."""
    pred, mos = _check(pred, mos)
    return float(np.sqrt(np.mean((fit_mapping(pred, mos, fit)(pred) - mos) ** 2)))


def evaluate(pred, mos, fit: str | None = "logistic4") -> dict[str, float | str | None]:
    """All metrics at once: SRCC, KRCC, raw PLCC/RMSE and PLCC/RMSE after `fit` (recorded as 'fit')."""
    out: dict[str, float | str | None] = {"srcc": srcc(pred, mos), "krcc": krcc(pred, mos),
                                          "plcc_raw": plcc(pred, mos), "rmse_raw": rmse(pred, mos), "fit": fit}
    if fit is not None:
        out["plcc"], out["rmse"] = plcc(pred, mos, fit), rmse(pred, mos, fit)
    return out

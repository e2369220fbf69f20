"""Paired comparisons of a selector with a baseline over the same seeds: the paired t-test (n - 1
degrees of freedom), the Wilcoxon signed-rank test beside it, and Holm's adjustment across the
comparisons of one table.

A seed fixes the test split, so two selectors run at the same seed are a pair; the differences
per seed are what is tested. Below `defaults.MIN_PAIRED_SEEDS` pairs no verdict is given.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

from .. import defaults

TOO_FEW = "too few seeds"
ALPHA = 0.05   # family-wise error rate of one table's verdicts (after Holm's adjustment)


def paired_tests(differences: np.ndarray) -> dict[str, float]:
    """The paired t-test and the Wilcoxon signed-rank test of per-seed differences against 0 (two-sided):
    t, its p-value, the 95% t interval half-width of the mean difference, and Wilcoxon's p-value.
    NaN where a test is undefined (fewer than 2 pairs, all differences equal or all zero)."""
    d = np.asarray(differences, dtype=np.float64)
    out = dict(t=np.nan, p_t=np.nan, ci95_t=np.nan, p_wilcoxon=np.nan)
    if len(d) < 2:
        return out
    out["ci95_t"] = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    if np.ptp(d) > 0:   # equal differences: no spread, the t statistic is undefined
        t = stats.ttest_1samp(d, 0.0)   # identical to ttest_rel(a, b) on d = a - b, df = n - 1
        out["t"], out["p_t"] = float(t.statistic), float(t.pvalue)
    if np.any(d != 0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # scipy notes ties and small samples
            out["p_wilcoxon"] = float(stats.wilcoxon(d).pvalue)
    return out


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of p-values for the family-wise error rate; NaN stays NaN.
    Written out (five lines) because scipy has only false-discovery-rate control
    (stats.false_discovery_control) and statsmodels is not a dependency."""
    p = np.asarray(p_values, dtype=np.float64)
    out, ok = np.full(p.shape, np.nan), np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out


def verdicts(mean_difference: np.ndarray, p_holm: np.ndarray, n_paired: np.ndarray) -> list[bool | str]:
    """Per comparison: True when the selector beats the baseline (mean difference above 0 and
    Holm-adjusted paired-t p below ALPHA), False when it does not, TOO_FEW below MIN_PAIRED_SEEDS pairs."""
    return [TOO_FEW if n < defaults.MIN_PAIRED_SEEDS else bool(np.isfinite(p) and p < ALPHA and m > 0)
            for m, p, n in zip(mean_difference, p_holm, n_paired)]

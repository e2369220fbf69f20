"""Summaries of a prepared store's labels: what notebook 01 shows and the tests check."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from .pseudo_mos import METRICS, ecdf
from .schema import Labels


def label_table(labels: Labels) -> pd.DataFrame:
    """One row per image: name, mos, mos01 and every other label column the store has."""
    return pd.DataFrame(labels.columns()).rename(columns={"names": "name"})


def level_spearman(labels: Labels) -> pd.Series:
    """Spearman correlation between level and score within each distortion type (pristine images excluded)."""
    if labels.distortion is None or labels.level is None:
        raise ValueError(f"{labels.path} has no /distortion and /level columns")
    out = {}
    for kind in sorted(set(labels.distortion) - {"reference"}):
        mask = labels.distortion == kind
        out[kind] = spearmanr(labels.level[mask], labels.mos01[mask])[0]
    return pd.Series(out, name="spearman(level, mos01)")


def end_shares(labels: Labels, margin: float = 0.05) -> tuple[float, float]:
    """Share of images whose [0, 1] score lies within `margin` of 0 and of 1."""
    q = labels.mos01
    return float(np.mean(q < margin)), float(np.mean(q > 1 - margin))


def end_cutoffs(labels: Labels, margin: float = 0.05) -> tuple[float, float]:
    """The raw scores `margin` of the score range inside its lower and its upper end (1.2 and 4.8 on 1..5)."""
    if "score_range" not in labels.attrs:
        raise ValueError(f"{labels.path} has no score_range attribute; prepare the store again with "
                         "`python -m aliqa_lib prepare`")
    lo, hi = (float(v) for v in labels.attrs["score_range"])
    return lo + margin * (hi - lo), hi - margin * (hi - lo)


def metric_contributions(labels: Labels) -> pd.DataFrame:
    """Per metric: Spearman with the pseudo-MOS and the mean oriented CDF value per distortion type."""
    if not labels.metrics:
        raise ValueError(f"{labels.path} stores no /metrics (only synthetic stores do)")
    rows = {}
    for name, values in labels.metrics.items():
        cdf = ecdf(values, METRICS[name][1]) if name in METRICS else values
        row = {"spearman_with_pseudo_mos": spearmanr(cdf, labels.mos01)[0]}
        if labels.distortion is not None:
            row.update(pd.Series(cdf).groupby(labels.distortion).mean().to_dict())
        rows[name] = row
    return pd.DataFrame(rows).T

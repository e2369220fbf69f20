"""A simulated rater for headless runs: known scores plus rater noise, rounded to the ACR scale."""
from __future__ import annotations

import numpy as np


def simulated_rater(true_scores: np.ndarray, noise_sd: float = 0.5, seed: int = 0,
                    score_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """ACR ratings 1..5 (int64) of images whose true quality is `true_scores` (in `score_range`, higher =
    better; default the store's unit scale /mos01): mapped linearly onto 1..5, plus Gaussian noise of
    `noise_sd` ACR steps, rounded and clipped to 1..5."""
    scores = np.asarray(true_scores, dtype=np.float64)
    if not np.isfinite(scores).all():
        bad = np.flatnonzero(~np.isfinite(scores))
        raise ValueError(f"the simulated rater needs a known score for every image; {bad.size} are NaN "
                         f"(first positions {bad[:5].tolist()}): rate them by hand or give a labels CSV")
    if noise_sd < 0:
        raise ValueError(f"noise_sd is a standard deviation in ACR steps, >= 0; got {noise_sd}")
    lo, hi = score_range
    acr = 1.0 + 4.0 * (scores - lo) / (hi - lo)
    noisy = acr + np.random.default_rng(seed).normal(0.0, noise_sd, size=acr.shape)
    return np.clip(np.rint(noisy), 1, 5).astype(np.int64)

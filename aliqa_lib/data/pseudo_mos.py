"""Pseudo-MOS from full-reference metrics (piq): a stand-in for human opinions on synthetic data.

Each metric scores a distorted image against its pristine reference. The scores are oriented so
higher = better, turned into empirical CDF values over the whole set (so metrics with different
scales weigh equally), averaged, and mapped linearly onto [1, 5]. These are NOT human opinions.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy.stats import rankdata

if TYPE_CHECKING:
    import torch


def _piq():
    """piq, imported where a metric runs: it imports torchvision's models, which alone cost two seconds
    at every start of the command line and of every notebook kernel that only reads a store."""
    import piq

    return piq


# name -> (piq function on (B, 3, H, W) tensors in [0, 1], higher_is_better)
METRICS: dict[str, tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], bool]] = {
    "vif": (lambda x, y: _piq().vif_p(x, y, data_range=1.0, reduction="none"), True),
    "haarpsi": (lambda x, y: _piq().haarpsi(x, y, data_range=1.0, reduction="none"), True),
    "mdsi": (lambda x, y: _piq().mdsi(x, y, data_range=1.0, reduction="none"), False),
    "ms_gmsd": (lambda x, y: _piq().multi_scale_gmsd(x, y, data_range=1.0, chromatic=True, reduction="none"), False),
    "ms_ssim": (lambda x, y: _piq().multi_scale_ssim(x, y, data_range=1.0, reduction="none"), True),
    "fsim": (lambda x, y: _piq().fsim(x, y, data_range=1.0, reduction="none"), True),
}
# FSIM and MS-SSIM are left out by default: together 4x the cost of the four below for similar ranks.
DEFAULT_METRICS = ("vif", "haarpsi", "mdsi", "ms_gmsd")


def check_metrics(names: Sequence[str]) -> None:
    """Raise ValueError for metric names piq support here does not know."""
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise ValueError(f"unknown metrics {unknown}; choose from {sorted(METRICS)}")


def score_batch(distorted: np.ndarray, reference: np.ndarray, names: Sequence[str] = DEFAULT_METRICS,
                batch_size: int = 8) -> dict[str, np.ndarray]:
    """Full-reference scores of uint8 images (B, H, W, 3) against references of the same shape."""
    import torch

    check_metrics(names)
    out = {}
    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(distorted)).permute(0, 3, 1, 2).float() / 255.0
        y = torch.from_numpy(np.ascontiguousarray(reference)).permute(0, 3, 1, 2).float() / 255.0
        for name in names:
            fn = METRICS[name][0]
            parts = [fn(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x), batch_size)]
            out[name] = torch.cat(parts).double().numpy()
    return out


def ecdf(values: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
    """Empirical CDF value of each entry (average rank / n), oriented so higher = better quality."""
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError("metric values contain NaN/inf; cannot rank them")
    return rankdata(values if higher_is_better else -values, method="average") / len(values)


def pseudo_mos(scores: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Combine metric scores into (pseudo-MOS in [1, 5], the same in [0, 1]), higher = better."""
    check_metrics(list(scores))
    q = np.mean([ecdf(v, METRICS[k][1]) for k, v in scores.items()], axis=0)
    return 1.0 + 4.0 * q, q.astype(np.float32)

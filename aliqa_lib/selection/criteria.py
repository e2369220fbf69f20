"""The two AL-IQA criteria on unlabelled images: uncertainty from votes, and content distance from
distillation distances (docs/method.md, steps 2 and 3; notebooks 02 and 03 write both out)."""
from __future__ import annotations

import numpy as np


def uncertainty(votes: np.ndarray) -> np.ndarray:
    """Per-image uncertainty: std over templates (ddof=0), summed over attributes. votes: (A, N, T)."""
    votes = np.asarray(votes, dtype=np.float64)
    if votes.ndim != 3:
        raise ValueError(f"votes must be (attributes, images, templates), got shape {votes.shape}")
    return votes.std(axis=2).sum(axis=0)


def content_distance(distances: np.ndarray, keep: int = 3) -> np.ndarray:
    """The authors' trimmed aggregation: per (distilled, pool) pair keep the `keep` repeats closest to
    their mean and sum them, then sum over distilled images. Lower = more representative. (R, M, N) -> (N,)."""
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 3:
        raise ValueError(f"distances must be (repeats, distilled, images), got shape {d.shape}")
    if not 1 <= keep <= d.shape[0]:
        raise ValueError(f"keep must lie in 1..{d.shape[0]}")
    dev = np.abs(d - d.mean(axis=0, keepdims=True))
    closest = np.argsort(dev, axis=0, kind="stable")[:keep]
    return np.take_along_axis(d, closest, axis=0).sum(axis=0).sum(axis=0)

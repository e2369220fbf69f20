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


def content_distance(distances: np.ndarray, keep: int = 3, columns: np.ndarray | None = None,
                     chunk: int = 16384) -> np.ndarray:
    """The authors' trimmed aggregation: per (distilled, pool) pair keep the `keep` repeats closest to
    their mean and sum them, then sum over distilled images. Lower = more representative. (R, M, N) -> (N,),
    or only the images at `columns`. Computed `chunk` images at a time, so memory stays O(R x M x chunk)
    beside the input (which may be a np.memmap); every image's value is independent of the chunking."""
    if not isinstance(distances, np.ndarray):          # np.memmap is one: read chunk by chunk
        distances = np.asarray(distances)
    shape = distances.shape
    if len(shape) != 3:
        raise ValueError(f"distances must be (repeats, distilled, images), got shape {shape}")
    if not 1 <= keep <= shape[0]:
        raise ValueError(f"keep must lie in 1..{shape[0]}")
    if chunk < 1:
        raise ValueError(f"chunk must be a positive number of images, got {chunk}")
    cols = np.arange(shape[2]) if columns is None else np.asarray(columns, dtype=np.int64)
    out = np.empty(len(cols))
    for i in range(0, len(cols), chunk):
        out[i:i + chunk] = _trimmed_sum(np.asarray(distances[:, :, cols[i:i + chunk]], dtype=np.float64), keep)
    return out


def _trimmed_sum(d: np.ndarray, keep: int) -> np.ndarray:
    """content_distance of one chunk (R, M, n) -> (n,)."""
    dev = np.abs(d - d.mean(axis=0, keepdims=True))
    closest = np.argsort(dev, axis=0, kind="stable")[:keep]
    return np.take_along_axis(d, closest, axis=0).sum(axis=0).sum(axis=0)

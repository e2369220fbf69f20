"""Held-out test splits fixed before any selection, grouped by content where the dataset has it."""
from __future__ import annotations

import numpy as np

from .store import Labels


def holdout_split(labels: Labels | int, test_fraction: float = 0.2, seed: int = 0,
                  groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(pool, test) positions: whole groups (source photo, else reference) go to one side.

    With no groups (an authentic dataset without references), images are split individually.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    if isinstance(labels, Labels):
        n, groups = len(labels), labels.groups if groups is None else groups
    else:
        n = int(labels)
    groups = np.arange(n) if groups is None else np.asarray(groups)
    unique = np.unique(groups)
    if len(unique) < 2:
        raise ValueError("need at least two groups to split into pool and test")
    rng = np.random.default_rng([seed, 2024])
    shuffled = unique[rng.permutation(len(unique))]
    n_test = min(len(unique) - 1, max(1, int(round(test_fraction * len(unique)))))
    is_test = np.isin(groups, shuffled[:n_test])
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def complement_split(n: int, selected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The authors' protocol: train on the selection, test on everything else (changes per method)."""
    selected = np.unique(np.asarray(selected, dtype=np.int64))
    return selected, np.setdiff1d(np.arange(n), selected)

"""Splits, in the order an honest experiment makes them: the held-out test split first (whole
source photos or references), then the labelled budget from the pool, then validation inside it."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import defaults
from .schema import Labels


def holdout_split(labels: Labels | int, test_fraction: float = defaults.TEST_FRACTION, seed: int = 0,
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


def split_budget(indices: np.ndarray, val_fraction: float = defaults.VAL_FRACTION, seed: int = 0,
                 min_val: int = defaults.MIN_VAL, groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split labelled indices into (train, validation), the validation part drawn inside the budget.

    With `groups` (one id per image of the store, e.g. `Labels.groups`: source photo, else reference),
    validation takes whole groups, as the test split does, so no photo has images on both sides; it
    then holds between one and two times the usual number of images. Where whole groups cannot do
    that and leave two training images (e.g. a budget from one photo), or without groups, images are
    drawn one by one.
    """
    indices = np.asarray(indices, dtype=np.int64)
    n_val = max(min_val, int(round(val_fraction * len(indices))))
    if len(indices) < n_val + 2:
        raise ValueError(f"a budget of {len(indices)} images is too small to hold out {n_val} for validation "
                         f"(at least {defaults.MIN_BUDGET} labelled images are needed)")
    rng = np.random.default_rng([seed, 99])
    if groups is not None:
        is_val = _whole_groups(np.asarray(groups)[indices], n_val, rng)
        if is_val is not None:
            return np.sort(indices[~is_val]), np.sort(indices[is_val])
    perm = rng.permutation(len(indices))
    return np.sort(indices[perm[n_val:]]), np.sort(indices[perm[:n_val]])


def _whole_groups(groups: np.ndarray, n_val: int, rng: np.random.Generator) -> np.ndarray | None:
    """A validation mask of whole groups holding at least n_val images (at most 2 x n_val) and leaving
    at least one group and two images for training; groups are taken in random order, one that would
    break those limits is passed over. None where no such choice exists."""
    unique, counts = np.unique(groups, return_counts=True)
    taken, size = [], 0
    for g in rng.permutation(len(unique)):
        if size >= n_val:
            break
        fits = size + counts[g] <= 2 * n_val and len(groups) - size - counts[g] >= 2
        if fits and len(taken) < len(unique) - 1:
            taken.append(unique[g])
            size += counts[g]
    return np.isin(groups, taken) if size >= n_val else None


def __getattr__(name: str) -> Any:
    """`splits.authors_koniq_split` stays importable from here; its home is aliqa_lib.authors."""
    if name == "authors_koniq_split":
        from ..authors import koniq_split
        return koniq_split
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

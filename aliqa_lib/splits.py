"""Held-out test splits fixed before any selection, grouped by content where the dataset has it."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.io as sio

from .paths import project_root
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


KONIQ_SIZE = 10073
KONIQ_RATIOS = (5, 10, 25, 80)


def authors_koniq_split(names: np.ndarray | list[str] | Labels, ratio: int, release_dir: str | os.PathLike | None = None,
                        all_names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) positions in `names` (a KonIQ store's names) of the images the authors' released
    5/10/25/80% models were trained and tested on.

    Their index p means image name_sorted[perm[p]]: name_sorted is every KonIQ image name in ascending
    order, perm is arange(10073) shuffled by numpy's legacy generator seeded 0 (data/authors_release).
    `all_names` (the CSV's image_name column) is needed only when the store lacks some images.
    """
    if ratio not in KONIQ_RATIOS:
        raise ValueError(f"the authors released KonIQ splits for ratios {KONIQ_RATIOS} (percent), not {ratio}")
    names = [str(n) for n in (names.names if isinstance(names, Labels) else names)]
    universe = sorted(str(n) for n in (all_names if all_names is not None else names))
    if len(universe) != KONIQ_SIZE or len(set(universe)) != KONIQ_SIZE:
        raise ValueError(f"the authors' indices refer to all {KONIQ_SIZE} KonIQ-10k images, got {len(set(universe))} "
                         "names; pass all_names=the image_name column of koniq10k_scores_and_distributions.csv")
    release = Path(release_dir) if release_dir else _release_dir()
    path = release / f"koniq_rt{ratio:02d}_index.mat"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: point release_dir at the authors' files (data/authors_release)")
    mat = sio.loadmat(path)
    perm = np.arange(KONIQ_SIZE)
    np.random.RandomState(0).shuffle(perm)  # identical to np.random.seed(0); np.random.shuffle(...)
    where = {n: i for i, n in enumerate(names)}
    out = []
    for key in ("ind_train", "ind_test"):
        wanted = [universe[perm[p]] for p in np.ravel(mat[key]).astype(np.int64)]
        absent = [n for n in wanted if n not in where]
        if absent:
            raise ValueError(f"{len(absent)} images of the authors' {key} at {ratio}% are not in this store "
                             f"(first: {absent[:3]}); prepare the full dataset without --skip-bad or --smoke")
        out.append(np.array([where[n] for n in wanted], dtype=np.int64))
    return out[0], out[1]


def _release_dir() -> Path:
    """data/authors_release of the checkout, or an error asking for the folder."""
    root = project_root()
    if root is None:
        raise FileNotFoundError("no checkout found: pass release_dir, the folder with the authors' koniq_rt*_index.mat")
    return root / "data" / "authors_release"

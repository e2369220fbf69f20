"""The authors' release (esnthere/AL-IQA, Apache-2.0), in one place: where their files are, the
images their released KonIQ-10k models were trained and tested on, and the replay of their 25%
LIVE Challenge selection from their released votes and distances (data/authors_release/README.md).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.io as sio

from .data.schema import Labels
from .paths import project_root
from .selection.fusion import PAPER_SCHEDULE, RoundDetail, fusion_round

KONIQ_SIZE = 10073
KONIQ_RATIOS = (5, 10, 25, 80)          # percent of KonIQ-10k the released models were trained on
LIVEW_VOTES = ("prompt3vote_livew.mat", "prompt3vote_rt25_secondstep_livew.mat",
               "prompt3vote_rt25_thirdstep_livew.mat")   # zero-shot, round-2 and round-3 votes
LIVEW_DISTANCES = "livew_ds.mat"
LIVEW_ROUND_SHARES = (0.05, 0.10, 0.10)  # their 25% run: 5% then 10% then 10% of the 1,169 images


def release_dir(folder: str | os.PathLike | None = None) -> Path:
    """The folder of the authors' files: `folder` when given, else data/authors_release of the checkout."""
    if folder is not None:
        return Path(folder)
    root = project_root()
    if root is None:
        raise FileNotFoundError("no checkout found: pass the folder that holds the authors' released files")
    return root / "data" / "authors_release"


def koniq_split(names: np.ndarray | list[str] | Labels, ratio: int, release: str | os.PathLike | None = None,
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
    path = release_dir(release) / f"koniq_rt{ratio:02d}_index.mat"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: point `release` at the authors' files (data/authors_release)")
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


def livew_votes(path: str | os.PathLike) -> np.ndarray:
    """Votes from one of the authors' prompt3vote*.mat files as (attributes, N, 3)."""
    mat = sio.loadmat(path)
    return np.stack([np.atleast_2d(mat[f"output{t}"]) for t in (1, 2, 3)], axis=2)


def replay_details(release: str | os.PathLike | None = None, faithful: bool = True) -> list[RoundDetail]:
    """Every rank and score of the three replayed LIVE Challenge rounds (see replay_livew)."""
    folder = release_dir(release)
    needed = [LIVEW_DISTANCES, *LIVEW_VOTES]
    missing = [n for n in needed if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {missing}: point at the authors' release folder (data/authors_release)")
    distances = sio.loadmat(folder / LIVEW_DISTANCES)["distance"]
    n = distances.shape[2]
    # their round 1 asks for the fractional 0.05 * n images (the faithful replay keeps that quirk)
    nums = [n * s if faithful and r == 0 else int(n * s) for r, s in enumerate(LIVEW_ROUND_SHARES)]
    remaining, details = np.arange(n), []
    for r, (name, num) in enumerate(zip(LIVEW_VOTES, nums)):
        detail = fusion_round(livew_votes(folder / name), distances, remaining, num, PAPER_SCHEDULE.weights[r],
                              PAPER_SCHEDULE.band_starts[r], faithful=faithful)
        details.append(detail)
        # the authors carry the rest of the pool on in their descending-score order
        rest = detail.order[len(detail.selected):]
        remaining = detail.pool[rest] if faithful else np.setdiff1d(remaining, detail.selected)
    return details


def replay_livew(release: str | os.PathLike | None = None, faithful: bool = True) -> list[np.ndarray]:
    """Replay the authors' three-round 25% LIVE Challenge selection from their released votes and
    distances (positions in their prepared image order). faithful=True reproduces their code exactly
    (59 + 116 + 116 images); faithful=False applies our clean rules (58 + 116 + 116)."""
    return [d.selected for d in replay_details(release, faithful)]

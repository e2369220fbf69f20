"""AL-IQA selection: uncertainty, content ranks, weighted Borda fusion, curriculum bands, rounds.

METHOD.md sections 2-4. Clean mode (default) breaks every tie by pool index and takes exactly the
budget. faithful=True reproduces the authors' code: numpy's default (unstable) argsort in their
order of the pool, and a fractional round size whose band holds int(num) images while the round
takes ceil(num) (their 59-image first round on LIVE Challenge).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from scipy import io as sio

from .baselines import BASELINES, select_baseline


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


def _order(values: np.ndarray, descending: bool, faithful: bool) -> np.ndarray:
    """Positions sorted by value; clean: stable with ties in position order, faithful: numpy's default."""
    if faithful:
        return np.argsort(values)[::-1] if descending else np.argsort(values)
    return np.argsort(-values if descending else values, kind="stable")


@dataclass
class RoundDetail:
    """Everything one fusion round computed, in pool order (for plots and tests)."""

    pool: np.ndarray
    uncertainty: np.ndarray
    content: np.ndarray
    r_u: np.ndarray
    r_c: np.ndarray
    band: np.ndarray
    score: np.ndarray
    order: np.ndarray          # pool positions, best first (the authors keep the rest in this order)
    selected: np.ndarray       # pool values
    from_band: int = field(default=0)


def fusion_round(votes: np.ndarray, distances: np.ndarray | None, pool: np.ndarray, num: float, wt: float,
                 band_start: float, faithful: bool = False, content: np.ndarray | None = None) -> RoundDetail:
    """One AL-IQA round over the pool with all intermediate ranks (see al_iqa_round)."""
    pool = np.asarray(pool, dtype=np.int64)
    if not faithful:
        pool = np.sort(pool)
    P = len(pool)
    if P == 0 or len(np.unique(pool)) != P:
        raise ValueError("pool must be non-empty and hold distinct positions")
    if not faithful and (num != int(num)):
        raise ValueError(f"num must be a whole number of images in clean mode, got {num}")
    band_size, take = int(num), len(np.arange(P - num, P)) if faithful else int(num)
    if not 0 < take <= P:
        raise ValueError(f"cannot select {take} images from a pool of {P}")
    if not 0 <= band_start <= 1:
        raise ValueError(f"band_start must lie in [0, 1], got {band_start}")
    u = uncertainty(np.asarray(votes)[:, pool, :])
    c = content_distance(np.asarray(distances)[:, :, pool]) if content is None else np.asarray(content, np.float64)[pool]
    r_c = np.empty(P, dtype=np.float64)
    r_c[_order(c, descending=True, faithful=faithful)] = np.arange(P, 0, -1)     # 1 = most representative
    by_u = _order(u, descending=True, faithful=faithful)                          # most uncertain first
    r_u = np.empty(P, dtype=np.float64)
    r_u[by_u] = np.arange(P, 0, -1)                                                # P = most uncertain
    start = int(P * band_start) if faithful else min(int(P * band_start), P - band_size)
    band = by_u[start:start + band_size]
    r_u[band] = -np.arange(len(band), dtype=np.float64)                            # 0, -1, ..., in band order
    score = wt * r_c + r_u
    if faithful:
        desc = np.argsort(score)[::-1]          # the authors sort descending and take the tail
        order = np.concatenate([desc[P - take:][::-1], desc[:P - take]])
    else:
        order = np.lexsort((pool, score))       # smallest score first, ties by pool index
    chosen = order[:take]
    return RoundDetail(pool=pool, uncertainty=u, content=c, r_u=r_u, r_c=r_c, band=pool[band], score=score,
                       order=order, selected=pool[chosen], from_band=int(np.isin(chosen, band).sum()))


def al_iqa_round(votes: np.ndarray, distances: np.ndarray, pool: np.ndarray, num: float, wt: float,
                 band_start: float, faithful: bool = False) -> np.ndarray:
    """Select `num` pool positions by weighted Borda fusion of content and uncertainty ranks with a
    curriculum band starting at fraction `band_start` of the uncertainty order.

    votes: (attributes, N, templates) in [0, 1]; distances: (repeats, M, N); pool: candidate positions.
    Returns the selected positions (values from `pool`).
    """
    return fusion_round(votes, distances, pool, num, wt, band_start, faithful).selected


@dataclass
class ALIQAConfig:
    """The multi-round schedule; defaults are the paper's LIVE Challenge pipeline."""

    rounds: int = 3
    band_starts: tuple[float, ...] = (0.66, 0.33, 0.0)
    split: tuple[float, ...] = (1, 2, 2)
    weights: tuple[float, ...] = (0.01, 0.01, 0.005)

    def round_sizes(self, budget: int) -> list[int]:
        """Split a budget over rounds in proportion to `split`, summing exactly to the budget."""
        if not (len(self.band_starts) == len(self.split) == len(self.weights) == self.rounds):
            raise ValueError("band_starts, split and weights need one entry per round")
        shares = np.asarray(self.split, dtype=np.float64) / np.sum(self.split) * budget
        sizes = np.floor(shares).astype(int)
        sizes[np.argsort(-(shares - sizes), kind="stable")[:budget - sizes.sum()]] += 1
        return sizes.tolist()


def al_iqa(votes_for_round: Callable[[int, np.ndarray], np.ndarray], distances: np.ndarray, pool: np.ndarray,
           budget: int, config: ALIQAConfig = ALIQAConfig()) -> list[np.ndarray]:
    """The multi-round loop: each round asks `votes_for_round(round, selected_so_far)` for fresh votes
    (zero-shot in round 0, a model trained on the selection afterwards), then fuses them with the
    content ranks of the remaining pool. Returns the selection of each round."""
    pool = np.asarray(pool, dtype=np.int64)
    if not 0 < budget <= len(pool):
        raise ValueError(f"budget {budget} must lie in 1..{len(pool)} (the pool size)")
    selected: list[np.ndarray] = []
    remaining = np.sort(pool)
    for r, num in enumerate(config.round_sizes(budget)):
        votes = votes_for_round(r, np.concatenate(selected) if selected else np.empty(0, np.int64))
        picked = al_iqa_round(votes, distances, remaining, num, config.weights[r], config.band_starts[r])
        selected.append(picked)
        remaining = np.setdiff1d(remaining, picked)
    return selected


def _release_votes(path: Path) -> np.ndarray:
    """Votes from one of the authors' prompt3vote*.mat files as (attributes, N, 3)."""
    mat = sio.loadmat(path)
    return np.stack([np.atleast_2d(mat[f"output{t}"]) for t in (1, 2, 3)], axis=2)


def replay_details(release_dir: str | os.PathLike, faithful: bool = True) -> list[RoundDetail]:
    """Every rank and score of the three replayed LIVE Challenge rounds (see replay_authors_livew)."""
    release = Path(release_dir)
    needed = ["livew_ds.mat", "prompt3vote_livew.mat", "prompt3vote_rt25_secondstep_livew.mat",
              "prompt3vote_rt25_thirdstep_livew.mat"]
    missing = [n for n in needed if not (release / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{release} lacks {missing}: point at the authors' release folder (data/authors_release)")
    distances = sio.loadmat(release / "livew_ds.mat")["distance"]
    votes = [_release_votes(release / n) for n in needed[1:]]
    n = distances.shape[2]
    nums = [n * 0.05 if faithful else int(n * 0.05), int(n * 0.1), int(n * 0.1)]
    remaining, details = np.arange(n), []
    for v, num, wt, st in zip(votes, nums, (0.01, 0.01, 0.005), (0.66, 0.33, 0.0)):
        detail = fusion_round(v, distances, remaining, num, wt, st, faithful=faithful)
        details.append(detail)
        # the authors carry the rest of the pool on in their descending-score order
        rest = detail.order[len(detail.selected):]
        remaining = detail.pool[rest] if faithful else np.setdiff1d(remaining, detail.selected)
    return details


def replay_authors_livew(release_dir: str | os.PathLike, faithful: bool = True) -> list[np.ndarray]:
    """Replay the authors' three-round 25% LIVE Challenge selection from their released votes and
    distances (positions in their prepared image order). faithful=True reproduces their code exactly
    (59 + 116 + 116 images); faithful=False applies our clean rules (58 + 116 + 116)."""
    return [d.selected for d in replay_details(release_dir, faithful)]


SELECTORS = tuple(BASELINES) + ("uncertainty", "content", "al_iqa")


def select(name: str, features: np.ndarray, budget: int, seed: int = 0, labelled: np.ndarray | None = None,
           votes: np.ndarray | None = None, distances: np.ndarray | None = None, wt: float = 0.01,
           band_start: float = 0.0) -> np.ndarray:
    """Any selector by name -> `budget` distinct positions among the rows of `features` not in `labelled`.

    Baselines use the features; "uncertainty" (needs votes), "content" (needs distances) and
    "al_iqa" (one fused round, needs both) are the AL-IQA criteria and their ablations.
    """
    if name not in SELECTORS:
        raise ValueError(f"unknown selector {name!r}; choose from {', '.join(SELECTORS)}")
    n = len(features)
    labelled = np.unique(np.asarray(labelled if labelled is not None else [], dtype=np.int64))
    pool = np.setdiff1d(np.arange(n), labelled)
    if not isinstance(budget, (int, np.integer)) or not 0 < budget <= len(pool):
        raise ValueError(f"budget must be a whole number in 1..{len(pool)} (the unlabelled pool), got {budget}; "
                         f"valid selectors: {', '.join(SELECTORS)}")
    if name in BASELINES:
        return select_baseline(name, features, budget, seed, labelled)
    if name in ("uncertainty", "al_iqa") and votes is None:
        raise ValueError(f"selector {name!r} needs votes=(attributes, N, templates)")
    if name in ("content", "al_iqa") and distances is None:
        raise ValueError(f"selector {name!r} needs distances=(repeats, M, N)")
    if name == "uncertainty":
        u = uncertainty(np.asarray(votes)[:, pool, :])
        return pool[np.argsort(-u, kind="stable")[:budget]]
    if name == "content":
        c = content_distance(np.asarray(distances)[:, :, pool])
        return pool[np.argsort(c, kind="stable")[:budget]]
    return al_iqa_round(votes, distances, pool, budget, wt, band_start)

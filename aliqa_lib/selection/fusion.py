"""AL-IQA fusion: content and uncertainty ranks, the curriculum band, the weighted Borda count, and
the paper's three-round schedule (docs/method.md, step 4; notebook 04 writes the round out).

Clean mode (default) breaks every tie by pool index and takes exactly the budget. faithful=True
reproduces the authors' code: numpy's default (unstable) argsort in their order of the pool, and a
fractional round size whose band holds int(num) images while the round takes ceil(num) (their
59-image first round on LIVE Challenge).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .criteria import content_distance, uncertainty


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


def curriculum_band(by_uncertainty: np.ndarray, band_start: float, size: int, faithful: bool = False) -> np.ndarray:
    """The round's band: `size` entries of the most-uncertain-first order, starting at fraction
    `band_start` of it. Clean mode slides a band that would run off the end back inside; the
    authors' code lets it run short."""
    n = len(by_uncertainty)
    start = int(n * band_start) if faithful else min(int(n * band_start), n - size)
    return by_uncertainty[start:start + size]


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
    c = content_distance(distances, columns=pool) if content is None else np.asarray(content, np.float64)[pool]
    r_c = np.empty(P, dtype=np.float64)
    r_c[_order(c, descending=True, faithful=faithful)] = np.arange(P, 0, -1)     # 1 = most representative
    by_u = _order(u, descending=True, faithful=faithful)                          # most uncertain first
    r_u = np.empty(P, dtype=np.float64)
    r_u[by_u] = np.arange(P, 0, -1)                                                # P = most uncertain
    band = curriculum_band(by_u, band_start, band_size, faithful)
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


@dataclass(frozen=True)
class ALIQASchedule:
    """The multi-round schedule; the defaults are the paper's LIVE Challenge pipeline."""

    band_starts: tuple[float, ...] = (0.66, 0.33, 0.0)   # where each round's band starts (easy -> hard)
    split: tuple[float, ...] = (1, 2, 2)                  # budget shares of the rounds (5% + 10% + 10%)
    weights: tuple[float, ...] = (0.01, 0.01, 0.005)      # Borda weight wt of the content rank per round

    def __post_init__(self) -> None:
        if not len(self.band_starts) == len(self.split) == len(self.weights) >= 1:
            raise ValueError("band_starts, split and weights need one entry per round")

    @property
    def rounds(self) -> int:
        """How many rounds the schedule has."""
        return len(self.split)

    def round_sizes(self, budget: int) -> list[int]:
        """Split a budget over rounds in proportion to `split`, summing exactly to the budget
        (spare images go to the largest remainders)."""
        shares = np.asarray(self.split, dtype=np.float64) / np.sum(self.split) * budget
        sizes = np.floor(shares).astype(int)
        sizes[np.argsort(-(shares - sizes), kind="stable")[:budget - sizes.sum()]] += 1
        return sizes.tolist()


PAPER_SCHEDULE = ALIQASchedule()

"""One selector interface, in the style of scikit-activeml's query strategies.

Every strategy is a Selector: `select(features, labelled, budget, seed)` takes the pool's features
(N, D), the positions already labelled, how many to pick and a seed, and returns a Selection: the
picked positions (rows of `features`, in pick order) and, where the strategy scores every image,
its utilities (higher = preferred). What else a strategy needs (votes, distances, a vote source for
later rounds) it receives when it is built; `make_selector(name, ...)` builds any by name.
"""
from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .. import defaults
from ..checks import require_finite
from . import baselines
from .criteria import content_distance, uncertainty
from .fusion import PAPER_SCHEDULE, ALIQASchedule, fusion_round

IMAGE_AXIS = {"votes": 1, "distances": 2}
SHAPES = {"votes": "(attributes, N, templates)", "distances": "(repeats, M, N)"}
VoteSource = Callable[[int, np.ndarray], np.ndarray]
"""(round, labelled positions) -> votes (attributes, N, templates) for that round."""


@dataclass
class Selection:
    """What a selector picked: positions in pick order, per-image utilities where it has them, and
    for multi-round strategies the picks of each round."""

    positions: np.ndarray
    utilities: np.ndarray | None = None
    rounds: list[np.ndarray] | None = None
    note: str = ""             # what the strategy did other than asked (e.g. one round instead of three)


class RoundsTooSmall(UserWarning):
    """AL-IQA ran one fused round because the schedule's rounds would be too small to train between."""


class Selector:
    """Base class: checks the request, runs the strategy, checks its promise."""

    name: ClassVar[str] = ""
    needs: ClassVar[tuple[str, ...]] = ()       # arrays the strategy is built with (votes, distances)

    def select(self, features: np.ndarray, labelled: np.ndarray | None = None, budget: int = 1,
               seed: int = 0) -> Selection:
        """Pick `budget` distinct positions among the rows of `features` not in `labelled`."""
        features = require_finite(features, "features")
        if features.ndim != 2:
            raise ValueError(f"features must be (images, dims), got shape {features.shape}")
        n = len(features)
        labelled = np.unique(np.asarray(labelled if labelled is not None else [], dtype=np.int64))
        if labelled.size and (labelled[0] < 0 or labelled[-1] >= n):
            raise ValueError(f"labelled positions must lie in 0..{n - 1}")
        free = n - len(labelled)
        if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or not 0 < budget <= free:
            raise ValueError(f"budget must be a whole number in 1..{free} (the unlabelled pool), got {budget!r}")
        for key in self.needs:
            shape = np.shape(getattr(self, key))
            if len(shape) != 3 or shape[IMAGE_AXIS[key]] != n:
                raise ValueError(f"{self.name}: {key} of shape {shape} must be {SHAPES[key]} with N = {n}, "
                                 "one per row of the features")
            require_finite(getattr(self, key), f"{self.name}: {key}")
        out = self._select(features, labelled, int(budget), seed)
        out.positions = np.asarray(out.positions, dtype=np.int64)
        if len(out.positions) != budget or len(np.unique(out.positions)) != budget \
                or np.isin(out.positions, labelled).any():
            raise RuntimeError(f"{self.name} returned {len(out.positions)} positions, not {budget} distinct unlabelled ones")
        return out

    def _select(self, features: np.ndarray, labelled: np.ndarray, budget: int, seed: int) -> Selection:
        raise NotImplementedError


def _unlabelled(n: int, labelled: np.ndarray) -> np.ndarray:
    """Positions 0..n-1 not in `labelled`, ascending."""
    return np.setdiff1d(np.arange(n), labelled)


def _utilities(n: int, pool: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Utilities over all n rows: `values` at the pool's rows, NaN at labelled ones."""
    out = np.full(n, np.nan)
    out[pool] = values
    return out


def _best(n: int, pool: np.ndarray, utility: np.ndarray, budget: int) -> Selection:
    """The `budget` pool images of highest utility (ties by position), with the utilities over all n rows."""
    return Selection(pool[np.argsort(-utility, kind="stable")[:budget]], _utilities(n, pool, utility))


class _FeatureBaseline(Selector):
    """A selector that needs only the features: one of the functions in selection.baselines."""

    function: ClassVar[Callable[..., np.ndarray]]

    def _select(self, features: np.ndarray, labelled: np.ndarray, budget: int, seed: int) -> Selection:
        return Selection(type(self).function(features, budget, seed, labelled))


class RandomSelector(_FeatureBaseline):
    """Uniform random sample of the unlabelled pool."""

    name, function = "random", staticmethod(baselines.random_selection)


class KCenter(_FeatureBaseline):
    """k-center greedy (core-set, Sener & Savarese 2018)."""

    name, function = "kcenter", staticmethod(baselines.kcenter)


class GSx(_FeatureBaseline):
    """Greedy sampling on inputs (Wu et al. 2019)."""

    name, function = "gsx", staticmethod(baselines.gsx)


class TypiClust(_FeatureBaseline):
    """TypiClust (Hacohen et al. 2022): the most typical point of the least covered cluster."""

    name, function = "typiclust", staticmethod(baselines.typiclust)


class ProbCover(_FeatureBaseline):
    """ProbCover (Yehuda et al. 2022): greedy maximum coverage of delta-balls."""

    name, function = "probcover", staticmethod(baselines.probcover)


class FullPool(Selector):
    """Every unlabelled image: the full-pool ceiling every selector is compared with."""

    name = "full_pool"

    def _select(self, features: np.ndarray, labelled: np.ndarray, budget: int, seed: int) -> Selection:
        pool = _unlabelled(len(features), labelled)
        if budget != len(pool):
            raise ValueError(f"full_pool takes the whole unlabelled pool ({len(pool)} images), not {budget}")
        return Selection(pool)


@dataclass
class Uncertainty(Selector):
    """The distortion criterion alone: the most uncertain images first (an AL-IQA ablation)."""

    votes: np.ndarray
    name: ClassVar[str] = "uncertainty"
    needs: ClassVar[tuple[str, ...]] = ("votes",)

    def _select(self, features: np.ndarray, labelled: np.ndarray, budget: int, seed: int) -> Selection:
        pool = _unlabelled(len(features), labelled)
        return _best(len(features), pool, uncertainty(np.asarray(self.votes)[:, pool, :]), budget)


@dataclass
class Content(Selector):
    """The content criterion alone: the most representative images first (an AL-IQA ablation)."""

    distances: np.ndarray
    name: ClassVar[str] = "content"
    needs: ClassVar[tuple[str, ...]] = ("distances",)

    def _select(self, features: np.ndarray, labelled: np.ndarray, budget: int, seed: int) -> Selection:
        pool = _unlabelled(len(features), labelled)
        return _best(len(features), pool, -content_distance(self.distances, columns=pool), budget)


@dataclass
class ALIQARound(Selector):
    """One AL-IQA round: weighted Borda fusion of content and uncertainty ranks with a curriculum band."""

    votes: np.ndarray
    distances: np.ndarray
    wt: float = PAPER_SCHEDULE.weights[-1]
    band_start: float = 0.0
    name: ClassVar[str] = "al_iqa_round"
    needs: ClassVar[tuple[str, ...]] = ("votes", "distances")

    def _select(self, features: np.ndarray, labelled: np.ndarray, budget: int, seed: int) -> Selection:
        pool = _unlabelled(len(features), labelled)
        detail = fusion_round(self.votes, self.distances, pool, budget, self.wt, self.band_start)
        return Selection(detail.selected, _utilities(len(features), pool, -detail.score))


@dataclass
class ALIQA(Selector):
    """AL-IQA over several rounds: each round fuses fresh votes with the content ranks of the images
    still unlabelled. Round 1 uses the zero-shot `votes`; later rounds ask `vote_source(round,
    labelled)` (a model trained on everything labelled so far) or, without one, reuse `votes`.
    With a vote source and a round smaller than `min_round` images (too few to train on), it
    either runs one fused round with the last round's weight and the band from the top, says so in
    a RoundsTooSmall warning and in Selection.note (too_small="one_round", the default), or raises
    (too_small="error")."""

    votes: np.ndarray
    distances: np.ndarray
    vote_source: VoteSource | None = None
    schedule: ALIQASchedule = PAPER_SCHEDULE
    min_round: int = defaults.MIN_BUDGET
    too_small: str = "one_round"
    name: ClassVar[str] = "al_iqa"
    needs: ClassVar[tuple[str, ...]] = ("votes", "distances")

    def _select(self, features: np.ndarray, labelled: np.ndarray, budget: int, seed: int) -> Selection:
        sizes = self.schedule.round_sizes(budget)
        if self.too_small not in ("one_round", "error"):
            raise ValueError(f"too_small must be 'one_round' or 'error', got {self.too_small!r}")
        if self.vote_source is not None and min(sizes) < self.min_round:
            note = (f"one fused round (weight {self.schedule.weights[-1]}, band from the top) instead of "
                    f"{len(sizes)}: a budget of {budget} splits into rounds of {sizes}, and a model between rounds "
                    f"needs at least {self.min_round} labels per round")
            if self.too_small == "error":
                raise ValueError(f"al_iqa: a budget of {budget} splits into rounds of {sizes} images, fewer than "
                                 f"min_round={self.min_round}; raise the budget or use too_small='one_round'")
            warnings.warn(note, RoundsTooSmall, stacklevel=3)
            one = ALIQARound(self.votes, self.distances, self.schedule.weights[-1], 0.0)
            picked = one._select(features, labelled, budget, seed).positions
            return Selection(picked, rounds=[picked], note=note)
        rounds: list[np.ndarray] = []
        for r, num in enumerate(sizes):
            if num == 0:
                continue
            known = np.concatenate([labelled, *rounds])       # in the order the labels arrived
            votes = self.votes if r == 0 or self.vote_source is None else self.vote_source(r, known)
            detail = fusion_round(votes, self.distances, _unlabelled(len(features), known), num,
                                  self.schedule.weights[r], self.schedule.band_starts[r])
            rounds.append(detail.selected)
        return Selection(np.concatenate(rounds), rounds=rounds)


SELECTORS: dict[str, type[Selector]] = {cls.name: cls for cls in (
    RandomSelector, KCenter, GSx, TypiClust, ProbCover, Uncertainty, Content, ALIQARound, ALIQA, FullPool)}
CONTEXT = ("votes", "distances", "vote_source")   # shared inputs a strategy takes only if it uses them


def make_selector(name: str, votes: np.ndarray | None = None, distances: np.ndarray | None = None,
                  vote_source: VoteSource | None = None, **options: Any) -> Selector:
    """The selector called `name`, built from the context it needs and its own `options`
    (e.g. wt and band_start for al_iqa_round, schedule for al_iqa); unknown options are an error."""
    if name not in SELECTORS:
        raise ValueError(f"unknown selector {name!r}; choose from {', '.join(SELECTORS)}")
    cls = SELECTORS[name]
    context = dict(votes=votes, distances=distances, vote_source=vote_source)
    missing = [k for k in cls.needs if context[k] is None]
    if missing:
        raise ValueError(f"selector {name!r} needs {' and '.join(f'{k}={SHAPES[k]}' for k in missing)}")
    accepted = set(inspect.signature(cls).parameters)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(f"selector {name!r} takes no option(s) {unknown}; it takes {sorted(accepted - set(CONTEXT)) or 'none'}")
    return cls(**{k: v for k, v in context.items() if k in accepted}, **options)


def select(name: str, features: np.ndarray, budget: int, seed: int = 0, labelled: np.ndarray | None = None,
           votes: np.ndarray | None = None, distances: np.ndarray | None = None,
           vote_source: VoteSource | None = None, **options: Any) -> np.ndarray:
    """Any selector by name -> `budget` distinct positions among the rows of `features` not in `labelled`."""
    selector = make_selector(name, votes=votes, distances=distances, vote_source=vote_source, **options)
    return selector.select(features, labelled, budget, seed).positions

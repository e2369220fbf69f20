"""Your own collection, a person as the oracle: the next batch to rate, and every image scored.

The loop: `next_batch` picks images nobody has rated yet; a person rates them (rating.RatingPanel,
or a simulated rater), each rating going to the store's ratings file; `next_batch` again; ... and
at any point `score_collection` trains the heads on the ratings so far and scores every image.

Round 1 needs no scores: AL-IQA fuses zero-shot votes (the offline committee, or CLIP's when given)
with content distances from distillation of the whole collection. Once enough images are rated to
train on (defaults.MIN_BUDGET), the votes come from the three heads trained on the ratings so far,
and the schedule's later bands and weights apply (round_index). Any other selector (random, kcenter,
typiclust, ...) works too: none of them reads scores.

Scores are on the store's unit scale [0, 1], higher = better: an image's ratings become its MOS on
the ACR scale 1..5 and then (MOS - 1) / 4 (rating.ratings.mos_to_unit).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import defaults, plots
from ..cache import atomic_path
from ..data.splits import split_budget
from ..data.store import read_images, read_labels
from ..models import training
from ..models.heads import combine
from ..rating.ratings import RatingsFile
from ..selection.fusion import PAPER_SCHEDULE, ALIQASchedule
from ..selection.strategies import ALIQARound, Selector, make_selector
from ..selection.votes import head_votes, offline_committee_votes

PREDICTION_COLUMNS = ("name", "score", "uncertainty")
SHEETS = ("best", "worst", "uncertain")


class NotEnoughRatings(ValueError):
    """Too few rated images to train on (the message says how many exist and how many are needed)."""


class RateFirst(NotEnoughRatings):
    """A person has not rated enough yet: stops a notebook's Run All with the message alone (IPython shows
    what `_render_traceback_` returns instead of a traceback)."""

    def _render_traceback_(self) -> list[str]:
        """The message without a traceback: nothing went wrong, the ratings are still to come."""
        return [str(self)]


def collected_scores(store: str | os.PathLike, ratings: RatingsFile | None = None, min_count: int = 1,
                     store_scores: bool = True) -> np.ndarray:
    """Unit-scale scores (N,) of every image of the store, NaN where unknown: the MOS of its ratings
    (images with at least `min_count`), else the store's own known score when `store_scores` (a
    labels CSV given to `prepare folder`). Pass store_scores=False when the store's scores are the
    simulated rater's truth, so that only the ratings teach the model."""
    labels = read_labels(store)
    scores = labels.mos01.astype(np.float64) if store_scores else np.full(len(labels), np.nan)
    if ratings is not None:
        if Path(ratings.store).resolve() != Path(store).resolve():
            raise ValueError(f"the ratings file {ratings.path} belongs to {ratings.store}, not to {store}")
        opinions = ratings.opinions(min_count)
        scores[opinions.index.to_numpy()] = opinions["mos01"].to_numpy()
    return scores


EPOCH_RULES = ("fixed", "kfold", "holdout")
WHY_NEEDED = {"fixed": "fewer say too little to train on; all of them train the heads",
              "kfold": "cross-validation over them chooses the number of epochs, then the heads train on all",
              "holdout": f"{defaults.MIN_VAL} are held out for validation, the rest train the heads"}


def rated_positions(scores: np.ndarray, needed: int = defaults.MIN_BUDGET, where: str = "",
                    rule: str = "fixed") -> np.ndarray:
    """Positions with a score; raise NotEnoughRatings saying how many exist when fewer than `needed`."""
    rated = np.flatnonzero(np.isfinite(np.asarray(scores, dtype=np.float64)))
    if len(rated) < needed:
        raise NotEnoughRatings(
            f"training needs at least {needed} rated images ({WHY_NEEDED.get(rule, WHY_NEEDED['holdout'])}); "
            f"{len(rated)} of {len(scores)} have a rating{where}. Rate {needed - len(rated)} "
            "more (next_batch picks which)")
    return rated


def rating_folds(rated: np.ndarray, folds: int, seed: int, groups: np.ndarray | None = None) -> list[np.ndarray]:
    """Validation positions of each cross-validation fold over the rated positions: whole groups per fold
    where `groups` (one id per store row) has at least two among the rated, else single images; the
    folds are shuffled with `seed` (scikit-learn's GroupKFold / KFold)."""
    from sklearn.model_selection import GroupKFold, KFold

    rated = np.asarray(rated, dtype=np.int64)
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {folds}")
    ids = None if groups is None else np.asarray(groups)[rated]
    n_groups = 0 if ids is None else len(np.unique(ids))
    if n_groups >= 2:
        splitter = GroupKFold(min(folds, n_groups), shuffle=True, random_state=seed)
    else:
        splitter = KFold(min(folds, len(rated)), shuffle=True, random_state=seed)
        ids = None
    return [rated[val] for _, val in splitter.split(rated, groups=ids)]


def cv_epoch_curve(features: np.ndarray, scores: np.ndarray, rated: np.ndarray, config: training.TrainConfig,
                   folds: int = defaults.CV_FOLDS, seed: int = 0, groups: np.ndarray | None = None) -> np.ndarray:
    """Out-of-fold SRCC (epochs,) of the heads' prediction after each epoch: in every fold heads train on
    the other folds' ratings (training.train_heads_epochs, constant rate) and predict the fold's own;
    the SRCC after epoch e pools the predictions of all folds (NaN while undefined), which stays
    defined with folds of one or two images."""
    features = np.asarray(features, dtype=np.float32)
    targets = np.asarray(scores, dtype=np.float64)
    rated = np.asarray(rated, dtype=np.int64)
    pooled = np.full((config.epochs, len(features)), np.nan)
    for val in rating_folds(rated, folds, seed, groups):
        def record(epoch: int, model, val=val) -> None:
            pooled[epoch, val] = combine(training.head_outputs(model, features[val]), config.predict)
        training.train_heads_epochs(features, targets, np.setdiff1d(rated, val), config.epochs, config,
                                    after_epoch=record, progress=False)
    return np.array([training.validation_srcc(pooled[e, rated], targets[rated]) for e in range(config.epochs)])


def choose_epochs(curve: np.ndarray) -> int:
    """The number of epochs whose out-of-fold SRCC is highest (the fewest among ties; all of them
    when the SRCC is never defined)."""
    curve = np.asarray(curve, dtype=np.float64)
    if not np.isfinite(curve).any():
        return len(curve)
    return int(np.nanargmax(curve)) + 1


def train_on_ratings(features: np.ndarray, scores: np.ndarray, seed: int = 0,
                     config: training.TrainConfig | None = None, where: str = "", rule: str = "fixed",
                     folds: int = defaults.CV_FOLDS, groups: np.ndarray | None = None) -> training.TrainResult:
    """The three antonym heads trained on the rated images, as in every round.

    rule "fixed" (default): the heads train on every rating for config.epochs epochs at the constant
    rate config.lr, nothing held out (best_epoch is the last, best_val_srcc NaN); on few ratings the
    test SRCC barely moves with the number of epochs, so choosing it costs more than it brings
    (benchmarks/bench_few_ratings.py, docs/method.md deviation 19). rule "kfold": `folds`-fold
    cross-validation over the ratings (whole `groups` per fold where given, e.g. Labels.groups) chooses
    the number of epochs by out-of-fold SRCC (cv_epoch_curve), then the heads train on every rating for
    that many epochs at a constant rate; best_epoch is that number less one, best_val_srcc its
    out-of-fold SRCC, history the curve (val_srcc per epoch). rule "holdout":
    a validation part drawn among the ratings (split_budget) picks the checkpoint, the rest train, as
    with known scores (fewer ratings train, and a few images choose the epoch: worse with few ratings,
    docs/method.md deviation 19).
    """
    if rule not in EPOCH_RULES:
        raise ValueError(f"unknown epoch rule {rule!r}; choose from {', '.join(EPOCH_RULES)}")
    rated = rated_positions(scores, where=where, rule=rule)
    config = config or training.TrainConfig(seed=seed)
    if rule == "holdout":
        train_idx, val_idx = split_budget(rated, seed=seed)
        return training.train_heads(features, scores, train_idx, val_idx, config, progress=False)
    if rule == "fixed":
        return training.train_heads_epochs(features, scores, rated, config.epochs, config, progress=False)
    curve = cv_epoch_curve(features, scores, rated, config, folds, seed, groups)
    epochs = choose_epochs(curve)
    result = training.train_heads_epochs(features, scores, rated, epochs, config, progress=False)
    result.history = [dict(epoch=e, lr=config.lr, val_srcc=float(v)) for e, v in enumerate(curve)]
    result.best_epoch, result.best_val_srcc = epochs - 1, float(curve[epochs - 1])
    return result


def round_index(n_rated: int, budget: int, rounds: int = PAPER_SCHEDULE.rounds) -> int:
    """The schedule round a batch plays: 0 while too few images are rated to train on, else one more
    per `budget` images rated so far (1 after the first batch, 2 after the second), at most the last."""
    if n_rated < defaults.MIN_BUDGET:
        return 0
    return int(min(rounds - 1, max(1, n_rated // max(1, budget))))


@dataclass
class Batch:
    """The images to rate next and how they were chosen."""

    positions: np.ndarray       # store rows, in pick order
    names: np.ndarray           # their /names
    round: int                  # schedule round played (0 = no ratings used)
    votes_from: str             # what the uncertainty came from
    n_rated: int                # images with a score when the batch was picked
    utilities: np.ndarray | None = None


def next_batch(store: str | os.PathLike, ratings: RatingsFile | None, budget: int, seed: int = 0,
               features: np.ndarray | None = None, selector: str = "al_iqa", votes: np.ndarray | None = None,
               distances: Callable[[np.ndarray, int], np.ndarray] | np.ndarray | None = None,
               schedule: ALIQASchedule = PAPER_SCHEDULE, train: training.TrainConfig | None = None,
               min_count: int = 1, store_scores: bool = True, round_: int | None = None) -> Batch:
    """The next `budget` images to rate among those without a score (see the module docstring).

    features: (N, D) of the store (default: the package's default backbone, cached beside it);
    votes: zero-shot votes (attributes, N, templates) for round 0 (default: the offline committee;
    CLIP's from models.clip.clip_zero_shot_votes); distances: (repeats, M, N) or a function
    (pool, seed) -> that (default: distillation of the whole collection, evaluation.experiments.distance_source);
    round_: the schedule round to play (default: round_index).
    """
    labels = read_labels(store)
    n = len(labels)
    features = _features(store) if features is None else np.asarray(features)
    if len(features) != n:
        raise ValueError(f"features have {len(features)} rows but {store} holds {n} images")
    scores = collected_scores(store, ratings, min_count, store_scores)
    rated = np.flatnonzero(np.isfinite(scores))
    free = n - len(rated)
    if free == 0:
        raise ValueError(f"every image of {store} has a score; nothing is left to rate")
    budget = min(int(budget), free)
    r = round_index(len(rated), budget, schedule.rounds) if round_ is None else int(round_)
    if not 0 <= r < schedule.rounds:
        raise ValueError(f"round_ must lie in 0..{schedule.rounds - 1}, got {round_}")
    name = "al_iqa_round" if selector == "al_iqa" else selector
    uses_votes, uses_distances = _needs(name)
    votes_from = "none"
    if uses_votes:
        if r == 0 or len(rated) < defaults.MIN_BUDGET:
            votes = offline_committee_votes(store, progress=False) if votes is None else np.asarray(votes)
            votes_from = "zero-shot votes (no ratings used)"
        else:
            model = train_on_ratings(features, scores, seed, train, where=f" in {store}", groups=labels.groups).model
            votes = head_votes(training.head_outputs(model, features))
            votes_from = f"the three heads trained on {len(rated)} rated images"
    if uses_distances:
        distances = _distances(store, distances, seed, n)
    chosen: Selector
    if name == "al_iqa_round":
        chosen = ALIQARound(votes, distances, wt=schedule.weights[r], band_start=schedule.band_starts[r])
    else:
        chosen = make_selector(name, votes=votes if uses_votes else None, distances=distances if uses_distances else None)
    out = chosen.select(features, rated, budget, seed)
    return Batch(out.positions, labels.names[out.positions], r, votes_from, len(rated), out.utilities)


def _needs(name: str) -> tuple[bool, bool]:
    """Whether the selector called `name` uses votes and content distances."""
    from ..selection.strategies import SELECTORS

    if name not in SELECTORS or name in ("al_iqa", "full_pool"):
        choices = sorted(set(SELECTORS) - {"al_iqa_round", "full_pool"})
        raise ValueError(f"unknown selector {name!r} for a collection; choose from {', '.join(choices)}")
    needs = SELECTORS[name].needs
    return "votes" in needs, "distances" in needs


def _features(store: str | os.PathLike) -> np.ndarray:
    """The default backbone's centre-view features of every image (cached beside the store)."""
    from ..models.features import extract_features

    return extract_features(store, progress=False)


def _distances(store: str | os.PathLike, distances: Callable[[np.ndarray, int], np.ndarray] | np.ndarray | None,
               seed: int, n: int) -> np.ndarray:
    """Content distances (repeats, M, N) over the whole collection."""
    if distances is None:
        from .experiments import distance_source
        distances = distance_source(store)
    if callable(distances):
        distances = distances(np.arange(n), seed)
    return np.asarray(distances)


def score_collection(store: str | os.PathLike, ratings: RatingsFile | None = None, features: np.ndarray | None = None,
                     seed: int = 0, train: training.TrainConfig | None = None, min_count: int = 1,
                     store_scores: bool = True, model: training.TrainResult | None = None,
                     out_csv: str | os.PathLike | None = None) -> pd.DataFrame:
    """Every image's predicted quality and its uncertainty, best first (index: store position).

    score: the mean of the three heads trained on the ratings so far (unit scale, higher = better);
    uncertainty: the standard deviation of the three heads' outputs for that image (their
    disagreement, the same quantity AL-IQA's later rounds rank by); rated: whether it has a score.
    `model` reuses heads trained before (train_on_ratings); `out_csv` writes predictions.csv
    (write_predictions).
    """
    labels = read_labels(store)
    features = _features(store) if features is None else np.asarray(features)
    if len(features) != len(labels):
        raise ValueError(f"features have {len(features)} rows but {store} holds {len(labels)} images")
    scores = collected_scores(store, ratings, min_count, store_scores)
    if model is None:
        model = train_on_ratings(features, scores, seed, train, where=f" in {store}", groups=labels.groups)
    probs = training.head_outputs(model.model, features)
    table = pd.DataFrame({"name": labels.names, "score": combine(probs, model.config.predict).astype(np.float64),
                          "uncertainty": probs.std(axis=1).astype(np.float64), "rated": np.isfinite(scores)})
    table.index.name = "position"
    table = table.sort_values(["score", "name"], ascending=[False, True], kind="stable")
    if out_csv is not None:
        write_predictions(table, out_csv)
    return table


def write_predictions(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """predictions.csv: columns name,score,uncertainty, one row per image, best first (written atomically)."""
    path = Path(path)
    missing = [c for c in PREDICTION_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"predictions lack column(s) {missing}; pass the table score_collection returns")
    ordered = table.sort_values(["score", "name"], ascending=[False, True], kind="stable")
    with atomic_path(path) as tmp:
        ordered[list(PREDICTION_COLUMNS)].to_csv(tmp, index=False)
    return path


def contact_sheet(store: str | os.PathLike, table: pd.DataFrame, which: str = "best", n: int = 12,
                  ncols: int = 6) -> plt.Figure:
    """A grid of the `n` best, worst or most uncertain images of a score_collection table."""
    if which not in SHEETS:
        raise ValueError(f"unknown contact sheet {which!r}; choose from {', '.join(SHEETS)}")
    key, ascending = {"best": ("score", False), "worst": ("score", True), "uncertain": ("uncertainty", False)}[which]
    top = table.sort_values([key, "name"], ascending=[ascending, True], kind="stable").head(n)
    titles = [f"{plots.file_title(row.name_)}\n{row.score:.2f}, sd {row.uncertainty:.3f}"
              for row in top.rename(columns={"name": "name_"}).itertuples()]
    title = {"best": "best predicted quality", "worst": "worst predicted quality",
             "uncertain": "most uncertain: the heads disagree most"}[which]
    return plots.image_grid(read_images(store, top.index.to_numpy()), titles, ncols=ncols,
                            suptitle=f"{title} (score on 0-1, sd of the three heads)")


def contact_sheets(store: str | os.PathLike, table: pd.DataFrame, out_dir: str | os.PathLike, n: int = 12,
                   ncols: int = 6) -> dict[str, Path]:
    """The best, worst and most uncertain contact sheets saved as PNGs in out_dir (contact_<which>.png)."""
    saved = {}
    for which in SHEETS:
        fig = contact_sheet(store, table, which, n, ncols)
        saved[which] = plots.save(fig, out_dir, f"contact_{which}")
        plt.close(fig)
    return saved

"""Label-efficiency experiments: selectors x budgets x seeds on cached features, one tidy row per run.

Honest protocol (default, docs/method.md, "Where we deviate"): the test split is fixed per seed before any
selection (whole source photos / references held out), selection sees only the pool, validation
is drawn inside the budget. protocol="authors" reproduces the paper's code for comparison: the
selection comes from all images, the test set is its complement, and the checkpoint is chosen on
that test set.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import defaults
from ..cache import atomic_path
from ..data.splits import holdout_split, split_budget
from ..data.store import read_labels
from ..models import training
from ..selection import SELECTORS, make_selector
from ..selection.distill import DistillConfig, cached_distances
from ..selection.strategies import VoteSource
from ..selection.votes import head_votes, offline_committee_votes
from . import metrics

KEY = ("dataset", "backbone", "weights", "pooling", "protocol", "selector", "budget", "seed")
CEILING = "full_pool"   # the selector that takes the whole pool: the ceiling every curve is compared with


@dataclass
class ExperimentConfig:
    """What to run. Budgets are shares of the pool; CEILING ("full_pool") trains on the whole pool."""

    selectors: Sequence[str] = ("random", "kcenter", "typiclust", "al_iqa")
    budgets: Sequence[float] = (0.05, 0.10, 0.25)
    seeds: Sequence[int] = tuple(range(10))
    test_fraction: float = defaults.TEST_FRACTION
    protocol: str = "honest"            # or "authors"
    fit: str | None = "logistic4"
    train: training.TrainConfig = field(default_factory=training.TrainConfig)
    ceiling: bool = True


@dataclass
class Inputs:
    """What every run reads: labels, features and the unlabelled criteria of a store."""

    dataset: str
    mos01: np.ndarray
    groups: np.ndarray | None
    features: np.ndarray
    votes: np.ndarray | None = None
    distances: Callable[[np.ndarray, int], np.ndarray] | None = None
    backbone: str = defaults.BACKBONE
    weights: str = defaults.BACKBONE_WEIGHTS
    pooling: str = defaults.POOLING


def load_inputs(store: str | os.PathLike, features: np.ndarray, committee: bool = True,
                distances: Callable[[np.ndarray, int], np.ndarray] | None = None, backbone: str = defaults.BACKBONE,
                pooling: str = defaults.POOLING, weights: str = defaults.BACKBONE_WEIGHTS) -> Inputs:
    """Gather what the selectors and the training need from a store and its cached features."""
    labels = read_labels(store)
    if len(features) != len(labels):
        raise ValueError(f"features have {len(features)} rows but {store} holds {len(labels)} images")
    return Inputs(dataset=str(labels.attrs["dataset"]), mos01=labels.mos01, groups=labels.groups, features=features,
                  votes=offline_committee_votes(store, progress=False) if committee else None,
                  distances=distances, backbone=backbone, pooling=pooling, weights=str(weights))


def _split(inputs: Inputs, config: ExperimentConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(inputs.mos01)
    if config.protocol == "authors":
        return np.arange(n), np.empty(0, np.int64)
    if config.protocol != "honest":
        raise ValueError(f"unknown protocol {config.protocol!r}; choose 'honest' or 'authors'")
    return holdout_split(n, config.test_fraction, seed, groups=inputs.groups)


def head_vote_source(features: np.ndarray, mos01: np.ndarray, config: training.TrainConfig, seed: int) -> VoteSource:
    """Votes for AL-IQA's later rounds: the three heads of a model trained on everything labelled so
    far (validation inside it), asked about every row of `features`."""
    def votes(round_: int, labelled: np.ndarray) -> np.ndarray:
        tr, va = split_budget(labelled, seed=seed)
        result = training.train_heads(features, mos01, tr, va, config, progress=False)
        return head_votes(training.head_outputs(result.model, features))
    return votes


def _select(inputs: Inputs, name: str, pool: np.ndarray, budget: int, seed: int, train_cfg: training.TrainConfig) -> np.ndarray:
    """Positions chosen from the pool by the selector called `name`, built with what it needs."""
    needs = SELECTORS[name].needs if name in SELECTORS else ()
    if "distances" in needs and inputs.distances is None:
        raise ValueError(f"selector {name!r} needs content distances: load_inputs(..., distances=distance_source(store))")
    selector = make_selector(
        name, votes=None if inputs.votes is None else inputs.votes[:, pool],
        distances=inputs.distances(pool, seed)[:, :, pool] if "distances" in needs else None,
        vote_source=head_vote_source(inputs.features[pool], inputs.mos01[pool], train_cfg, seed))
    return pool[selector.select(inputs.features[pool], budget=budget, seed=seed).positions]


def run_one(inputs: Inputs, selector: str, budget_share: float, seed: int, config: ExperimentConfig) -> dict:
    """One run: split, select, train with validation inside the budget, score once on the test split."""
    t0 = time.perf_counter()
    pool, test = _split(inputs, config, seed)
    picked = _select(inputs, selector, pool, defaults.budget_size(budget_share, len(pool)), seed, config.train)
    t_select = time.perf_counter() - t0
    cfg = training.TrainConfig(**{**asdict(config.train), "seed": seed})
    if config.protocol == "authors":
        test = np.setdiff1d(pool, picked)
        train_idx, val_idx = picked, test            # their checkpoint choice reads the test labels
    else:
        train_idx, val_idx = split_budget(picked, seed=seed)
    result = training.train_heads(inputs.features, inputs.mos01, train_idx, val_idx, cfg, progress=False)
    pred = training.predict(result.model, inputs.features[test], cfg.predict)
    scores = metrics.evaluate(pred, inputs.mos01[test], fit=config.fit)
    return dict(dataset=inputs.dataset, backbone=inputs.backbone, weights=inputs.weights, pooling=inputs.pooling,
                protocol=config.protocol,
                selector=selector, budget=float(budget_share), seed=seed,
                n_labelled=len(picked), n_test=len(test), **scores, best_epoch=result.best_epoch,
                select_seconds=round(t_select, 3), total_seconds=round(time.perf_counter() - t0, 3))


def run_experiment(inputs: Inputs, config: ExperimentConfig, out_csv: str | os.PathLike | None = None,
                   progress: bool = True) -> pd.DataFrame:
    """Every selector x budget x seed (plus the full-pool ceiling per seed); rows already in `out_csv`
    are kept and not recomputed, each new row is appended as soon as it finishes."""
    plan = [(s, b, seed) for seed in config.seeds for b in config.budgets for s in config.selectors]
    if config.ceiling:
        plan += [(CEILING, 1.0, seed) for seed in config.seeds]
    done = pd.read_csv(out_csv) if out_csv and Path(out_csv).exists() else pd.DataFrame()
    lacking = [k for k in KEY if not done.empty and k not in done.columns]
    if lacking:
        raise ValueError(f"{out_csv} lacks the column(s) {lacking} that identify a run (written by an older "
                         "version?); move it aside or pass another out_csv, and the runs are computed afresh")
    have = set() if done.empty else {tuple(r) for r in done[list(KEY)].astype(str).itertuples(index=False)}
    rows = []
    for selector, budget, seed in tqdm(plan, desc="runs", disable=not progress):
        key = (inputs.dataset, inputs.backbone, inputs.weights, inputs.pooling, config.protocol, selector,
               str(float(budget)), str(seed))
        if key in have:
            continue
        row = run_one(inputs, selector, budget, seed, config)
        rows.append(row)
        if out_csv:
            _append(Path(out_csv), row)
    new = pd.DataFrame(rows)
    return pd.concat([done, new], ignore_index=True) if not done.empty else new


def _append(path: Path, row: dict) -> None:
    """Append one row to a CSV (header on creation), rewriting atomically."""
    frame = pd.read_csv(path) if path.exists() else pd.DataFrame()
    frame = pd.concat([frame, pd.DataFrame([row])], ignore_index=True)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def summarise(results: pd.DataFrame, metric: str = "srcc", baseline: str = "random") -> pd.DataFrame:
    """Per selector and budget: mean, standard error, 95% interval, the paired difference to `baseline`
    (same seeds) with its standard error, and the share of the full-pool ceiling reached.
    `beats_random` needs a mean paired difference above two standard errors over at least
    defaults.MIN_PAIRED_SEEDS seeds."""
    runs = results[results.selector != CEILING]
    ceiling = results[results.selector == CEILING].groupby("seed")[metric].mean()
    base = runs[runs.selector == baseline].set_index(["budget", "seed"])[metric]
    rows = []
    for (sel, budget), grp in runs.groupby(["selector", "budget"]):
        vals = grp.set_index("seed")[metric]
        n = len(vals)
        se = vals.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
        paired = base.xs(budget, level="budget") if budget in base.index.get_level_values(0) else pd.Series(dtype=float)
        diff = (vals - paired.reindex(vals.index)).dropna()
        d_se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.nan
        share = (vals / ceiling.reindex(vals.index)).mean() if not ceiling.empty else np.nan
        rows.append(dict(selector=sel, budget=budget, n=n, mean=vals.mean(), se=se, ci95=1.96 * se,
                         vs_random=diff.mean() if len(diff) else np.nan, vs_random_se=d_se, n_paired=len(diff),
                         beats_random=bool(len(diff) >= defaults.MIN_PAIRED_SEEDS and diff.mean() > 2 * d_se),
                         share_of_ceiling=share))
    return pd.DataFrame(rows)


def budget_to_reach(summary: pd.DataFrame, share: float = 0.95) -> pd.Series:
    """Smallest tested budget at which each selector's mean reaches `share` of the ceiling (NaN if none)."""
    hit = summary[summary.share_of_ceiling >= share]
    return hit.groupby("selector").budget.min().reindex(summary.selector.unique())


def cross_dataset(train: Inputs, test_features: np.ndarray, test_mos01: np.ndarray, test_dataset: str,
                  selector: str = CEILING, budget_share: float = 1.0, seed: int = 0,
                  config: ExperimentConfig | None = None) -> dict:
    """Train on one prepared dataset (its pool, or a selection from it) and score on all of another."""
    config = config or ExperimentConfig()
    if test_features.shape[1] != train.features.shape[1]:
        raise ValueError(f"feature sizes differ ({train.features.shape[1]} vs {test_features.shape[1]}): "
                         "extract both with the same backbone and pooling")
    pool, _ = _split(train, config, seed)
    picked = _select(train, selector, pool, defaults.budget_size(budget_share, len(pool)), seed, config.train)
    tr, va = split_budget(picked, seed=seed)
    result = training.train_heads(train.features, train.mos01, tr, va, config.train, progress=False)
    pred = training.predict(result.model, test_features)
    return dict(train_dataset=train.dataset, test_dataset=test_dataset, selector=selector, seed=seed,
                n_labelled=len(picked), **metrics.evaluate(pred, test_mos01, fit=config.fit))


def distance_source(store: str | os.PathLike, config: DistillConfig | None = None) -> Callable[[np.ndarray, int], np.ndarray]:
    """Content distances for any (pool, seed), distilled on demand and cached beside the store."""
    config = config or DistillConfig()
    return lambda pool, seed: cached_distances(store, pool, config, seed=seed, progress=False)

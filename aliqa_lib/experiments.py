"""Label-efficiency experiments: selectors x budgets x seeds on cached features, one tidy row per run.

Honest protocol (default, METHOD.md section 7): the test split is fixed per seed before any
selection (whole source photos / references held out), selection sees only the pool, validation
is drawn inside the budget. protocol="authors" reproduces the paper's code for comparison: the
selection comes from all images, the test set is its complement, and the checkpoint is chosen on
that test set.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import metrics, selection, splits, training, votes as vote_sources
from .store import read_labels

KEY = ("dataset", "backbone", "pooling", "protocol", "selector", "budget", "seed")
CEILING = "full_pool"


@dataclass
class ExperimentConfig:
    """What to run. Budgets are shares of the pool; CEILING ("full_pool") trains on the whole pool."""

    selectors: Sequence[str] = ("random", "kcenter", "typiclust", "al_iqa")
    budgets: Sequence[float] = (0.05, 0.10, 0.25)
    seeds: Sequence[int] = tuple(range(10))
    test_fraction: float = 0.25
    protocol: str = "honest"            # or "authors"
    fit: str | None = "logistic4"
    train: training.TrainConfig = field(default_factory=lambda: training.TrainConfig(epochs=200))
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
    backbone: str = "efficientnet_lite0"
    pooling: str = "stages"


def load_inputs(store: str | os.PathLike, features: np.ndarray, committee: bool = True,
                distances: Callable[[np.ndarray, int], np.ndarray] | None = None, backbone: str = "efficientnet_lite0",
                pooling: str = "stages") -> Inputs:
    """Gather what the selectors and the training need from a store and its cached features."""
    labels = read_labels(store)
    if len(features) != len(labels):
        raise ValueError(f"features have {len(features)} rows but {store} holds {len(labels)} images")
    return Inputs(dataset=str(labels.attrs["dataset"]), mos01=labels.mos01, groups=labels.groups, features=features,
                  votes=vote_sources.offline_committee_votes(store, progress=False) if committee else None,
                  distances=distances, backbone=backbone, pooling=pooling)


def _split(inputs: Inputs, config: ExperimentConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(inputs.mos01)
    if config.protocol == "authors":
        return np.arange(n), np.empty(0, np.int64)
    if config.protocol != "honest":
        raise ValueError(f"unknown protocol {config.protocol!r}; choose 'honest' or 'authors'")
    return splits.holdout_split(n, config.test_fraction, seed, groups=inputs.groups)


def _select(inputs: Inputs, name: str, pool: np.ndarray, budget: int, seed: int, train_cfg: training.TrainConfig) -> np.ndarray:
    """Positions chosen by a selector from the pool (the full three-round loop for "al_iqa")."""
    if name == CEILING:
        return pool
    dist = inputs.distances(pool, seed) if inputs.distances and name in ("content", "al_iqa") else None
    if name != "al_iqa":
        extra = dict(votes=None if inputs.votes is None else inputs.votes[:, pool],
                     distances=None if dist is None else dist[:, :, pool])
        return pool[selection.select(name, inputs.features[pool], budget, seed, **extra)]
    cfg = selection.ALIQAConfig()
    if min(cfg.round_sizes(budget)) < 5:          # too few labels to train between rounds: one fused round
        return selection.al_iqa_round(inputs.votes, dist, pool, budget, cfg.weights[-1], 0.0)

    def votes_for_round(r: int, chosen: np.ndarray) -> np.ndarray:
        if r == 0:
            return inputs.votes
        tr, va = training.split_budget(chosen, 0.2, seed)
        res = training.train_heads(inputs.features, inputs.mos01, tr, va, train_cfg, progress=False)
        return vote_sources.head_votes(training.head_outputs(res.model, inputs.features))
    return np.concatenate(selection.al_iqa(votes_for_round, dist, pool, budget, cfg))


def run_one(inputs: Inputs, selector: str, budget_share: float, seed: int, config: ExperimentConfig) -> dict:
    """One run: split, select, train with validation inside the budget, score once on the test split."""
    t0 = time.perf_counter()
    pool, test = _split(inputs, config, seed)
    budget = len(pool) if selector == CEILING else max(5, int(round(budget_share * len(pool))))
    picked = _select(inputs, selector, pool, budget, seed, config.train)
    t_select = time.perf_counter() - t0
    cfg = training.TrainConfig(**{**asdict(config.train), "seed": seed})
    if config.protocol == "authors":
        test = np.setdiff1d(pool, picked)
        train_idx, val_idx = picked, test            # their checkpoint choice reads the test labels
    else:
        train_idx, val_idx = training.split_budget(picked, 0.2, seed)
    result = training.train_heads(inputs.features, inputs.mos01, train_idx, val_idx, cfg, progress=False)
    pred = training.predict(result.model, inputs.features[test], cfg.predict)
    scores = metrics.evaluate(pred, inputs.mos01[test], fit=config.fit)
    return dict(dataset=inputs.dataset, backbone=inputs.backbone, pooling=inputs.pooling, protocol=config.protocol,
                selector=selector, budget=float(1.0 if selector == CEILING else budget_share), seed=seed,
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
    have = set() if done.empty else {tuple(r) for r in done[list(KEY)].astype(str).itertuples(index=False)}
    rows = []
    for selector, budget, seed in tqdm(plan, desc="runs", disable=not progress):
        key = (inputs.dataset, inputs.backbone, inputs.pooling, config.protocol, selector, str(float(budget)), str(seed))
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
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def summarise(results: pd.DataFrame, metric: str = "srcc", baseline: str = "random") -> pd.DataFrame:
    """Per selector and budget: mean, standard error, 95% interval, the paired difference to `baseline`
    (same seeds) with its standard error, and the share of the full-pool ceiling reached."""
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
                         vs_random=diff.mean() if len(diff) else np.nan, vs_random_se=d_se,
                         beats_random=bool(len(diff) > 1 and diff.mean() > 2 * d_se), share_of_ceiling=share))
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
    budget = len(pool) if selector == CEILING else max(5, int(round(budget_share * len(pool))))
    picked = _select(train, selector, pool, budget, seed, config.train)
    tr, va = training.split_budget(picked, 0.2, seed)
    result = training.train_heads(train.features, train.mos01, tr, va, config.train, progress=False)
    pred = training.predict(result.model, test_features)
    return dict(train_dataset=train.dataset, test_dataset=test_dataset, selector=selector, seed=seed,
                n_labelled=len(picked), **metrics.evaluate(pred, test_mos01, fit=config.fit))


def distance_source(store: str | os.PathLike, config=None) -> Callable[[np.ndarray, int], np.ndarray]:
    """Content distances for any (pool, seed), distilled on demand and cached beside the store."""
    from .distill import DistillConfig, cached_distances

    config = config or DistillConfig()
    return lambda pool, seed: cached_distances(store, pool, config, seed=seed, progress=False)


def smoke_distill_config():
    """The small distillation used by every notebook in SMOKE mode."""
    from .distill import DistillConfig

    return DistillConfig(n_images=12, iterations=40, repeats=3)

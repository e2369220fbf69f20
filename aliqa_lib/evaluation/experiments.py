"""Label-efficiency experiments: selectors x budgets x seeds on cached features, one tidy row per run.

Honest protocol (default, docs/method.md, "Where we deviate"): the test split is fixed per seed before any
selection (whole source photos / references held out), selection sees only the pool, validation
is drawn inside the budget. protocol="authors" reproduces the paper's code for comparison: the
selection comes from all images, the test set is its complement, and the checkpoint is chosen on
that test set.
"""
from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .. import defaults
from ..cache import atomic_path
from ..data.splits import holdout_split, split_budget
from ..data.store import read_labels
from ..data.torch_dataset import StoreDataset
from ..models import training
from ..models.clip import ClipBundle, clip_features, clip_zero_shot_votes
from ..models.finetune import finetune_clip
from ..models.heads import combine
from ..selection import SELECTORS, make_selector
from ..selection.distill import DistillConfig, cached_distances
from ..selection.fusion import PAPER_SCHEDULE
from ..selection.strategies import Selection, VoteSource
from ..selection.votes import head_votes, offline_committee_votes
from . import metrics
from .paired import holm, paired_tests, verdicts

KEY = ("dataset", "backbone", "weights", "pooling", "protocol", "validation", "schedule", "selector", "budget",
       "seed")
CEILING = "full_pool"   # the selector that takes the whole pool: the ceiling every curve is compared with
SCHEDULES = ("independent", "nested")
N_CTX = (4, 8, 8)       # CLIP: context vectors of the prompt learners trained after rounds 1, 2, 3 (the authors')


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
    # "independent": every budget a run of its own; "nested": one run per selector and seed whose picks
    # after rounds 1, 2, 3 are the budgets (the authors' 5%, 15%, 25%: the models after each round)
    schedule: str = "independent"
    finetune: training.TrainConfig | None = None   # CLIP inputs: fine-tune the final model (TrainConfig.authors_finetune())

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose from {SCHEDULES}")


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
    clip: ClipBundle | None = None   # CLIP inputs: features = its image embeddings, models = its prompt learners
    store: str | None = None         # the store file (fine-tuning reads its images)


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


def load_clip_inputs(store: str | os.PathLike, bundle: ClipBundle,
                     distances: Callable[[np.ndarray, int], np.ndarray] | None = None, device: str = "cpu") -> Inputs:
    """The authors' loop on a store: CLIP image embeddings as features (cached beside the store), CLIP
    zero-shot votes for round 1, and prompt learners as the models of rounds 2, 3 and the final one."""
    labels = read_labels(store)
    crop = min(224, int(labels.attrs["size"]))          # the centre crop, as for every other feature
    features = clip_features(store, bundle, device=device, crop=crop, progress=False)
    votes = clip_zero_shot_votes(bundle.model, bundle.tokenizer, features)
    return Inputs(dataset=str(labels.attrs["dataset"]), mos01=labels.mos01, groups=labels.groups, features=features,
                  votes=votes, distances=distances, backbone=f"clip:{bundle.name}", weights=bundle.weights_id,
                  pooling="clip", clip=bundle, store=str(store))


def _split(inputs: Inputs, config: ExperimentConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(pool, test) of a run; experiments play the oracle with the store's scores, so all must be known."""
    n = len(inputs.mos01)
    known = int(np.isfinite(inputs.mos01).sum())
    if known < n:
        raise ValueError(f"experiments simulate the raters with the store's own scores, but only {known} of the {n} "
                         f"images of {inputs.dataset} have one; for a collection with unknown scores, collect ratings "
                         "with evaluation.collection.next_batch and score it with score_collection")
    if config.protocol == "authors":
        return np.arange(n), np.empty(0, np.int64)
    if config.protocol != "honest":
        raise ValueError(f"unknown protocol {config.protocol!r}; choose 'honest' or 'authors'")
    return holdout_split(n, config.test_fraction, seed, groups=inputs.groups)


def train_model(features: np.ndarray, mos01: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray,
                config: training.TrainConfig, clip: ClipBundle | None = None, n_ctx: int = N_CTX[-1]) -> training.TrainResult:
    """The model of a round: antonym heads on the features (offline), or the three CLIP prompt learners
    with n_ctx context vectors on CLIP embeddings (clip given)."""
    if clip is None:
        return training.train_heads(features, mos01, train_idx, val_idx, config, progress=False)
    return training.train_prompts(clip, features, mos01, train_idx, val_idx, config, n_ctx=n_ctx, progress=False)


def head_vote_source(features: np.ndarray, mos01: np.ndarray, config: training.TrainConfig, seed: int,
                     groups: np.ndarray | None = None, clip: ClipBundle | None = None,
                     models: dict[int, training.TrainResult] | None = None) -> VoteSource:
    """Votes for AL-IQA's later rounds: the three heads of a model trained on everything labelled so
    far (validation inside it, whole `groups` where given), asked about every row of `features`.
    Offline: antonym heads; with a CLIP bundle: the prompt learners (N_CTX: 4 context vectors after
    round 1, 8 after round 2). `models`, when given, collects each trained model by round."""
    def votes(round_: int, labelled: np.ndarray) -> np.ndarray:
        tr, va = split_budget(labelled, seed=seed, groups=groups)
        result = train_model(features, mos01, tr, va, config, clip, N_CTX[min(round_, len(N_CTX)) - 1])
        if models is not None:
            models[round_] = result
        return head_votes(training.head_outputs(result.model, features))
    return votes


def _select(inputs: Inputs, name: str, pool: np.ndarray, budget: int, seed: int, train_cfg: training.TrainConfig,
            models: dict[int, training.TrainResult] | None = None, labelled: np.ndarray | None = None,
            **options: Any) -> Selection:
    """What the selector called `name`, built with what it needs, chooses from the pool beside the
    `labelled` rows (positions and rounds as rows of the store); `options` go to the selector (e.g.
    schedule for al_iqa)."""
    needs = SELECTORS[name].needs if name in SELECTORS else ()
    if "distances" in needs and inputs.distances is None:
        raise ValueError(f"selector {name!r} needs content distances: load_inputs(..., distances=distance_source(store))")
    selector = make_selector(
        name, votes=None if inputs.votes is None else inputs.votes[:, pool],
        distances=inputs.distances(pool, seed)[:, :, pool] if "distances" in needs else None,
        vote_source=head_vote_source(inputs.features[pool], inputs.mos01[pool], train_cfg, seed,
                                     None if inputs.groups is None else inputs.groups[pool], inputs.clip, models),
        **options)
    known = None if labelled is None else np.searchsorted(pool, labelled)      # pool is sorted
    out = selector.select(inputs.features[pool], known, budget=budget, seed=seed)
    return Selection(pool[out.positions], rounds=None if out.rounds is None else [pool[r] for r in out.rounds],
                     note=out.note)


def _final_model(inputs: Inputs, train_idx: np.ndarray, val_idx: np.ndarray, cfg: training.TrainConfig,
                 config: ExperimentConfig, n_ctx: int, result: training.TrainResult | None = None,
                 ) -> tuple[training.TrainResult, Callable[[np.ndarray], np.ndarray]]:
    """Train (or reuse `result`), fine-tune CLIP when asked; return the result and its predictor of rows."""
    result = result or train_model(inputs.features, inputs.mos01, train_idx, val_idx, cfg, inputs.clip, n_ctx)
    if config.finetune is None:
        return result, lambda rows: training.predict(result.model, inputs.features[rows], cfg.predict)
    if inputs.clip is None or inputs.store is None:
        raise ValueError("fine-tuning in experiments needs CLIP inputs (load_clip_inputs); offline, use "
                         "models.finetune.finetune on a backbone")
    ft_cfg = dataclasses.replace(config.finetune, seed=cfg.seed)
    crop = min(224, int(read_labels(inputs.store).attrs["size"]))
    tuned = finetune_clip(inputs.clip, result.model, inputs.store, train_idx, val_idx, ft_cfg, crop=crop,
                          progress=False)

    def predict(rows: np.ndarray) -> np.ndarray:
        data = StoreDataset(inputs.store, rows, crop=crop, mean=inputs.clip.mean, std=inputs.clip.std)
        return combine(training.head_outputs(tuned.model, (x for x, _ in DataLoader(data, batch_size=64))),
                       cfg.predict)
    return tuned, predict


def _train_val_test(inputs: Inputs, config: ExperimentConfig, pool: np.ndarray, picked: np.ndarray,
                    test: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(test, train, validation) for a selection: honest, or the authors' (test = validation = the rest)."""
    if config.protocol == "authors":
        test = np.setdiff1d(pool, picked)
        return test, picked, test                    # their checkpoint choice reads the test labels
    train_idx, val_idx = split_budget(picked, seed=seed, groups=inputs.groups)
    return test, train_idx, val_idx


def _row(inputs: Inputs, config: ExperimentConfig, selector: str, budget: float, seed: int, selection: Selection,
         test: np.ndarray, pred: np.ndarray, result: training.TrainResult, t0: float, t_select: float) -> dict:
    """One tidy result row; `rounds` is how many selection rounds ran, `note` says why when fewer."""
    scores = metrics.evaluate(pred, inputs.mos01[test], fit=config.fit)
    return dict(dataset=inputs.dataset, backbone=inputs.backbone, weights=inputs.weights, pooling=inputs.pooling,
                protocol=config.protocol, validation=validation_rule(inputs, config), schedule=config.schedule,
                selector=selector, budget=float(budget), seed=seed,
                n_labelled=len(selection.positions), n_test=len(test), **scores, best_epoch=result.best_epoch,
                rounds=len(selection.rounds) if selection.rounds else 1, note=selection.note,
                select_seconds=round(t_select, 3), total_seconds=round(time.perf_counter() - t0, 3))


def validation_rule(inputs: Inputs, config: ExperimentConfig) -> str:
    """How a run's validation set is drawn, part of its key: whole groups inside the budget where the
    dataset has groups and the budget allows (`by_group`), images one by one (`by_image`), or the
    authors' test set (`test`)."""
    if config.protocol == "authors":
        return "test"
    return "by_group" if inputs.groups is not None else "by_image"


def run_one(inputs: Inputs, selector: str, budget_share: float, seed: int, config: ExperimentConfig) -> dict:
    """One run: split, select, train with validation inside the budget, score once on the test split."""
    if config.schedule == "nested" and selector != CEILING:
        raise ValueError("with schedule='nested' one run covers every budget: call run_nested (run_experiment does)")
    t0 = time.perf_counter()
    pool, test = _split(inputs, config, seed)
    selection = _select(inputs, selector, pool, defaults.budget_size(budget_share, len(pool)), seed, config.train)
    t_select = time.perf_counter() - t0
    cfg = dataclasses.replace(config.train, seed=seed)
    test, train_idx, val_idx = _train_val_test(inputs, config, pool, selection.positions, test, seed)
    result, predict = _final_model(inputs, train_idx, val_idx, cfg, config, N_CTX[-1])
    return _row(inputs, config, selector, budget_share, seed, selection, test, predict(test), result, t0, t_select)


def nested_sizes(budgets: Sequence[float], pool_size: int, rounds: int) -> list[int]:
    """Images labelled after each round of a nested run: one budget per round, strictly growing, each
    round at least defaults.MIN_BUDGET images; anything else is an error naming the budgets."""
    if len(budgets) != rounds:
        raise ValueError(f"a nested schedule needs one budget per round ({rounds}), got {list(budgets)}")
    sizes = [defaults.budget_size(b, pool_size) for b in budgets]
    steps = np.diff([0, *sizes])
    if (steps < defaults.MIN_BUDGET).any():
        raise ValueError(f"budgets {list(budgets)} of a pool of {pool_size} give rounds of {steps.tolist()} images; "
                         f"every round needs at least {defaults.MIN_BUDGET} (growing budgets, or a larger pool)")
    return sizes


def run_nested(inputs: Inputs, selector: str, seed: int, config: ExperimentConfig) -> list[dict]:
    """The authors' budgets: one selection run per selector and seed, whose picks after round k are
    config.budgets[k]; a row per budget, each scored with the model trained on the picks so far (for
    al_iqa under the honest protocol, the very model whose votes drove the next round)."""
    t0 = time.perf_counter()
    pool, test0 = _split(inputs, config, seed)
    sizes = nested_sizes(config.budgets, len(pool), PAPER_SCHEDULE.rounds)
    steps = np.diff([0, *sizes]).tolist()
    cfg = dataclasses.replace(config.train, seed=seed)
    models: dict[int, training.TrainResult] = {}
    if selector == "al_iqa":
        nested = dataclasses.replace(PAPER_SCHEDULE, split=tuple(steps))
        selection = _select(inputs, selector, pool, sizes[-1], seed, cfg, models, schedule=nested, too_small="error")
    else:                          # one pick per round, each seeing what is labelled so far
        rounds: list[np.ndarray] = []
        for step in steps:
            known = np.concatenate(rounds) if rounds else None
            rounds.append(_select(inputs, selector, pool, step, seed, cfg, labelled=known).positions)
        selection = Selection(np.concatenate(rounds), rounds=rounds)
    t_select = time.perf_counter() - t0
    rows = []
    for k, budget in enumerate(config.budgets):
        picked = np.concatenate(selection.rounds[:k + 1])     # in the order the labels arrived
        test, train_idx, val_idx = _train_val_test(inputs, config, pool, picked, test0, seed)
        reuse = models.get(k + 1) if config.protocol == "honest" else None
        result, predict = _final_model(inputs, train_idx, val_idx, cfg, config, N_CTX[k], reuse)
        rows.append(_row(inputs, config, selector, budget, seed, Selection(picked, rounds=selection.rounds[:k + 1]),
                         test, predict(test), result, t0, t_select))
    return rows


def run_experiment(inputs: Inputs, config: ExperimentConfig, out_csv: str | os.PathLike | None = None,
                   progress: bool = True) -> pd.DataFrame:
    """Every selector x budget x seed (plus the full-pool ceiling per seed); rows already in `out_csv`
    are kept and not recomputed, each new row is appended as soon as it finishes."""
    plan = [(s, b, seed) for seed in config.seeds for b in config.budgets for s in config.selectors]
    if config.ceiling:
        plan += [(CEILING, 1.0, seed) for seed in config.seeds]
    done = pd.read_csv(out_csv) if out_csv and Path(out_csv).exists() else pd.DataFrame()
    if not done.empty and "schedule" not in done.columns:
        done["schedule"] = "independent"     # written before nested runs existed: every run was independent
    lacking = [k for k in KEY if not done.empty and k not in done.columns]
    if lacking:
        raise ValueError(f"{out_csv} lacks the column(s) {lacking} that identify a run (written by an older "
                         "version?); move it aside or pass another out_csv, and the runs are computed afresh")
    have = set() if done.empty else {tuple(r) for r in done[list(KEY)].astype(str).itertuples(index=False)}
    rows = []
    for selector, budget, seed in tqdm(plan, desc="runs", disable=not progress):
        key = (inputs.dataset, inputs.backbone, inputs.weights, inputs.pooling, config.protocol,
               validation_rule(inputs, config), config.schedule, selector, str(float(budget)), str(seed))
        nested = config.schedule == "nested" and selector != CEILING
        if key in have or (nested and budget != config.budgets[0]):
            continue                   # a nested run writes the rows of all its budgets at its first one
        for row in run_nested(inputs, selector, seed, config) if nested else [run_one(inputs, selector, budget, seed, config)]:
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
    """Per selector and budget: mean, standard error and 95% t interval over seeds, the paired
    difference to `baseline` (same seeds) with its standard error and 95% t interval, the paired
    t-test (n - 1 degrees of freedom) and Wilcoxon signed-rank p-values, the t-test's p-value after
    Holm's adjustment across every comparison in this table, and the share of the full-pool ceiling.
    `beats_random` is True when the mean paired difference is positive and the Holm-adjusted p-value
    is below paired.ALPHA, False when not, and "too few seeds" below defaults.MIN_PAIRED_SEEDS pairs
    (evaluation.paired)."""
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
        tests = paired_tests(diff.to_numpy()) if sel != baseline else dict(t=np.nan, p_t=np.nan, ci95_t=np.nan,
                                                                            p_wilcoxon=np.nan)
        share = (vals / ceiling.reindex(vals.index)).mean() if not ceiling.empty else np.nan
        rows.append(dict(selector=sel, budget=budget, n=n, mean=vals.mean(), se=se,
                         ci95=stats.t.ppf(0.975, n - 1) * se if n > 1 else np.nan,
                         vs_random=diff.mean() if len(diff) else np.nan, vs_random_se=d_se,
                         vs_random_ci95=tests["ci95_t"], n_paired=len(diff), t=tests["t"], p_t=tests["p_t"],
                         p_wilcoxon=tests["p_wilcoxon"], share_of_ceiling=share))
    table = pd.DataFrame(rows, columns=["selector", "budget", "n", "mean", "se", "ci95", "vs_random", "vs_random_se",
                                        "vs_random_ci95", "n_paired", "t", "p_t", "p_wilcoxon", "share_of_ceiling"])
    judged = (table.selector != baseline) & (table.n_paired >= defaults.MIN_PAIRED_SEEDS)
    table["p_holm"] = np.nan
    table.loc[judged, "p_holm"] = holm(table.loc[judged, "p_t"].to_numpy())
    table["beats_random"] = pd.Series(verdicts(table.vs_random, table.p_holm, table.n_paired), dtype=object)
    table["comparisons"] = int(judged.sum())   # the family Holm's adjustment covers
    return table


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
    picked = _select(train, selector, pool, defaults.budget_size(budget_share, len(pool)), seed, config.train).positions
    tr, va = split_budget(picked, seed=seed, groups=train.groups)
    result = train_model(train.features, train.mos01, tr, va, config.train, train.clip)   # CLIP: prompt learners
    pred = training.predict(result.model, test_features)
    return dict(train_dataset=train.dataset, test_dataset=test_dataset, selector=selector, seed=seed,
                n_labelled=len(picked), **metrics.evaluate(pred, test_mos01, fit=config.fit))


def distance_source(store: str | os.PathLike, config: DistillConfig | None = None) -> Callable[[np.ndarray, int], np.ndarray]:
    """Content distances for any (pool, seed), distilled on demand and cached beside the store."""
    config = config or DistillConfig()
    return lambda pool, seed: cached_distances(store, pool, config, seed=seed, progress=False)

"""Honest splits, label-efficiency runs (resumable), summaries, cross-dataset scoring."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from helpers import linear_features

from aliqa_lib import defaults
from aliqa_lib.data import splits
from aliqa_lib.data.store import read_labels
from aliqa_lib.evaluation import experiments
from aliqa_lib.models import training


def test_holdout_split_keeps_groups_together():
    groups = np.repeat(np.arange(20), 5)
    pool, test = splits.holdout_split(100, 0.25, seed=0, groups=groups)
    assert len(np.intersect1d(pool, test)) == 0 and len(pool) + len(test) == 100
    assert not set(groups[pool]) & set(groups[test]) and len(set(groups[test])) == 5
    again, _ = splits.holdout_split(100, 0.25, seed=0, groups=groups)
    other, _ = splits.holdout_split(100, 0.25, seed=1, groups=groups)
    np.testing.assert_array_equal(pool, again)
    assert not np.array_equal(pool, other)
    with pytest.raises(ValueError, match="test_fraction"):
        splits.holdout_split(100, 1.5)


def test_split_budget_holds_out_whole_groups_where_it_can():
    groups = np.repeat(np.arange(10), 4)                      # 10 photos of 4 images each
    budget = np.arange(0, 40, 2)                              # 2 images of every photo: 20 labelled
    train, val = splits.split_budget(budget, 0.2, seed=0, groups=groups)
    assert not set(groups[train]) & set(groups[val])          # no photo on both sides
    assert len(val) == 4 and len(set(groups[val])) == 2       # 20% = 4 images = 2 whole photos
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), budget)
    again = splits.split_budget(budget, 0.2, seed=0, groups=groups)
    np.testing.assert_array_equal(val, again[1])
    # a photo too large to hold out (it would take more than 2 x 4 images) is passed over
    big = np.where(np.arange(40) < 20, 0, groups)             # photo 0 now holds 10 of the 20 labelled
    train, val = splits.split_budget(budget, 0.2, seed=0, groups=big)
    assert 0 not in big[val] and not set(big[train]) & set(big[val]) and 4 <= len(val) <= 8
    # one photo only: whole groups cannot split it, so images are drawn one by one as without groups
    one = splits.split_budget(budget, 0.2, seed=0, groups=np.zeros(40, int))
    plain = splits.split_budget(budget, 0.2, seed=0)
    assert len(one[1]) == len(plain[1]) == 4 and len(np.intersect1d(*one)) == 0


def test_store_groups_split_by_source_photo(smoke_store):
    labels = read_labels(smoke_store)
    pool, test = splits.holdout_split(labels, 0.25, seed=0)
    assert not set(labels.source[pool]) & set(labels.source[test])


@pytest.fixture
def inputs():
    x, y = linear_features(300, noise=0.3)
    rng = np.random.default_rng(0)
    return experiments.Inputs(dataset="lin", mos01=y, groups=np.arange(300) // 3, features=x,
                              votes=rng.random((6, 300, 3)), distances=lambda pool, seed: rng.random((3, 4, 300)))


FAST = experiments.ExperimentConfig(selectors=("random", "kcenter"), budgets=(0.2,), seeds=(0, 1),
                                    train=training.TrainConfig(epochs=15))


def test_honest_run_never_trains_or_selects_on_test(inputs, monkeypatch):
    seen = {}
    real = training.train_heads

    def spy(features, targets, train_idx, val_idx, *a, **k):
        seen["train"], seen["val"] = train_idx, val_idx
        return real(features, targets, train_idx, val_idx, *a, **k)

    monkeypatch.setattr(training, "train_heads", spy)
    row = experiments.run_one(inputs, "random", 0.2, 0, FAST)
    pool, test = splits.holdout_split(300, 0.25, 0, groups=inputs.groups)
    used = np.concatenate([seen["train"], seen["val"]])
    assert np.isin(used, pool).all() and not np.isin(used, test).any()
    assert not set(inputs.groups[seen["train"]]) & set(inputs.groups[seen["val"]])   # validation by whole photos
    assert row["validation"] == "by_group"
    assert row["n_test"] == len(test) and row["n_labelled"] == len(used) == round(0.2 * len(pool))
    assert row["fit"] == "logistic4" and -1 <= row["srcc"] <= 1


def test_authors_protocol_tests_on_the_complement(inputs):
    cfg = experiments.ExperimentConfig(protocol="authors", train=training.TrainConfig(epochs=5))
    row = experiments.run_one(inputs, "random", 0.2, 0, cfg)
    assert row["n_labelled"] + row["n_test"] == 300
    with pytest.raises(ValueError, match="unknown protocol"):
        experiments.run_one(inputs, "random", 0.2, 0, experiments.ExperimentConfig(protocol="mine"))


def test_experiment_is_resumable(inputs, tmp_path, monkeypatch):
    csv = tmp_path / "r.csv"
    first = experiments.run_experiment(inputs, FAST, csv, progress=False)
    assert len(first) == 2 * 2 + 2                                     # selectors x seeds + ceilings
    assert set(first.columns) >= {"dataset", "backbone", "selector", "budget", "seed", "srcc", "plcc", "fit",
                                  "total_seconds"}
    real_run_one = experiments.run_one
    monkeypatch.setattr(experiments, "run_one", lambda *a, **k: pytest.fail("a finished run was recomputed"))
    again = experiments.run_experiment(inputs, FAST, csv, progress=False)
    pd.testing.assert_frame_equal(again.reset_index(drop=True), pd.read_csv(csv))
    # other backbone weights are other runs, not finished ones
    monkeypatch.setattr(experiments, "run_one", real_run_one)
    other = experiments.run_experiment(dataclasses.replace(inputs, weights="file:w.pth:abc"), FAST, csv, progress=False)
    assert len(other) == 2 * len(first) and set(other.weights) == {"bundled", "file:w.pth:abc"}
    pd.read_csv(csv).drop(columns="weights").to_csv(csv, index=False)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['weights'\]"):
        experiments.run_experiment(inputs, FAST, csv, progress=False)


def test_al_iqa_and_ablations_run_in_experiments(inputs):
    for name in ("al_iqa", "uncertainty", "content"):
        row = experiments.run_one(inputs, name, 0.3, 0, FAST)
        assert row["selector"] == name and row["n_labelled"] == round(0.3 * 225)


def test_summary_hand_computed():
    rows = []
    for seed, (r, a, c) in enumerate([(0.5, 0.6, 0.8), (0.7, 0.9, 1.0)]):
        rows += [dict(selector="random", budget=0.1, seed=seed, srcc=r), dict(selector="x", budget=0.1, seed=seed, srcc=a),
                 dict(selector="full_pool", budget=1.0, seed=seed, srcc=c)]
    s = experiments.summarise(pd.DataFrame(rows)).set_index("selector")
    assert s.loc["x", "mean"] == pytest.approx(0.75)
    assert s.loc["x", "se"] == pytest.approx(np.std([0.6, 0.9], ddof=1) / np.sqrt(2))
    assert s.loc["x", "vs_random"] == pytest.approx(0.15)                # paired: (0.1 + 0.2) / 2
    assert s.loc["x", "vs_random_se"] == pytest.approx(np.std([0.1, 0.2], ddof=1) / np.sqrt(2))
    assert s.loc["x", "share_of_ceiling"] == pytest.approx((0.6 / 0.8 + 0.9 / 1.0) / 2)
    assert s.loc["x", "beats_random"] == "too few seeds"                 # 0.15 > 2 * 0.05, but 2 seeds only
    reach = experiments.budget_to_reach(s.reset_index(), 0.8)
    assert reach["x"] == 0.1 and np.isnan(reach["random"])
    rows = [dict(selector=name, budget=0.1, seed=seed, srcc=0.5 + 0.01 * seed + (0.1 + 0.01 * (seed % 2)) * (name == "x"))
            for seed in range(defaults.MIN_PAIRED_SEEDS) for name in ("random", "x")]
    s = experiments.summarise(pd.DataFrame(rows)).set_index("selector")
    assert s.loc["x", "n_paired"] == defaults.MIN_PAIRED_SEEDS and s.loc["x", "beats_random"] is True


def test_cross_dataset(inputs):
    x2, y2 = linear_features(100, seed=5)
    row = experiments.cross_dataset(inputs, x2, y2, "other", config=FAST)
    assert row["test_dataset"] == "other" and row["srcc"] > 0.5
    with pytest.raises(ValueError, match="feature sizes differ"):
        experiments.cross_dataset(inputs, x2[:, :3], y2, "other", config=FAST)

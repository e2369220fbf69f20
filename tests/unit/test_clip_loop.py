"""The authors' three-round loop on a tiny random CLIP (zero-shot votes, then prompt learners with 4
and 8 context vectors), and nested budgets (the 5/15/25% results are the models after rounds 1/2/3)."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import clip_with_layers, linear_features, tiny_store

from aliqa_lib.data import splits
from aliqa_lib.evaluation import experiments
from aliqa_lib.models import clip, training
from aliqa_lib.selection import fusion

FAST = training.TrainConfig(epochs=4, lr=1e-2)


@pytest.fixture(scope="module")
def clip_inputs(tmp_path_factory):
    store = tmp_path_factory.mktemp("clip") / "s.h5"
    tiny_store(store, n=80, size=24)
    rng = np.random.default_rng(0)
    distances = rng.random((3, 6, 80))
    return experiments.load_clip_inputs(store, clip_with_layers(layers=4), distances=lambda pool, seed: distances)


def test_clip_inputs_are_embeddings_and_zero_shot_votes(clip_inputs):
    bundle = clip_inputs.clip
    assert clip_inputs.features.shape == (80, 16) and clip_inputs.backbone == "clip:tiny4"
    np.testing.assert_allclose(clip_inputs.votes, clip.clip_zero_shot_votes(bundle.model, bundle.tokenizer,
                                                                            clip_inputs.features), rtol=1e-6)
    assert clip_inputs.votes.shape == (6, 80, 3)


def test_three_rounds_with_clip_votes(clip_inputs, monkeypatch):
    calls = []
    real = training.train_prompts

    def spy(bundle, features, targets, train_idx, val_idx, config=None, n_ctx=8, **kw):
        calls.append((n_ctx, len(train_idx) + len(val_idx)))
        return real(bundle, features, targets, train_idx, val_idx, config, n_ctx=n_ctx, **kw)

    monkeypatch.setattr(training, "train_prompts", spy)
    pool, _ = splits.holdout_split(80, 0.25, 0, groups=clip_inputs.groups)
    models = {}
    sel = experiments._select(clip_inputs, "al_iqa", pool, 30, 0, FAST, models)
    assert [len(r) for r in sel.rounds] == [6, 12, 12] and sel.note == ""
    assert calls == [(4, 6), (8, 18)]                       # n_ctx 4 after round 1, 8 after round 2
    assert [m.model.learners[0].ctx.shape[0] for m in (models[1], models[2])] == [4, 8]
    # round 1 is the zero-shot round; rounds 2 and 3 fuse the votes of those prompt learners
    local = np.searchsorted(pool, np.concatenate(sel.rounds))
    d = clip_inputs.distances(pool, 0)[:, :, pool]
    first = fusion.fusion_round(clip_inputs.votes[:, pool], d, np.arange(len(pool)), 6, 0.01, 0.66)
    np.testing.assert_array_equal(local[:6], first.selected)
    v2 = training.head_outputs(models[1].model, clip_inputs.features[pool])[None]
    second = fusion.fusion_round(v2, d, np.setdiff1d(np.arange(len(pool)), local[:6]), 12, 0.01, 0.33)
    np.testing.assert_array_equal(local[6:18], second.selected)
    v3 = training.head_outputs(models[2].model, clip_inputs.features[pool])[None]
    assert not np.allclose(v2, v3)                          # the votes change between rounds
    assert not np.allclose(v2, clip_inputs.votes[:, pool].mean(0, keepdims=True))


def test_run_one_trains_the_final_prompt_learners_with_8_contexts(clip_inputs, monkeypatch):
    calls = []
    real = training.train_prompts
    monkeypatch.setattr(training, "train_prompts", lambda *a, n_ctx=8, **k: calls.append(n_ctx) or real(*a, n_ctx=n_ctx, **k))
    row = experiments.run_one(clip_inputs, "al_iqa", 0.5, 0, experiments.ExperimentConfig(train=FAST))
    assert calls == [4, 8, 8] and row["rounds"] == 3 and row["backbone"] == "clip:tiny4"
    assert np.isfinite(row["srcc"])


def test_clip_fine_tuning_in_experiments(clip_inputs):
    cfg = experiments.ExperimentConfig(train=FAST, finetune=training.TrainConfig.authors_finetune(
        epochs=1, eval_every=1, batch_size=16))
    row = experiments.run_one(clip_inputs, "random", 0.5, 0, cfg)
    assert np.isfinite(row["srcc"]) and row["n_labelled"] == 30
    with pytest.raises(ValueError, match="needs CLIP inputs"):
        x, y = linear_features(100)
        offline = experiments.Inputs(dataset="lin", mos01=y, groups=None, features=x)
        experiments.run_one(offline, "random", 0.3, 0, cfg)


@pytest.fixture
def offline():
    x, y = linear_features(300, noise=0.3)
    rng = np.random.default_rng(0)
    d = rng.random((3, 4, 300))
    return experiments.Inputs(dataset="lin", mos01=y, groups=None, features=x, votes=rng.random((6, 300, 3)),
                              distances=lambda pool, seed: d)


def test_nested_budgets_are_the_rounds_of_one_run(offline, monkeypatch):
    picked, trained = [], []
    real_tvt, real_train = experiments._train_val_test, experiments.train_model
    monkeypatch.setattr(experiments, "_train_val_test",
                        lambda i, c, pool, p, t, s: picked.append(p) or real_tvt(i, c, pool, p, t, s))
    monkeypatch.setattr(experiments, "train_model", lambda *a, **k: trained.append(len(a[2])) or real_train(*a, **k))
    cfg = experiments.ExperimentConfig(selectors=("random", "al_iqa"), budgets=(0.1, 0.3, 0.5), seeds=(0,),
                                       schedule="nested", ceiling=False, train=training.TrainConfig(epochs=5))
    table = experiments.run_experiment(offline, cfg, progress=False)
    assert len(table) == 6 and set(table.schedule) == {"nested"}
    for name in ("random", "al_iqa"):
        rows = table[table.selector == name].sort_values("budget")
        assert rows.n_labelled.tolist() == [22, 68, 112]    # round(share x 225): 22 + 46 + 44
    for a, b, c in (picked[:3], picked[3:]):
        np.testing.assert_array_equal(b[:len(a)], a)         # each budget's picks extend the last one's
        np.testing.assert_array_equal(c[:len(b)], b)
    # random trains one model per budget; al_iqa reuses its two vote models and trains only the last
    assert len(trained) == 3 + 3
    assert table[table.selector == "al_iqa"].rounds.tolist() == [1, 2, 3]


def test_nested_budgets_that_cannot_be_rounds_are_errors(offline):
    for budgets, message in [((0.1, 0.3), "one budget per round"), ((0.1, 0.11, 0.3), "every round needs at least 5"),
                             ((0.3, 0.2, 0.5), "every round needs at least 5")]:
        cfg = experiments.ExperimentConfig(selectors=("al_iqa",), budgets=budgets, seeds=(0,), schedule="nested",
                                           ceiling=False, train=training.TrainConfig(epochs=2))
        with pytest.raises(ValueError, match=message):
            experiments.run_experiment(offline, cfg, progress=False)
    with pytest.raises(ValueError, match="unknown schedule"):
        experiments.ExperimentConfig(schedule="stacked")
    with pytest.raises(ValueError, match="call run_nested"):
        experiments.run_one(offline, "random", 0.1, 0, experiments.ExperimentConfig(schedule="nested"))


def test_independent_al_iqa_too_small_is_recorded_and_warned(offline):
    small = experiments.Inputs(**{**offline.__dict__, "features": offline.features[:40], "mos01": offline.mos01[:40],
                                  "votes": offline.votes[:, :40]})
    small.distances = lambda pool, seed: np.random.default_rng(0).random((3, 4, 40))
    with pytest.warns(UserWarning, match="one fused round"):
        row = experiments.run_one(small, "al_iqa", 0.3, 0, experiments.ExperimentConfig(train=training.TrainConfig(epochs=3)))
    assert row["rounds"] == 1 and row["note"].startswith("one fused round")


def test_clip_weights_parameter(tmp_path):
    assert clip.clip_from_parameter("") is None and clip.clip_from_parameter(None) is None
    assert clip.clip_from_parameter("tiny", seed=2).weights_id == "tiny:seed2"
    with pytest.raises(FileNotFoundError, match="not found"):
        clip.clip_from_parameter(tmp_path / "missing.bin")


def test_cross_dataset_with_clip_inputs_trains_prompt_learners(clip_inputs, monkeypatch):
    calls = []
    real = training.train_prompts
    monkeypatch.setattr(training, "train_prompts", lambda *a, n_ctx=8, **k: calls.append(n_ctx) or real(*a, n_ctx=n_ctx, **k))
    row = experiments.cross_dataset(clip_inputs, clip_inputs.features, clip_inputs.mos01, "itself", selector="random",
                                    budget_share=0.5, config=experiments.ExperimentConfig(train=FAST))
    assert calls == [8] and row["n_labelled"] == 30 and np.isfinite(row["srcc"])

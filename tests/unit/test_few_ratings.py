"""Training on a person's few ratings: the fixed-epoch rule, the k-fold epoch choice, the refit on all."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from aliqa_lib.evaluation import collection
from aliqa_lib.evaluation.collection import (
    NotEnoughRatings,
    choose_epochs,
    cv_epoch_curve,
    rating_folds,
    train_on_ratings,
)
from aliqa_lib.models import training
from aliqa_lib.models.training import TrainConfig, head_outputs, train_heads_epochs
from tests.helpers import linear_features

N = 40
TINY = TrainConfig(epochs=6, batch_size=4, lr=3e-3)


@pytest.fixture()
def rated_case():
    """Features, unit-scale scores with 14 of N rated (the rest NaN), and the rated positions."""
    features, truth = linear_features(n=N, dim=6, noise=0.3, seed=3)
    rated = np.sort(np.random.default_rng(4).choice(N, 14, replace=False))
    scores = np.full(N, np.nan)
    scores[rated] = truth[rated]
    return features, scores, rated


def test_folds_partition_the_ratings_and_keep_groups_whole(rated_case):
    _, _, rated = rated_case
    folds = rating_folds(rated, 5, seed=1)
    assert len(folds) == 5 and np.array_equal(np.sort(np.concatenate(folds)), rated)
    groups = np.arange(N) // 3                                   # photos of three images each
    grouped = rating_folds(rated, 4, seed=1, groups=groups)
    assert np.array_equal(np.sort(np.concatenate(grouped)), rated)
    owners = [set(groups[f]) for f in grouped]
    assert all(not (a & b) for i, a in enumerate(owners) for b in owners[i + 1:])
    assert [f.tolist() for f in rating_folds(rated, 5, seed=1)] == [f.tolist() for f in folds]   # seeded
    with pytest.raises(ValueError, match="at least 2 folds"):
        rating_folds(rated, 1, seed=0)


def test_kfold_curve_and_choice_match_a_direct_computation(rated_case):
    features, scores, rated = rated_case
    curve = cv_epoch_curve(features, scores, rated, TINY, folds=4, seed=2)
    folds = rating_folds(rated, 4, seed=2)
    direct = []
    for epochs in range(1, TINY.epochs + 1):                      # train afresh for each number of epochs
        pooled = np.full(N, np.nan)
        for val in folds:
            model = train_heads_epochs(features, scores, np.setdiff1d(rated, val), epochs, TINY, progress=False).model
            pooled[val] = head_outputs(model, features[val]).mean(axis=1)
        direct.append(spearmanr(pooled[rated], scores[rated])[0])
    np.testing.assert_allclose(curve, direct, atol=1e-6)
    assert choose_epochs(curve) == int(np.argmax(direct)) + 1


def test_choose_epochs_takes_the_fewest_among_ties_and_all_when_undefined():
    assert choose_epochs(np.array([0.1, 0.5, 0.2, 0.5])) == 2
    assert choose_epochs(np.array([np.nan, 0.3, np.nan])) == 2
    assert choose_epochs(np.full(7, np.nan)) == 7


@pytest.mark.parametrize("rule", ["fixed", "kfold"])
def test_refit_uses_every_rating(rated_case, rule, monkeypatch):
    features, scores, rated = rated_case
    calls = []
    real = training.train_heads_epochs

    def spy(features, targets, train_idx, epochs, *args, **kwargs):
        calls.append((np.asarray(train_idx).copy(), epochs))
        return real(features, targets, train_idx, epochs, *args, **kwargs)

    monkeypatch.setattr(collection.training, "train_heads_epochs", spy)
    result = train_on_ratings(features, scores, seed=0, config=TINY, rule=rule, folds=3)
    last_idx, last_epochs = calls[-1]
    assert np.array_equal(np.sort(last_idx), rated)
    assert last_epochs == (TINY.epochs if rule == "fixed" else result.best_epoch + 1)
    np.testing.assert_allclose(result.model.mean.numpy(), features[rated].mean(0), rtol=1e-5, atol=1e-5)
    assert len(calls) == (1 if rule == "fixed" else 4)           # kfold: three folds, then the refit


def test_kfold_result_reports_the_chosen_epochs(rated_case):
    features, scores, rated = rated_case
    result = train_on_ratings(features, scores, seed=0, config=TINY, rule="kfold", folds=3)
    curve = cv_epoch_curve(features, scores, rated, TINY, folds=3, seed=0)
    assert result.best_epoch == choose_epochs(curve) - 1
    np.testing.assert_allclose([h["val_srcc"] for h in result.history], curve)


@pytest.mark.parametrize("rule", ["fixed", "kfold", "holdout"])
def test_training_on_ratings_is_deterministic(rated_case, rule):
    features, scores, _ = rated_case
    a = train_on_ratings(features, scores, seed=5, config=TINY, rule=rule, folds=3).model
    b = train_on_ratings(features, scores, seed=5, config=TINY, rule=rule, folds=3).model
    with torch.no_grad():
        np.testing.assert_array_equal(head_outputs(a, features), head_outputs(b, features))


@pytest.mark.parametrize("rule", ["fixed", "kfold", "holdout"])
def test_too_few_ratings_is_a_clear_error_for_every_rule(rated_case, rule):
    features, _, rated = rated_case
    scores = np.full(N, np.nan)
    scores[rated[:3]] = 0.5
    with pytest.raises(NotEnoughRatings, match=rf"at least 5 rated images .*3 of {N} have a rating.*Rate 2 more"):
        train_on_ratings(features, scores, config=TINY, rule=rule)


def test_unknown_rule_names_the_choices(rated_case):
    features, scores, _ = rated_case
    with pytest.raises(ValueError, match="unknown epoch rule 'best'; choose from fixed, kfold, holdout"):
        train_on_ratings(features, scores, rule="best")


def test_five_ratings_train_under_every_rule(rated_case):
    features, _, rated = rated_case
    scores = np.full(N, np.nan)
    scores[rated[:5]] = np.linspace(0.1, 0.9, 5)
    for rule in ("fixed", "kfold", "holdout"):
        result = train_on_ratings(features, scores, config=TINY, rule=rule)
        assert np.isfinite(head_outputs(result.model, features)).all()

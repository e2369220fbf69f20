"""Active learning on a collection with unknown scores: next_batch, training on ratings, scoring everything."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from aliqa_lib import plots as al_plots
from aliqa_lib.data.store import StoreWriter, read_labels
from aliqa_lib.evaluation import collection
from aliqa_lib.evaluation.collection import (
    NotEnoughRatings,
    collected_scores,
    contact_sheets,
    next_batch,
    round_index,
    score_collection,
    train_on_ratings,
)
from aliqa_lib.models.training import TrainConfig
from aliqa_lib.rating import RatingsFile, simulated_rater
from tests.helpers import linear_features

N = 60
FAST = TrainConfig(epochs=40)


@pytest.fixture()
def unlabelled(tmp_path):
    """A store of N images with unknown scores (as prepare folder writes), its hidden truth and features."""
    features, truth = linear_features(n=N, dim=8, seed=1)
    rng = np.random.default_rng(0)
    images = (rng.integers(0, 256, (N, 24, 24, 3)) * truth[:, None, None, None]).astype(np.uint8)
    path = tmp_path / "mine.h5"
    with StoreWriter(path, n=N, size=24, dataset="folder", score_range=(1, 5), unknown_scores=True) as w:
        w.write_images(0, images)
        w.set_labels(mos=np.full(N, np.nan), mos01=np.full(N, np.nan), names=[f"d/{i:02d}.jpg" for i in range(N)])
    return path, features, truth


def fake_distances(n: int, seed: int = 0) -> np.ndarray:
    """Content distances (repeats, M, N) standing in for distillation."""
    return np.random.default_rng(seed).uniform(0, 1, (3, 4, n))


def committee(n: int) -> np.ndarray:
    """Zero-shot votes (attributes, N, templates)."""
    return np.random.default_rng(5).uniform(0, 1, (6, n, 3)).astype(np.float32)


def rate(ratings, positions, truth, seed=0, rater="sim"):
    """Simulated ratings of `positions`, written through the ratings file."""
    scores = simulated_rater(truth[positions], noise_sd=0.3, seed=seed)
    ratings.extend([dict(position=int(p), score=int(s), rater=rater, source="simulated") for p, s in zip(positions, scores)])


def test_collected_scores_ratings_over_store_scores(unlabelled):
    path, _, _ = unlabelled
    ratings = RatingsFile(path)
    ratings.append(3, 5, rater="a")
    ratings.append(3, 4, rater="b")
    ratings.append(7, 1, rater="a")
    scores = collected_scores(path, ratings)
    assert scores[3] == pytest.approx((4.5 - 1) / 4) and scores[7] == 0.0
    assert np.isfinite(scores).sum() == 2
    assert np.isfinite(collected_scores(path, ratings, min_count=2)).sum() == 1


def test_round_one_needs_no_scores_and_later_rounds_use_the_ratings(unlabelled):
    path, features, truth = unlabelled
    ratings = RatingsFile(path)
    votes = committee(N)
    first = next_batch(path, ratings, 8, seed=0, features=features, votes=votes, distances=fake_distances(N))
    assert first.round == 0 and first.n_rated == 0 and "zero-shot" in first.votes_from
    assert len(set(first.positions)) == 8
    assert first.names.tolist() == [f"d/{p:02d}.jpg" for p in first.positions]
    rate(ratings, first.positions, truth)
    second = next_batch(path, ratings, 8, seed=0, features=features, votes=votes, distances=fake_distances(N), train=FAST)
    assert second.round == 1 and second.n_rated == 8 and "8 rated" in second.votes_from
    assert not np.isin(second.positions, first.positions).any()
    rate(ratings, second.positions, truth)
    third = next_batch(path, ratings, 8, seed=0, features=features, votes=votes, distances=fake_distances(N), train=FAST)
    assert third.round == 2
    assert not np.isin(third.positions, np.concatenate([first.positions, second.positions])).any()


def test_round_one_matches_one_al_iqa_round_by_hand(unlabelled):
    from aliqa_lib.selection.fusion import PAPER_SCHEDULE, fusion_round

    path, features, _ = unlabelled
    votes, dist = committee(N), fake_distances(N)
    batch = next_batch(path, None, 6, seed=0, features=features, votes=votes, distances=dist)
    expected = fusion_round(votes, dist, np.arange(N), 6, PAPER_SCHEDULE.weights[0], PAPER_SCHEDULE.band_starts[0])
    np.testing.assert_array_equal(np.sort(batch.positions), np.sort(expected.selected))


@pytest.mark.parametrize("selector", ["random", "kcenter", "typiclust", "probcover", "uncertainty", "content"])
def test_every_selector_takes_an_unlabelled_pool(unlabelled, selector):
    path, features, truth = unlabelled
    ratings = RatingsFile(path)
    rate(ratings, np.arange(6), truth)
    batch = next_batch(path, ratings, 5, seed=1, features=features, selector=selector, votes=committee(N),
                       distances=lambda pool, seed: fake_distances(len(pool), seed), train=FAST)
    assert len(batch.positions) == 5 and not np.isin(batch.positions, np.arange(6)).any()


def test_too_few_ratings_says_how_many_exist(unlabelled):
    path, features, truth = unlabelled
    ratings = RatingsFile(path)
    rate(ratings, np.arange(3), truth)
    with pytest.raises(NotEnoughRatings, match=r"at least 5 rated images .* 3 of 60 have a rating.*Rate 2 more"):
        score_collection(path, ratings, features=features)
    with pytest.raises(NotEnoughRatings, match="3 of 60"):
        train_on_ratings(features, collected_scores(path, ratings))


def test_experiments_refuse_unknown_scores(unlabelled):
    from aliqa_lib.evaluation.experiments import ExperimentConfig, load_inputs, run_one

    path, features, _ = unlabelled
    inputs = load_inputs(path, features, committee=False)
    with pytest.raises(ValueError, match="only 0 of the 60 images of folder have one"):
        run_one(inputs, "random", 0.2, 0, ExperimentConfig(train=FAST))


def test_training_on_nan_scores_names_the_count(unlabelled):
    from aliqa_lib.models.training import train_heads

    _, features, truth = unlabelled
    scores = np.full(N, np.nan)
    scores[:10] = truth[:10]
    with pytest.raises(ValueError, match=r"NaN scores for 2 of the 12 training and validation images .* 10 of 60"):
        train_heads(features, scores, np.arange(9), np.arange(9, 12), FAST, progress=False)


def test_score_collection_ranks_every_image_and_writes_csv(unlabelled, tmp_path):
    path, features, truth = unlabelled
    ratings = RatingsFile(path)
    rate(ratings, np.arange(0, N, 2), truth)           # half the collection rated
    table = score_collection(path, ratings, features=features, seed=0, train=TrainConfig(epochs=60),
                             out_csv=tmp_path / "predictions.csv")
    assert len(table) == N and table["score"].is_monotonic_decreasing
    assert table["rated"].sum() == N // 2
    assert table["score"].between(0, 1).all() and (table["uncertainty"] >= 0).all()
    unrated = table[~table["rated"]]
    assert spearmanr(unrated["score"], truth[unrated.index])[0] > 0.7   # features carry the score linearly
    csv = pd.read_csv(tmp_path / "predictions.csv")
    assert list(csv.columns) == ["name", "score", "uncertainty"] and len(csv) == N
    assert csv["name"].tolist() == table["name"].tolist()
    assert sorted(csv["name"]) == sorted(read_labels(path).names)


def test_uncertainty_is_the_spread_of_the_three_heads(unlabelled):
    from aliqa_lib.models.training import head_outputs

    path, features, truth = unlabelled
    ratings = RatingsFile(path)
    rate(ratings, np.arange(12), truth)
    model = train_on_ratings(features, collected_scores(path, ratings), seed=0, config=FAST)
    table = score_collection(path, ratings, features=features, model=model).sort_index()
    probs = head_outputs(model.model, features)
    np.testing.assert_allclose(table["uncertainty"], probs.std(axis=1), rtol=1e-6)
    np.testing.assert_allclose(table["score"], probs.mean(axis=1), rtol=1e-6)


def test_store_scores_count_unless_told_otherwise(tmp_path):
    features, truth = linear_features(n=20, dim=4, seed=2)
    path = tmp_path / "half.h5"
    mos01 = np.where(np.arange(20) < 10, truth, np.nan)
    with StoreWriter(path, n=20, size=8, dataset="folder", score_range=(0, 1), unknown_scores=True) as w:
        w.write_images(0, np.zeros((20, 8, 8, 3), np.uint8))
        w.set_labels(mos=mos01, mos01=mos01, names=[f"{i}.png" for i in range(20)])
    assert np.isfinite(collected_scores(path)).sum() == 10
    assert np.isfinite(collected_scores(path, store_scores=False)).sum() == 0
    batch = next_batch(path, RatingsFile(path), 4, features=features, selector="random")
    assert (batch.positions >= 10).all()


def test_round_index():
    assert [round_index(n, 10) for n in (0, 4, 5, 10, 19, 20, 200)] == [0, 0, 1, 1, 1, 2, 2]


def test_contact_sheets_saved(unlabelled, tmp_path):
    path, features, truth = unlabelled
    ratings = RatingsFile(path)
    rate(ratings, np.arange(10), truth)
    table = score_collection(path, ratings, features=features, train=FAST)
    saved = contact_sheets(path, table, tmp_path, n=4, ncols=2)
    assert sorted(saved) == ["best", "uncertain", "worst"] and all(p.stat().st_size > 0 for p in saved.values())
    with pytest.raises(ValueError, match="unknown contact sheet"):
        collection.contact_sheet(path, table, "middle")


def test_contact_sheet_titles_name_folder_file_score_and_sd(unlabelled):
    path, features, truth = unlabelled
    ratings = RatingsFile(path)
    rate(ratings, np.arange(10), truth)
    table = score_collection(path, ratings, features=features, train=FAST)
    fig = collection.contact_sheet(path, table, "worst", n=3, ncols=3)
    worst = table.sort_values(["score", "name"]).head(3)
    titles = [ax.get_title() for ax in fig.axes[:3]]
    assert titles == [f"{al_plots.file_title(r.name)}\n{r.score:.2f}, sd {r.uncertainty:.3f}"
                      for r in worst.itertuples()]


@pytest.mark.parametrize("name, title", [("flower_c20/gaussian_noise_L4.jpg", "flower_c20\ngaussian_noise_L4"),
                                         ("a/b/c.png", "b\nc"), ("x.jpg", "x"), ("d\\e.tif", "d\ne"),
                                         ("p/" + "n" * 30 + ".jpg", "p\n" + "n" * 9 + "..." + "n" * 8)])
def test_file_title_puts_folder_and_stem_on_two_lines(name, title):
    assert al_plots.file_title(name) == title

"""Fusion and bands against hand-computed cases, the replay of the authors' selection, baselines,
the offline committee and distribution matching."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny_store

from aliqa_lib import authors
from aliqa_lib.selection import baselines, criteria, distill, fusion, strategies, votes

RELEASE = Path(__file__).resolve().parents[2] / "data" / "authors_release"


def hand_case(offset: int = 0):
    """5 pool images: uncertainty u and content distance c as chosen below (see the comments)."""
    n = 5 + offset
    u = np.zeros(n)
    u[offset:] = [0.05, 0.25, 0.15, 0.2, 0.1]
    v = np.stack([np.full(n, 0.1), 0.1 + 2 * u], axis=1)[None]       # std of two votes = u
    c = np.zeros(n)
    c[offset:] = [5, 1, 4, 2, 3]
    d = np.repeat(c[None, None], 3, axis=0)                            # 3 identical repeats, 1 distilled image
    return v, d, np.arange(offset, n)


def test_uncertainty_and_content_hand_computed():
    v, d, _ = hand_case()
    np.testing.assert_allclose(criteria.uncertainty(v), [0.05, 0.25, 0.15, 0.2, 0.1])
    np.testing.assert_allclose(criteria.content_distance(d), 3 * np.array([5, 1, 4, 2, 3]))
    # trimmed aggregation: of 5 repeats keep the 3 closest to their mean (here drop 0 and 10)
    rep = np.array([0.0, 4.0, 5.0, 6.0, 10.0]).reshape(5, 1, 1)
    assert criteria.content_distance(rep)[0] == pytest.approx(15.0)
    with pytest.raises(ValueError, match="attributes, images, templates"):
        criteria.uncertainty(np.zeros((3, 4)))


def test_fusion_round_hand_computed():
    v, d, pool = hand_case()
    # r_c = [5,1,4,2,3]; r_u = [1,5,3,4,2]; band (start int(5*0.4)=2, 2 images) = images 2, 4 -> r_u 0, -1
    det = fusion.fusion_round(v, d, pool, num=2, wt=0.01, band_start=0.4)
    np.testing.assert_array_equal(det.r_c, [5, 1, 4, 2, 3])
    np.testing.assert_array_equal(det.r_u, [1, 5, 0, 4, -1])
    np.testing.assert_allclose(det.score, [1.05, 5.01, 0.04, 4.02, -0.97])
    np.testing.assert_array_equal(det.selected, [4, 2])
    assert det.from_band == 2
    # wt = 2: f = [11, 7, 8, 8, 5] -> images 4 and 1
    np.testing.assert_array_equal(fusion.al_iqa_round(v, d, pool, 2, 2.0, 0.4), [4, 1])
    # wt = 1, three images, band from the top: band = images 1, 3, 2 -> r_u = [1, 0, -2, -1, 2];
    # f = [6, 1, 2, 1, 5]: the tie at 1 goes to the lower pool index
    np.testing.assert_array_equal(fusion.al_iqa_round(v, d, pool, 3, 1.0, 0.0), [1, 3, 2])


def test_fusion_returns_pool_values_and_ignores_pool_order():
    v, d, pool = hand_case(offset=10)
    np.testing.assert_array_equal(fusion.al_iqa_round(v, d, pool[::-1], 2, 0.01, 0.4), [14, 12])


def test_fusion_rejects_bad_requests():
    v, d, pool = hand_case()
    with pytest.raises(ValueError, match="cannot select 6 images from a pool of 5"):
        fusion.al_iqa_round(v, d, pool, 6, 0.01, 0.0)
    with pytest.raises(ValueError, match="whole number"):
        fusion.al_iqa_round(v, d, pool, 2.5, 0.01, 0.0)
    with pytest.raises(ValueError, match="band_start"):
        fusion.al_iqa_round(v, d, pool, 2, 0.01, 1.5)


def test_band_is_clipped_to_the_pool_in_clean_mode():
    v, d, pool = hand_case()
    det = fusion.fusion_round(v, d, pool, num=2, wt=0.0, band_start=0.99)
    # start int(5*0.99)=4 would leave a 1-image band; clean mode slides it back to the last 2
    np.testing.assert_array_equal(np.sort(det.band), [0, 4])


def test_round_sizes_sum_to_the_budget():
    cfg = fusion.PAPER_SCHEDULE
    assert cfg.round_sizes(291) == [58, 117, 116]          # shares 58.2, 116.4, 116.4; the spare image to the largest remainder
    assert cfg.round_sizes(5) == [1, 2, 2] and sum(cfg.round_sizes(101)) == 101


def test_multi_round_strategy_asks_for_new_votes_each_round():
    rng = np.random.default_rng(0)
    n = 200
    d = rng.random((5, 10, n))
    calls, seen = [], []

    def vote_source(r, labelled):
        calls.append((r, len(labelled)))
        seen.append(labelled.copy())
        return rng.random((1, n, 3))

    aliqa = strategies.make_selector("al_iqa", votes=rng.random((6, n, 3)), distances=d, vote_source=vote_source)
    chosen = aliqa.select(np.zeros((n, 2)), labelled=np.arange(5), budget=50, seed=0)
    assert [len(r) for r in chosen.rounds] == [10, 20, 20] and calls == [(1, 15), (2, 35)]
    assert len(np.unique(chosen.positions)) == 50 and not np.isin(chosen.positions, np.arange(5)).any()
    # the model between rounds sees the labels in the order they arrived (its validation draw depends on it)
    np.testing.assert_array_equal(seen[1], np.concatenate([np.arange(5), *chosen.rounds[:2]]))
    with pytest.raises(ValueError, match="budget must be a whole number in 1..195"):
        aliqa.select(np.zeros((n, 2)), labelled=np.arange(5), budget=196)


def test_multi_round_strategy_falls_back_to_one_round_visibly_or_raises_when_rounds_are_too_small():
    rng = np.random.default_rng(1)
    v, d = rng.random((6, 50, 3)), rng.random((3, 4, 50))
    aliqa = strategies.ALIQA(v, d, vote_source=lambda r, lab: pytest.fail("no training on 1-2 labels"))
    with pytest.warns(strategies.RoundsTooSmall, match=r"rounds of \[1, 3, 2\]"):
        chosen = aliqa.select(np.zeros((50, 2)), budget=6)         # rounds of 1, 3, 2 images
    np.testing.assert_array_equal(chosen.positions, fusion.al_iqa_round(v, d, np.arange(50), 6, 0.005, 0.0))
    assert chosen.note.startswith("one fused round") and len(chosen.rounds) == 1
    strict = strategies.ALIQA(v, d, vote_source=aliqa.vote_source, too_small="error")
    with pytest.raises(ValueError, match="min_round=5"):
        strict.select(np.zeros((50, 2)), budget=6)
    assert strategies.ALIQA(v, d).select(np.zeros((50, 2)), budget=6).note == ""   # no vote source: 3 rounds


def test_replay_of_the_authors_livew_selection():
    rounds = authors.replay_livew(RELEASE)
    assert [len(r) for r in rounds] == [59, 116, 116]                 # their off-by-one in round 1
    assert len(np.unique(np.concatenate(rounds))) == 291
    assert all(r.min() >= 0 and r.max() < 1169 for r in rounds)
    details = authors.replay_details(RELEASE)
    assert [d.from_band for d in details] == [58, 115, 115]           # at wt <= 0.01 the band dominates
    clean = authors.replay_livew(RELEASE, faithful=False)
    assert [len(r) for r in clean] == [58, 116, 116]
    assert set(clean[0]) < set(rounds[0])
    with pytest.raises(FileNotFoundError, match="authors' release"):
        authors.replay_livew(RELEASE / "nope")


@pytest.mark.parametrize("name", [n for n in strategies.SELECTORS if n != "full_pool"])
def test_every_selector_by_name(name):
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(300, 16)).astype(np.float32)
    extra = dict(votes=rng.random((6, 300, 3)), distances=rng.random((5, 8, 300)))
    labelled = np.arange(0, 300, 10)
    a = strategies.select(name, feats, 40, seed=1, labelled=labelled, **extra)
    b = strategies.select(name, feats, 40, seed=1, labelled=labelled, **extra)
    assert len(a) == 40 and len(np.unique(a)) == 40 and not np.isin(a, labelled).any()
    np.testing.assert_array_equal(a, b)                               # deterministic per seed
    assert strategies.select(name, feats, 270, seed=0, labelled=labelled, **extra).size == 270


def test_select_rejects_bad_input():
    feats = np.zeros((10, 2), np.float32)
    for budget in (0, 11, -1):
        with pytest.raises(ValueError, match="budget must be a whole number in 1..10"):
            strategies.select("random", feats, budget)
    with pytest.raises(ValueError, match="unknown selector 'oracle'; choose from random"):
        strategies.select("oracle", feats, 3)
    with pytest.raises(ValueError, match="needs votes"):
        strategies.select("uncertainty", feats, 3)
    with pytest.raises(ValueError, match=r"takes no option\(s\) \['band_strat'\]"):
        strategies.select("al_iqa_round", feats, 3, votes=np.zeros((6, 10, 3)), distances=np.zeros((3, 2, 10)),
                          band_strat=0.5)
    with pytest.raises(ValueError, match=r"votes of shape \(6, 9, 3\) must be \(attributes, N, templates\) with N = 10"):
        strategies.select("uncertainty", feats, 3, votes=np.zeros((6, 9, 3)))


def test_selectors_with_utilities_rank_their_picks_first():
    rng = np.random.default_rng(2)
    feats, v, d = rng.normal(size=(60, 4)), rng.random((6, 60, 3)), rng.random((3, 5, 60))
    labelled = np.arange(10)
    for name in ("uncertainty", "content", "al_iqa_round"):
        out = strategies.make_selector(name, votes=v, distances=d).select(feats, labelled, 8, seed=0)
        assert np.isnan(out.utilities[labelled]).all()
        best = np.argsort(-np.nan_to_num(out.utilities, nan=-np.inf), kind="stable")[:8]
        np.testing.assert_array_equal(np.sort(best), np.sort(out.positions))
    full = strategies.make_selector("full_pool").select(feats, labelled, 50)
    np.testing.assert_array_equal(full.positions, np.arange(10, 60))


def test_kcenter_and_gsx_are_farthest_first():
    pts = np.array([[0, 0], [1, 0], [10, 0], [0, 9], [5, 5]], np.float32)
    # GSx starts nearest the centroid (3.2, 2.8) = point 4, then the farthest from it, and so on
    np.testing.assert_array_equal(baselines.gsx(pts, 3, 0, np.array([], np.int64)), [4, 0, 2])
    np.testing.assert_array_equal(baselines.kcenter(pts, 2, 0, np.array([0])), [2, 3])
    from scipy.spatial.distance import cdist
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    picks = baselines.kcenter(x, 10, 0, np.array([], np.int64))
    for k in range(1, 10):                                             # each pick maximises the min distance
        mind = cdist(x, x[picks[:k]]).min(1)
        assert mind[picks[k]] == pytest.approx(mind.max(), rel=1e-4)


def test_speculative_blocks_give_the_plain_farthest_first_order():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    plain, mind, nxt = [], np.full(300, np.inf), 7                    # one-at-a-time reference in numpy
    for _ in range(120):
        plain.append(nxt)
        mind = np.minimum(mind, ((x - x[nxt]) ** 2).sum(1))
        mind[plain] = -1
        nxt = int(mind.argmax())
    for block in (1, 8, 64):
        np.testing.assert_array_equal(baselines.greedy_farthest(x, 120, 7, np.array([], np.int64), block), plain)


def test_typiclust_and_probcover_spread_over_clusters():
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 20, size=(5, 4))
    x = np.concatenate([c + rng.normal(size=(60, 4)) for c in centers]).astype(np.float32)
    for fn in (baselines.typiclust, baselines.probcover):
        picks = fn(x, 5, 0, np.array([], np.int64))
        assert len(set(picks // 60)) == 5, fn.__name__                # one per cluster


def test_committee_votes_answer_the_questions():
    rng = np.random.default_rng(0)
    base = (rng.random((1, 64, 64, 3)) * 80 + 90).astype(np.uint8)
    from scipy.ndimage import gaussian_filter
    smooth = gaussian_filter(base.astype(float), (0, 2, 2, 0))
    images = np.concatenate([smooth, smooth + 60, smooth - 60, smooth + rng.normal(0, 25, smooth.shape),
                             (smooth - smooth.mean()) * 0.2 + smooth.mean()]).clip(0, 255).astype(np.uint8)
    m = votes.committee_measurements(images)
    assert m.shape == (6, 5, 3)
    assert (m[0, 1] > m[0, 0]).all() and (m[0, 2] < m[0, 0]).all()     # brighter / darker
    assert (m[4, 3] > m[4, 0]).all()                                   # noisier
    assert (m[2, 4] < m[2, 0]).all()                                   # less contrast
    v = votes.committee_votes(m)
    assert v.shape == (6, 5, 3) and v.min() >= 0 and v.max() <= 1
    assert votes.head_votes(np.zeros((7, 3))).shape == (1, 7, 3)


def test_distribution_matching_reduces_the_gap_and_measures_distances(tmp_path):
    store = tmp_path / "s.h5"
    tiny_store(store, n=40, size=32)
    cfg = distill.DistillConfig(n_images=4, resolution=16, iterations=40, batch_real=32, width=8, repeats=2,
                                distance_nets=2)
    result = distill.distill_store(store, np.arange(30), cfg, seed=0, progress=False)
    assert result.distances.shape == (2, 4, 40) and (result.distances >= 0).all()
    assert np.mean(result.losses[0][-5:]) < np.mean(result.losses[0][:5])
    assert result.pictures(0).shape == (4, 16, 16, 3) and result.pictures(0).dtype == np.uint8
    again = distill.distill_store(store, np.arange(30), cfg, seed=0, progress=False)
    np.testing.assert_allclose(again.distances, result.distances)      # seeded
    with pytest.raises(ValueError, match="cannot distil"):
        distill.distill(torch.zeros(3, 3, 16, 16), cfg)

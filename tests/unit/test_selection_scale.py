"""Issue 14, scale: the chunked and sparse paths of the selectors against direct numpy/scipy
references on small data, chunk sizes below N giving identical picks, and pools on disk (np.memmap)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from aliqa_lib.selection import baselines, criteria, fusion, strategies

NONE = np.array([], np.int64)


def clustered(n: int = 240, d: int = 6, groups: int = 6, seed: int = 0) -> np.ndarray:
    """`groups` well separated blobs of n // groups points each, float32."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 20, size=(groups, d))
    return np.concatenate([c + rng.normal(size=(n // groups, d)) for c in centers]).astype(np.float32)


def reference_content(d: np.ndarray, keep: int = 3) -> np.ndarray:
    """The trimmed aggregation written out per image with plain loops."""
    r, m, n = d.shape
    out = np.zeros(n)
    for j in range(n):
        for i in range(m):
            v = d[:, i, j].astype(np.float64)
            out[j] += v[np.argsort(np.abs(v - v.mean()), kind="stable")[:keep]].sum()
    return out


def reference_probcover(x: np.ndarray, budget: int, labelled: np.ndarray, k: int = 10) -> list[int]:
    """ProbCover with a dense N x N ball matrix (scipy distances) and recounted gains, while coverable."""
    dist = cdist(x, x)
    delta = np.median(np.sort(dist, axis=1)[:, k])
    balls = dist <= delta
    covered = balls[labelled].any(axis=0) if len(labelled) else np.zeros(len(x), bool)
    taken = np.zeros(len(x), bool)
    taken[labelled] = True
    picks = []
    for _ in range(budget):
        gain = np.where(taken, -1, (balls & ~covered).sum(axis=1))
        if gain.max() <= 0:
            break
        best = int(np.argmax(gain))
        picks.append(best)
        taken[best] = True
        covered |= balls[best]
    return picks


def test_content_distance_in_chunks_matches_the_written_out_reference(tmp_path):
    rng = np.random.default_rng(0)
    d = rng.random((5, 4, 23))
    expected = reference_content(d)
    for chunk in (1, 4, 23, 100):
        np.testing.assert_allclose(criteria.content_distance(d, chunk=chunk), expected, rtol=1e-12)
    cols = np.array([22, 3, 7, 0])
    np.testing.assert_array_equal(criteria.content_distance(d, columns=cols, chunk=3),
                                  criteria.content_distance(d)[cols])
    on_disk = np.lib.format.open_memmap(tmp_path / "d.npy", mode="w+", dtype=np.float64, shape=d.shape)
    on_disk[...] = d
    np.testing.assert_array_equal(criteria.content_distance(np.load(tmp_path / "d.npy", mmap_mode="r"), chunk=5),
                                  criteria.content_distance(d))
    with pytest.raises(ValueError, match="chunk must be a positive number"):
        criteria.content_distance(d, chunk=0)


def test_fusion_and_content_selectors_read_distances_from_disk(tmp_path):
    rng = np.random.default_rng(1)
    votes, d = rng.random((6, 50, 3)), rng.random((3, 5, 50)).astype(np.float32)
    np.save(tmp_path / "d.npy", d)
    mapped = np.load(tmp_path / "d.npy", mmap_mode="r")
    pool = np.arange(7, 50)
    np.testing.assert_array_equal(fusion.al_iqa_round(votes, mapped, pool, 9, 0.01, 0.3),
                                  fusion.al_iqa_round(votes, d, pool, 9, 0.01, 0.3))
    features = np.zeros((50, 2))
    np.testing.assert_array_equal(strategies.select("content", features, 6, distances=mapped, labelled=np.arange(5)),
                                  strategies.select("content", features, 6, distances=d, labelled=np.arange(5)))


def test_probcover_radius_graph_matches_scipy_distances():
    x = clustered()
    xt, sq = baselines._as_tensor(x)
    dist = cdist(x, x)
    delta = np.median(np.sort(dist, axis=1)[:, 10])
    for chunk in (7, None):
        graph = baselines._exact_radius_graph(xt, sq, None, 10, chunk).toarray()
        near = np.abs(dist - delta) < 1e-2             # float32 |x|^2 - 2xy + |y|^2 vs float64 at the boundary
        np.testing.assert_array_equal(graph[~near], (dist <= delta)[~near])


@pytest.mark.parametrize("labelled", [NONE, np.arange(0, 240, 17)])
def test_probcover_sparse_greedy_matches_the_dense_reference(labelled):
    x = clustered(seed=2)
    expected = reference_probcover(x, 200, labelled)
    assert 6 <= len(expected) < 200                              # covers everything, then draws at random
    for chunk in (5, 64, None):
        picks = baselines.probcover(x, 200, 0, labelled, chunk=chunk)
        np.testing.assert_array_equal(picks[:len(expected)], expected)
        assert len(np.unique(picks)) == 200 and not np.isin(picks, labelled).any()


def test_typiclust_typicality_in_chunks_matches_scipy_and_gives_identical_picks():
    x = clustered(n=300, d=5, groups=5, seed=4)
    xt, sq = baselines._as_tensor(x)
    idx = np.arange(40, 120)
    dist = np.sort(cdist(x[idx], x[idx]), axis=1)[:, 1:21]
    for chunk in (3, None):
        np.testing.assert_allclose(baselines._typicality(xt, sq, idx, 20, chunk), 1 / dist.mean(axis=1), rtol=1e-4)
    labelled = np.array([3, 150, 299])
    np.testing.assert_array_equal(baselines.typiclust(x, 30, 0, labelled, chunk=7),
                                  baselines.typiclust(x, 30, 0, labelled))


@pytest.mark.parametrize("name", ["kcenter", "gsx", "typiclust", "probcover", "random"])
def test_selectors_take_features_on_disk(name, tmp_path):
    x = clustered(n=300, d=16, seed=5)
    np.save(tmp_path / "x.npy", x)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    labelled = np.arange(0, 300, 25)
    np.testing.assert_array_equal(strategies.select(name, mapped, 20, seed=3, labelled=labelled),
                                  strategies.select(name, x, 20, seed=3, labelled=labelled))


def test_components_fitted_on_a_sample_keep_every_distance_of_low_rank_features():
    rng = np.random.default_rng(3)
    features = (rng.normal(size=(2_000, 8)) @ rng.normal(size=(8, 100))).astype(np.float32)   # rank 8 in 100 dims
    sample_fit = baselines._components(features, dims=8, seed=0, fit_rows=300, chunk=450)
    assert sample_fit.shape == (2_000, 8) and sample_fit.dtype == np.float32
    subset = rng.choice(2_000, size=200, replace=False)
    np.testing.assert_allclose(cdist(sample_fit[subset], sample_fit[subset]),
                               cdist(features[subset], features[subset]), rtol=1e-3, atol=1e-2)
    full_fit = baselines._components(features, dims=8, seed=0)           # 2,000 rows: fitted on all of them
    np.testing.assert_allclose(cdist(full_fit[subset], full_fit[subset]),
                               cdist(features[subset], features[subset]), rtol=1e-3, atol=1e-2)


def test_typicality_does_not_depend_on_the_summation_order():
    # threads change the order in which products are summed, as permuting the feature columns does;
    # TypiClust's picks (positions sorted by typicality) must not change with it
    import torch

    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 64))

    def typicality(a: np.ndarray, chunk: int | None = None) -> np.ndarray:
        t = torch.from_numpy(a)
        return baselines._typicality(t, (t * t).sum(dim=1), np.arange(len(a)), 20, chunk)

    reference = typicality(x)
    assert np.array_equal(reference, typicality(x[:, rng.permutation(64)]))
    assert np.array_equal(reference, typicality(x, chunk=7))
    d = cdist(x, x)
    np.testing.assert_allclose(reference, 1 / np.sort(d, axis=1)[:, 1:21].mean(axis=1), rtol=1e-9)

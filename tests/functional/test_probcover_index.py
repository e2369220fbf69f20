"""ProbCover's approximate neighbour index (pynndescent; 30 s of numba compilation on first use, so
not in the unit tier) against its exact search on small clustered data."""
from __future__ import annotations

import numpy as np

from aliqa_lib.selection import baselines

NONE = np.array([], np.int64)


def clustered(n: int, d: int, groups: int, seed: int) -> np.ndarray:
    """`groups` well separated blobs of n // groups points each, float32."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 20, size=(groups, d))
    return np.concatenate([c + rng.normal(size=(n // groups, d)) for c in centers]).astype(np.float32)


def test_probcover_approximate_index_spreads_like_the_exact_search():
    x = clustered(n=600, d=8, groups=6, seed=3)
    exact = baselines.probcover(x, 6, 0, NONE)
    approximate = baselines.probcover(x, 6, 0, NONE, exact_below=0, neighbours=30)
    assert len(set(exact // 100)) == len(set(approximate // 100)) == 6       # one per blob
    xt, sq = baselines._as_tensor(x)
    full = baselines._exact_radius_graph(xt, sq, None, 10, None)
    near = baselines._approximate_radius_graph(x, None, 10, 30, 0)
    assert full.multiply(near).nnz / full.nnz > 0.95                          # recall of the balls' members

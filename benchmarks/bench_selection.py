"""Selectors at KonIQ scale: one AL-IQA round and each baseline on 10,000 x 1,280 features, budget
2,500 (time and peak memory, each in a fresh process); our k-center and GSx against scikit-activeml's
on a smaller pool in this process; distribution matching of a 2,000-image pool into 50 images.

Targets (selection issue): under 5 s each; k-center O(N x budget) time and O(N) extra memory;
distillation under 2 minutes. One distribution-matching step is also timed against how it ran before
(one 256-image pass in the default memory layout) in the same process. Run: .venv/bin/python benchmarks/bench_selection.py
"""
from __future__ import annotations

import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

N, D, BUDGET = 10_000, 1_280, 2_500


def _run(name: str, queue) -> None:
    from aliqa_lib import selection
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(N, D)).astype(np.float32)
    extra = dict(votes=rng.random((6, N, 3)), distances=rng.random((5, 50, N)))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    selection.select(name, feats, BUDGET, seed=0, **extra)
    elapsed = time.perf_counter() - t0
    queue.put((elapsed, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024))


def dm_step_ratio(steps: int = 20) -> None:
    """A distribution-matching step with distill.embed (channels_last, CHUNK images a pass) against the
    same step as one 256-image pass in the default layout, same ConvNet, images and gradients."""
    import copy

    import torch

    from aliqa_lib.selection import distill
    torch.manual_seed(0)
    real, syn = torch.randn(256, 3, 32, 32), torch.randn(50, 3, 32, 32)
    net = distill.convnet(32, 3)
    plain = copy.deepcopy(net).to(memory_format=torch.contiguous_format)

    def step(embed) -> None:
        with torch.no_grad():
            target = embed(real).mean(0)
        s = syn.clone().requires_grad_(True)
        ((target - embed(s).mean(0)) ** 2).sum().backward()

    timings = {"before": [], "embed": []}
    for _ in range(3):                                  # interleaved, best of three
        for name, embed in (("before", plain), ("embed", lambda x: distill.embed(net, x))):
            step(embed)
            t0 = time.perf_counter()
            for _ in range(steps):
                step(embed)
            timings[name].append((time.perf_counter() - t0) / steps)
    before, ours = min(timings["before"]), min(timings["embed"])
    print(f"one distribution-matching step: {before * 1e3:.0f} ms as before, {ours * 1e3:.0f} ms with "
          f"distill.embed -> {before / ours:.2f}x")


def main() -> None:
    from aliqa_lib import selection
    from aliqa_lib.selection import baselines
    ctx = mp.get_context("spawn")
    print(f"pool {N} x {D}, budget {BUDGET} (features float32: {N * D * 4 / 2**20:.0f} MiB)")
    for name in [n for n in selection.SELECTORS if n != "full_pool"]:   # full_pool takes everything
        queue = ctx.Queue()
        proc = ctx.Process(target=_run, args=(name, queue))
        proc.start()
        elapsed, extra_mib = queue.get()
        proc.join()
        print(f"  {name:12s} {elapsed:6.2f} s  ({elapsed / 5:.2f} of the 5 s target)  peak memory +{extra_mib:5.0f} MiB")

    from skactiveml.pool import CoreSet, GreedySamplingX
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 128)).astype(np.float32)
    none = np.full(len(x), np.nan)
    for ours, theirs, label in ((baselines.kcenter, CoreSet(random_state=0), "k-center vs skactiveml CoreSet"),
                                (baselines.gsx, GreedySamplingX(random_state=0), "GSx vs skactiveml GreedySamplingX")):
        t0 = time.perf_counter()
        theirs.query(x, none, batch_size=1000)
        t_theirs = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours(x, 1000, 0, np.array([], np.int64))
        t_ours = time.perf_counter() - t0
        print(f"  {label} (4,000 x 128, budget 1,000): {t_theirs:.2f} s vs ours {t_ours:.2f} s -> {t_theirs / t_ours:.1f}x")

    dm_step_ratio()
    from aliqa_lib.data.prepare import prepare
    from aliqa_lib.selection import distill
    with tempfile.TemporaryDirectory() as tmp:
        store = prepare("synthetic", out=Path(tmp) / "s.h5", progress=False)
        t0 = time.perf_counter()
        result = distill.distill_store(store, np.arange(2000), distill.DistillConfig(), seed=0, progress=True)
        elapsed = time.perf_counter() - t0
    print(f"distribution matching, 2,000 pool images -> 50, {distill.DistillConfig().repeats} repeats + distances to "
          f"{result.distances.shape[2]} images: {elapsed:.1f} s ({elapsed / 120:.2f} of the 2 min target)")


if __name__ == "__main__":
    main()

"""Selectors at scale: every selector in a fresh process on pools stored on disk as float32 np.memmap
files, with time and peak memory (ru_maxrss of the child) and how both grow from pool to pool.

Pools (random normal features, budget as below, nothing labelled):
  10k: 10,000 x 1,280, budget 1,000     100k: 100,000 x 1,280, budget 10,000
  1M: 1,000,000 x 512, budget 20,000
The votes (6, N, 3) and distances (5, 50, N) the AL-IQA selectors need lie on disk beside them.
Target (issue 14): every selector under 60 s at 100k with memory linear in N.

Run: OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_scale.py [--pools 10k 100k 1M]
     [--selectors kcenter ...] [--timeout 1200] [--dir /tmp/aliqa_bench_scale] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

POOLS = {"10k": (10_000, 1_280, 1_000), "100k": (100_000, 1_280, 10_000), "1M": (1_000_000, 512, 20_000)}
SELECTORS = ("random", "kcenter", "gsx", "typiclust", "probcover", "uncertainty", "content", "al_iqa_round", "al_iqa")
REPEATS, DISTILLED = 5, 50


def _write(path: Path, shape: tuple[int, ...], seed: int, kind: str, rows: int = 50_000) -> None:
    """A float32 memmap of random values written `rows` slices of the image axis at a time."""
    if path.exists() and path.stat().st_size == int(np.prod(shape)) * 4:
        return
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path.with_suffix(".partial.npy"), mode="w+", dtype=np.float32, shape=shape)
    axis = {"features": 0, "votes": 1, "distances": 2}[kind]
    for i in range(0, shape[axis], rows):
        index = [slice(None)] * len(shape)
        index[axis] = slice(i, i + rows)
        part = out[tuple(index)]
        part[...] = rng.normal(size=part.shape) if kind == "features" else rng.random(part.shape)
    out.flush()
    del out
    path.with_suffix(".partial.npy").rename(path)


def prepare(pool: str, folder: Path) -> dict[str, Path]:
    """The pool's features, votes and distances on disk (written once, reused)."""
    n, d, _ = POOLS[pool]
    folder.mkdir(parents=True, exist_ok=True)
    files = {"features": folder / f"{pool}_features.npy", "votes": folder / f"{pool}_votes.npy",
             "distances": folder / f"{pool}_distances.npy"}
    _write(files["features"], (n, d), 0, "features")
    _write(files["votes"], (6, n, 3), 1, "votes")
    _write(files["distances"], (REPEATS, DISTILLED, n), 2, "distances")
    return files


def child(name: str, pool: str, folder: Path) -> None:
    """Run one selector on one pool (memory-mapped, read as the selector needs) and print a JSON line."""
    from aliqa_lib import selection

    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    files = prepare(pool, folder)
    arrays = {k: np.load(v, mmap_mode="r") for k, v in files.items()}
    before = _current_rss_mib()
    t0 = time.perf_counter()
    picks = selection.select(name, arrays["features"], POOLS[pool][2], seed=0, votes=arrays["votes"],
                             distances=arrays["distances"])
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(dict(selector=name, pool=pool, seconds=elapsed, peak_mib=peak, before_mib=before,
                          picks=len(picks))))


def _current_rss_mib() -> float:
    """Resident memory of this process now (Linux /proc), in MiB; ru_maxrss is only the high-water mark."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def measure(name: str, pool: str, folder: Path, timeout: float) -> dict:
    """One selector on one pool in a fresh process; a run past `timeout` seconds is reported as such."""
    cmd = [sys.executable, __file__, "--child", name, pool, "--dir", str(folder)]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(selector=name, pool=pool, error=f"did not finish in {timeout:.0f} s")
    if run.returncode != 0:
        return dict(selector=name, pool=pool, error=(run.stderr.strip().splitlines() or ["?"])[-1])
    return json.loads(run.stdout.strip().splitlines()[-1])


def _cell(row: dict | None) -> str:
    if row is None:
        return "-"
    return row.get("error") or f"{row['seconds']:.1f} s, {row['peak_mib']:.0f} MiB"


def report(rows: list[dict], pools: list[str]) -> None:
    """A table: time and peak memory per selector and pool, then the growth from pool to pool."""
    by = {(r["selector"], r["pool"]): r for r in rows}
    names = [s for s in SELECTORS if any((s, p) in by for p in pools)]
    print("\n| selector | " + " | ".join(f"{p} ({POOLS[p][0]:,} x {POOLS[p][1]:,}, budget {POOLS[p][2]:,})"
                                          for p in pools) + " |")
    print("|---|" + "---|" * len(pools))
    for s in names:
        print(f"| {s} | " + " | ".join(_cell(by.get((s, p))) for p in pools) + " |")
    for a, b in zip(pools, pools[1:]):
        print(f"\ngrowth {a} -> {b} (N x{POOLS[b][0] / POOLS[a][0]:.0f}, features x"
              f"{POOLS[b][0] * POOLS[b][1] / (POOLS[a][0] * POOLS[a][1]):.1f}):")
        for s in names:
            ra, rb = by.get((s, a)), by.get((s, b))
            if ra and rb and "error" not in ra and "error" not in rb:
                print(f"  {s:13s} time x{rb['seconds'] / max(ra['seconds'], 1e-3):6.1f}   peak memory "
                      f"x{rb['peak_mib'] / ra['peak_mib']:5.1f} (peak above the resident memory before selecting: "
                      f"{ra['peak_mib'] - ra['before_mib']:.0f} -> {rb['peak_mib'] - rb['before_mib']:.0f} MiB)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--child", nargs=2, metavar=("SELECTOR", "POOL"), help=argparse.SUPPRESS)
    p.add_argument("--pools", nargs="+", default=list(POOLS), choices=list(POOLS))
    p.add_argument("--selectors", nargs="+", default=list(SELECTORS), choices=list(SELECTORS))
    p.add_argument("--timeout", type=float, default=1200, help="seconds per selector and pool (default 1200)")
    p.add_argument("--dir", default="/tmp/aliqa_bench_scale", help="where the pools are stored (reused)")
    p.add_argument("--json", default=None, help="also write the measurements to this file")
    args = p.parse_args()
    folder = Path(args.dir)
    if args.child:
        child(*args.child, folder)
        return
    rows = []
    for pool in args.pools:
        t0 = time.perf_counter()
        prepare(pool, folder)
        n, d, budget = POOLS[pool]
        print(f"pool {pool}: {n:,} x {d:,} float32 on disk ({n * d * 4 / 2**20:,.0f} MiB; written or found in "
              f"{time.perf_counter() - t0:.0f} s), budget {budget:,}", flush=True)
        for name in args.selectors:
            row = measure(name, pool, folder, args.timeout)
            rows.append(row)
            print(f"  {name:13s} {_cell(row)}", flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(rows, indent=1))
    report(rows, args.pools)


if __name__ == "__main__":
    main()

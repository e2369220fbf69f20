"""Embedded dataset build: wall time and peak memory, as ratios to a generation-only baseline.

Target (issue: foundation): the full default builds in under 3 minutes on 2 cores.
Run: .venv/bin/python benchmarks/bench_prepare.py
"""
from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

from aliqa_lib.data import synthetic


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    config = synthetic.SyntheticConfig()
    t0 = time.perf_counter()
    for cid, (_, _, content) in enumerate(synthetic.contents(config)):   # baseline: pixels only, no metrics, no I/O
        synthetic.distorted_versions(content, cid, config)
    baseline = time.perf_counter() - t0
    rss_baseline = peak_rss_mib()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = synthetic.build(Path(tmp) / "synthetic.h5", config, progress=True)
        total = time.perf_counter() - t0
        size_mib = path.stat().st_size / 2**20
    print(f"images: {config.n_images} ({config.n_contents} contents x {len(config.distortions)} types x 5 levels + refs)")
    print(f"baseline (distortions only): {baseline:6.1f} s   peak RSS {rss_baseline:7.0f} MiB")
    print(f"full build (+ metrics, store): {total:6.1f} s   peak RSS {peak_rss_mib():7.0f} MiB   store {size_mib:.0f} MiB")
    print(f"ratio build / baseline: {total / baseline:.2f}x   build / 180 s target: {total / 180:.2f}")


if __name__ == "__main__":
    main()

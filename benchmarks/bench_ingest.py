"""Real-dataset preparation: throughput with 1 and 2 workers against the plain decode rate, and peak
memory for two image counts.

Target (issue: real datasets): per worker at least 80% of the plain decode rate (PIL open + convert,
no resize) of the same files; peak memory independent of the image count.
Generated KonIQ-size photos: 1024x768 JPEGs (quality 90) cut from the embedded dataset's photos,
written once to data/cache/bench_jpegs_1024x768/.
Run: .venv/bin/python benchmarks/bench_ingest.py [--count 2000]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from aliqa_lib.data.ingest import ingest
from aliqa_lib.data.readers import Catalog
from aliqa_lib.paths import cache_dir


def make_photos(folder: Path, count: int) -> list[Path]:
    """`count` distinct 1024x768 JPEGs (random crops of the embedded photos plus mild noise)."""
    from tqdm import tqdm

    from aliqa_lib.data import synthetic  # here, so that the measured processes do not load it

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{k:05d}.jpg" for k in range(count)]
    todo = [p for p in paths if not p.exists()]
    if todo:
        sources = [np.asarray(Image.fromarray(synthetic.photo(n)).resize((1400, 1050), Image.Resampling.BICUBIC))
                   for n in list(synthetic.PHOTOS)[:8]]
        rng = np.random.default_rng(0)
        for path in tqdm(todo, desc="writing test JPEGs"):
            src = sources[int(path.stem) % len(sources)]
            y, x = rng.integers(0, 1050 - 768), rng.integers(0, 1400 - 1024)
            crop = src[y:y + 768, x:x + 1024].astype(np.int16) + rng.integers(-6, 7, (768, 1024, 1))
            Image.fromarray(crop.clip(0, 255).astype(np.uint8)).save(path, quality=90)
    return paths


def decode_rate(paths: list[Path]) -> float:
    """Images per second of the plain baseline: PIL open + convert("RGB"), no resize."""
    t0 = time.perf_counter()
    for p in paths:
        with Image.open(p) as im:
            im.convert("RGB")
    return len(paths) / (time.perf_counter() - t0)


def run_once(count: int, workers: int, folder: Path) -> dict:
    """Prepare `count` photos into a temporary store; wall time and peak memory of this process and its workers."""
    paths = sorted(folder.glob("*.jpg"))[:count]
    catalog = Catalog.build("bench", paths, [p.name for p in paths], np.full(count, 3.0), (1.0, 5.0), True, folder)
    before = current_rss_mib()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ingest(catalog, Path(tmp) / "bench.h5", size=244, workers=workers, progress=False)
        wall = time.perf_counter() - t0
    return {"count": count, "workers": workers, "rate": count / wall, "wall": wall,
            "rss_before_mib": before, "rss_main_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_worker_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def current_rss_mib() -> float:
    """Resident memory of this process now, in MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def in_fresh_process(count: int, workers: int, folder: Path) -> dict:
    """run_once in a new Python process, so that peak memory is its own."""
    cmd = [sys.executable, __file__, "--child", str(count), str(workers), str(folder)]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--child", nargs=3, default=None)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_once(int(args.child[0]), int(args.child[1]), Path(args.child[2]))))
        return
    folder = cache_dir() / "bench_jpegs_1024x768"
    paths = make_photos(folder, args.count)
    decode_rate(paths[:100])  # warm the page cache and PIL
    base = decode_rate(paths)
    print(f"{args.count} JPEGs 1024x768 -> store 244x244; plain decode (PIL open + convert): {base:6.1f} img/s")
    for workers in (1, 2):
        r = in_fresh_process(args.count, workers, folder)
        print(f"workers={workers}: {r['rate']:6.1f} img/s ({r['wall']:.1f} s)   per worker / decode rate: "
              f"{r['rate'] / workers / base:.2f} (target >= 0.80)   peak RSS main {r['rss_main_mib']:.0f} MiB, "
              f"largest worker {r['rss_worker_mib']:.0f} MiB")
    small = in_fresh_process(args.count // 4, 2, folder)
    full = in_fresh_process(args.count, 2, folder)
    grow = [r["rss_main_mib"] - r["rss_before_mib"] for r in (small, full)]
    print(f"memory, {small['count']} vs {full['count']} images (2 workers): main process grows by {grow[0]:.0f} vs "
          f"{grow[1]:.0f} MiB during preparation (from {full['rss_before_mib']:.0f} MiB after imports); "
          f"peak worker {small['rss_worker_mib']:.0f} vs {full['rss_worker_mib']:.0f} MiB")


if __name__ == "__main__":
    main()

"""Feature extraction from a store vs plain timm inference on random tensors (same batch, same run).

Target (models issue): extraction within 1.5x of plain inference, i.e. HDF5 reading and
preprocessing are not the bottleneck. Run: .venv/bin/python benchmarks/bench_features.py
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from aliqa_lib import models
from aliqa_lib.data.prepare import prepare

BATCH, N = 64, 512


def main() -> None:
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        store = prepare("synthetic", out=Path(tmp) / "s.h5", smoke=True, progress=False)
        backbone = models.load_backbone("efficientnet_lite0", "bundled")
        for pooling in ("final", "stages"):
            encoder = models.QualityFeatures(backbone, pooling).eval().to(memory_format=torch.channels_last)
            x = torch.randn(BATCH, 3, 224, 224).to(memory_format=torch.channels_last)
            with torch.inference_mode():
                encoder(x)
                t0 = time.perf_counter()
                for _ in range(N // BATCH):
                    encoder(x)
                plain = N / (time.perf_counter() - t0)
            n = 284
            t0 = time.perf_counter()
            models.extract_features(store, backbone, "bundled", pooling=pooling, batch_size=BATCH, progress=False)
            ours = n / (time.perf_counter() - t0)
            print(f"{pooling:6s}: plain timm {plain:6.1f} img/s | from store {ours:6.1f} img/s | "
                  f"slowdown {plain / ours:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()

"""Feature extraction on CPU: what folding the BatchNorms and smaller batches buy, and what the store costs.

All in one process, on the same machine, against the same baseline: plain timm inference of
EfficientNet-Lite0 with stage pooling on random tensors, channels_last, batches of 64, BatchNorms
as trained (how features were extracted before fold_batchnorms and CPU_BATCH). Prints images/s and
ratios to that baseline for
- the folded encoder on random tensors at batches of 64 and of CPU_BATCH;
- extract_features from a store with its defaults (folded, CPU_BATCH), reading and preprocessing
  included (target of the models issue: within 1.5x of plain inference at the same settings).
Run: .venv/bin/python benchmarks/bench_features.py
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from aliqa_lib import models
from aliqa_lib.data.prepare import prepare
from aliqa_lib.models.features import CPU_BATCH, fold_batchnorms

N = 256


def rate(encoder: torch.nn.Module, batch: int) -> float:
    """Images per second of `encoder` on random 224-pixel channels_last batches."""
    x = torch.randn(batch, 3, 224, 224).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        encoder(x)
        t0 = time.perf_counter()
        for _ in range(N // batch):
            encoder(x)
    return (N // batch) * batch / (time.perf_counter() - t0)


def main() -> None:
    torch.set_num_threads(2)
    backbone = models.load_backbone("efficientnet_lite0", "bundled")
    encoder = models.QualityFeatures(backbone, "stages").eval().to(memory_format=torch.channels_last)
    folded = fold_batchnorms(encoder, torch.randn(2, 3, 224, 224).to(memory_format=torch.channels_last))
    base = rate(encoder, 64)
    print(f"baseline, BatchNorms as trained, batch 64: {base:6.1f} img/s")
    for name, model, batch in (("BatchNorms as trained", encoder, CPU_BATCH), ("folded", folded, 64),
                               ("folded", folded, CPU_BATCH)):
        r = rate(model, batch)
        print(f"{name}, batch {batch}: {r:6.1f} img/s = {r / base:.2f}x the baseline")
    with tempfile.TemporaryDirectory() as tmp:
        store = prepare("synthetic", out=Path(tmp) / "s.h5", smoke=True, progress=False)
        t0 = time.perf_counter()
        n = len(models.extract_features(store, backbone, "bundled", pooling="stages", progress=False))
        ours = n / (time.perf_counter() - t0)
    plain = rate(folded, CPU_BATCH)
    print(f"extract_features from a store ({n} images, defaults): {ours:6.1f} img/s = {ours / base:.2f}x the baseline; "
          f"{plain / ours:.2f}x slower than plain folded inference at batch {CPU_BATCH} (target <= 1.5x)")


if __name__ == "__main__":
    main()

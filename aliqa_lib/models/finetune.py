"""The optional last stage: fine-tune the last blocks of the encoder(s) together with the heads, on images."""
from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..data.torch_dataset import IMAGENET_MEAN, IMAGENET_STD, StoreDataset
from .training import TrainConfig, TrainResult, fit

FINAL_NORMS = ("conv_head", "bn2", "norm", "ln_post", "ln_final", "proj", "text_projection")


def unfreeze_last_blocks(model: nn.Module, n_blocks: int) -> list[str]:
    """Freeze everything, then unfreeze the last n blocks of every block list (timm `blocks`, CLIP
    `resblocks`) and the layers after them; return the names of the trainable parameters."""
    if n_blocks < 1:
        raise ValueError("n_blocks must be at least 1")
    for p in model.parameters():
        p.requires_grad_(False)
    lists = [(name, m) for name, m in model.named_modules()
             if name.split(".")[-1] in ("blocks", "resblocks") and isinstance(m, (nn.ModuleList, nn.Sequential))]
    if not lists:
        raise ValueError(f"{type(model).__name__} has no `blocks` or `resblocks` to unfreeze")
    for _, blocks in lists:
        for block in list(blocks)[-n_blocks:]:
            block.requires_grad_(True)
    inside = tuple(f"{name}." for name, _ in lists)
    for name, p in model.named_parameters():
        if not name.startswith(inside) and set(name.split(".")) & set(FINAL_NORMS):
            p.requires_grad_(True)
    return [name for name, p in model.named_parameters() if p.requires_grad]


class EncoderWithHeads(nn.Module):
    """Images -> encoder features -> heads; frozen parts stay in eval mode (BatchNorm statistics kept)."""

    def __init__(self, encoder: nn.Module, heads: nn.Module) -> None:
        super().__init__()
        self.encoder, self.heads = encoder, heads

    def train(self, mode: bool = True) -> EncoderWithHeads:
        super().train(mode)
        for module in self.encoder.modules():
            if not any(p.requires_grad for p in module.parameters(recurse=False)):
                module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads(self.encoder(x))


def finetune(encoder: nn.Module, heads: nn.Module, store: str | os.PathLike, train_idx: np.ndarray,
             val_idx: np.ndarray, config: TrainConfig | None = None,
             n_blocks: int = 2, mean=None, std=None, crop: int = 224, device: str = "cpu",
             num_workers: int = 0, progress: bool = True) -> TrainResult:
    """Fine-tune the last `n_blocks` of `encoder` plus the heads on random crops of the training images,
    validating on centre crops of val_idx (inside the budget). Returns the usual TrainResult.
    Default config: TrainConfig(lr=1e-4, batch_size=32, epochs=20)."""
    config = config or TrainConfig(lr=1e-4, batch_size=32, epochs=20)
    mean, std = mean or IMAGENET_MEAN, std or IMAGENET_STD
    trainable = unfreeze_last_blocks(encoder, n_blocks)
    model = EncoderWithHeads(encoder, heads).to(device)
    train_ds = StoreDataset(store, train_idx, train=True, crop=crop, mean=mean, std=std, seed=config.seed)
    val_ds = StoreDataset(store, val_idx, train=False, crop=crop, mean=mean, std=std)

    def batches(epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        train_ds.set_epoch(epoch)
        gen = torch.Generator().manual_seed(config.seed * 1000 + epoch)
        for x, y in DataLoader(train_ds, batch_size=config.batch_size, shuffle=True, generator=gen,
                               num_workers=num_workers):
            yield x.to(device), y.to(device)

    def val_inputs() -> Iterator[torch.Tensor]:
        return (x.to(device) for x, _ in DataLoader(val_ds, batch_size=config.batch_size, num_workers=num_workers))

    params = [p for p in model.parameters() if p.requires_grad]
    result = fit(model, batches, val_inputs, val_ds.targets, config, params=params, progress=progress)
    result.trainable = trainable
    return result

"""The optional last stage: fine-tune the last blocks of the encoder(s) together with the heads, on images."""
from __future__ import annotations

import copy
import os
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from ..data.torch_dataset import IMAGENET_MEAN, IMAGENET_STD, StoreDataset
from .clip import ClipBundle, PromptHeads
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


def _fit_on_images(model: nn.Module, store: str | os.PathLike, train_idx: np.ndarray, val_idx: np.ndarray,
                   config: TrainConfig, mean, std, crop: int, device: str, num_workers: int,
                   progress: bool) -> TrainResult:
    """Train the trainable parameters of `model` on random crops of the training images of a store,
    validating on centre crops of val_idx (inside the budget)."""
    model = model.to(device)
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
    return fit(model, batches, val_inputs, val_ds.targets, config, params=params, progress=progress)


def finetune(encoder: nn.Module, heads: nn.Module, store: str | os.PathLike, train_idx: np.ndarray,
             val_idx: np.ndarray, config: TrainConfig | None = None,
             n_blocks: int = 2, mean=None, std=None, crop: int = 224, device: str = "cpu",
             num_workers: int = 0, progress: bool = True) -> TrainResult:
    """Fine-tune the last `n_blocks` of `encoder` plus the heads on random crops of the training images,
    validating on centre crops of val_idx (inside the budget). Returns the usual TrainResult.
    Default config: TrainConfig(lr=1e-4, batch_size=32, epochs=20)."""
    config = config or TrainConfig(lr=1e-4, batch_size=32, epochs=20)
    trainable = unfreeze_last_blocks(encoder, n_blocks)
    model = EncoderWithHeads(encoder, heads)
    result = _fit_on_images(model, store, train_idx, val_idx, config, mean or IMAGENET_MEAN, std or IMAGENET_STD,
                            crop, device, num_workers, progress)
    result.trainable = trainable
    return result


# The authors' fourth step: the last 4 residual blocks of both CLIP encoders and the final layer norms
# (their names: image_encoder.transformer.resblocks.8-11, image_encoder.ln_post, text_encoder.
# transformer.resblocks.8-11, text_encoder.ln_final), with the prompt contexts; projections stay frozen.
AUTHORS_FINETUNE_BLOCKS = 4


def unfreeze_clip_like_authors(clip_model: nn.Module, n_blocks: int = AUTHORS_FINETUNE_BLOCKS) -> list[str]:
    """Freeze an open_clip CLIP, then unfreeze the last `n_blocks` residual blocks of its image and text
    transformers, `visual.ln_post` and `ln_final`; the projections (`visual.proj`, `text_projection`),
    embeddings and everything else stay frozen. Returns the names of the trainable parameters."""
    towers = {"visual.transformer.resblocks": clip_model.visual.transformer.resblocks,
              "transformer.resblocks": clip_model.transformer.resblocks}
    for name, blocks in towers.items():
        if not 1 <= n_blocks <= len(blocks):
            raise ValueError(f"n_blocks must lie in 1..{len(blocks)} (the blocks of {name}), got {n_blocks}")
    clip_model.requires_grad_(False)
    for blocks in towers.values():
        for block in list(blocks)[-n_blocks:]:
            block.requires_grad_(True)
    clip_model.visual.ln_post.requires_grad_(True)
    clip_model.ln_final.requires_grad_(True)
    return [name for name, p in clip_model.named_parameters() if p.requires_grad]


class ClipWithPrompts(nn.Module):
    """Images -> CLIP image embedding -> the three prompt learners, whose text runs through the same
    (registered, so trainable) CLIP text transformer: the authors' CustomCLIP, for fine-tuning."""

    def __init__(self, heads: PromptHeads, image_size: int) -> None:
        super().__init__()
        self.clip, self.heads, self.size = heads.learners[0].clip[0], heads, image_size
        if any(learner.clip[0] is not self.clip for learner in heads.learners):
            raise ValueError("the three prompt learners must share one CLIP model")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bicubic", align_corners=False)
        return self.heads(F.normalize(self.clip.encode_image(x.contiguous()), dim=-1))


def finetune_clip(bundle: ClipBundle, heads: PromptHeads, store: str | os.PathLike, train_idx: np.ndarray,
                  val_idx: np.ndarray, config: TrainConfig | None = None, n_blocks: int = AUTHORS_FINETUNE_BLOCKS,
                  crop: int = 224, device: str = "cpu", num_workers: int = 0, progress: bool = True) -> TrainResult:
    """The authors' last step: from trained prompt learners, fine-tune a copy of CLIP (the last `n_blocks`
    of both encoders, ln_post, ln_final) together with the prompt contexts on image crops of the store,
    in the model's own normalisation. Default config: TrainConfig.authors_finetune(). The bundle's
    model and `heads` are left untouched; result.model is a ClipWithPrompts, result.trainable its
    trainable parameter names."""
    config = config or TrainConfig.authors_finetune()
    own = copy.deepcopy(heads)                    # one deep copy: the three learners share one CLIP copy
    model = ClipWithPrompts(own, bundle.image_size)
    trainable = [f"clip.{n}" for n in unfreeze_clip_like_authors(model.clip, n_blocks)]
    own.requires_grad_(True)
    result = _fit_on_images(model, store, train_idx, val_idx, config, bundle.mean, bundle.std, crop, device,
                            num_workers, progress)
    result.trainable = trainable + [f"heads.{n}" for n, _ in own.named_parameters()]
    return result

"""The CLIP path (open_clip_torch): zero-shot antonym votes and CoOp-style prompt learners.

Weights come from a local file the user gives (or 'openai' when online). `tiny_clip()` builds a
small randomly initialised CLIP with the real tokenizer so the whole path runs offline in tests.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .features import cached_features
from .heads import HEADS

# The six antonym questions of the paper, positive word first, and their three templates each.
ATTRIBUTES: tuple[tuple[str, str], ...] = (("bright", "dark"), ("sharp", "blurry"), ("clear", "unclear"),
                                           ("good", "bad"), ("obvious", "unobvious"), ("high quality", "low quality"))
GENERAL_TEMPLATES = ("this photo is {}.", "{} photo.", "this is a {} photo.")
NOISE_TEMPLATES = ("the noise in this photo is {}.", "{} noise is in this photo.", "this photo has {} noise.")
# The quality question's templates as in the authors' code (the paper prints only the first).
QUALITY_TEMPLATES = ("It's a photo of {}.", "{} photo.", "this is a {} photo.")
TEMPLATES = (GENERAL_TEMPLATES,) * 4 + (NOISE_TEMPLATES, QUALITY_TEMPLATES)
CLASS_POSITIONS = ("end", "middle", "front")


@dataclass
class ClipBundle:
    """A frozen CLIP model with its tokenizer and its own preprocessing constants."""

    model: nn.Module
    tokenizer: object
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: int
    name: str
    weights_id: str


def _freeze(model: nn.Module) -> nn.Module:
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def load_clip(name: str = "ViT-B-16", weights: str | os.PathLike = "openai", device: str = "cpu") -> ClipBundle:
    """A frozen open_clip model from a local weights file (or 'openai' with a network)."""
    import open_clip

    weights = os.fspath(weights)
    if weights != "openai" and not os.path.isfile(weights):
        raise FileNotFoundError(f"CLIP weights file {weights} not found; download e.g. ViT-B-16 'openai' weights "
                                "(open_clip_pytorch_model.bin) and pass its path")
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=weights, device=device)
    except RuntimeError as err:
        raise RuntimeError(f"could not load CLIP {name} weights {weights!r} ({err}); offline, pass a local file") from None
    cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
    size = model.visual.image_size
    return ClipBundle(_freeze(model), open_clip.get_tokenizer(name), tuple(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)),
                      tuple(cfg.get("std", open_clip.OPENAI_DATASET_STD)), int(size[0] if isinstance(size, tuple) else size),
                      name, f"{name}:{os.path.basename(weights)}")


def tiny_clip(seed: int = 0, image_size: int = 32) -> ClipBundle:
    """A tiny randomly initialised CLIP (3M parameters) with the real tokenizer: for tests and smoke runs."""
    import open_clip

    torch.manual_seed(seed)
    model = open_clip.CLIP(embed_dim=32, vision_cfg=dict(layers=2, width=64, patch_size=8, image_size=image_size, head_width=32),
                           text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=2, layers=2))
    return ClipBundle(_freeze(model), open_clip.get_tokenizer("ViT-B-16"), open_clip.OPENAI_DATASET_MEAN,
                      open_clip.OPENAI_DATASET_STD, image_size, "tiny", f"tiny:seed{seed}")


class ClipImageEncoder(nn.Module):
    """Normalised CLIP image embeddings of already normalised crops, resized to the model's input size."""

    def __init__(self, bundle: ClipBundle) -> None:
        super().__init__()
        self.visual, self.size = bundle.model.visual, bundle.image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bicubic", align_corners=False)
        return F.normalize(self.visual(x.contiguous()), dim=-1)


def preprocess_uint8(bundle: ClipBundle, images: np.ndarray) -> torch.Tensor:
    """uint8 images (N, H, W, 3) -> the model's own input: resized (bicubic) and normalised."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
    x = F.interpolate(x, size=(bundle.image_size,) * 2, mode="bicubic", align_corners=False, antialias=True)
    return (x - torch.tensor(bundle.mean).view(1, 3, 1, 1)) / torch.tensor(bundle.std).view(1, 3, 1, 1)


@torch.inference_mode()
def text_embeddings(bundle_or_model, tokenizer, texts: Sequence[str]) -> torch.Tensor:
    """Normalised text embeddings (T, E)."""
    model = getattr(bundle_or_model, "model", bundle_or_model)
    return F.normalize(model.encode_text(tokenizer(list(texts))), dim=-1)


@torch.inference_mode()
def clip_zero_shot_votes(model, tokenizer, images, batch_size: int = 64) -> np.ndarray:
    """Zero-shot antonym votes (6 attributes, N images, 3 templates) in [0, 1]: p(positive word).

    model: an open_clip model or a ClipBundle. images: a float tensor (N, 3, H, W) already in the
    model's input form, image embeddings (N, E), or uint8 (N, H, W, 3) (then a ClipBundle is needed
    for the model's own preprocessing).
    """
    bundle = model if isinstance(model, ClipBundle) else None
    clip = getattr(model, "model", model)
    if isinstance(images, np.ndarray) and images.dtype == np.uint8:
        if bundle is None:
            raise ValueError("uint8 images need a ClipBundle (for the model's own preprocessing)")
        images = preprocess_uint8(bundle, images)
    images = torch.as_tensor(images)
    if images.ndim == 2:
        img = F.normalize(images.float(), dim=-1)
    else:
        img = torch.cat([F.normalize(clip.encode_image(images[i:i + batch_size]), dim=-1)
                         for i in range(0, len(images), batch_size)])
    texts = [tpl.format(word) for (pos, neg), tpls in zip(ATTRIBUTES, TEMPLATES) for tpl in tpls for word in (pos, neg)]
    txt = text_embeddings(clip, tokenizer, texts).view(len(ATTRIBUTES), 3, 2, -1)
    logits = clip.logit_scale.exp() * torch.einsum("ne,atke->antk", img, txt)
    return logits.softmax(dim=-1)[..., 0].numpy()


class PromptLearner(nn.Module):
    """CoOp: n_ctx learned context vectors shared by a pair of class words, placed before ("end"),
    around ("middle") or after ("front") the class word; encoded by CLIP's frozen text transformer."""

    def __init__(self, clip: nn.Module, tokenizer, classes: tuple[str, str], n_ctx: int = 4,
                 position: str = "end", init_std: float = 0.02) -> None:
        super().__init__()
        if position not in CLASS_POSITIONS:
            raise ValueError(f"unknown class-token position {position!r}; choose from {CLASS_POSITIONS}")
        self.clip = [clip]  # a list keeps the frozen model out of this module's parameters and state
        width = clip.token_embedding.weight.shape[1]
        self.ctx = nn.Parameter(torch.randn(n_ctx, width) * init_std)
        half = n_ctx // 2
        ph, before, after = " ".join(["X"] * n_ctx), " ".join(["X"] * half), " ".join(["X"] * (n_ctx - half))
        prompts = {"end": [f"{ph} {c}." for c in classes], "front": [f"{c} {ph}." for c in classes],
                   "middle": [f"{before} {c} {after}.".strip() for c in classes]}[position]
        tokens = tokenizer(prompts)
        x_id = int(tokenizer(["X"])[0, 1])
        slots = [torch.nonzero(t == x_id).flatten()[:n_ctx] for t in tokens]
        if any(len(s) != n_ctx for s in slots):
            raise ValueError(f"this tokenizer does not keep the {n_ctx} placeholder words of {prompts}; "
                             "use the model's own open_clip tokenizer")
        self.register_buffer("tokens", tokens, persistent=False)
        self.register_buffer("slots", torch.stack(slots), persistent=False)
        self.meta = dict(classes=list(classes), n_ctx=n_ctx, position=position)

    def text_features(self) -> torch.Tensor:
        """Normalised text embeddings (2, E) of the two prompts with the current context."""
        clip = self.clip[0]
        emb = clip.token_embedding(self.tokens).clone()
        for row in range(len(emb)):
            emb[row, self.slots[row]] = self.ctx.to(emb.dtype)
        x = emb + clip.positional_embedding
        x = clip.ln_final(clip.transformer(x, attn_mask=clip.attn_mask))
        x = x[torch.arange(len(x)), self.tokens.argmax(dim=-1)]
        x = clip.text_projection(x) if isinstance(clip.text_projection, nn.Linear) else x @ clip.text_projection
        return F.normalize(x, dim=-1)

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:
        """p(first class) for normalised image embeddings (B, E)."""
        logits = self.clip[0].logit_scale.exp() * image_features @ self.text_features().T
        return logits.softmax(dim=-1)[:, 0]


class PromptHeads(nn.Module):
    """The paper's three prompt learners over one frozen CLIP: image embeddings (B, E) -> (B, 3)."""

    def __init__(self, bundle: ClipBundle, n_ctx: int = 4, position: str = "end", seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.learners = nn.ModuleList([PromptLearner(bundle.model, bundle.tokenizer, pair, n_ctx, position)
                                       for pair in HEADS.values()])
        self.config = dict(clip=bundle.name, clip_weights=bundle.weights_id, n_ctx=n_ctx, position=position, seed=seed)

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:
        return torch.stack([learner(image_features) for learner in self.learners], dim=1)


def clip_features(store_path: str | os.PathLike, bundle: ClipBundle, view: str = "center", batch_size: int = 64,
                  device: str = "cpu", crop: int = 224, seed: int = 0, progress: bool = True) -> np.ndarray:
    """Normalised CLIP image embeddings of a store (N, E) or (k, N, E), cached beside it."""
    spec = dict(backbone=f"clip:{bundle.name}", weights=bundle.weights_id)
    return cached_features(store_path, lambda: ClipImageEncoder(bundle), spec, bundle.mean, bundle.std, view=view,
                           batch_size=batch_size, device=device, crop=crop, seed=seed, progress=progress)

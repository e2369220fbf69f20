"""The authors' released KonIQ-10k models (koniq_rt05/10/25/80.pt) in this package's classes.

Their checkpoints are `nn.DataParallel(CustomCLIP).state_dict()`: OpenAI's CLIP ViT-B/16 (QuickGELU)
under module.image_encoder.* and module.text_encoder.* (no token table), module.logit_scale, and three
CoOp prompt learners module.prompt_learner{0,1,2} (good/bad, clear/unclear, high/low quality; class word
at the end) each with ctx (n_ctx, width) and the embedded prompt tokens around it as token_prefix
(2, 1, width) and token_suffix (2, 77 - 1 - n_ctx, width). data/authors_release/released_model_keys.json
lists every key and shape. Here the same weights sit in an open_clip CLIP and this package's PromptHeads;
`ReleasedModel.authors_state()` names them back in the authors' layout, which is how loading is checked.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .clip import ClipBundle, PromptHeads, clip_architecture
from .heads import HEADS

PREFIX = "module."
IMAGENET_MEAN = (0.485, 0.456, 0.406)   # their test() normalises with ImageNet's statistics, not CLIP's
IMAGENET_STD = (0.229, 0.224, 0.225)
QUALITY_HEAD = 2                        # their reported prediction: prompt_learner2, "high quality" vs "low quality"


class _NoTokenTable(nn.Module):
    """Stands where CLIP's token table would be: the authors' checkpoints do not hold it."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("the authors' released checkpoint holds no token-embedding table: only its three prompt "
                           "learners' stored prompts can be encoded (zero-shot text needs real CLIP weights)")


class ReleasedModel(nn.Module):
    """CLIP + the three prompt learners of a released checkpoint: normalised images (B, 3, 224, 224) ->
    (B, 3) probabilities of the first word of each pair."""

    def __init__(self, clip: nn.Module, heads: PromptHeads) -> None:
        super().__init__()
        self.clip, self.heads = clip, heads

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.heads(F.normalize(self.clip.encode_image(images), dim=-1))

    def authors_state(self) -> dict[str, torch.Tensor]:
        """This model's tensors under the authors' checkpoint keys ("module." prefix), in their order."""
        out = {f"{PREFIX}logit_scale": self.clip.logit_scale}
        for i, learner in enumerate(self.heads.learners):
            n_ctx, emb = learner.ctx.shape[0], learner.token_embeddings
            out[f"{PREFIX}prompt_learner{i}.ctx"] = learner.ctx
            out[f"{PREFIX}prompt_learner{i}.token_prefix"] = emb[:, :1]
            out[f"{PREFIX}prompt_learner{i}.token_suffix"] = emb[:, 1 + n_ctx:]
        out.update({f"{PREFIX}image_encoder.{k}": v for k, v in self.clip.visual.state_dict().items()})
        text = {"positional_embedding": self.clip.positional_embedding, "text_projection": self.clip.text_projection}
        text.update({f"transformer.{k}": v for k, v in self.clip.transformer.state_dict().items()})
        text.update({f"ln_final.{k}": v for k, v in self.clip.ln_final.state_dict().items()})
        out.update({f"{PREFIX}text_encoder.{k}": v for k, v in text.items()})
        return out


def _get(state: dict[str, torch.Tensor], key: str, source: str) -> torch.Tensor:
    """state[PREFIX + key], or an error naming the missing key."""
    if PREFIX + key not in state:
        raise ValueError(f"{source} lacks the key {PREFIX + key!r}: not one of the authors' released checkpoints "
                       "(koniq_rt05/10/25/80.pt from their repository esnthere/AL-IQA)")
    return state[PREFIX + key]


def _blocks(state: dict[str, torch.Tensor], tower: str) -> int:
    """How many residual blocks one tower of a checkpoint has."""
    pattern = re.compile(rf"{re.escape(PREFIX)}{tower}\.transformer\.resblocks\.(\d+)\.")
    return len({m.group(1) for k in state if (m := pattern.match(k))})


def architecture(state: dict[str, torch.Tensor], source: str = "the checkpoint") -> dict:
    """open_clip CLIP settings and n_ctx read off a checkpoint's shapes, as OpenAI's build_model does
    (heads = width // 64 in both towers)."""
    conv = _get(state, "image_encoder.conv1.weight", source)
    grid = round((_get(state, "image_encoder.positional_embedding", source).shape[0] - 1) ** 0.5)
    vision_layers, text_layers = _blocks(state, "image_encoder"), _blocks(state, "text_encoder")
    width = _get(state, "text_encoder.ln_final.weight", source).shape[0]
    return dict(embed_dim=_get(state, "text_encoder.text_projection", source).shape[1],
                vision_cfg=dict(layers=vision_layers, width=conv.shape[0], patch_size=conv.shape[-1],
                                image_size=conv.shape[-1] * grid, head_width=64),
                text_cfg=dict(context_length=_get(state, "text_encoder.positional_embedding", source).shape[0],
                              vocab_size=1, width=width, heads=max(1, width // 64), layers=text_layers),
                n_ctx=_get(state, "prompt_learner0.ctx", source).shape[0])


def build_released(arch: dict, name: str = "released") -> ReleasedModel:
    """A ReleasedModel of the given architecture with random weights (the key layout of the authors' files)."""
    import open_clip

    arch = dict(arch)
    n_ctx = arch.pop("n_ctx")
    model = clip_architecture("ViT-B-16", True, **arch)   # OpenAI's CLIP: QuickGELU
    model.token_embedding = _NoTokenTable()
    tokenizer = open_clip.get_tokenizer("ViT-B-16")
    width, length = arch["text_cfg"]["width"], arch["text_cfg"]["context_length"]
    bundle = ClipBundle(model, tokenizer, IMAGENET_MEAN, IMAGENET_STD, arch["vision_cfg"]["image_size"], name, name)
    stored = [torch.zeros(2, length, width) for _ in HEADS]
    return ReleasedModel(model, PromptHeads(bundle, n_ctx=n_ctx, position="end", token_embeddings=stored)).eval()


def vit_b16_architecture(n_ctx: int = 8) -> dict:
    """The released models' architecture: OpenAI CLIP ViT-B/16 with 8 context tokens per learner."""
    return dict(embed_dim=512, vision_cfg=dict(layers=12, width=768, patch_size=16, image_size=224, head_width=64),
                text_cfg=dict(context_length=77, vocab_size=1, width=512, heads=8, layers=12), n_ctx=n_ctx)


def load_released(path: str | os.PathLike, device: str = "cpu") -> ReleasedModel:
    """Load one of the authors' released checkpoints; every key must be present with its shape."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no released checkpoint at {path}; download koniq_rt25.pt (or rt05/10/80) from "
                                "the link in the authors' repository esnthere/AL-IQA")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} is not a state dict of tensors like the authors' released checkpoints")
    model = build_released(architecture(state, str(path)), name=f"released:{path.name}")
    own = model.authors_state()
    missing, unexpected = [k for k in own if k not in state], [k for k in state if k not in own]
    if missing or unexpected:
        raise ValueError(f"{path} does not have the authors' key layout: missing {missing[:5]}"
                       f"{' ...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                       f"{' ...' if len(unexpected) > 5 else ''} (see data/authors_release/released_model_keys.json)")
    wrong = [f"{k} has shape {tuple(state[k].shape)}, expected {tuple(v.shape)}" for k, v in own.items()
             if state[k].shape != v.shape]
    if wrong:
        raise ValueError(f"{path}: {'; '.join(wrong[:5])}")
    with torch.no_grad():
        for key, target in own.items():
            target.copy_(state[key].to(target.dtype))   # views: prefix/suffix land in the stored prompt embeddings
    for p in model.parameters():
        p.requires_grad_(False)
    return model.to(device).eval()

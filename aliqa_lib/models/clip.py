"""The CLIP path (open_clip_torch): zero-shot antonym votes and CoOp-style prompt learners.

Weights come from a local file the user gives (or 'openai' when online). `tiny_clip()` builds a
small randomly initialised CLIP with the real tokenizer so the whole path runs offline in tests.
"""
from __future__ import annotations

import os
import warnings
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


OPENAI_SIGNATURE_KEYS = ("input_resolution", "context_length", "vocab_size")  # in OpenAI's own state dicts only


def _is_torchscript(path: str) -> bool:
    """True for a TorchScript archive (OpenAI's released CLIP files are; open_clip's are plain state dicts)."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in zf.namelist())


def read_clip_weights(path: str) -> tuple[dict[str, torch.Tensor], bool]:
    """(state dict, is TorchScript) of a CLIP weights file; plain files load with weights_only=True."""
    if _is_torchscript(path):
        # OpenAI's released CLIP files exist only as TorchScript archives, which nothing but torch.jit.load
        # reads; its deprecation warning ("switch to torch.export") offers the reader no alternative.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.* is deprecated", category=FutureWarning)
            return dict(torch.jit.load(path, map_location="cpu").state_dict()), True
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a CLIP state dict")
    return state, False


def activation_of_file(path: str, state: dict[str, torch.Tensor], torchscript: bool) -> tuple[bool, str] | None:
    """(QuickGELU?, why) when a weights file says which activation it was trained with, else None:
    OpenAI's own files (a TorchScript archive, or their state-dict keys) were trained with QuickGELU, and
    an open_clip_config.json beside the file (as on the Hugging Face hub) states quick_gelu."""
    if torchscript:
        return True, "a TorchScript archive, the format of OpenAI's own CLIP files"
    found = [k for k in OPENAI_SIGNATURE_KEYS if k in state]
    if found:
        return True, f"OpenAI's state-dict keys {found}"
    config = os.path.join(os.path.dirname(os.path.abspath(path)), "open_clip_config.json")
    if os.path.isfile(config):
        import json

        with open(config, encoding="utf-8") as fh:
            model_cfg = json.load(fh).get("model_cfg", {})
        return bool(model_cfg.get("quick_gelu", False)), f"quick_gelu in {config}"
    return None


def uses_quick_gelu(name: str, quick_gelu: bool | None, from_file: tuple[bool, str] | None, weights: str) -> bool:
    """Whether the model needs CLIP's QuickGELU MLPs: the name's -quickgelu suffix, an explicit choice,
    or what the weights file says; weights that say nothing are an error, never a guess."""
    if name.endswith("-quickgelu"):
        if quick_gelu is False:
            raise ValueError(f"{name} is a QuickGELU architecture but quick_gelu=False was passed; drop one of them")
        return True
    if quick_gelu is not None:
        return bool(quick_gelu)
    if from_file is not None:
        return from_file[0]
    raise ValueError(f"cannot tell whether {weights} holds OpenAI-trained CLIP weights (trained with QuickGELU, e.g. "
                     "open_clip's 'openai' ViT-B-16 the README points to) or GELU-trained ones (LAION, DataComp): "
                     f"pass quick_gelu=True or False, or the name '{name}-quickgelu'")


def _load_state(model: nn.Module, state: dict[str, torch.Tensor], path: str) -> None:
    """Load a CLIP state dict strictly (OpenAI's extra keys, a DataParallel prefix and buffers the model
    rebuilds itself, like a TorchScript archive's attn_mask, dropped)."""
    own = model.state_dict()
    rebuilt = {name for name, _ in model.named_buffers()} - set(own)
    state = {k.removeprefix("module."): v for k, v in state.items() if k not in OPENAI_SIGNATURE_KEYS}
    state = {k: v for k, v in state.items() if k not in rebuilt}
    if "logit_scale" in state and state["logit_scale"].ndim != model.logit_scale.ndim:
        state["logit_scale"] = state["logit_scale"].reshape(model.logit_scale.shape)
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(own[k].shape)})" for k in own
             if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        raise ValueError(f"{path} does not fit this CLIP architecture: missing {missing[:5]}, unexpected "
                         f"{unexpected[:5]}, misshapen {wrong[:5]}; check the model name")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})


def clip_architecture(name: str, quick_gelu: bool, **model_kwargs) -> nn.Module:
    """open_clip's model `name` with random weights and the chosen activation (model_kwargs override its config)."""
    import open_clip

    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise ValueError(f"unknown open_clip model {name!r}; choose from open_clip.list_models(), e.g. ViT-B-16")
    cfg = {**cfg, **model_kwargs, "quick_gelu": quick_gelu}
    return (open_clip.CustomTextCLIP if cfg.pop("custom_text", False) else open_clip.CLIP)(**cfg)


def load_clip(name: str = "ViT-B-16", weights: str | os.PathLike = "openai", device: str = "cpu",
              quick_gelu: bool | None = None, **model_kwargs) -> ClipBundle:
    """A frozen open_clip model from a local weights file (or 'openai' with a network).

    The activation follows the weights (uses_quick_gelu): OpenAI-trained CLIP always gets QuickGELU, from
    the name ("ViT-B-16-quickgelu"), quick_gelu=True, or the file's origin (a TorchScript archive,
    OpenAI's state-dict keys, an open_clip_config.json beside it); a file that says nothing is an
    error, not a guess.
    model_kwargs override open_clip's model config (e.g. a tiny architecture in tests).
    """
    import warnings

    import open_clip

    weights = os.fspath(weights)
    base = name.removesuffix("-quickgelu")
    if weights == "openai":
        quick = uses_quick_gelu(name, quick_gelu, (True, "the 'openai' tag"), weights)
        try:
            with warnings.catch_warnings():  # open_clip warns of the 'ViT-B-16' + 'openai' mismatch forced right here
                warnings.filterwarnings("ignore", message="QuickGELU mismatch")
                model = open_clip.create_model(base, pretrained="openai", force_quick_gelu=quick, device=device,
                                               **model_kwargs)
        except RuntimeError as err:
            raise RuntimeError(f"could not load CLIP {name} weights 'openai' ({err}); offline, pass a local file") from None
    else:
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"CLIP weights file {weights} not found; download e.g. ViT-B-16 'openai' weights "
                                    "(open_clip_pytorch_model.bin) and pass its path")
        state, torchscript = read_clip_weights(weights)
        quick = uses_quick_gelu(name, quick_gelu, activation_of_file(weights, state, torchscript), weights)
        model = clip_architecture(base, quick, **model_kwargs)
        _load_state(model, state, weights)
        model = model.to(device)
    arch = f"{base}-quickgelu" if quick else base
    cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
    size = model.visual.image_size
    return ClipBundle(_freeze(model), open_clip.get_tokenizer(base), tuple(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)),
                      tuple(cfg.get("std", open_clip.OPENAI_DATASET_STD)), int(size[0] if isinstance(size, tuple) else size),
                      arch, f"{arch}:{os.path.basename(weights)}")


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
    around ("middle") or after ("front") the class word; encoded by CLIP's frozen text transformer.

    token_embeddings (2, context length, width), when given, are the embedded prompt tokens used instead
    of CLIP's token table (the authors' checkpoints store them as token_prefix/token_suffix and hold no
    table); their placeholder slots are overwritten by the context.
    """

    def __init__(self, clip: nn.Module, tokenizer, classes: tuple[str, str], n_ctx: int = 4,
                 position: str = "end", init_std: float = 0.02, token_embeddings: torch.Tensor | None = None) -> None:
        super().__init__()
        if position not in CLASS_POSITIONS:
            raise ValueError(f"unknown class-token position {position!r}; choose from {CLASS_POSITIONS}")
        self.clip = [clip]  # a list keeps the frozen model out of this module's parameters and state
        width = clip.ln_final.weight.shape[0]
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
        if token_embeddings is not None and tuple(token_embeddings.shape) != (*tokens.shape, width):
            raise ValueError(f"token_embeddings of shape {tuple(token_embeddings.shape)} do not fit the prompts "
                             f"{prompts}: expected {(*tokens.shape, width)}")
        self.register_buffer("token_embeddings", token_embeddings)
        self.meta = dict(classes=list(classes), n_ctx=n_ctx, position=position)

    def text_features(self) -> torch.Tensor:
        """Normalised text embeddings (2, E) of the two prompts with the current context."""
        clip = self.clip[0]
        emb = (clip.token_embedding(self.tokens) if self.token_embeddings is None else self.token_embeddings).clone()
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

    def __init__(self, bundle: ClipBundle, n_ctx: int = 4, position: str = "end", seed: int = 0,
                 token_embeddings: Sequence[torch.Tensor] | None = None) -> None:
        super().__init__()
        torch.manual_seed(seed)
        stored = list(token_embeddings) if token_embeddings is not None else [None] * len(HEADS)
        self.learners = nn.ModuleList([PromptLearner(bundle.model, bundle.tokenizer, pair, n_ctx, position, token_embeddings=t)
                                       for pair, t in zip(HEADS.values(), stored, strict=True)])
        self.config = dict(clip=bundle.name, clip_weights=bundle.weights_id, n_ctx=n_ctx, position=position, seed=seed)

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:
        return torch.stack([learner(image_features) for learner in self.learners], dim=1)


def clip_features(store_path: str | os.PathLike, bundle: ClipBundle, view: str = "center", batch_size: int | None = None,
                  device: str = "cpu", crop: int = 224, seed: int = 0, progress: bool = True) -> np.ndarray:
    """Normalised CLIP image embeddings of a store (N, E) or (k, N, E), cached beside it."""
    spec = dict(backbone=f"clip:{bundle.name}", weights=bundle.weights_id)
    return cached_features(store_path, lambda: ClipImageEncoder(bundle), spec, bundle.mean, bundle.std, view=view,
                           batch_size=batch_size, device=device, crop=crop, seed=seed, progress=progress)


def clip_from_parameter(weights: str | os.PathLike | None, name: str = "ViT-B-16-quickgelu", device: str = "cpu",
                        seed: int = 0) -> ClipBundle | None:
    """The CLIP of a notebook's CLIP_WEIGHTS parameter: "" (or None) -> None, the offline path;
    "tiny" -> a tiny random CLIP (plumbing only: smoke runs and tests); else a weights file for load_clip."""
    if weights is None or os.fspath(weights) == "":
        return None
    if os.fspath(weights) == "tiny":
        return tiny_clip(seed)
    return load_clip(name, weights, device=device)

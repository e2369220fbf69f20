"""Antonym quality heads for any feature vector: three 2-way softmaxes over learned anchor pairs."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# The paper's three prompt learners' class pairs, positive word first; every head of this package
# (antonym heads on features, CLIP prompt learners) answers these, in this order.
HEADS: dict[str, tuple[str, str]] = {"good_bad": ("good", "bad"), "clear_unclear": ("clear", "unclear"),
                                     "high_low_quality": ("high quality", "low quality")}
HEAD_NAMES = tuple(HEADS)
PREDICT_CHOICES = ("mean",) + HEAD_NAMES


def soft_bce(p: torch.Tensor, y: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Soft binary cross-entropy -[y log p + (1-y) log(1-p)], summed over heads, mean over the batch."""
    p = p.clamp(eps, 1 - eps)
    y = y.reshape(-1, 1).expand_as(p)
    return -(y * p.log() + (1 - y) * (1 - p).log()).sum(dim=1).mean()


def combine(p: np.ndarray | torch.Tensor, predict: str = "mean"):
    """One score per image from head outputs (B, 3): their mean or one named head."""
    if predict not in PREDICT_CHOICES:
        raise ValueError(f"unknown prediction {predict!r}; choose from {PREDICT_CHOICES}")
    return p.mean(1) if predict == "mean" else p[:, HEAD_NAMES.index(predict)]


class AntonymHeads(nn.Module):
    """Features -> standardise -> small MLP -> unit embedding -> for each head, cosine logits against a
    learned positive and negative anchor -> p = softmax(first). The 3 outputs are the head votes."""

    def __init__(self, in_dim: int, embed_dim: int = 128, hidden: int = 256, dropout: float = 0.1,
                 n_heads: int = len(HEAD_NAMES), init_scale: float = 10.0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))
        self.proj = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, embed_dim))
        self.anchors = nn.Parameter(torch.randn(n_heads, 2, embed_dim) * 0.02)
        self.log_scale = nn.Parameter(torch.tensor(float(np.log(init_scale))))
        self.config = dict(in_dim=in_dim, embed_dim=embed_dim, hidden=hidden, dropout=dropout, n_heads=n_heads,
                           init_scale=init_scale)

    def fit_standardisation(self, features: torch.Tensor) -> None:
        """Set the input mean and std from training features."""
        self.mean.copy_(features.mean(0))
        self.std.copy_(features.std(0).clamp_min(1e-6))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        z = F.normalize(self.proj((features - self.mean) / self.std), dim=-1)
        logits = torch.einsum("be,hke->bhk", z, F.normalize(self.anchors, dim=-1)) * self.log_scale.exp()
        return logits.softmax(dim=-1)[..., 0]

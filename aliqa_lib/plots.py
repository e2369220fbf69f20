"""Figures the notebooks share: image grids and label plots."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from .store import Labels, read_images


def image_grid(images: np.ndarray, titles: Sequence[str] | None = None, ncols: int = 6,
               size: float = 1.8, suptitle: str | None = None) -> plt.Figure:
    """Show uint8 images (B, H, W, 3) in a grid with optional titles."""
    n = len(images)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, img in enumerate(images):
        ax = axes.flat[i]
        ax.imshow(img)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def distortion_grid(path: str | os.PathLike, labels: Labels, content: int = 0, size: float = 1.5) -> plt.Figure:
    """One content under every distortion type (rows) and level (columns), titled with the score."""
    if labels.distortion is None or labels.ref is None:
        raise ValueError(f"{path} has no /distortion and /ref columns to arrange a grid by")
    kinds = [k for k in dict.fromkeys(labels.distortion) if k != "reference"]
    levels = sorted(set(labels.level[labels.level > 0]))
    mine = labels.ref == content
    fig, axes = plt.subplots(len(kinds), len(levels) + 1, figsize=(size * (len(levels) + 1), size * len(kinds)), squeeze=False)
    ref_idx = np.flatnonzero(mine & (labels.distortion == "reference"))
    for r, kind in enumerate(kinds):
        idx = list(ref_idx[:1]) + [int(np.flatnonzero(mine & (labels.distortion == kind) & (labels.level == lv))[0]) for lv in levels]
        for c, (i, img) in enumerate(zip(idx, read_images(path, idx))):
            ax = axes[r, c]
            ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{labels.mos[i]:.2f}", fontsize=7)
            if c == 0:
                ax.set_ylabel(kind, fontsize=8)
            if r == 0:
                ax.set_xlabel("reference" if c == 0 else f"level {levels[c - 1]}", fontsize=8)
                ax.xaxis.set_label_position("top")
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, out_dir: str | os.PathLike, name: str) -> Path:
    """Save a figure as PNG in a run's output folder and return its path."""
    path = Path(out_dir) / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path

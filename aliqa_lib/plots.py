"""Figures the notebooks share: image grids and label plots."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import matplotlib.pyplot as plt
import numpy as np

from .data.schema import Labels
from .data.store import read_images


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
    fig.tight_layout(h_pad=0.8)                                # titles of one row clear of the images above
    return fig


def distortion_grid(path: str | os.PathLike, labels: Labels, content: int | None = None,
                    size: float = 1.5) -> plt.Figure:
    """One content (default: the first image's) under every distortion type (rows) and level
    (columns), titled with the score; a pristine reference, when stored, opens each row."""
    if labels.distortion is None or labels.ref is None or labels.level is None:
        raise ValueError(f"{path} has no /distortion, /level and /ref columns to arrange a grid by")
    content = labels.ref[0] if content is None else content
    mine = labels.ref == content
    kinds = [k for k in dict.fromkeys(labels.distortion[mine]) if k != "reference"]
    levels = sorted(set(labels.level[mine & (labels.level > 0)]))
    ref_idx = np.flatnonzero(mine & (labels.distortion == "reference"))[:1]
    columns = (["reference"] if ref_idx.size else []) + [f"level {lv}" for lv in levels]
    fig, axes = plt.subplots(len(kinds), len(columns), figsize=(size * len(columns), size * len(kinds)), squeeze=False)
    for r, kind in enumerate(kinds):
        cells = [ref_idx] * bool(ref_idx.size) + [np.flatnonzero(mine & (labels.distortion == kind) & (labels.level == lv))
                                                 for lv in levels]
        for c, found in enumerate(cells):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if found.size:  # a subset (smoke) may lack some type-level pairs
                ax.imshow(read_images(path, found[:1])[0])
                ax.set_title(f"{labels.mos[found[0]]:.2f}", fontsize=7)
            if c == 0:
                ax.set_ylabel(kind, fontsize=8)
            if r == 0:
                ax.set_xlabel(columns[c], fontsize=8)
                ax.xaxis.set_label_position("top")
    fig.tight_layout()
    return fig


def score_ladder(path: str | os.PathLike, labels: Labels, n: int = 12, ncols: int = 6) -> plt.Figure:
    """`n` images at evenly spaced score ranks, worst to best, titled with what they show and their raw score."""
    order = np.argsort(labels.mos01, kind="stable")
    picks = order[np.unique(np.linspace(0, len(order) - 1, min(n, len(order))).round().astype(int))]
    titles = [f"{caption(labels, i)}: {labels.mos[i]:.2f}" for i in picks]
    fig = image_grid(read_images(path, picks), titles, ncols=ncols,
                     suptitle=f"{labels.attrs['dataset']}: worst to best (raw score)")
    fig.tight_layout(h_pad=1.2)                               # room for two-line titles
    return fig


def caption(labels: Labels, i: int) -> str:
    """Two short lines for image i: its content and, where the store lists them, distortion and level
    (else its name cut in the middle)."""
    if labels.distortion is None or labels.level is None:
        return _short(str(labels.names[i]))
    kind = str(labels.distortion[i])
    what = kind if kind == "reference" else f"{_short(kind, 16)} L{labels.level[i]}"
    return f"{_short(str(labels.names[i]).split('__')[0], 18)}\n{what}"


def file_title(name: str, width: int = 20) -> str:
    """A file's folder and stem on two lines, each cut to `width` ("flower_c20/jpeg_L4.jpg" -> "flower_c20\njpeg_L4")."""
    path = PurePosixPath(str(name).replace("\\", "/"))
    stem = _short(path.stem, width)
    return f"{_short(path.parent.name, width)}\n{stem}" if path.parent.name else stem


def _short(name: str, width: int = 22) -> str:
    """A name cut in the middle to fit a subplot title."""
    return name if len(name) <= width else f"{name[:width // 2 - 1]}...{name[-(width // 2 - 2):]}"


def save(fig: plt.Figure, out_dir: str | os.PathLike, name: str) -> Path:
    """Save a figure as PNG in a run's output folder and return its path."""
    path = Path(out_dir) / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path

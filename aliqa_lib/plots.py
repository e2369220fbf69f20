"""Figures the notebooks share: image grids and label plots."""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from types import MappingProxyType

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .data.schema import Labels
from .data.store import read_images

# One colour per selector, the same in every figure that compares selectors (notebooks 04 and 07).
SELECTOR_COLOURS: Mapping[str, str] = MappingProxyType({
    "random": "tab:blue", "kcenter": "tab:orange", "typiclust": "tab:green", "al_iqa": "tab:red",
    "probcover": "tab:purple", "gsx": "tab:brown", "uncertainty": "tab:pink", "content": "tab:olive",
    "al_iqa_round": "tab:cyan", "full_pool": "black"})
_SPARE_COLOURS = ("tab:gray", "gold", "navy", "teal", "maroon", "lime")   # for names the table does not list


def selector_colours(names: Iterable[str]) -> dict[str, str]:
    """A colour for each selector name: its SELECTOR_COLOURS entry, else the next spare colour (repeating)."""
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in SELECTOR_COLOURS]
    spare = {n: _SPARE_COLOURS[i % len(_SPARE_COLOURS)] for i, n in enumerate(unknown)}
    return {n: SELECTOR_COLOURS.get(n) or spare[n] for n in names}


def selector_panels(summary: pd.DataFrame, reference: str = "random", marks: pd.DataFrame | None = None,
                    marks_label: str = "marks", full_pool: float | None = None, full_pool_label: str = "full pool",
                    ncols: int = 2, title: str | None = None) -> plt.Figure:
    """One panel per selector of `summary` (columns selector, budget, mean, ci95, as evaluation.experiments.summarise
    gives them): its mean with its 95% interval shaded, and `reference` the same way, thinner, in every panel;
    `marks` (selector, budget, mean): open markers named `marks_label`, e.g. another run's means; `full_pool`: a
    dashed line named `full_pool_label`. Budgets on a log axis; one legend below the panels."""
    if reference not in set(summary.selector):
        raise ValueError(f"the summary has no rows for the reference selector {reference!r}; "
                         f"it has {sorted(set(summary.selector))}")
    shown = [s for s in dict.fromkeys(summary.selector) if s != reference]
    colours = selector_colours([reference, *shown])
    nrows = max(1, -(-len(shown) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 2.8 * nrows), sharex=True, sharey=True,
                             squeeze=False, layout="constrained")
    budgets = sorted(summary.budget.unique())
    for ax, name in zip(axes.flat, shown):
        for sel, lw in ((reference, 1.2), (name, 2.0)):
            part = summary[summary.selector == sel].sort_values("budget")
            band = part.ci95.fillna(0)
            ax.fill_between(part.budget, part["mean"] - band, part["mean"] + band, color=colours[sel], alpha=0.15, lw=0)
            ax.plot(part.budget, part["mean"], marker="o", ms=4, lw=lw, color=colours[sel], label=sel)
            if marks is not None:
                mine = marks[marks.selector == sel]
                ax.scatter(mine.budget, mine["mean"], s=50, facecolors="none", edgecolors=colours[sel], lw=1.4,
                           zorder=5)
        if full_pool is not None:
            ax.axhline(full_pool, color="k", ls="--", lw=1)
        ax.set_title(f"{name} against {reference}", fontsize=9)
        ax.set(xscale="log", xticks=budgets, xticklabels=[f"{b:.0%}" for b in budgets])
        ax.minorticks_off()
    for ax in axes.flat[len(shown):]:
        ax.remove()                                         # no empty panels
    for ax in axes[:, 0]:
        ax.set_ylabel("test SRCC")
    for ax in axes[-1, :]:
        ax.set_xlabel("labelled share of the pool")
    handles = [plt.Line2D([], [], color="grey", lw=2, marker="o", ms=4,
                          label="the panel's selector: mean over seeds (shaded: 95% interval)"),
               plt.Line2D([], [], color=colours[reference], lw=1.2, marker="o", ms=4, label=f"{reference}, in every panel")]
    if marks is not None:
        handles.append(plt.Line2D([], [], ls="none", marker="o", ms=7, mfc="none", mec="grey", label=marks_label))
    if full_pool is not None:
        handles.append(plt.Line2D([], [], color="k", ls="--", lw=1, label=full_pool_label))
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def image_grid(images: np.ndarray, titles: Sequence[str] | None = None, ncols: int = 6,
               size: float = 1.8, suptitle: str | None = None) -> plt.Figure:
    """Show uint8 images (B, H, W, 3) in a grid with optional titles."""
    n = len(images)
    nrows = max(1, int(np.ceil(n / ncols)))
    lines = max((str(t).count("\n") + 1 for t in titles), default=0) if titles is not None else 0
    height = (size + 0.15 * lines) * nrows + 0.3                 # room above every row for its titles' lines
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, height), squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for i, img in enumerate(images):
        ax = axes.flat[i]
        ax.imshow(img)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
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
    shown = str(labels.names[ref_idx[0]]).split("__")[0] if ref_idx.size else f"reference {content}"
    fig.suptitle(f"{shown} under each distortion type (rows) and level (columns), score above each image",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))   # tight_layout leaves no room for the suptitle
    return fig


def score_ladder(path: str | os.PathLike, labels: Labels, n: int = 12, ncols: int = 6) -> plt.Figure:
    """`n` images at evenly spaced score ranks, worst to best, titled with what they show and their raw score."""
    order = np.argsort(labels.mos01, kind="stable")
    picks = order[np.unique(np.linspace(0, len(order) - 1, min(n, len(order))).round().astype(int))]
    titles = [f"{caption(labels, i)}: {labels.mos[i]:.2f}" for i in picks]
    fig = image_grid(read_images(path, picks), titles, ncols=ncols,
                     suptitle=f"{labels.attrs['dataset']}: worst to best (raw score)")
    return fig


def score_label(labels: Labels) -> str:
    """Axis label for the raw scores: pseudo-MOS on the embedded dataset, else MOS, with the score range."""
    given = labels.attrs.get("score_range")               # every store has it; in-memory labels may not
    lo, hi = given if given is not None else (np.nanmin(labels.mos), np.nanmax(labels.mos))
    kind = "pseudo-MOS" if labels.attrs.get("dataset") == "synthetic" else "MOS"
    return f"{kind} ({float(lo):g}\u2013{float(hi):g})"


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

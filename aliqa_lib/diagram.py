"""The method on one page: a drawn diagram of AL-IQA's pipeline (notebook 01 and docs/pipeline.png).

Drawn with matplotlib rather than a diagram language (Mermaid, Graphviz) so that the same picture
shows in an executed notebook, in JupyterLab, on GitHub and offline, with no renderer to install.
"""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

# (x, y) centre, width, height, colour, title, body: the boxes of the pipeline, in axes units (0-100)
BOXES = {
    "pool": ((8, 50), 13, 20, "#e8e8e8", "Unlabelled pool",
             "test photos held out\nfirst; never selected"),
    "votes": ((29, 75), 24, 26, "#cfe3f7", "Distortion criterion",
              "zero-shot votes: 6 antonym\nquestions x 3 templates\n(CLIP, or 3 estimators)\n"
              "uncertainty = template std,\nsummed over the questions"),
    "content": ((29, 23), 24, 26, "#d9f0d3", "Content criterion",
                "distil the pool into M images\n(distribution matching);\ncentrality = summed distance\n"
                "to them (low = typical)"),
    "band": ((56, 75), 18, 26, "#fde6c8", "Curriculum band",
             "round r keeps a slice of\nthe uncertainty order:\nstart 0.66, 0.33, 0\n(easy -> hard)"),
    "borda": ((58, 23), 22, 26, "#f6d5e5", "Weighted Borda fusion",
              "band members get r_u = 0, -1, ...\nothers keep rank r_u\nscore = wt x r_c + r_u\n"
              "take the smallest"),
    "label": ((84, 23), 15, 26, "#fff7b3", "Humans label",
              "the round's picks\n(MOS); budget split\n1 : 2 : 2 over\n3 rounds"),
    "train": ((84, 75), 15, 26, "#e3d7f3", "Train 3 heads",
              "[good, bad]\n[clear, unclear]\n[high, low quality]\nvalidation inside\nthe budget"),
}
ARROWS = [("pool", "votes", ""), ("pool", "content", ""), ("votes", "band", "r_u"),
          ("content", "borda", "r_c"), ("band", "borda", ""), ("borda", "label", "picks"),
          ("label", "train", "")]


def _edge(name: str, towards: tuple[float, float]) -> tuple[float, float]:
    """The point where a line from the centre of box `name` towards `towards` leaves the box."""
    (x, y), w, h = BOXES[name][:3]
    dx, dy = towards[0] - x, towards[1] - y
    scale = min(w / 2 / abs(dx) if dx else float("inf"), h / 2 / abs(dy) if dy else float("inf"))
    return x + dx * scale, y + dy * scale


def pipeline_figure() -> plt.Figure:
    """AL-IQA in one picture: the two criteria, the curriculum band, the weighted Borda fusion, the
    labels and the heads whose votes drive the next round (three rounds)."""
    fig, ax = plt.subplots(figsize=(13, 5.2))
    ax.set(xlim=(0, 100), ylim=(0, 100))
    ax.axis("off")
    for (x, y), w, h, colour, title, body in BOXES.values():
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.6", fc=colour, ec="0.3"))
        ax.text(x, y + h / 2 - 2.5, title, ha="center", va="top", fontsize=10, weight="bold")
        ax.text(x, y + h / 2 - 8.5, body, ha="center", va="top", fontsize=8.2, linespacing=1.25)
    for a, b, text in ARROWS:
        start, end = _edge(a, BOXES[b][0]), _edge(b, BOXES[a][0])
        ax.annotate("", end, start, arrowprops=dict(arrowstyle="-|>", color="0.25", lw=1.4, shrinkA=6, shrinkB=6))
        if text:
            ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 2, text, ha="center", fontsize=8, style="italic")
    # the loop: the trained heads answer the antonym questions of rounds 2 and 3
    ax.plot([84, 84, 29], [90, 97, 97], color="C3", lw=1.6, ls="--")
    ax.annotate("", (29, 90), (29, 97), arrowprops=dict(arrowstyle="-|>", color="C3", lw=1.6, shrinkA=0, shrinkB=0))
    ax.text(56.5, 98.5, "rounds 2 and 3: the heads trained so far give the votes (new uncertainty)",
            ha="center", fontsize=8.5, color="C3")
    ax.text(97.5, 50, "after round 3: final\nmodel, scored once\non the test photos", ha="right", va="center",
            fontsize=8.2, color="0.25")
    ax.set_title("AL-IQA: which images to send to human raters, in three rounds", fontsize=12, pad=14)
    return fig


def save_pipeline(path: str | os.PathLike) -> Path:
    """Draw the pipeline and save it as a PNG at `path` (docs/pipeline.png is made this way)."""
    fig = pipeline_figure()
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path

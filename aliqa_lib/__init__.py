"""aliqa_lib: label-efficient blind image quality assessment by active learning (AL-IQA).

The library follows the tutorial's chapters, each a subpackage that loads on first use:
`al.data` (stores, readers, the embedded dataset, splits), `al.selection` (votes, distillation,
criteria, fusion, baselines, the selector interface), `al.models` (backbones, features, heads,
CLIP, training, checkpoints) and `al.evaluation` (metrics, experiments, sweeps); beside them
`al.authors` (the authors' release), `al.cache`, `al.defaults`, `al.plots`, `al.notebook` and `al.cli`.
`al.store`, `al.splits`, `al.metrics` and `al.sweep` are short names for the modules used most.
"""
from __future__ import annotations

import importlib
from typing import Any

from .results import read_results, record

__version__ = "0.1.0"

CHAPTERS = ("data", "selection", "models", "evaluation", "rating")
MODULES = ("authors", "cache", "checks", "cli", "defaults", "notebook", "paths", "plots", "results")
SHORT_NAMES = {"store": "data.store", "splits": "data.splits", "metrics": "evaluation.metrics",
               "sweep": "evaluation.sweep"}
__all__ = ["start", "record", "read_results", *CHAPTERS, *MODULES, *SHORT_NAMES]


def __getattr__(name: str) -> Any:
    """Load chapters and modules on first use, so `import aliqa_lib` stays cheap."""
    if name in CHAPTERS or name in MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in SHORT_NAMES:
        return importlib.import_module(f".{SHORT_NAMES[name]}", __name__)
    if name == "start":
        return importlib.import_module(".notebook", __name__).start
    raise AttributeError(f"module 'aliqa_lib' has no attribute {name!r}")


def __dir__() -> list[str]:
    """What tab completion offers: the chapters, the top-level modules and the short names."""
    return sorted([*__all__, "__version__"])

"""aliqa_lib: label-efficient blind image quality assessment by active learning (AL-IQA).

Submodules load on first use (`al.store`, `al.synthetic`, ...), so `import aliqa_lib` stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

from .results import read_results, record

__version__ = "0.1.0"
__all__ = ["record", "read_results", "prepare"]

_SUBMODULES = {"cli", "datasets", "distortions", "notebooks", "paths", "prepare", "pseudo_mos",
               "results", "store", "synthetic", "plots", "describe"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'aliqa_lib' has no attribute {name!r}")

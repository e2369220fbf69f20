"""aliqa_lib: label-efficient blind image quality assessment by active learning (AL-IQA).

Submodules load on first use (`al.store`, `al.synthetic`, ...), so `import aliqa_lib` stays cheap.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from .results import read_results, record

__version__ = "0.1.0"
__all__ = ["record", "read_results", "prepare"]

def __getattr__(name: str) -> Any:
    """Load submodules on first use: `al.store`, `al.metrics`, ..."""
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'aliqa_lib' has no attribute {name!r}")

"""Chapter 5 of the tutorial: people as the oracle.

ratings (the append-only ratings file beside a store: MOS, SD and count per image from several
raters), panel (an ipywidgets rating panel for JupyterLab) and simulated (a noisy rater for headless
runs). Depends only on the data chapter.
"""
from __future__ import annotations

import importlib
from typing import Any

from . import ratings, simulated
from .ratings import ACR_LABELS, ACR_RANGE, RATINGS_COLUMNS, RatingsError, RatingsFile, mos_to_unit, ratings_path
from .simulated import simulated_rater

__all__ = ["ratings", "simulated", "panel", "RatingsFile", "RatingsError", "ratings_path", "RATINGS_COLUMNS",
           "ACR_LABELS", "ACR_RANGE", "mos_to_unit", "simulated_rater", "RatingPanel"]


def __getattr__(name: str) -> Any:
    """The panel loads ipywidgets only when asked for."""
    if name in ("panel", "RatingPanel"):
        module = importlib.import_module(f"{__name__}.panel")
        return module if name == "panel" else module.RatingPanel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

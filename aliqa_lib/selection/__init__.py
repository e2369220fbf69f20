"""Chapter 2 of the tutorial: choosing which images to label.

votes (the distortion criterion's vote sources), distill (the content criterion's distillation),
criteria (uncertainty and content distance), fusion (the weighted Borda round and the schedule),
baselines (random, k-center, GSx, TypiClust, ProbCover) and strategies (one Selector interface).
"""
from __future__ import annotations

from typing import Any

from . import baselines, criteria, distill, fusion, strategies, votes
from .criteria import content_distance, uncertainty
from .fusion import PAPER_SCHEDULE, ALIQASchedule, RoundDetail, al_iqa_round, curriculum_band, fusion_round
from .strategies import SELECTORS, Selection, Selector, make_selector, select

__all__ = ["votes", "distill", "criteria", "fusion", "baselines", "strategies", "uncertainty", "content_distance",
           "fusion_round", "al_iqa_round", "curriculum_band", "ALIQASchedule", "PAPER_SCHEDULE", "RoundDetail",
           "Selector", "Selection", "SELECTORS", "make_selector", "select", "replay_authors_livew"]


def __getattr__(name: str) -> Any:
    """`replay_authors_livew` stays importable from here; its home is aliqa_lib.authors.replay_livew."""
    if name == "replay_authors_livew":
        from ..authors import replay_livew
        return replay_livew
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

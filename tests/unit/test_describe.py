"""Score-range summaries of notebook 01: cut-offs on the raw scale agree with the [0, 1] shares."""
from __future__ import annotations

import numpy as np
import pytest

from aliqa_lib.data import describe
from aliqa_lib.data.schema import Labels, to_unit
from aliqa_lib.plots import score_label


def _labels(mos: list[float], score_range: tuple[float, float], higher_is_better: bool, dataset: str = "x") -> Labels:
    mos = np.asarray(mos, dtype=np.float64)
    return Labels(names=[f"i{k}" for k in range(len(mos))], mos=mos, mos01=to_unit(mos, score_range, higher_is_better),
                  attrs={"dataset": dataset, "score_range": score_range, "higher_is_better": higher_is_better})


def test_end_cutoffs_on_a_one_to_five_scale_are_hand_computed():
    labels = _labels([1.0, 1.1, 1.3, 3.0, 4.7, 4.9, 5.0], (1.0, 5.0), True)
    assert describe.end_cutoffs(labels) == pytest.approx((1.2, 4.8))
    lo, hi = describe.end_cutoffs(labels)
    # 2 of 7 below 1.2 and 2 of 7 above 4.8, the same images end_shares counts on [0, 1]
    assert (np.mean(labels.mos < lo), np.mean(labels.mos > hi)) == pytest.approx(describe.end_shares(labels))
    assert describe.end_shares(labels) == pytest.approx((2 / 7, 2 / 7))


def test_end_cutoffs_when_lower_is_better_swap_the_ends():
    labels = _labels([0.0, 3.0, 50.0, 96.0, 99.0, 100.0], (0.0, 100.0), False)
    lo, hi = describe.end_cutoffs(labels)
    assert (lo, hi) == pytest.approx((5.0, 95.0))
    worst, best = describe.end_shares(labels)               # lower = better: the worst lie above 95
    assert worst == pytest.approx(np.mean(labels.mos > hi)) == pytest.approx(3 / 6)
    assert best == pytest.approx(np.mean(labels.mos < lo)) == pytest.approx(2 / 6)


def test_end_cutoffs_need_a_score_range():
    labels = Labels(names=["a"], mos=np.array([3.0]), mos01=np.array([0.5]))
    with pytest.raises(ValueError, match="score_range"):
        describe.end_cutoffs(labels)


def test_score_label_names_the_kind_and_the_range():
    assert score_label(_labels([1.0, 5.0], (1.0, 5.0), True, dataset="synthetic")) == "pseudo-MOS (1\u20135)"
    assert score_label(_labels([0.0, 100.0], (0.0, 100.0), True, dataset="livec")) == "MOS (0\u2013100)"

"""The shared selector palette and the small-multiples figure of notebook 07."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgba

from aliqa_lib import plots


def test_a_selector_keeps_its_colour_whatever_the_other_names():
    one = plots.selector_colours(["random", "al_iqa", "kcenter"])
    other = plots.selector_colours(["probcover", "al_iqa", "typiclust", "random"])
    assert one["al_iqa"] == other["al_iqa"] == "tab:red"
    assert one["random"] == other["random"] == "tab:blue"
    assert list(one) == ["random", "al_iqa", "kcenter"]               # in the order given


def test_unknown_names_get_distinct_colours_outside_the_table():
    got = plots.selector_colours(["random", "mine", "yours", "mine"])
    assert list(got) == ["random", "mine", "yours"]                  # each name once
    assert got["mine"] != got["yours"]
    assert not {got["mine"], got["yours"]} & set(plots.SELECTOR_COLOURS.values())


def test_every_listed_selector_has_its_own_colour():
    colours = [to_rgba(c) for c in plots.SELECTOR_COLOURS.values()]
    assert len(set(colours)) == len(colours)


def _summary() -> pd.DataFrame:
    rows = [("random", 0.05, 0.30, 0.02), ("random", 0.25, 0.40, 0.03),
            ("kcenter", 0.05, 0.35, 0.04), ("kcenter", 0.25, 0.45, np.nan),
            ("al_iqa", 0.05, 0.20, 0.05), ("al_iqa", 0.25, 0.50, 0.01),
            ("typiclust", 0.05, 0.33, 0.02), ("typiclust", 0.25, 0.38, 0.02)]
    return pd.DataFrame(rows, columns=["selector", "budget", "mean", "ci95"])


def test_selector_panels_draw_each_selector_beside_the_reference():
    summary = _summary()
    marks = pd.DataFrame({"selector": ["al_iqa"], "budget": [0.05], "mean": [0.42]})
    fig = plots.selector_panels(summary, marks=marks, marks_label="this run", full_pool=0.5, ncols=2)
    try:
        axes = fig.get_axes()
        assert [ax.get_title() for ax in axes] == [f"{s} against random" for s in ("kcenter", "al_iqa", "typiclust")]
        panel = axes[1]                                           # al_iqa
        lines = {to_rgba(line.get_color()): line for line in panel.get_lines() if line.get_linestyle() == "-"}
        np.testing.assert_allclose(lines[to_rgba("tab:red")].get_ydata(), [0.20, 0.50])
        np.testing.assert_allclose(lines[to_rgba("tab:blue")].get_ydata(), [0.30, 0.40])
        bands = [c for c in panel.collections if isinstance(c, PolyCollection)
                 and tuple(c.get_facecolor()[0][:3]) == to_rgba("tab:red")[:3]]
        ys = bands[0].get_paths()[0].vertices[:, 1]
        assert ys.min() == pytest.approx(0.20 - 0.05) and ys.max() == pytest.approx(0.50 + 0.01)
        marked = [c for c in panel.collections if c.get_offsets().shape[0] and c.get_offsets()[0][1] == pytest.approx(0.42)]
        assert len(marked) == 1                                   # this run's mean, as an open marker
        assert [t.get_text() for t in fig.legends[0].get_texts()][-2:] == ["this run", "full pool"]
        assert len(axes) == 3                                     # the fourth, empty panel is removed
    finally:
        plt.close(fig)


def test_selector_panels_need_the_reference():
    with pytest.raises(ValueError, match="reference selector 'random'"):
        plots.selector_panels(_summary().query("selector != 'random'"))

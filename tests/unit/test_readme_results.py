"""The README's 10-seed table is what summarise makes of the shipped per-run file (docs/results_10seeds.csv)."""
from __future__ import annotations

import re

import pandas as pd
import pytest

from aliqa_lib.evaluation.experiments import summarise
from aliqa_lib.paths import project_root

ROWS = {"random": "random", "k-center": "kcenter", "TypiClust": "typiclust", "ProbCover": "probcover",
        "AL-IQA (committee votes)": "al_iqa"}
BUDGETS = (0.05, 0.1, 0.25, 0.5)


@pytest.mark.parametrize("page", ["README.md", "docs/results.md"])
def test_the_results_table_is_derived_from_the_shipped_runs(page):
    summary = summarise(pd.read_csv(project_root() / "docs" / "results_10seeds.csv")).set_index(["selector", "budget"])
    text = (project_root() / page).read_text()
    for label, name in ROWS.items():
        line = re.search(rf"^\| {re.escape(label)} \|(.*)\|$", text, flags=re.M)
        assert line, f"{page} has no results row for {label}"
        cells = [c.strip().strip("*") for c in line.group(1).split("|")]
        expected = []
        for budget in BUDGETS:
            row = summary.loc[(name, budget)]
            expected.append(f"{row['mean']:.3f}" if name == "random"
                            else f"{row['mean']:.3f} ({row.vs_random:+.3f} +- {row.vs_random_se:.3f})")
        assert cells == expected, f"{page}: {label}"

"""Notebook 08's rating panel in a real browser: JupyterLab on localhost, headless Chromium, clicks and
a key press, and the ratings file holds exactly those ratings, in order (issue 12, point 6)."""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pandas as pd
from labharness import (
    cell_errors,
    chromium_page,
    jupyter_lab,
    open_notebook,
    run_cells_above,
    wait_kernel_idle,
    wait_until,
)
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from aliqa_lib.notebook import list_notebooks
from aliqa_lib.paths import project_root

NOTEBOOK = next(p for p in list_notebooks() if p.stem.startswith("08"))
RUN_TIMEOUT_MS = 300_000        # the cells above the panel, smoke mode, on 2 busy cores


def screenshot_path():
    """outputs/browser/rating_panel.png of the checkout (of the working folder for a plain install)."""
    root = project_root() or Path.cwd()
    path = root / "outputs" / "browser" / "rating_panel.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def rating_cell(nb) -> int:
    """Index of the cell tagged rating-panel (the cell that shows the panel)."""
    tagged = [i for i, c in enumerate(nb.cells) if "rating-panel" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "notebook 08 tags exactly one cell 'rating-panel'"
    return tagged[0]


def test_rating_in_jupyterlab_writes_exactly_the_given_ratings(chromium, smoke_store, tmp_path):
    out = tmp_path / "out"
    nb = parameterize_notebook(load_notebook_node(str(NOTEBOOK)),        # the notebook as papermill reads it
                               {"RATER": "panel", "RATER_NAME": "ana", "SMOKE": True, "SEED": 3,
                                "STORE": str(smoke_store), "OUT_DIR": str(out)})
    nbformat.write(nb, tmp_path / NOTEBOOK.name)
    panel_at = rating_cell(nb)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}   # figures inline, as a person sees them
    ratings_file = out / "collection.ratings.csv"
    with jupyter_lab(tmp_path, env=env) as server, chromium_page(chromium) as page:
        open_notebook(page, server, NOTEBOOK.name)
        run_cells_above(page, panel_at + 1)                        # everything up to and including the panel
        wait_kernel_idle(page, RUN_TIMEOUT_MS)
        assert cell_errors(page) == []
        page.locator(".aliqa-panel").wait_for(state="visible")
        assert page.locator(".aliqa-progress").inner_text() == "rated 0 of 5"
        given = []

        def rows():
            return len(pd.read_csv(ratings_file)) if ratings_file.exists() else 0

        for action, score in (("click", 3), ("click", 5), ("key", 2), ("click", 4)):
            if action == "click":
                page.locator(f".aliqa-rate-{score}").click()
            else:
                page.locator(".aliqa-keys input").click()
                page.keyboard.press(str(score))
            given.append(score)
            wait_until(lambda: rows() >= len(given), 20, f"rating {len(given)} in {ratings_file}")
        page.locator(".aliqa-progress").filter(has_text="rated 4 of 5").wait_for()
        page.locator(".aliqa-panel").screenshot(path=str(screenshot_path()))
        table = pd.read_csv(ratings_file)
        assert table.score.tolist() == given == [3, 5, 2, 4]
        assert set(table.rater) == {"ana"} and set(table.source) == {"panel"} and table.name.is_unique
        assert "saved 4 (good)" in page.locator(".aliqa-status").inner_text()
        page.locator(".aliqa-back").click()                      # undo: a retraction row, nothing rewritten
        page.locator(".aliqa-progress").filter(has_text="rated 3 of 5").wait_for()
        history = pd.read_csv(ratings_file)
        assert history.score.tolist() == [3, 5, 2, 4, 0] and history.name.iloc[-1] == table.name.iloc[-1]
    assert server.proc.poll() is not None                          # the server is stopped at the end

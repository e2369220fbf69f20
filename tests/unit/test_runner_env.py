"""The environment the notebook runner gives its kernels: figures inline, progress bars quiet."""
from __future__ import annotations

import os

from aliqa_lib import notebook


def test_inline_figures_sets_headless_and_drops_agg_then_restores(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv(notebook.HEADLESS_ENV, raising=False)
    with notebook.inline_figures():
        assert "MPLBACKEND" not in os.environ                 # kernels pick the inline backend
        assert os.environ[notebook.HEADLESS_ENV] == "1"       # al.start shows no progress bar
    assert os.environ["MPLBACKEND"] == "Agg" and notebook.HEADLESS_ENV not in os.environ
    monkeypatch.setenv(notebook.HEADLESS_ENV, "yes")
    with notebook.inline_figures():
        pass
    assert os.environ[notebook.HEADLESS_ENV] == "yes"

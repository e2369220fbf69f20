"""Relative path parameters are resolved against the caller's folder before a kernel runs elsewhere."""
from __future__ import annotations

from pathlib import Path

from aliqa_lib.notebook import absolute_paths


def test_existing_relative_paths_become_absolute_and_nothing_else_changes(tmp_path):
    (tmp_path / "scores.csv").write_text("name,score\n")
    (tmp_path / "photos").mkdir()
    elsewhere = tmp_path.parent / "elsewhere.csv"
    params = {"LABELS": "scores.csv", "FOLDER": "photos", "RATER": "panel", "MISSING": "nope.csv",
              "ABS": str(elsewhere), "SEED": 3, "SMOKE": True, "NONE": None, "EMPTY": ""}
    got = absolute_paths(params, cwd=tmp_path)
    assert got["LABELS"] == str(tmp_path.resolve() / "scores.csv") and Path(got["LABELS"]).is_file()
    assert got["FOLDER"] == str(tmp_path.resolve() / "photos")
    assert {k: got[k] for k in params if k not in ("LABELS", "FOLDER")} == \
        {k: v for k, v in params.items() if k not in ("LABELS", "FOLDER")}
    assert params["LABELS"] == "scores.csv"  # the caller's dict is not changed

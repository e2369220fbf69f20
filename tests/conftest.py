"""Shared fixtures: stores built once per test session, in a temporary folder."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
TIERS = ("unit", "smoke", "functional", "browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with its tier, the folder it lives in (tests/unit, smoke, functional, browser)."""
    for item in items:
        tier = next((t for t in TIERS if f"{os.sep}{t}{os.sep}" in str(item.path)), None)
        if tier is None:
            raise pytest.UsageError(f"{item.path} lies outside tests/unit, tests/smoke, tests/functional and tests/browser")
        item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep every test's generated data out of the checkout's data/cache/."""
    os.environ["ALIQA_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["ALIQA_OUTPUTS"] = str(tmp_path_factory.mktemp("outputs"))


@pytest.fixture(scope="session")
def smoke_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small embedded dataset (4 contents, all distortions), seed 3."""
    from aliqa_lib.data.prepare import prepare

    return prepare("synthetic", out=tmp_path_factory.mktemp("smoke") / "smoke.h5", seed=3, smoke=True, progress=False)


@pytest.fixture(scope="session")
def full_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full embedded default, built through the command line exactly as users do."""
    out = tmp_path_factory.mktemp("full") / "synthetic.h5"
    subprocess.run([sys.executable, "-m", "aliqa_lib", "prepare", "synthetic", "--out", str(out), "--seed", "0"],
                   check=True, capture_output=True)
    return out

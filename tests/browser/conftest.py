"""The browser tier's fixtures: the system Chromium (or a clear skip) and a JupyterLab root folder."""
from __future__ import annotations

import pytest
from labharness import system_chromium


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of the system Chromium; the tier is skipped, saying how to install it, when there is none."""
    path = system_chromium()
    if path is None:
        pytest.skip("no system Chromium (/usr/bin/chromium): install it with `apt-get install -y chromium` "
                    "(`make test` does so when run as root), or point ALIQA_CHROMIUM at a Chromium binary")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed: `pip install -e '.[dev]'`")
    return path

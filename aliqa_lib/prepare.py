"""One entry point that prepares any supported dataset into a store, reusing a valid one."""
from __future__ import annotations

import os
from pathlib import Path

from . import synthetic
from .paths import default_store_path
from .store import StoreError, validate_store

DATASETS = ("synthetic",)


def prepare(name: str, root: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
            size: int = 244, seed: int = 0, smoke: bool = False, force: bool = False,
            progress: bool = True) -> Path:
    """Prepare dataset `name` into a store (default under data/cache/) and return its path.

    A valid store already at `out` built with the same settings is reused unless force=True.
    `smoke` builds a small version of the embedded dataset for quick runs.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    if name == "synthetic":
        if root is not None:
            raise ValueError("the synthetic dataset is generated from installed packages; it takes no --root")
        config = synthetic.smoke_config(size, seed) if smoke else synthetic.SyntheticConfig(size=size, seed=seed)
        out = Path(out) if out else default_store_path("synthetic_smoke" if smoke else "synthetic", size, seed)
        if not force and out.exists():
            try:
                if synthetic.matches(validate_store(out), config):
                    return out
            except StoreError:
                pass  # invalid or stale: rebuild below
        return synthetic.build(out, config, progress=progress)
    raise AssertionError("unreachable")

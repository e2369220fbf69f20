"""Where the package keeps generated data and notebook outputs."""
from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path | None:
    """The repository checkout this package runs from, or None for a plain install."""
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir():
        return root
    return None


def cache_dir() -> Path:
    """Folder for prepared stores and feature caches ($ALIQA_CACHE, else data/cache/ of the checkout)."""
    if os.environ.get("ALIQA_CACHE"):
        return Path(os.environ["ALIQA_CACHE"])
    root = project_root()
    return root / "data" / "cache" if root else Path.home() / ".cache" / "aliqa"


def outputs_dir() -> Path:
    """Folder for executed notebooks and results ($ALIQA_OUTPUTS, else outputs/ of the checkout)."""
    if os.environ.get("ALIQA_OUTPUTS"):
        return Path(os.environ["ALIQA_OUTPUTS"])
    root = project_root()
    return root / "outputs" if root else Path.cwd() / "outputs"


def output_dir(name: str, out_dir: str | os.PathLike | None = None) -> Path:
    """The output folder of one notebook run: `out_dir` when given, else outputs/<name>; created."""
    path = Path(out_dir) if out_dir else outputs_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_store_path(dataset: str, size: int = 244, seed: int | None = None) -> Path:
    """Default location of a prepared store: <cache>/<dataset>_<size>[_seed<seed>].h5."""
    suffix = f"_seed{seed}" if seed is not None else ""
    return cache_dir() / f"{dataset}_{size}{suffix}.h5"

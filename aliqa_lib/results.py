"""Key results of a notebook run, recorded as JSON for sweeps and tests."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .cache import atomic_path

RESULTS_FILE = "results.json"
RUN_DIR_ENV = "ALIQA_RUN_DIR"   # the runner sets it in each kernel: the default folder of record()


def _jsonable(value: Any) -> Any:
    """Convert numpy and path values into plain JSON types (NaN becomes null)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"record(): cannot store a {type(value).__name__} as JSON; pass numbers, strings, lists or dicts")


def results_path(out_dir: str | os.PathLike | None = None) -> Path:
    """The results file of a run: <out_dir>/results.json; without out_dir, the run's folder ($ALIQA_RUN_DIR,
    set by `tutorial` and the sweep in each notebook's kernel) or else the working folder."""
    folder = Path(out_dir) if out_dir is not None else Path(os.environ.get(RUN_DIR_ENV, "."))
    return folder / RESULTS_FILE


def read_results(out_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Everything recorded so far in a run's results file ({} if none)."""
    path = results_path(out_dir)
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def record(key: str, value: Any, out_dir: str | os.PathLike | None = None) -> Any:
    """Store `value` under `key` in the run's results.json (atomic rewrite) and return the value."""
    if not isinstance(key, str) or not key:
        raise ValueError("record(): key must be a non-empty string")
    path = results_path(out_dir)
    data = read_results(out_dir)
    data[key] = _jsonable(value)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
    return value

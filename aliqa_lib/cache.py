"""Files that appear only when complete, and arrays derived from a store, cached beside it.

`atomic_path` is the one write-to-a-temporary-file-then-rename helper every writer uses (stores,
feature caches, checkpoints, results files, sweep tables): a crash or an exception leaves the old
file (or none), never a half-written one. `cached_array` keeps any array computed from a store in
`<store>.features.h5`, keyed by a hash of what it was computed with and of the store file itself.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` on success, delete it on error."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    os.replace(tmp_path, target)


def cache_path(store: str | os.PathLike) -> Path:
    """The cache file that sits beside a store: <store stem>.features.h5."""
    store = Path(store)
    return store.with_name(store.stem + ".features.h5")


def cache_key(store: str | os.PathLike, spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The key of an array computed from `store` with settings `spec`, and the spec it records
    (the store file's size and modification time are part of it, so a rebuilt store misses)."""
    stat = Path(store).stat()
    full_spec = dict(spec, store=[stat.st_size, stat.st_mtime_ns])
    return hashlib.sha1(json.dumps(full_spec, sort_keys=True, default=str).encode()).hexdigest()[:16], full_spec


def cached_array(store: str | os.PathLike, spec: dict[str, Any], compute: Callable[[], np.ndarray]) -> np.ndarray:
    """The array computed from `store` with settings `spec`: read from the cache, or computed and stored."""
    store = Path(store)
    if not store.is_file():
        raise FileNotFoundError(f"no store at {store}: prepare it first (python -m aliqa_lib prepare ...)")
    key, full_spec = cache_key(store, spec)
    cache = cache_path(store)
    if cache.exists():
        with h5py.File(cache, "r") as fh:
            if key in fh:
                return fh[key][:]
    values = np.asarray(compute())
    _add_to_cache(cache, key, values, full_spec)
    return values


def _add_to_cache(cache: Path, key: str, values: np.ndarray, spec: dict[str, Any]) -> None:
    """Add one array (with its spec as attributes) to a cache file by writing a complete copy."""
    with atomic_path(cache) as tmp:
        if cache.exists():
            tmp.write_bytes(cache.read_bytes())
        with h5py.File(tmp, "a") as fh:
            fh.create_dataset(key, data=values)
            for name, value in spec.items():
                fh[key].attrs[name] = json.dumps(value, default=str) if isinstance(value, (list, dict)) else value

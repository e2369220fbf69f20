"""Files that appear only when complete, and arrays derived from a store, cached beside it.

`atomic_path` is the one write-to-a-temporary-file-then-rename helper every writer uses (stores,
feature caches, checkpoints, results files, sweep tables): a crash or an exception leaves the old
file (or none), never a half-written one. Its temporary file `.<name>.<host>-<pid>.<random>.partial`
names the process that owns it; an exception or Ctrl-C removes it, and a process killed outright
(SIGKILL, power loss) leaves it behind until the next write of the same target removes it and says so.
`cached_array` keeps any array computed from a store in `<store>.features.h5`, keyed by a hash of
what it was computed with and of the store file itself; a file lock per entry (filelock) makes
processes that ask for the same entry at once compute it once, and one per cache file serialises
its rewrites, so every process gets the same array and readers only ever see complete files.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from filelock import FileLock

log = logging.getLogger(__name__)


def _owner() -> str:
    """This process as it appears in the names of its partial files: <host>-<pid>."""
    return f"{re.sub(r'[^A-Za-z0-9_-]', '_', socket.gethostname())}-{os.getpid()}"


def _alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # it exists, owned by another user
        return True
    return True


LEGACY_STALE_SECONDS = 24 * 3600   # a partial without an owner in its name, untouched this long, is dead


def _stale(path: Path, found: re.Match, host: str) -> bool:
    """Whether a partial file's writer is gone: its process no longer runs on this machine, or (no
    owner in the name) the file has not changed for LEGACY_STALE_SECONDS."""
    if found["pid"] is None:
        return time.time() - path.stat().st_mtime >= LEGACY_STALE_SECONDS
    return found["host"] == host and not _alive(int(found["pid"]))


def remove_stale_partials(target: str | os.PathLike) -> list[Path]:
    """Delete the partial files of `target` whose owning process (on this machine) is gone, saying so.
    Partials of live processes and of other machines are left alone; one without an owner in its name
    (written by an older version) is removed once it is LEGACY_STALE_SECONDS old."""
    target = Path(target)
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(?:(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)\.)?[^.]+\.partial")
    host = _owner().rsplit("-", 1)[0]
    removed = []
    for path in target.parent.glob(f".{glob.escape(target.name)}.*.partial"):
        found = pattern.fullmatch(path.name)
        try:
            if found is None or not _stale(path, found, host):
                continue
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:   # another process cleaned it up first
            continue
        removed.append(path)
        owner = f"process {found['pid']}" if found["pid"] else "a process of an older version"
        log.warning("removed %s (%.1f MB), left by %s that was stopped before it finished writing %s",
                    path, size / 1e6, owner, target.name)
    return removed


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` on success, delete it on error
    (Ctrl-C included). Stale partials of `target` left by killed processes are removed first."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{_owner()}.", suffix=".partial", dir=target.parent)
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
    found = _read_entry(cache, key)
    if found is not None:
        return found
    with file_lock(cache.with_name(f"{cache.name}.{key}")):   # one computation of an entry at a time
        found = _read_entry(cache, key)                      # another process may have just written it
        if found is not None:
            return found
        values = np.asarray(compute())
        with file_lock(cache):                               # one rewrite of the cache file at a time
            _add_to_cache(cache, key, values, full_spec)
    return values


def file_lock(path: str | os.PathLike) -> FileLock:
    """An inter-process lock for `path`: the empty file .locks/<name>.lock in its folder. The file
    stays (filelock keeps it on Unix) and holds nothing: the lock itself is the operating system's,
    released when its process ends, however it ends."""
    path = Path(path)
    folder = path.parent / ".locks"
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(folder / f"{path.name}.lock")


def _read_entry(cache: Path, key: str) -> np.ndarray | None:
    """The cached array `key`, or None when the cache file or the entry is absent."""
    if not cache.exists():
        return None
    with h5py.File(cache, "r") as fh:
        return fh[key][:] if key in fh else None


def _add_to_cache(cache: Path, key: str, values: np.ndarray, spec: dict[str, Any]) -> None:
    """Add one array (with its spec as attributes) to a cache file by writing a complete copy
    (readers keep the old file open undisturbed; callers hold the cache's lock)."""
    with atomic_path(cache) as tmp:
        if cache.exists():
            shutil.copyfile(cache, tmp)
        with h5py.File(tmp, "a") as fh:
            if key in fh:
                return
            fh.create_dataset(key, data=values)
            for name, value in spec.items():
                fh[key].attrs[name] = json.dumps(value, default=str) if isinstance(value, (list, dict)) else value

"""One entry point that prepares any supported dataset into a store, reusing a valid one."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..cache import file_lock
from ..paths import default_store_path
from . import synthetic
from .readers import DATABASES, read_catalog
from .store import StoreError, validate_store

DATASET_NAMES = ("synthetic",) + tuple(DATABASES) + ("folder",)
SMOKE_IMAGES = 48  # images kept by smoke=True on a real dataset (evenly spaced over the label file)


def prepare(name: str, root: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
            size: int = 244, seed: int = 0, smoke: bool = False, force: bool = False,
            progress: bool = True, workers: int | None = None, skip_bad: bool = False,
            variant: str | None = None, labels: str | os.PathLike | None = None,
            score_range: tuple[float, float] | None = None) -> Path:
    """Prepare dataset `name` into a store (default under data/cache/) and return its path.

    A valid store already at `out` built with the same settings is reused unless force=True.
    `smoke` builds a small version: the embedded dataset with fewer photos, or 48 images of a real one.
    Real datasets need `root`, the folder holding the unpacked download (see readers.DATABASES);
    `workers` decoding processes (default: one per core), `skip_bad` leaves out unreadable images,
    `variant` picks KonIQ's image folder ("1024x768"/"512x384") or LIVE Challenge's set ("common"/"all").
    "folder" is any folder of photos at `root` (data.folder): scores unknown, or from a `labels` CSV
    of name,score in `score_range`; seed and smoke do not apply to it.
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASET_NAMES)}")
    if name == "folder":
        if root is None:
            raise ValueError("prepare folder needs --root DIR, the folder holding your photos")
        if variant is not None:
            raise ValueError("a folder has no variants; leave --variant out")
        from .folder import prepare_folder
        return prepare_folder(root, out, labels=labels, score_range=score_range, size=size, workers=workers,
                              skip_bad=skip_bad, progress=progress, force=force)
    if labels is not None or score_range is not None:
        raise ValueError(f"--labels and --score-range apply to `prepare folder` only; {name} reads its own label files")
    if name == "synthetic":
        if root is not None or variant is not None:
            raise ValueError("the synthetic dataset is generated from installed packages; it takes no --root or --variant")
        config = synthetic.smoke_config(size, seed) if smoke else synthetic.SyntheticConfig(size=size, seed=seed)
        out = Path(out) if out else default_store_path("synthetic_smoke" if smoke else "synthetic", size, seed)
        with file_lock(out):   # notebooks of a parallel sweep that start at once build it once
            attrs = None if force else _valid_attrs(out)
            if attrs is not None and synthetic.matches(attrs, config):
                return out
            return synthetic.build(out, config, progress=progress)
    return _prepare_real(name, root, out, size, smoke, force, progress, workers, skip_bad, variant)


def _valid_attrs(path: Path) -> dict | None:
    """The attributes of a valid store at path, or None (absent, incomplete or stale: rebuild it)."""
    if not path.exists():
        return None
    try:
        return validate_store(path)
    except StoreError:
        return None


def _prepare_real(name: str, root: str | os.PathLike | None, out: str | os.PathLike | None, size: int,
                  smoke: bool, force: bool, progress: bool, workers: int | None, skip_bad: bool,
                  variant: str | None) -> Path:
    """Read a real dataset's labels, then decode its images into a store (or reuse a matching one)."""
    tag = "_".join(filter(None, [name, variant, "smoke" if smoke else ""]))
    out = Path(out) if out else default_store_path(tag, size)
    with file_lock(out):   # notebooks that start at once prepare it once
        return _reuse_or_ingest(name, root, out, size, smoke, force, progress, workers, skip_bad, variant)


def _reuse_or_ingest(name: str, root: str | os.PathLike | None, out: Path, size: int, smoke: bool, force: bool,
                     progress: bool, workers: int | None, skip_bad: bool, variant: str | None) -> Path:
    """The valid store at `out` prepared with these settings, or a new one decoded from the database."""
    from .ingest import ingest

    attrs = _valid_attrs(out)
    if root is None:  # later notebooks name only the dataset: reuse the store prepared before
        if attrs is not None and attrs.get("dataset") == name:
            return out
        info = DATABASES[name]
        raise ValueError(f"{name} needs --root DIR, the folder where you unpacked {info.title} "
                         f"(download: {info.url}); no prepared store at {out} to reuse")
    root = Path(root).expanduser().resolve()
    settings = dict(source_root=str(root), variant_requested=variant or "", smoke=bool(smoke))
    if not force and attrs is not None and attrs.get("dataset") == name and int(attrs["size"]) == size \
            and all(attrs.get(k) == v for k, v in settings.items()):
        return out
    catalog = read_catalog(name, root, variant)
    if smoke and len(catalog) > SMOKE_IMAGES:
        catalog = catalog.subset(np.unique(np.linspace(0, len(catalog) - 1, SMOKE_IMAGES).round().astype(int)))
    info = DATABASES[name]
    return ingest(catalog, out, size=size, workers=workers, skip_bad=skip_bad, progress=progress,
                  label_file=str(catalog.label_file), variant=catalog.variant, label_note=info.scale,
                  resize="whole image to size x size, bicubic, after JPEG DCT-scaled decoding", **settings)

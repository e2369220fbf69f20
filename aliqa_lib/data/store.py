"""The HDF5 store: one file per prepared dataset, read by every later step.

/images (uint8, N x 3 x S x S, one image per chunk) plus one dataset per label column of the schema
(data.schema.COLUMNS: /names, /mos, /mos01 required; /ref, /source, /distortion, /level, /split,
/mos_std optional), /metrics/<name> side scores, and the attributes dataset, format_version,
score_range (lo, hi), higher_is_better, size and free-form extras (label_note, build_params, ...).
A store with the attribute unknown_scores=True (a folder of the user's own photos) holds NaN in /mos
and /mos01 for every image whose score is not known: Labels.labelled marks the others.
docs/store.md shows the layout as a table. Stores are written to a temporary file beside the target
and renamed when complete, so a crash never leaves a file that looks finished.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..cache import atomic_path
from .schema import COLUMNS, OPTIONAL, REQUIRED, Labels, as_column

FORMAT_VERSION = 1
REQUIRED_ATTRS = ("dataset", "format_version", "score_range", "higher_is_better", "size")
STRING = h5py.string_dtype(encoding="utf-8")


class StoreError(ValueError):
    """A store file is missing, incomplete or does not follow the schema."""


class StoreWriter:
    """Stream images and labels into a new store; the file appears only on a clean exit.

    >>> with StoreWriter(path, n=10, size=244, dataset="x", score_range=(1, 5)) as w:
    ...     w.write_images(0, batch)          # uint8 (B, 3, S, S) or (B, S, S, 3)
    ...     w.set_labels(mos=..., mos01=..., names=...)
    """

    def __init__(self, path: str | os.PathLike, n: int, size: int, dataset: str,
                 score_range: tuple[float, float], higher_is_better: bool = True,
                 compression: str | None = None, **attrs: Any) -> None:
        if n <= 0:
            raise StoreError(f"cannot write an empty store to {path}: no images")
        self.path = Path(path)
        self.n, self.size = int(n), int(size)
        self._attrs = dict(dataset=dataset, format_version=FORMAT_VERSION,
                           score_range=np.asarray(score_range, dtype=np.float64),
                           higher_is_better=bool(higher_is_better), size=self.size, **attrs)
        self._compression = compression
        self._written = np.zeros(self.n, dtype=bool)
        self._labels_set = False

    def __enter__(self) -> StoreWriter:
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        self.file = h5py.File(self._tmp, "w")
        s = self.size
        self.file.create_dataset("images", shape=(self.n, 3, s, s), maxshape=(None, 3, s, s), dtype=np.uint8,
                                 chunks=(1, 3, s, s), compression=self._compression)
        self.set_attrs(**self._attrs)
        return self

    def write_images(self, start: int, images: np.ndarray) -> None:
        """Write a batch of uint8 images (B, 3, S, S) or (B, S, S, 3) at positions start..start+B."""
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise StoreError(f"images must be uint8, got {images.dtype}")
        if images.ndim == 4 and images.shape[-1] == 3 and images.shape[1] != 3:
            images = images.transpose(0, 3, 1, 2)
        if images.shape[1:] != (3, self.size, self.size):
            raise StoreError(f"images must be (B, 3, {self.size}, {self.size}), got {images.shape}")
        stop = start + len(images)
        if start < 0 or stop > self.n:
            raise StoreError(f"image positions {start}..{stop} fall outside 0..{self.n}")
        self.file["images"][start:stop] = images
        self._written[start:stop] = True

    def set_attrs(self, **attrs: Any) -> None:
        """Add attributes known only after the images were written (dicts and lists stored as JSON)."""
        for key, value in attrs.items():
            self.file.attrs[key] = json.dumps(value) if isinstance(value, (dict, list)) else value

    def shrink(self, n: int) -> None:
        """Keep only the first n image slots (images that could not be read were left out)."""
        if not 0 < n <= self.n:
            raise StoreError(f"store {self.path}: cannot shrink {self.n} images to {n}")
        self.file["images"].resize(n, axis=0)
        self.n, self._written = int(n), self._written[:n]

    def set_labels(self, mos: Iterable[float], mos01: Iterable[float], names: Iterable[str],
                   metrics: dict[str, Iterable[float]] | None = None, **optional: Any) -> None:
        """Write /mos, /mos01, /names, any optional schema column and metrics={name: values}."""
        unknown = set(optional) - set(OPTIONAL)
        if unknown:
            raise StoreError(f"unknown store columns {sorted(unknown)}; the schema has {OPTIONAL + ('metrics',)}")
        given = dict(mos=mos, mos01=mos01, names=list(names), **{k: v for k, v in optional.items() if v is not None})
        columns = {k: as_column(k, v) for k, v in given.items()}
        columns.update({f"metrics/{k}": np.asarray(v, dtype=np.float64) for k, v in (metrics or {}).items()})
        for key, values in columns.items():
            if values.shape != (self.n,):
                raise StoreError(f"/{key} has shape {values.shape}, expected ({self.n},)")
        _check_scores(columns["mos"], columns["mos01"], self.path, bool(self._attrs.get("unknown_scores", False)))
        for key, values in columns.items():
            is_text = values.dtype.kind == "U"
            self.file.create_dataset(key, data=values.astype(object) if is_text else values,
                                     dtype=STRING if is_text else values.dtype)
        self._labels_set = True

    def __exit__(self, exc_type, exc, tb) -> None:
        self.file.close()
        if exc_type is None and not self._labels_set:
            exc = StoreError(f"store {self.path}: labels were never written (call set_labels)")
        elif exc_type is None and not self._written.all():
            missing = np.flatnonzero(~self._written)
            exc = StoreError(f"store {self.path}: {len(missing)} images never written (first: {missing[:5].tolist()})")
        if exc_type is None and exc is None:
            self._atomic.__exit__(None, None, None)     # rename onto the target
            return
        self._atomic.__exit__(type(exc), exc, tb)       # delete the temporary file
        if exc_type is None:
            raise exc


def _check_scores(mos: np.ndarray, mos01: np.ndarray, path: Path, unknown_scores: bool = False) -> None:
    """Raise if scores hold NaN (unless the store has unknown scores: then NaN in /mos and /mos01 at the
    same positions), inf, or mos01 leaves [0, 1]."""
    for key, values in (("mos", mos), ("mos01", mos01)):
        bad = np.flatnonzero(np.isinf(values) if unknown_scores else ~np.isfinite(values))
        if bad.size:
            raise StoreError(f"{path}: /{key} has {bad.size} NaN/inf values (first positions {bad[:5].tolist()}); "
                             "fix or drop those labels before preparing")
    apart = np.flatnonzero(np.isnan(mos) != np.isnan(mos01))
    if apart.size:
        raise StoreError(f"{path}: /mos and /mos01 disagree on which scores are unknown (NaN) at positions "
                         f"{apart[:5].tolist()}; prepare the store again")
    known = mos01[np.isfinite(mos01)]
    if known.size and (known.min() < 0 or known.max() > 1):
        raise StoreError(f"{path}: /mos01 must lie in [0, 1], found {known.min():.3f}..{known.max():.3f}")


def validate_store(path: str | os.PathLike) -> dict[str, Any]:
    """Check a store against the schema and return its attributes; raise StoreError naming the problem."""
    path = Path(path)
    fix = "rebuild it with `python -m aliqa_lib prepare <dataset> --out FILE`"
    if not path.is_file():
        raise StoreError(f"no store at {path}: {fix}")
    try:
        fh = h5py.File(path, "r")
    except OSError as err:
        raise StoreError(f"{path} is not a readable HDF5 file ({err}); {fix}") from None
    with fh:
        missing = [k for k in ("images",) + REQUIRED if k not in fh] + [f"@{k}" for k in REQUIRED_ATTRS if k not in fh.attrs]
        if missing:
            raise StoreError(f"{path} lacks {', '.join(missing)}; {fix}")
        version = int(fh.attrs["format_version"])
        if version != FORMAT_VERSION:
            raise StoreError(f"{path} has format_version {version}, this package reads {FORMAT_VERSION}; {fix}")
        images = fh["images"]
        n, size = images.shape[0], int(fh.attrs["size"])
        if images.dtype != np.uint8 or images.shape[1:] != (3, size, size):
            raise StoreError(f"{path}: /images is {images.dtype} {images.shape}, expected uint8 (N, 3, {size}, {size})")
        for key in COLUMNS:
            if key in fh and fh[key].shape != (n,):
                raise StoreError(f"{path}: /{key} has shape {fh[key].shape}, expected ({n},) like /images")
        _check_scores(fh["mos"][:], fh["mos01"][:], path, bool(fh.attrs.get("unknown_scores", False)))
        return {k: _attr(v) for k, v in fh.attrs.items()}


def _attr(value: Any) -> Any:
    """Decode an HDF5 attribute into plain Python (JSON strings become dicts/lists)."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_labels(path: str | os.PathLike) -> Labels:
    """Validate a store and load everything except the images."""
    attrs = validate_store(path)
    with h5py.File(path, "r") as fh:
        columns = {k: fh[k].asstr()[:] if h5py.check_string_dtype(fh[k].dtype) else fh[k][:]
                   for k in COLUMNS if k in fh}
        metrics = {k: v[:] for k, v in fh.get("metrics", {}).items()}
    return Labels(**columns, attrs=attrs, metrics=metrics, path=Path(path))


def read_images(path: str | os.PathLike, indices: Iterable[int]) -> np.ndarray:
    """Load the listed images as uint8 (B, S, S, 3), ready to show."""
    idx = np.asarray(list(indices), dtype=np.int64)
    with h5py.File(path, "r") as fh:
        order = np.argsort(idx, kind="stable")
        out = np.empty((len(idx),) + fh["images"].shape[1:], dtype=np.uint8)
        for pos in order:
            out[pos] = fh["images"][idx[pos]]
    return out.transpose(0, 2, 3, 1)

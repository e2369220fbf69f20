"""The HDF5 store: one file per prepared dataset, read by every later step.

Layout (format_version 1)
-------------------------
/images      uint8 (N, 3, S, S), chunked one image per chunk
/mos         float64 (N,) raw scores in the dataset's own range and direction
/mos01       float32 (N,) scores mapped to [0, 1], higher = better
/names       UTF-8 strings (N,) source names (file names, or generated names)
optional:
/ref         int64 (N,) reference / content id (images of one content share it)
/source      int64 (N,) source photo id (crops of one photo share it); splits group by it
/distortion  UTF-8 strings (N,) distortion type ("reference" for pristine images)
/level       int64 (N,) distortion level (0 for pristine images)
/split       UTF-8 strings (N,) the dataset's official split or image set ("training", "test", "IS1", ...)
/mos_std     float64 (N,) standard deviation of the opinion scores, in the raw score's units
/metrics/*   float64 (N,) per-image side scores: the metrics a pseudo-MOS was built from, or a
             dataset's own attribute scores (SPAQ's brightness, sharpness, ...)
attributes: dataset, format_version, score_range (lo, hi), higher_is_better, size,
and free-form extras such as label_note or build_params (JSON).

Stores are written to a temporary file next to the target and renamed when complete,
so a crash never leaves a file that looks finished.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import h5py
import numpy as np

FORMAT_VERSION = 1
REQUIRED_DATASETS = ("images", "mos", "mos01", "names")
OPTIONAL_DATASETS = ("ref", "source", "distortion", "level", "split", "mos_std")
STRING_COLUMNS = ("distortion", "split")
FLOAT_COLUMNS = ("mos_std",)
REQUIRED_ATTRS = ("dataset", "format_version", "score_range", "higher_is_better", "size")
STRING = h5py.string_dtype(encoding="utf-8")


class StoreError(ValueError):
    """A store file is missing, incomplete or does not follow the schema."""


@dataclass
class Labels:
    """Everything in a store except the pixels."""

    path: Path
    mos: np.ndarray
    mos01: np.ndarray
    names: np.ndarray
    attrs: dict[str, Any]
    ref: np.ndarray | None = None
    source: np.ndarray | None = None
    distortion: np.ndarray | None = None
    level: np.ndarray | None = None
    split: np.ndarray | None = None
    mos_std: np.ndarray | None = None
    metrics: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.mos01)

    @property
    def groups(self) -> np.ndarray | None:
        """Ids that must not be split between train and test (source photo, else reference)."""
        return self.source if self.source is not None else self.ref


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

    def __enter__(self) -> "StoreWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".partial", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
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
                   **optional: Any) -> None:
        """Write /mos, /mos01, /names and any of the optional columns, metrics={name: values}."""
        columns = {"mos": np.asarray(mos, dtype=np.float64), "mos01": np.asarray(mos01, dtype=np.float32),
                   "names": np.asarray(list(names), dtype=object)}
        for key in OPTIONAL_DATASETS:
            if optional.get(key) is not None:
                kind = object if key in STRING_COLUMNS else np.float64 if key in FLOAT_COLUMNS else np.int64
                columns[key] = np.asarray(list(optional[key]) if kind is object else optional[key], dtype=kind)
        unknown = set(optional) - set(OPTIONAL_DATASETS) - {"metrics"}
        if unknown:
            raise StoreError(f"unknown store columns {sorted(unknown)}; known: {OPTIONAL_DATASETS + ('metrics',)}")
        for key, values in columns.items():
            if values.shape != (self.n,):
                raise StoreError(f"/{key} has shape {values.shape}, expected ({self.n},)")
        _check_scores(columns["mos"], columns["mos01"], self.path)
        for key, values in columns.items():
            self.file.create_dataset(key, data=values, dtype=STRING if values.dtype == object else values.dtype)
        for name, values in (optional.get("metrics") or {}).items():
            self.file.create_dataset(f"metrics/{name}", data=np.asarray(values, dtype=np.float64))
        self._labels_set = True

    def __exit__(self, exc_type, exc, tb) -> None:
        self.file.close()
        if exc_type is None and not self._labels_set:
            exc = StoreError(f"store {self.path}: labels were never written (call set_labels)")
        elif exc_type is None and not self._written.all():
            missing = np.flatnonzero(~self._written)
            exc = StoreError(f"store {self.path}: {len(missing)} images never written (first: {missing[:5].tolist()})")
        if exc_type is not None or exc is not None:
            self._tmp.unlink(missing_ok=True)
            if exc_type is None:
                raise exc
            return
        os.replace(self._tmp, self.path)


def _check_scores(mos: np.ndarray, mos01: np.ndarray, path: Path) -> None:
    """Raise if scores hold NaN or mos01 leaves [0, 1]."""
    for key, values in (("mos", mos), ("mos01", mos01)):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise StoreError(f"{path}: /{key} has {bad.size} NaN/inf values (first positions {bad[:5].tolist()}); "
                             "fix or drop those labels before preparing")
    if mos01.size and (mos01.min() < 0 or mos01.max() > 1):
        raise StoreError(f"{path}: /mos01 must lie in [0, 1], found {mos01.min():.3f}..{mos01.max():.3f}")


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
        missing = [k for k in REQUIRED_DATASETS if k not in fh] + [f"@{k}" for k in REQUIRED_ATTRS if k not in fh.attrs]
        if missing:
            raise StoreError(f"{path} lacks {', '.join(missing)}; {fix}")
        version = int(fh.attrs["format_version"])
        if version != FORMAT_VERSION:
            raise StoreError(f"{path} has format_version {version}, this package reads {FORMAT_VERSION}; {fix}")
        images = fh["images"]
        n, size = images.shape[0], int(fh.attrs["size"])
        if images.dtype != np.uint8 or images.shape[1:] != (3, size, size):
            raise StoreError(f"{path}: /images is {images.dtype} {images.shape}, expected uint8 (N, 3, {size}, {size})")
        for key in REQUIRED_DATASETS[1:] + OPTIONAL_DATASETS:
            if key in fh and fh[key].shape != (n,):
                raise StoreError(f"{path}: /{key} has shape {fh[key].shape}, expected ({n},) like /images")
        _check_scores(fh["mos"][:], fh["mos01"][:], path)
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
        def col(key: str) -> np.ndarray | None:
            if key not in fh:
                return None
            if h5py.check_string_dtype(fh[key].dtype):
                return np.asarray(fh[key].asstr()[:], dtype=str)
            return fh[key][:]
        return Labels(path=Path(path), mos=fh["mos"][:], mos01=fh["mos01"][:], names=col("names"),
                      attrs=attrs, ref=col("ref"), source=col("source"), distortion=col("distortion"),
                      level=col("level"), split=col("split"), mos_std=col("mos_std"), metrics={k: v[:] for k, v in fh.get("metrics", {}).items()})


def read_images(path: str | os.PathLike, indices: Iterable[int]) -> np.ndarray:
    """Load the listed images as uint8 (B, S, S, 3), ready to show."""
    idx = np.asarray(list(indices), dtype=np.int64)
    with h5py.File(path, "r") as fh:
        order = np.argsort(idx, kind="stable")
        out = np.empty((len(idx),) + fh["images"].shape[1:], dtype=np.uint8)
        for pos in order:
            out[pos] = fh["images"][idx[pos]]
    return out.transpose(0, 2, 3, 1)

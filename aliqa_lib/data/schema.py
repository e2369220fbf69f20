"""The label schema: every per-image column a dataset can carry, shared by the readers and the store.

A reader fills `Labels` from a database's label files; the store writes the same columns to HDF5
and reads them back into `Labels`. docs/store.md shows the layout as a table.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Column:
    """One per-image label column: its numpy kind and what it means."""

    kind: type
    meaning: str


# Required columns first; every other column is optional.
COLUMNS: dict[str, Column] = {
    "names": Column(str, "source file names (or generated names)"),
    "mos": Column(np.float64, "raw scores, in the dataset's own range and direction"),
    "mos01": Column(np.float32, "scores mapped to [0, 1], higher = better"),
    "ref": Column(np.int64, "reference / content id (images of one content share it)"),
    "source": Column(np.int64, "source photo id (crops of one photo share it; splits group by it)"),
    "distortion": Column(str, 'distortion type ("reference" for pristine images)'),
    "level": Column(np.int64, "distortion level (0 for pristine images)"),
    "split": Column(str, "the dataset's official split or image set (KonIQ training/validation/test, CID2013 IS1..IS6)"),
    "mos_std": Column(np.float64, "standard deviation of the opinion scores, in raw units"),
}
REQUIRED = ("names", "mos", "mos01")
OPTIONAL = tuple(c for c in COLUMNS if c not in REQUIRED)


def to_unit(mos: np.ndarray, score_range: tuple[float, float], higher_is_better: bool = True) -> np.ndarray:
    """Raw scores mapped linearly onto [0, 1] with higher = better (docs/method.md, step 1)."""
    lo, hi = score_range
    scaled = (np.asarray(mos, dtype=np.float64) - lo) / (hi - lo)
    return scaled if higher_is_better else 1.0 - scaled


def as_column(name: str, values: Any) -> np.ndarray:
    """Values of one schema column as the array type the schema names."""
    if name not in COLUMNS:
        raise ValueError(f"unknown label column {name!r}; the schema has {', '.join(COLUMNS)} (and metrics)")
    kind = COLUMNS[name].kind
    if kind is str:
        return np.asarray([str(v) for v in values], dtype=str)
    return np.asarray(values, dtype=kind)


@dataclass
class Labels:
    """Everything about a dataset's images except the pixels: the schema's columns, per-image side
    scores (`metrics`), and the dataset's attributes (name, score range, direction, ...)."""

    names: np.ndarray
    mos: np.ndarray
    mos01: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)
    ref: np.ndarray | None = None
    source: np.ndarray | None = None
    distortion: np.ndarray | None = None
    level: np.ndarray | None = None
    split: np.ndarray | None = None
    mos_std: np.ndarray | None = None
    metrics: dict[str, np.ndarray] = field(default_factory=dict)
    path: Path | None = None

    def __post_init__(self) -> None:
        for name in COLUMNS:
            if getattr(self, name) is not None:
                setattr(self, name, as_column(name, getattr(self, name)))
        self.metrics = {k: np.asarray(v, dtype=np.float64) for k, v in self.metrics.items()}
        wrong = {k: len(v) for k, v in self.columns().items() if len(v) != len(self.names)}
        wrong.update({f"metrics/{k}": len(v) for k, v in self.metrics.items() if len(v) != len(self.names)})
        if wrong:
            raise ValueError(f"label columns differ in length from the {len(self.names)} names: {wrong}")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def labelled(self) -> np.ndarray:
        """Boolean mask of the images whose score is known (a store of unknown_scores holds NaN for the others)."""
        return np.isfinite(self.mos01)

    @property
    def groups(self) -> np.ndarray | None:
        """Ids that must not be split between train and test (source photo, else reference)."""
        return self.source if self.source is not None else self.ref

    def columns(self) -> dict[str, np.ndarray]:
        """The schema columns this dataset has, by name (required ones first)."""
        return {name: getattr(self, name) for name in COLUMNS if getattr(self, name) is not None}

    def subset(self, keep: np.ndarray) -> Labels:
        """The rows at positions `keep`, in that order."""
        keep = np.asarray(keep, dtype=np.int64)
        return replace(self, **{k: v[keep] for k, v in self.columns().items()},
                       metrics={k: v[keep] for k, v in self.metrics.items()})


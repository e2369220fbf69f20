"""The ratings file: every opinion a person (or a simulated rater) gives, kept beside the store.

`<store without .h5>.ratings.csv` is append-only: one line per rating, written and flushed to disk
(fsync) the moment it is given, under a file lock, so a kernel restart, a closed tab or two panels
writing at once lose nothing. Nothing in it is ever rewritten; an undo appends a retraction row.

Columns (RATINGS_COLUMNS): store_id (fingerprint of the store's /names: a ratings file from another
store is refused), position (row in the store), name (the store's /names there), rater (free text,
"" for anonymous), score (ACR 1 bad, 2 poor, 3 fair, 4 good, 5 excellent; 0 = retraction),
time (UTC, ISO 8601), source (panel, simulated, label-studio, csv) and ref (an optional external id,
e.g. a Label Studio annotation id; rows whose (source, ref) are already in the file are not added
twice).

Effective ratings: for each (rater, position) the rows are read in file order as a stack: a rating
pushes, a retraction pops the latest one; the rating on top counts. So re-rating an image replaces
that rater's earlier opinion of it, and an undo brings back the one before (if any).
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
from filelock import FileLock

from ..data.schema import to_unit

RATINGS_COLUMNS = ("store_id", "position", "name", "rater", "score", "time", "source", "ref")
SOURCES = ("panel", "simulated", "label-studio", "csv")
ACR_RANGE = (1.0, 5.0)
ACR_LABELS = {1: "bad", 2: "poor", 3: "fair", 4: "good", 5: "excellent"}
RETRACTION = 0


class RatingsError(ValueError):
    """A rating, a ratings file or its store is wrong; the message names the file and the fix."""


def ratings_path(store: str | os.PathLike) -> Path:
    """The ratings file beside a store: `<store without .h5>.ratings.csv`."""
    store = Path(store)
    return store.with_name(store.stem + ".ratings.csv")


def store_names(store: str | os.PathLike) -> np.ndarray:
    """The store's /names (without validating its scores, which may be unknown)."""
    store = Path(store)
    if not store.is_file():
        raise RatingsError(f"no store at {store}: prepare it first (python -m aliqa_lib prepare folder --root DIR --out FILE)")
    with h5py.File(store, "r") as fh:
        if "names" not in fh:
            raise RatingsError(f"{store} has no /names; it is not a store of this package (prepare it again)")
        return fh["names"].asstr()[:]


def store_id(names: Iterable[str]) -> str:
    """A short stable fingerprint of a store's image names (in order): 12 hex digits of SHA-1."""
    return hashlib.sha1("\n".join(map(str, names)).encode("utf-8")).hexdigest()[:12]


def mos_to_unit(mos: np.ndarray) -> np.ndarray:
    """ACR MOS (1..5) on the store's unit scale: data.schema.to_unit(mos, (1, 5)) = (mos - 1) / 4."""
    return to_unit(mos, ACR_RANGE)


def _now() -> str:
    """The current time in UTC, ISO 8601 with microseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class RatingsFile:
    """The append-only ratings of one store (see the module docstring for the file's rules).

    >>> ratings = RatingsFile("photos.h5")          # photos.ratings.csv beside it
    >>> ratings.append(12, 4, rater="ana")          # on disk before this returns
    >>> ratings.opinions()                          # per image: name, mos, sd, count
    """

    def __init__(self, store: str | os.PathLike, path: str | os.PathLike | None = None) -> None:
        self.store = Path(store)
        self.names = store_names(self.store)
        self.store_id = store_id(self.names)
        self.path = Path(path) if path is not None else ratings_path(self.store)
        self._lock = FileLock(str(self.path) + ".lock")
        if self.path.exists():
            self._rows()  # checks the header and that the file belongs to this store

    def __len__(self) -> int:
        """The number of effective ratings."""
        return len(self.read())

    # ------------------------------------------------------------ writing

    def append(self, position: int, score: int, rater: str = "", source: str = "panel", ref: str = "") -> None:
        """Add one rating (score 1..5 of the image at `position`); it is on disk when this returns."""
        self._write([self._record(position, score, rater, source, ref)])

    def extend(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Add many ratings (dicts with position or name, score, and optional rater, source, ref, time);
        rows whose (source, ref) are already in the file (or earlier in `records`) are skipped.
        All are checked before any is written. Returns how many were added."""
        with self._lock:
            seen = {(r["source"], r["ref"]) for r in self._rows() if r["ref"]}
            rows = []
            for i, rec in enumerate(records):
                position = self._position_of(rec, i)
                row = self._record(position, rec.get("score"), rec.get("rater", ""), rec.get("source", "csv"),
                                   rec.get("ref", ""), rec.get("time"))
                if row["ref"] and (row["source"], row["ref"]) in seen:
                    continue
                seen.add((row["source"], row["ref"]))
                rows.append(row)
            self._write(rows, locked=True)
        return len(rows)

    def import_csv(self, path: str | os.PathLike, rater: str = "") -> int:
        """Add ratings collected elsewhere: a CSV with columns name,score (ACR 1..5) and optionally rater
        (else `rater`). Each row's ref is <file name>:<line>, so importing the same file again adds
        nothing. All rows are checked before any is written; returns how many were added."""
        path = Path(path)
        try:
            table = pd.read_csv(path, dtype={"name": str, "rater": str}, keep_default_na=False)
        except Exception as err:  # noqa: BLE001 - any parser error means an unreadable file
            raise RatingsError(f"cannot read ratings CSV {path}: {err}") from None
        missing = [c for c in ("name", "score") if c not in table.columns]
        if missing:
            raise RatingsError(f"{path} lacks column(s) {missing} (it has {list(table.columns)}); expected name,score[,rater]")
        scores = pd.to_numeric(table["score"], errors="coerce")
        bad = np.flatnonzero(~scores.isin([1, 2, 3, 4, 5]).to_numpy())
        if bad.size:
            raise RatingsError(f"{path}, line {bad[0] + 2}: score {table['score'].iloc[bad[0]]!r} is not an ACR category "
                               f"1..5 ({bad.size} such rows); fix them, nothing was imported")
        records = [dict(name=row["name"], score=int(score), rater=row.get("rater", rater) or rater, source="csv",
                        ref=f"{path.name}:{i + 2}") for i, (row, score) in enumerate(zip(table.to_dict("records"), scores))]
        return self.extend(records)

    def carry_over(self, old: str | os.PathLike) -> dict[str, int]:
        """Copy every row of a ratings file written for an earlier build of this store (same photos by
        name, other positions) into this store's empty ratings file, in order, retractions included;
        rows of images no longer in the store are left out. Returns counts: carried, left_out."""
        old = Path(old)
        if old.resolve() == self.path.resolve():
            raise RatingsError(f"move {old} aside first: carry_over copies it into {self.path}")
        with self._lock:
            if self._rows():
                raise RatingsError(f"{self.path} already holds ratings; carry_over only fills an empty ratings file")
            table = pd.read_csv(old, dtype=str, keep_default_na=False)
            if tuple(table.columns) != RATINGS_COLUMNS:
                raise RatingsError(f"{old} is not a ratings file (columns {list(table.columns)})")
            where = {name: i for i, name in enumerate(self.names)}
            keep = table["name"].isin(where)
            rows = [dict(row, store_id=self.store_id, position=where[row["name"]]) for row in
                    table[keep].to_dict("records")]
            self._write(rows, locked=True)
        return {"carried": int(keep.sum()), "left_out": int((~keep).sum())}

    def undo(self, rater: str = "", positions: Iterable[int] | None = None) -> dict[str, Any] | None:
        """Retract the latest effective rating of `rater` (of an image among `positions`, if given) by
        appending a retraction row; return the retracted record, or None if there is none to retract."""
        allowed = None if positions is None else {int(p) for p in positions}
        with self._lock:
            stacks = self._stacks(self._rows())
            latest = None
            for (who, position), stack in stacks.items():
                if who != rater or not stack or (allowed is not None and position not in allowed):
                    continue
                if latest is None or stack[-1]["_line"] > latest["_line"]:
                    latest = stack[-1]
            if latest is None:
                return None
            retraction = dict(latest, score=RETRACTION, time=_now(), ref="")
            self._write([retraction], locked=True)
        return self._public(latest)

    def _position_of(self, rec: Mapping[str, Any], i: int) -> int:
        """The store position a record refers to (by `position`, else by `name`)."""
        if rec.get("position") is not None and rec.get("position") != "":
            return rec["position"]
        name = rec.get("name")
        if name is None:
            raise RatingsError(f"rating {i} names neither a position nor a name; give one of them")
        hits = np.flatnonzero(self.names == str(name))
        if hits.size == 0:
            raise RatingsError(f"rating {i}: no image {name!r} in store {self.store} (names are as in its /names, "
                               f"e.g. {self.names[0]!r})")
        return int(hits[0])

    def _record(self, position: Any, score: Any, rater: Any, source: Any, ref: Any, time: Any = None) -> dict[str, Any]:
        """One checked row of the file."""
        if isinstance(score, bool) or not isinstance(score, (int, np.integer)) or not 1 <= int(score) <= 5:
            raise RatingsError(f"a rating is an integer from 1 (bad) to 5 (excellent), got {score!r}; nothing was written "
                               f"to {self.path}")
        if isinstance(position, bool) or not isinstance(position, (int, np.integer)) or \
                not 0 <= int(position) < len(self.names):
            raise RatingsError(f"position {position!r} is not an image of store {self.store} (0..{len(self.names) - 1}); "
                               f"nothing was written to {self.path}")
        if source not in SOURCES:
            raise RatingsError(f"unknown rating source {source!r}; choose one of {', '.join(SOURCES)}")
        return dict(store_id=self.store_id, position=int(position), name=str(self.names[int(position)]),
                    rater=str(rater or ""), score=int(score), time=str(time or _now()), source=source,
                    ref=str(ref or ""))

    def _write(self, rows: list[dict[str, Any]], locked: bool = False) -> None:
        """Append rows and fsync, writing the header first into a new file."""
        if not rows:
            return
        if not locked:
            with self._lock:
                return self._write(rows, locked=True)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=RATINGS_COLUMNS, extrasaction="ignore", lineterminator="\n")
        new = not self.path.exists() or self.path.stat().st_size == 0
        if new:
            writer.writeheader()
        writer.writerows(rows)
        text = buf.getvalue()
        if not new and not _ends_with_newline(self.path):
            text = "\n" + text  # a line cut short by a crash stays on its own line (skipped with a warning)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    # ------------------------------------------------------------ reading

    def _rows(self) -> list[dict[str, Any]]:
        """Every well-formed row of the file in order (with its line number as `_line`)."""
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                return []
            if tuple(header) != RATINGS_COLUMNS:
                raise RatingsError(f"{self.path} is not a ratings file: its header is {header}, expected "
                                   f"{','.join(RATINGS_COLUMNS)}; move it away or pass another path")
            rows = []
            for line, values in enumerate(reader, start=2):
                row = self._parse(values, line)
                if row is not None:
                    rows.append(row)
        return rows

    def _parse(self, values: list[str], line: int) -> dict[str, Any] | None:
        """One row as a dict; None (with a warning) for a line cut short by a crash."""
        if not values:
            return None
        try:
            if len(values) != len(RATINGS_COLUMNS):
                raise ValueError(f"{len(values)} fields")
            row = dict(zip(RATINGS_COLUMNS, values))
            row["position"], row["score"] = int(row["position"]), int(row["score"])
        except ValueError as err:
            warnings.warn(f"{self.path}, line {line}: unreadable row ({err}), probably cut short by a crash; "
                          "it is ignored", stacklevel=3)
            return None
        if row["store_id"] != self.store_id:
            raise RatingsError(f"{self.path} (line {line}) holds ratings of another store (id {row['store_id']}, this "
                               f"store {self.store} has id {self.store_id}: its /names differ). Use the store they "
                               "were given for; or, if you prepared the folder again after adding or removing photos, "
                               "move the file aside and carry its ratings over: RatingsFile(store).carry_over(old_file)")
        if not 0 <= row["position"] < len(self.names) or self.names[row["position"]] != row["name"]:
            raise RatingsError(f"{self.path} (line {line}): image {row['name']!r} is not at position {row['position']} "
                               f"of {self.store}; the file was edited by hand")
        row["_line"] = line
        return row

    @staticmethod
    def _stacks(rows: list[dict[str, Any]]) -> dict[tuple[str, int], list[dict[str, Any]]]:
        """Per (rater, position), the ratings still standing after retractions, oldest first."""
        stacks: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for row in rows:
            stack = stacks.setdefault((row["rater"], row["position"]), [])
            if row["score"] == RETRACTION:
                if stack:
                    stack.pop()
            else:
                stack.append(row)
        return stacks

    @staticmethod
    def _public(row: dict[str, Any]) -> dict[str, Any]:
        """A row without its internal fields."""
        return {k: row[k] for k in RATINGS_COLUMNS}

    def history(self) -> pd.DataFrame:
        """Every row of the file as written, retractions (score 0) included."""
        return pd.DataFrame([self._public(r) for r in self._rows()], columns=list(RATINGS_COLUMNS))

    def read(self) -> pd.DataFrame:
        """The effective ratings: one row per (rater, image), the latest not retracted, in the order given."""
        standing = [s[-1] for s in self._stacks(self._rows()).values() if s]
        standing.sort(key=lambda r: r["_line"])
        table = pd.DataFrame([self._public(r) for r in standing], columns=list(RATINGS_COLUMNS))
        return table.astype({"position": np.int64, "score": np.int64})

    def opinions(self, min_count: int = 1) -> pd.DataFrame:
        """Per rated image (index: position): name, mos (mean ACR score, 1..5), sd (sample SD, ddof=1;
        NaN for a single rating), count (raters), mos01 (= (mos - 1) / 4, the store's unit scale);
        only images with at least `min_count` ratings, by position."""
        table = self.read()
        grouped = table.groupby("position")
        out = pd.DataFrame({"name": grouped["name"].first(), "mos": grouped["score"].mean().astype(np.float64),
                            "sd": grouped["score"].std(ddof=1), "count": grouped["score"].size().astype(np.int64)})
        out.index.name = "position"
        out["mos01"] = mos_to_unit(out["mos"].to_numpy())
        return out[out["count"] >= int(min_count)].sort_index()

    def labelled(self, min_count: int = 1) -> np.ndarray:
        """Positions with at least `min_count` effective ratings, ascending."""
        return self.opinions(min_count).index.to_numpy(np.int64)

    def rated_by(self, rater: str) -> np.ndarray:
        """Positions `rater` has an effective rating of, ascending."""
        table = self.read()
        return np.unique(table.loc[table["rater"] == rater, "position"].to_numpy(np.int64))


def _ends_with_newline(path: Path) -> bool:
    """Whether a non-empty file's last byte is a newline."""
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"

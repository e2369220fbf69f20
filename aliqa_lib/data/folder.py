"""Any folder of the user's own photos as a store: scores unknown (NaN), or partly known from a CSV.

`python -m aliqa_lib prepare folder --root DIR --out FILE [--labels CSV --score-range LO HI]` finds
every image under DIR (recursively; .jpg .jpeg .png .bmp .tif .tiff .webp in any case; hidden files
and folders are left out), names it by its path relative to DIR with "/" separators, and decodes it
with the same parallel ingest and atomic write as the public databases (EXIF orientation honoured).
The store has the attribute unknown_scores=True: /mos and /mos01 are NaN for every image without a
known score, and Labels.labelled marks the others. A labels CSV has columns name,score (name as in
/names); its scores, in the range LO..HI (higher = better), become /mos, and (score-LO)/(HI-LO) /mos01.
Without a CSV the store's score range is the ACR scale 1..5 that ratings use.
"""
from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from ..paths import default_store_path
from .readers import Catalog, _scores
from .store import StoreError, validate_store

FOLDER_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
ACR_RANGE = (1.0, 5.0)  # the score range of a store without labels: the ratings' ACR scale


def find_images(root: str | os.PathLike) -> list[str]:
    """Paths (relative to root, "/" separators, sorted) of every image file under root, hidden ones left out."""
    root = Path(root)
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = Path(folder).relative_to(root)
        found += [(rel / f).as_posix() for f in files
                  if not f.startswith(".") and Path(f).suffix.lower() in FOLDER_SUFFIXES]
    return sorted(found)


def read_scores(path: str | os.PathLike, names: list[str], score_range: tuple[float, float]) -> dict[str, float]:
    """The name -> score table of a labels CSV (columns name,score), checked against the folder's names."""
    path = Path(path)
    fix = f"fix {path} (columns name,score; name as the image's path under --root with / separators)"
    try:
        table = pd.read_csv(path, dtype={"name": str}, keep_default_na=True)
    except Exception as err:  # noqa: BLE001 - any parser error means an unreadable labels file
        raise ValueError(f"cannot read labels file {path}: {err}; {fix}") from None
    missing = [c for c in ("name", "score") if c not in table.columns]
    if missing:
        raise ValueError(f"labels file {path} lacks column(s) {missing} (it has {list(map(str, table.columns))}); {fix}")
    given = table["name"].astype(str).str.strip().tolist()
    dup = [n for n, k in Counter(given).items() if k > 1]
    if dup:
        raise ValueError(f"labels file {path} lists {len(dup)} images more than once (first: {dup[:5]}); keep one score each")
    known = set(names)
    unknown = [n for n in given if n not in known]
    if unknown:
        raise ValueError(f"labels file {path} names {len(unknown)} image(s) that are not in the folder (first: "
                         f"{unknown[:5]}); names are paths relative to --root with / separators, e.g. {names[0]!r}. {fix}")
    scores = _scores(table["score"], path, "score", given, score_range, range_name="--score-range",
                     hint="pass the range your scores use")
    return dict(zip(given, scores.tolist()))


def folder_catalog(root: str | os.PathLike, labels: str | os.PathLike | None = None,
                   score_range: tuple[float, float] | None = None) -> Catalog:
    """The images under `root` with their scores: NaN, or from the labels CSV."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"the folder {root} does not exist; pass the folder holding your photos as --root")
    names = find_images(root)
    if not names:
        raise FileNotFoundError(f"no images under {root} (looked for {', '.join(FOLDER_SUFFIXES)} in every subfolder); "
                                "pass the folder holding your photos as --root")
    if labels is not None and score_range is None:
        raise ValueError(f"a labels file ({labels}) needs --score-range LO HI, the range its scores use "
                         "(e.g. 1 5 for MOS on the ACR scale, 0 100 for a slider); higher must mean better")
    if score_range is not None and not float(score_range[0]) < float(score_range[1]):
        raise ValueError(f"--score-range LO HI needs LO < HI, got {score_range}")
    score_range = tuple(map(float, score_range)) if score_range is not None else ACR_RANGE
    mos = np.full(len(names), np.nan)
    if labels is not None:
        table = read_scores(labels, names, score_range)
        mos = np.array([table.get(n, np.nan) for n in names])
    return Catalog.build("folder", [root / n for n in names], names, mos, score_range, True,
                         Path(labels) if labels is not None else root)


def _fingerprint(catalog: Catalog, labels: str | os.PathLike | None) -> str:
    """SHA-1 of the folder's file list (names, sizes, modification times) and the labels file's bytes."""
    digest = hashlib.sha1()
    for name, path in zip(catalog.labels.names, catalog.paths):
        stat = path.stat()
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    if labels is not None:
        digest.update(Path(labels).read_bytes())
    return digest.hexdigest()[:16]


def prepare_folder(root: str | os.PathLike, out: str | os.PathLike | None = None,
                   labels: str | os.PathLike | None = None, score_range: tuple[float, float] | None = None,
                   size: int = 244, workers: int | None = None, skip_bad: bool = False, progress: bool = True,
                   force: bool = False) -> Path:
    """Prepare the images under `root` into a store (default <cache>/folder_<root name>_<size>.h5) and return it.

    A valid store at `out` built from the same files, labels and settings is reused unless force=True;
    unreadable images raise an error listing them, or are left out (and listed) with skip_bad=True.
    """
    from .ingest import ingest

    root = Path(root).expanduser().resolve()
    catalog = folder_catalog(root, labels, score_range)
    out = Path(out) if out else default_store_path(f"folder_{root.name}", size)
    settings = dict(source_root=str(root), labels_file=str(Path(labels).resolve()) if labels else "",
                    files_sha1=_fingerprint(catalog, labels), skip_bad_requested=bool(skip_bad))
    if not force and out.exists():
        try:
            attrs = validate_store(out)
        except StoreError:
            attrs = None
        if attrs is not None and attrs.get("dataset") == "folder" and int(attrs["size"]) == size \
                and all(attrs.get(k) == v for k, v in settings.items()):
            return out
    note = (f"scores from {labels} (range {score_range[0]:g}..{score_range[1]:g}, higher = better), NaN where unknown"
            if labels else "no scores: every /mos is NaN until rated (ACR 1..5)")
    return ingest(catalog, out, size=size, workers=workers, skip_bad=skip_bad, progress=progress,
                  unknown_scores=True, label_note=note,
                  resize="whole image to size x size, bicubic, after JPEG DCT-scaled decoding", **settings)

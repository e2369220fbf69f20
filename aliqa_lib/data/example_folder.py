"""An example "folder of your photos", written from the embedded dataset, so notebook 08 runs offline.

Each content's pristine reference plus a few of its distorted versions (distinct distortion types
among a chosen few, random levels, seeded), as JPEG files in one sub-folder per content (`astronaut_c00/reference.jpg`,
`astronaut_c00/jpeg_L3.jpg`, ...), and a labels CSV (name,score) holding their pseudo-MOS, the
scores a simulated rater reads and the learning curve is measured against. The folder itself is
unlabelled: nothing in it says what the scores are.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..cache import atomic_path
from .store import read_images, read_labels

JPEG_QUALITY = 95   # high: the folder's images should carry the store's distortions, not new ones


def example_picks(distortion: np.ndarray, ref: np.ndarray, per_reference: int, seed: int,
                  kinds: Sequence[str] | None = None) -> np.ndarray:
    """Store positions: every reference plus `per_reference` distorted versions of its content, each
    of another distortion type among `kinds` (default: all; drawn with `seed`, as many as there are
    types at most) at a random level, ascending."""
    if per_reference < 0:
        raise ValueError(f"per_reference is a number of distorted versions per content, >= 0; got {per_reference}")
    present = set(np.unique(distortion)) - {"reference"}
    unknown = sorted(set(kinds or ()) - present)
    if unknown:
        raise ValueError(f"distortion(s) {unknown} are not in the store; it has {sorted(present)}")
    rng = np.random.default_rng(seed)
    picks = []
    for content in np.unique(ref):
        rows = np.flatnonzero(ref == content)
        picks.extend(rows[distortion[rows] == "reference"])
        types = np.unique(distortion[rows][distortion[rows] != "reference"])
        if kinds is not None:
            types = np.array([t for t in types if t in set(kinds)])
        for kind in rng.permutation(types)[:per_reference]:
            picks.append(rng.choice(rows[distortion[rows] == kind]))
    return np.sort(np.asarray(picks, dtype=np.int64))


def folder_name(store_name: str) -> str:
    """The file an embedded-set image gets: `astronaut_c00__jpeg_L3` -> `astronaut_c00/jpeg_L3.jpg`."""
    content, _, version = store_name.partition("__")
    return f"{content}/{version or 'image'}.jpg"


def write_example_folder(store: str | os.PathLike, folder: str | os.PathLike, per_reference: int = 3,
                         seed: int = 0, kinds: Sequence[str] | None = None,
                         labels_csv: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Write the example folder from an embedded-dataset store (see example_picks); return (folder, labels CSV).

    The CSV (default: `<folder>.labels.csv` beside the folder, so the folder holds only images) has
    columns name,score: each file's path relative to the folder and its pseudo-MOS (1..5, higher =
    better). An existing folder is refused rather than mixed with other images.
    """
    labels = read_labels(store)
    if labels.distortion is None or labels.ref is None:
        raise ValueError(f"{store} has no distortion/ref columns: write the example folder from the embedded "
                         "dataset's store (python -m aliqa_lib prepare synthetic)")
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} already holds files; pass an empty or new folder")
    csv_path = Path(labels_csv) if labels_csv else folder.with_name(folder.name + ".labels.csv")
    picks = example_picks(labels.distortion, labels.ref, per_reference, seed, kinds)
    names = [folder_name(n) for n in labels.names[picks]]
    folder.parent.mkdir(parents=True, exist_ok=True)
    # the whole folder appears at once (written beside it, then renamed), never half-written;
    # atomic_path does this for single files
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))
    try:
        for name, image in zip(names, read_images(store, picks)):
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(tmp / name, format="JPEG", quality=JPEG_QUALITY)
        if folder.exists():
            folder.rmdir()          # empty (checked above)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    with atomic_path(csv_path) as out:
        pd.DataFrame({"name": names, "score": labels.mos[picks]}).to_csv(out, index=False)
    return folder, csv_path

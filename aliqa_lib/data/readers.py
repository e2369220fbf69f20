"""Readers of the public IQA databases' official layouts: label files in, a Catalog of images out.

A reader only reads labels and finds image files; decoding and resizing happen in `ingest`.
Every reader checks what it reads and raises one clear error naming the file and what it expected.
The layouts follow each database's own release (checked against its readme and the loaders of
widely used IQA code); `DATABASES` lists where each one is downloaded.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.io as sio

from .schema import Labels, to_unit


@dataclass(frozen=True)
class DatabaseInfo:
    """What a user needs to know to download a database and point `prepare` at it."""

    title: str
    url: str
    layout: str
    scale: str


DATABASES: dict[str, DatabaseInfo] = {
    "koniq10k": DatabaseInfo(
        "KonIQ-10k (10,073 in-the-wild photos)", "https://database.mmsp-kn.de/koniq-10k-database.html",
        "koniq10k_scores_and_distributions.csv (or koniq10k_distributions_sets.csv) and 1024x768/ or 512x384/",
        "MOS 1-5, higher = better; (MOS-1)/4"),
    "livec": DatabaseInfo(
        "LIVE In the Wild Image Quality Challenge (1,169 photos)", "https://live.ece.utexas.edu/research/ChallengeDB/index.html",
        "Data/AllImages_release.mat, Data/AllMOS_release.mat, Data/AllStdDev_release.mat, Images/ "
        "(7 in Images/trainingImages/)", "MOS 0-100, higher = better; MOS/100"),
    "spaq": DatabaseInfo(
        "SPAQ (11,125 smartphone photos)", "https://github.com/h4nwei/SPAQ",
        "Annotations/MOS and Image attribute scores.xlsx and TestImage/*.jpg", "MOS 0-100, higher = better; MOS/100"),
    "kadid10k": DatabaseInfo(
        "KADID-10k (81 references x 25 distortions x 5 levels)", "https://database.mmsp-kn.de/kadid-10k-database.html",
        "dmos.csv (dist_img, ref_img, dmos, var) and images/", "DMOS 1-5, higher = better despite the name; (DMOS-1)/4"),
    "bid": DatabaseInfo(
        "BID, the Real Blur Image Database (586 photos, Ciancio et al. 2011)",
        "http://www02.smt.ufrj.br/~eduardo/ImageDatabase.htm",
        "DatabaseGrades.xlsx (or .xls) and DatabaseImage0001.JPG ...", "grade 0-5, higher = better; grade/5"),
    "cid2013": DatabaseInfo(
        "CID2013 (480 camera photos in six image sets)", "https://zenodo.org/records/2647033",
        "CID2013 data - version 12112014.xlsx (sheet 'CID2013 MOS') and IS1/ ... IS6/",
        "realigned MOS, nominally 0-100 but published from about -9.5 (not clipped), higher = better; (MOS+10)/110"),
}

# The range of raw scores each reader accepts and maps linearly onto [0, 1] (schema.to_unit): what the
# published label files contain, not the nominal scale of the documentation. A mean of ratings cannot
# leave its rating scale, so for KonIQ-10k, LIVE Challenge, SPAQ, KADID-10k and BID it is the rating
# scale. CID2013's "Realigned MOS" is a linear realignment of six separately rated image sets onto one
# scale and is not clipped: the published file holds a few values below 0 (the lowest near -9.5), so
# its range starts at -10. A column outside the range (another scale, z-scores, counts) is refused.
SCORE_RANGES: dict[str, tuple[float, float]] = {
    "koniq10k": (1.0, 5.0), "livec": (0.0, 100.0), "spaq": (0.0, 100.0), "kadid10k": (1.0, 5.0),
    "bid": (0.0, 5.0), "cid2013": (-10.0, 100.0),
}

KADID_DISTORTIONS = (
    "gaussian_blur", "lens_blur", "motion_blur", "color_diffusion", "color_shift", "color_quantization",
    "color_saturation_hsv", "color_saturation_lab", "jpeg2000", "jpeg", "white_noise", "white_noise_color",
    "impulse_noise", "multiplicative_noise", "denoise", "brighten", "darken", "mean_shift", "jitter",
    "non_eccentricity_patch", "pixelate", "quantization", "color_block", "high_sharpen", "contrast_change")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


@dataclass
class Catalog:
    """A database's images in store order: where each file is, and its labels in the store's schema."""

    dataset: str
    paths: list[Path]
    labels: Labels
    label_file: Path
    variant: str = ""

    @classmethod
    def build(cls, dataset: str, paths: list[Path], names: list[str], mos: np.ndarray,
              score_range: tuple[float, float], higher_is_better: bool, label_file: Path, variant: str = "",
              metrics: dict[str, np.ndarray] | None = None, **columns: Any) -> Catalog:
        """A catalog from raw scores: [0, 1] scores follow from the score range (SCORE_RANGES) and direction."""
        labels = Labels(names=names, mos=mos, mos01=to_unit(mos, score_range, higher_is_better),
                        attrs=dict(dataset=dataset, score_range=score_range, higher_is_better=higher_is_better),
                        metrics=metrics or {}, **columns)
        return cls(dataset, list(paths), labels, Path(label_file), variant)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, keep: np.ndarray) -> Catalog:
        """The rows at positions `keep` (in that order)."""
        keep = np.asarray(keep, dtype=np.int64)
        return replace(self, paths=[self.paths[i] for i in keep], labels=self.labels.subset(keep))


# ---------------------------------------------------------------- finding files


def _check_root(root: str | os.PathLike, dataset: str) -> Path:
    """The dataset folder, or an error telling where to download it."""
    root = Path(root).expanduser()
    if not root.is_dir():
        info = DATABASES[dataset]
        raise FileNotFoundError(f"{dataset}: the folder {root} does not exist; download {info.title} from "
                                f"{info.url}, unpack it and pass that folder as --root")
    return root


def _walk(root: Path, max_depth: int):
    """(folder, subfolders, files) under root, at most max_depth levels down, in sorted order."""
    base = len(root.parts)
    for folder, dirs, files in os.walk(root):
        depth = len(Path(folder).parts) - base
        dirs.sort()
        if depth >= max_depth:
            dirs[:] = []
        yield Path(folder), dirs, sorted(files)


def _locate(root: Path, match: Callable[[str], bool], kind: str = "file", max_depth: int = 4) -> Path | None:
    """The shallowest file (or folder) under root whose name satisfies `match`, or None."""
    for folder, dirs, files in _walk(root, max_depth):
        hits = [n for n in (files if kind == "file" else dirs) if match(n)]
        if hits:
            return folder / hits[0]
    return None


def _find(root: Path, dataset: str, match: Callable[[str], bool], what: str, kind: str = "file",
          max_depth: int = 4) -> Path:
    """Like _locate, but raise an error naming `what` and the official layout when nothing matches."""
    found = _locate(root, match, kind, max_depth)
    if found is None:
        info = DATABASES[dataset]
        raise FileNotFoundError(f"{dataset}: no {what} under {root}; expected the official layout "
                                f"({info.layout}) from {info.url}")
    return found


def _index_images(folder: Path, max_depth: int = 4) -> dict[str, Path]:
    """Lower-case file name -> path for every image under folder (first one wins)."""
    found: dict[str, Path] = {}
    for sub, _, files in _walk(folder, max_depth):
        for name in files:
            if name.lower().endswith(IMAGE_SUFFIXES):
                found.setdefault(name.lower(), sub / name)
    return found


# ---------------------------------------------------------------- reading label files


def _table(path: Path, sheet: str | int = 0) -> pd.DataFrame:
    """A CSV or Excel label file as a DataFrame, or an error naming the file."""
    try:
        table = pd.read_csv(path) if path.suffix.lower() == ".csv" else \
            pd.read_excel(path, sheet_name=sheet, engine="calamine")
        return table.dropna(how="all").reset_index(drop=True)  # spreadsheets often carry blank rows
    except ValueError as err:
        if isinstance(sheet, str) and "not found" in str(err).lower():
            sheets = list(pd.ExcelFile(path, engine="calamine").sheet_names)
            raise ValueError(f"{path} has no sheet {sheet!r} (it has {sheets}); is this the official file?") from None
        raise ValueError(f"cannot read {path}: {err}") from None
    except Exception as err:  # noqa: BLE001 - any parser error means an unreadable label file
        raise ValueError(f"cannot read {path}: {err}") from None


def _require(df: pd.DataFrame, columns: tuple[str, ...], path: Path, dataset: str) -> None:
    """Raise if the label table lacks any of `columns`."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing}; it has {list(map(str, df.columns))}. "
                         f"Expected the official {dataset} layout: {DATABASES[dataset].layout}")


def _scores(values, path: Path, column: str, names: list[str], score_range: tuple[float, float],
            range_name: str = "the published range", hint: str = "is this the right file and column?") -> np.ndarray:
    """Numeric scores from one label column; raise on text, NaN or values outside `score_range` (SCORE_RANGES)."""
    scores = pd.to_numeric(pd.Series(np.asarray(values).ravel()), errors="coerce").to_numpy(np.float64)
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        first = [names[i] for i in bad[:5]]
        raise ValueError(f"{path}: {bad.size} rows have no numeric score in {column!r} (NaN or text; first: "
                         f"{first}); fix or delete those rows, then prepare again")
    lo, hi = score_range
    out = np.flatnonzero((scores < lo) | (scores > hi))
    if out.size:
        raise ValueError(f"{path}: {out.size} scores in {column!r} fall outside {range_name} {lo:g}..{hi:g} "
                         f"(e.g. {names[out[0]]}: {scores[out[0]]:g}); {hint}")
    return scores


def _unique_names(names: list[str], path: Path) -> None:
    """Raise if an image is listed twice."""
    dup = [n for n, count in Counter(names).items() if count > 1]
    if dup:
        raise ValueError(f"{path} lists {len(dup)} images more than once (first: {dup[:5]}); the file is damaged")


# ---------------------------------------------------------------- the six databases


def read_koniq10k(root: str | os.PathLike, variant: str | None = None) -> Catalog:
    """KonIQ-10k in name order; variant "1024x768" (default when present) or "512x384" picks the image folder.

    Names are sorted so that position i is name_sorted[i], the order the authors' index files refer to.
    When koniq10k_distributions_sets.csv is present, its 'set' column becomes the official split.
    """
    root = _check_root(root, "koniq10k")
    names_ok = ("koniq10k_scores_and_distributions.csv", "koniq10k_distributions_sets.csv")
    label = _maybe(root, names_ok[0]) or _find(root, "koniq10k", lambda n: n == names_ok[1],
                                               f"{names_ok[0]} (or {names_ok[1]})")
    df = _table(label)
    _require(df, ("image_name", "MOS"), label, "koniq10k")
    df = df.assign(image_name=df["image_name"].astype(str)).sort_values("image_name", kind="stable")
    names = df["image_name"].tolist()
    _unique_names(names, label)
    mos = _scores(df["MOS"], label, "MOS", names, SCORE_RANGES["koniq10k"])
    sets_file = label if "set" in df.columns else _maybe(root, names_ok[1])
    split = None
    if sets_file is not None:
        sets = df if sets_file == label else _table(sets_file)  # the label file itself may hold the sets
        _require(sets, ("image_name", "set"), sets_file, "koniq10k")
        by_name = dict(zip(sets["image_name"].astype(str), sets["set"].astype(str)))
        split = [by_name.get(n, "") for n in names]
    if variant not in (None, "1024x768", "512x384"):
        raise ValueError(f"koniq10k: unknown variant {variant!r}; choose 1024x768 or 512x384 (the image folder)")
    wanted = [variant] if variant else ["1024x768", "512x384"]
    folders = [p for v in wanted if (p := _maybe(root, v, kind="dir")) is not None]
    if not folders:
        raise FileNotFoundError(f"koniq10k: no image folder {' or '.join(wanted)} under {root}; unpack the "
                                f"images archive from {DATABASES['koniq10k'].url} there")
    folder = folders[0]
    return Catalog.build("koniq10k", [folder / n for n in names], names, mos, SCORE_RANGES["koniq10k"], True, label,
                   variant=folder.name, mos_std=_optional(df, "SD"), split=split)


def read_livec(root: str | os.PathLike, variant: str | None = None) -> Catalog:
    """LIVE Challenge in the order of AllImages_release.mat; variant "common" (default) drops the 7
    trainingImages as most papers do (1,162 images), "all" keeps them (1,169, as the AL-IQA authors did)."""
    root = _check_root(root, "livec")
    if variant not in (None, "common", "all"):
        raise ValueError(f"livec: unknown variant {variant!r}; choose common (1,162 images) or all (1,169)")
    # unzipping often produces ChallengeDB_release/ChallengeDB_release/: search a few levels down
    images_mat = _find(root, "livec", lambda n: n == "AllImages_release.mat", "Data/AllImages_release.mat", max_depth=5)
    data = images_mat.parent
    names = [str(np.ravel(e)[0]) for e in np.ravel(_mat_var(images_mat, "AllImages_release"))]
    mos_mat, std_mat = data / "AllMOS_release.mat", data / "AllStdDev_release.mat"
    mos_raw = np.ravel(_mat_var(mos_mat, "AllMOS_release"))
    std = np.ravel(_mat_var(std_mat, "AllStdDev_release")).astype(np.float64) if std_mat.is_file() else None
    for path, values in ((mos_mat, mos_raw), (std_mat, std)):
        if values is not None and len(values) != len(names):
            raise ValueError(f"{path} holds {len(values)} values but {images_mat} lists {len(names)} images; "
                             "the Data/ files come from different releases")
    _unique_names(names, images_mat)
    mos = _scores(mos_raw, mos_mat, "AllMOS_release", names, SCORE_RANGES["livec"])
    images = data.parent / "Images"
    if not images.is_dir():
        raise FileNotFoundError(f"livec: no Images/ folder beside {data}; expected {DATABASES['livec'].layout}")
    training = images / "trainingImages"
    is_training = np.array([(training / n).is_file() for n in names])
    if training.is_dir() and not is_training.any():
        is_training[:7] = True  # folder present but renamed files: fall back to the documented first 7
    paths = [(training if t else images) / n for n, t in zip(names, is_training)]
    cat = Catalog.build("livec", paths, names, mos, SCORE_RANGES["livec"], True, mos_mat, variant=variant or "common",
                        mos_std=std)
    return cat if variant == "all" else cat.subset(np.flatnonzero(~is_training))


def read_spaq(root: str | os.PathLike, variant: str | None = None) -> Catalog:
    """SPAQ in the order of its MOS workbook (or a CSV export of it); the five attribute scores are kept as /metrics."""
    root = _check_root(root, "spaq")
    _no_variant("spaq", variant)
    label = _find(root, "spaq", lambda n: n.lower() in ("mos and image attribute scores.xlsx",
                                                        "mos and image attribute scores.csv"),
                  "Annotations/MOS and Image attribute scores.xlsx (or a .csv export of it)")
    df = _table(label)
    _require(df, ("Image name", "MOS"), label, "spaq")
    names = df["Image name"].astype(str).tolist()
    _unique_names(names, label)
    mos = _scores(df["MOS"], label, "MOS", names, SCORE_RANGES["spaq"])
    folder = _find(root, "spaq", lambda n: n == "TestImage", "TestImage/ folder", kind="dir")
    attributes = {c.lower(): _scores(df[c], label, c, names, SCORE_RANGES["spaq"])
                  for c in ("Brightness", "Colorfulness", "Contrast", "Noisiness", "Sharpness") if c in df.columns}
    return Catalog.build("spaq", [folder / n for n in names], names, mos, SCORE_RANGES["spaq"], True, label, metrics=attributes)


def read_kadid10k(root: str | os.PathLike, variant: str | None = None) -> Catalog:
    """KADID-10k in dmos.csv order, with reference id, distortion type and level parsed from I01_02_03.png."""
    root = _check_root(root, "kadid10k")
    _no_variant("kadid10k", variant)
    label = _find(root, "kadid10k", lambda n: n == "dmos.csv", "dmos.csv")
    df = _table(label)
    _require(df, ("dist_img", "ref_img", "dmos"), label, "kadid10k")
    names = df["dist_img"].astype(str).tolist()
    _unique_names(names, label)
    mos = _scores(df["dmos"], label, "dmos", names, SCORE_RANGES["kadid10k"])
    parsed = [re.fullmatch(r"I(\d+)_(\d+)_(\d+)\.\w+", n, flags=re.IGNORECASE) for n in names]
    bad = [n for n, m in zip(names, parsed) if m is None or not 1 <= int(m.group(2)) <= len(KADID_DISTORTIONS)]
    if bad:
        raise ValueError(f"{label}: {len(bad)} dist_img names do not follow I<ref>_<type 01-25>_<level>.png "
                         f"(first: {bad[:5]}); is this KADID-10k's dmos.csv?")
    ref = np.array([int(m.group(1)) for m in parsed])
    refs_listed = [re.fullmatch(r"I(\d+)\.\w+", r, flags=re.IGNORECASE) for r in df["ref_img"].astype(str)]
    wrong = [n for n, m, r in zip(names, refs_listed, ref) if m is None or int(m.group(1)) != r]
    if wrong:
        raise ValueError(f"{label}: {len(wrong)} rows name a ref_img that is not the dist_img's reference "
                         f"(first: {wrong[:5]}); the file is damaged")
    folder = _find(label.parent, "kadid10k", lambda n: n == "images", "images/ folder beside dmos.csv", kind="dir", max_depth=1)
    std = np.sqrt(df["var"].to_numpy(np.float64)) if "var" in df.columns else None
    return Catalog.build("kadid10k", [folder / n for n in names], names, mos, SCORE_RANGES["kadid10k"], True, label,
                         mos_std=std, ref=ref,
                   distortion=[KADID_DISTORTIONS[int(m.group(2)) - 1] for m in parsed],
                   level=np.array([int(m.group(3)) for m in parsed]))


def read_bid(root: str | os.PathLike, variant: str | None = None) -> Catalog:
    """BID in the order of DatabaseGrades; images DatabaseImage%04d.JPG found anywhere under root."""
    root = _check_root(root, "bid")
    _no_variant("bid", variant)
    label = _find(root, "bid", lambda n: n.lower() in ("databasegrades.xlsx", "databasegrades.xls"),
                  "DatabaseGrades.xlsx (or .xls)")
    df = _table(label)
    _require(df, ("Image Number", "Average Subjective Grade"), label, "bid")
    numbers = pd.to_numeric(df["Image Number"], errors="coerce")
    if numbers.isna().any():
        raise ValueError(f"{label}: 'Image Number' holds non-numbers (rows {np.flatnonzero(numbers.isna())[:5].tolist()})")
    names = [f"DatabaseImage{int(k):04d}.JPG" for k in numbers]
    _unique_names(names, label)
    mos = _scores(df["Average Subjective Grade"], label, "Average Subjective Grade", names, SCORE_RANGES["bid"])
    found = _index_images(label.parent) or _index_images(root)
    paths = [found.get(n.lower(), label.parent / n) for n in names]
    return Catalog.build("bid", paths, names, mos, SCORE_RANGES["bid"], True, label, mos_std=_optional(df, "std"))


def read_cid2013(root: str | os.PathLike, variant: str | None = None) -> Catalog:
    """CID2013 in workbook order with the realigned MOS; image set IS1..IS6 as split, set + scene as ref."""
    root = _check_root(root, "cid2013")
    _no_variant("cid2013", variant)
    label = _find(root, "cid2013", lambda n: n.lower().startswith("cid2013") and n.lower().endswith((".xlsx", ".xls")),
                  "CID2013 data - version 12112014.xlsx")
    df = _table(label, sheet="CID2013 MOS")
    _require(df, ("Source_ID", "Realigned MOS"), label, "cid2013")
    ids = df["Source_ID"].astype(str).str.strip().tolist()
    _unique_names(ids, label)
    mos = _scores(df["Realigned MOS"], label, "Realigned MOS", ids, SCORE_RANGES["cid2013"])
    sets = [d for d in (_maybe(root, f"IS{k}", kind="dir") for k in range(1, 7)) if d is not None]
    if not sets:
        raise FileNotFoundError(f"cid2013: no image set folders IS1 ... IS6 under {root}; unpack the whole archive")
    found: dict[str, Path] = {}
    for folder in sets:
        for name, path in _index_images(folder).items():
            found.setdefault(Path(name).stem, path)
    paths = [found.get(i.lower(), sets[0] / f"{i}.jpg") for i in ids]
    split = [next((p.name for p in path.parents if re.fullmatch(r"IS\d", p.name)), "") for path in paths]
    scenes = ["_".join(i.split("_")[:3]) for i in ids]  # IS_I_C01_D01 -> image set I, scene C01
    ref = pd.factorize(pd.Series(scenes))[0]  # ids in order of first appearance
    return Catalog.build("cid2013", paths, [f"{i}.jpg" for i in ids], mos, SCORE_RANGES["cid2013"], True, label,
                         ref=ref, split=split)


READERS: dict[str, Callable[..., Catalog]] = {
    "koniq10k": read_koniq10k, "livec": read_livec, "spaq": read_spaq,
    "kadid10k": read_kadid10k, "bid": read_bid, "cid2013": read_cid2013,
}


def read_catalog(name: str, root: str | os.PathLike, variant: str | None = None) -> Catalog:
    """The catalog of dataset `name` from its folder (see READERS)."""
    if name not in READERS:
        raise ValueError(f"unknown dataset {name!r}; readers exist for {', '.join(READERS)}")
    return READERS[name](root, variant)


# ---------------------------------------------------------------- small helpers


def _maybe(root: Path, name: str, kind: str = "file") -> Path | None:
    """The shallowest file/folder called exactly `name` under root, or None."""
    return _locate(root, lambda n: n == name, kind)


def _optional(df: pd.DataFrame, column: str) -> np.ndarray | None:
    """A numeric column if present (NaN where unreadable)."""
    return pd.to_numeric(df[column], errors="coerce").to_numpy(np.float64) if column in df.columns else None


def _mat_var(path: Path, var: str) -> np.ndarray:
    """One variable of a MATLAB file, or an error naming the file."""
    if not path.is_file():
        raise FileNotFoundError(f"livec: {path} is missing; expected {DATABASES['livec'].layout}")
    try:
        mat = sio.loadmat(path)
    except Exception as err:  # noqa: BLE001 - scipy raises several types for damaged files
        raise ValueError(f"cannot read {path}: {err}") from None
    if var not in mat:
        keys = [k for k in mat if not k.startswith("__")]
        raise ValueError(f"{path} has no variable {var!r} (it has {keys}); is this the official release file?")
    return mat[var]


def _no_variant(dataset: str, variant: str | None) -> None:
    """Raise if a variant is given to a dataset that has none."""
    if variant:
        raise ValueError(f"{dataset} has no variants (got {variant!r}); leave --variant out")

"""Tiny fake copies of the six databases' official layouts (generated images, real label formats)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io as sio
from PIL import Image

N = 12


def picture(i: int, w: int = 64, h: int = 48) -> Image.Image:
    """A distinct small RGB picture: a gradient whose colour depends on i."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 4 + 20 * i) % 256, (y * 5 + 7 * i) % 256, np.full_like(x, (40 * i) % 256)], -1)
    return Image.fromarray(img.astype(np.uint8))


def save(path: Path, i: int, **kw) -> Path:
    """Write picture i to path (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    picture(i).save(path, **kw)
    return path


def koniq10k(root: Path, folder: str = "1024x768", sets: bool = False) -> dict:
    """koniq10k_scores_and_distributions.csv listed out of name order, images in `folder`."""
    names = [f"{1000 + 37 * k}.jpg" for k in range(N)]
    rows = [{"image_name": n, "c1": 1, "c2": 2, "c3": 3, "c4": 4, "c5": 5, "c_total": 15,
             "MOS": 1.2 + 0.3 * k, "SD": 0.5, "MOS_zscore": 40 + k} for k, n in enumerate(names)]
    pd.DataFrame(rows[::-1]).to_csv(root / "koniq10k_scores_and_distributions.csv", index=False)
    for k, n in enumerate(names):
        save(root / folder / n, k)
    if sets:
        split = ["training"] * 8 + ["validation"] * 2 + ["test"] * 2
        pd.DataFrame({"image_name": names, "MOS": [r["MOS"] for r in rows], "set": split}).to_csv(
            root / "koniq10k_distributions_sets.csv", index=False)
    return {"names": names, "mos": np.array([r["MOS"] for r in rows])}


def livec(root: Path, nested: bool = False) -> dict:
    """ChallengeDB_release layout: Data/*.mat and Images/ with the first 7 in Images/trainingImages/."""
    base = root / "ChallengeDB_release" / "ChallengeDB_release" if nested else root
    names = [f"t{k + 1}.bmp" for k in range(7)] + [f"{10 + k}.JPG" for k in range(N - 7)]
    mos = np.linspace(20, 80, N)
    (base / "Data").mkdir(parents=True, exist_ok=True)
    cells = np.empty((N, 1), dtype=object)
    for k, n in enumerate(names):
        cells[k, 0] = np.array([n])
    sio.savemat(base / "Data" / "AllImages_release.mat", {"AllImages_release": cells})
    sio.savemat(base / "Data" / "AllMOS_release.mat", {"AllMOS_release": mos[None, :]})
    sio.savemat(base / "Data" / "AllStdDev_release.mat", {"AllStdDev_release": np.full((1, N), 15.0)})
    for k, n in enumerate(names):
        sub = "trainingImages/" if k < 7 else ""
        save(base / "Images" / f"{sub}{n}", k, format="BMP" if n.endswith(".bmp") else "JPEG")
    return {"names": names, "mos": mos}


def spaq(root: Path, n: int = N) -> dict:
    """Annotations/MOS and Image attribute scores.xlsx and TestImage/; image 00003.jpg is tagged
    EXIF orientation 6 (rotate 90 degrees clockwise to display): left half red, right half blue."""
    names = [f"{k + 1:05d}.jpg" for k in range(n)]
    mos = np.linspace(10, 90, n)
    (root / "Annotations").mkdir(parents=True)
    pd.DataFrame({"Image name": names, "MOS": mos, "Brightness": mos / 2, "Colorfulness": 50.0,
                  "Contrast": 40.0, "Noisiness": 30.0, "Sharpness": 60.0}).to_excel(
        root / "Annotations" / "MOS and Image attribute scores.xlsx", index=False)
    for k, n in enumerate(names):
        if k == 2:
            halves = np.zeros((48, 64, 3), np.uint8)
            halves[:, :32, 0] = 255
            halves[:, 32:, 2] = 255
            exif = Image.Exif()
            exif[0x0112] = 6
            (root / "TestImage").mkdir(exist_ok=True)
            Image.fromarray(halves).save(root / "TestImage" / n, exif=exif.tobytes(), quality=95)
        else:
            save(root / "TestImage" / n, k)
    return {"names": names, "mos": mos}


def kadid10k(root: Path) -> dict:
    """kadid10k/dmos.csv and kadid10k/images/ (references I01.png ... beside the distorted PNGs)."""
    base = root / "kadid10k"
    rows = []
    for k in range(N):
        ref, typ, lvl = 1 + k // 6, 1 + (k // 2) % 25 + (k % 3) * 7, 1 + k % 5
        rows.append({"dist_img": f"I{ref:02d}_{typ:02d}_{lvl:02d}.png", "ref_img": f"I{ref:02d}.png",
                     "dmos": 4.8 - 0.3 * k, "var": 0.25})
    base.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(base / "dmos.csv", index=False)
    for k, r in enumerate(rows):
        save(base / "images" / r["dist_img"], k)
    for ref in {r["ref_img"] for r in rows}:
        save(base / "images" / ref, 99)
    return {"names": [r["dist_img"] for r in rows], "mos": np.array([r["dmos"] for r in rows]), "rows": rows}


def bid(root: Path) -> dict:
    """DatabaseGrades.xlsx beside ImageDatabase/DatabaseImage####.JPG."""
    numbers = list(range(1, N + 1))
    grades = np.linspace(0.5, 4.5, N)
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"Image Number": numbers, "Average Subjective Grade": grades, "std": 0.7}).to_excel(
        root / "DatabaseGrades.xlsx", index=False)
    for k in numbers:
        save(root / "ImageDatabase" / f"DatabaseImage{k:04d}.JPG", k, format="JPEG")
    return {"names": [f"DatabaseImage{k:04d}.JPG" for k in numbers], "mos": grades}


def cid2013(root: Path) -> dict:
    """CID2013 data - version 12112014.xlsx (sheet 'CID2013 MOS') and IS1/co1/IS_I_C01_D01.jpg ..."""
    roman = ["I", "II"]
    ids = [f"IS_{roman[s]}_C{c:02d}_D{d:02d}" for s in range(2) for c in (1, 2) for d in (1, 2, 3)]
    mos = np.linspace(-9.5, 85, len(ids))   # the realigned MOS is not clipped: the published file goes below 0
    with pd.ExcelWriter(root / "CID2013 data - version 12112014.xlsx") as xl:
        pd.DataFrame({"notes": ["see the MOS sheet"]}).to_excel(xl, sheet_name="Readme", index=False)
        pd.DataFrame({"Source_ID": ids, "Realigned MOS": mos, "Image set specific  MOS": mos}).to_excel(
            xl, sheet_name="CID2013 MOS", index=False)
    for k, i in enumerate(ids):
        s, c = i.split("_")[1], int(i.split("_")[2][1:])
        save(root / f"IS{roman.index(s) + 1}" / f"co{c}" / f"{i}.jpg", k)
    return {"names": [f"{i}.jpg" for i in ids], "mos": mos, "ids": ids}


MAKERS = {"koniq10k": koniq10k, "livec": livec, "spaq": spaq, "kadid10k": kadid10k, "bid": bid, "cid2013": cid2013}

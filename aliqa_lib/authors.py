"""The authors' release (esnthere/AL-IQA, Apache-2.0), in one place: where their files are, the
images their released KonIQ-10k models were trained and tested on, their released models (load,
predict, the intra/cross-dataset table), the replay of their 25% LIVE Challenge selection from their
released votes and distances, and where their LIVE Challenge order lies in a store
(data/authors_release/README.md).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.io as sio

from .data.schema import Labels
from .data.store import read_images, read_labels
from .paths import project_root
from .selection.fusion import PAPER_SCHEDULE, RoundDetail, fusion_round

if TYPE_CHECKING:   # torch is imported only where a model runs
    import torch

KONIQ_SIZE = 10073
KONIQ_RATIOS = (5, 10, 25, 80)          # percent of KonIQ-10k the released models were trained on
LIVEW_VOTES = ("prompt3vote_livew.mat", "prompt3vote_rt25_secondstep_livew.mat",
               "prompt3vote_rt25_thirdstep_livew.mat")   # zero-shot, round-2 and round-3 votes
LIVEW_DISTANCES = "livew_ds.mat"
LIVEW_ROUND_SHARES = (0.05, 0.10, 0.10)  # their 25% run: 5% then 10% then 10% of the 1,169 images
LIVEC_ALL = 1169                         # LIVE Challenge with its 7 trainingImages, as the authors prepared it
RELEASED_CROP = 10                       # their test(): a 244-pixel image cropped at [10:234] on both axes


def release_dir(folder: str | os.PathLike | None = None) -> Path:
    """The folder of the authors' files: `folder` when given, else data/authors_release of the checkout."""
    if folder is not None:
        return Path(folder)
    root = project_root()
    if root is None:
        raise FileNotFoundError("no checkout found: pass the folder that holds the authors' released files")
    return root / "data" / "authors_release"


def koniq_split(names: np.ndarray | list[str] | Labels, ratio: int, release: str | os.PathLike | None = None,
                all_names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) positions in `names` (a KonIQ store's names) of the images the authors' released
    5/10/25/80% models were trained and tested on.

    Their index p means image name_sorted[perm[p]]: name_sorted is every KonIQ image name in ascending
    order, perm is arange(10073) shuffled by numpy's legacy generator seeded 0 (data/authors_release).
    `all_names` (the CSV's image_name column) is needed only when the store lacks some images.
    """
    if ratio not in KONIQ_RATIOS:
        raise ValueError(f"the authors released KonIQ splits for ratios {KONIQ_RATIOS} (percent), not {ratio}")
    names = [str(n) for n in (names.names if isinstance(names, Labels) else names)]
    universe = sorted(str(n) for n in (all_names if all_names is not None else names))
    if len(universe) != KONIQ_SIZE or len(set(universe)) != KONIQ_SIZE:
        raise ValueError(f"the authors' indices refer to all {KONIQ_SIZE} KonIQ-10k images, got {len(set(universe))} "
                         "names; pass all_names=the image_name column of koniq10k_scores_and_distributions.csv")
    path = release_dir(release) / f"koniq_rt{ratio:02d}_index.mat"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: point `release` at the authors' files (data/authors_release)")
    mat = sio.loadmat(path)
    perm = np.arange(KONIQ_SIZE)
    np.random.RandomState(0).shuffle(perm)  # identical to np.random.seed(0); np.random.shuffle(...)
    where = {n: i for i, n in enumerate(names)}
    out = []
    for key in ("ind_train", "ind_test"):
        wanted = [universe[perm[p]] for p in np.ravel(mat[key]).astype(np.int64)]
        absent = [n for n in wanted if n not in where]
        if absent:
            raise ValueError(f"{len(absent)} images of the authors' {key} at {ratio}% are not in this store "
                             f"(first: {absent[:3]}); prepare the full dataset without --skip-bad or --smoke")
        out.append(np.array([where[n] for n in wanted], dtype=np.int64))
    return out[0], out[1]


def livew_votes(path: str | os.PathLike) -> np.ndarray:
    """Votes from one of the authors' prompt3vote*.mat files as (attributes, N, 3)."""
    mat = sio.loadmat(path)
    return np.stack([np.atleast_2d(mat[f"output{t}"]) for t in (1, 2, 3)], axis=2)


def replay_details(release: str | os.PathLike | None = None, faithful: bool = True) -> list[RoundDetail]:
    """Every rank and score of the three replayed LIVE Challenge rounds (see replay_livew)."""
    folder = release_dir(release)
    needed = [LIVEW_DISTANCES, *LIVEW_VOTES]
    missing = [n for n in needed if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {missing}: point at the authors' release folder (data/authors_release)")
    distances = sio.loadmat(folder / LIVEW_DISTANCES)["distance"]
    n = distances.shape[2]
    # their round 1 asks for the fractional 0.05 * n images (the faithful replay keeps that quirk)
    nums = [n * s if faithful and r == 0 else int(n * s) for r, s in enumerate(LIVEW_ROUND_SHARES)]
    remaining, details = np.arange(n), []
    for r, (name, num) in enumerate(zip(LIVEW_VOTES, nums)):
        detail = fusion_round(livew_votes(folder / name), distances, remaining, num, PAPER_SCHEDULE.weights[r],
                              PAPER_SCHEDULE.band_starts[r], faithful=faithful)
        details.append(detail)
        # the authors carry the rest of the pool on in their descending-score order
        rest = detail.order[len(detail.selected):]
        remaining = detail.pool[rest] if faithful else np.setdiff1d(remaining, detail.selected)
    return details


def replay_livew(release: str | os.PathLike | None = None, faithful: bool = True) -> list[np.ndarray]:
    """Replay the authors' three-round 25% LIVE Challenge selection from their released votes and
    distances (positions in their prepared image order). faithful=True reproduces their code exactly
    (59 + 116 + 116 images); faithful=False applies our clean rules (58 + 116 + 116)."""
    return [d.selected for d in replay_details(release, faithful)]


def livec_positions(labels: Labels | str | os.PathLike) -> np.ndarray:
    """Store positions of the authors' LIVE Challenge order: out[p] is the position, in a
    `prepare livec --variant all` store (AllImages_release order), of the image at their position p.

    Their preparation (data_preparation_example_for_livew.py) lists the 1,169 labels in AllImages_release
    order, draws ind = arange(1169) shuffled after np.random.seed(0), stores X = images[ind[:935]] and
    Xtest = images[ind[935:]], and the training scripts concatenate both: their position p is image ind[p].
    """
    if not isinstance(labels, Labels):
        labels = read_labels(labels)
    dataset, variant = labels.attrs.get("dataset"), labels.attrs.get("variant")
    if dataset != "livec" or len(labels) != LIVEC_ALL or variant not in (None, "all"):
        raise ValueError(f"the authors' LIVE Challenge order needs a livec store of all {LIVEC_ALL} images "
                         f"(got dataset {dataset!r}, variant {variant!r}, {len(labels)} images): "
                         "prepare it with `python -m aliqa_lib prepare livec --variant all --root ...`")
    ind = np.arange(LIVEC_ALL)
    np.random.RandomState(0).shuffle(ind)   # the state np.random.seed(0) gives numpy's legacy global generator
    return ind


def load_released_model(path: str | os.PathLike, device: str = "cpu"):
    """One of the authors' released KonIQ-10k models (koniq_rt05/10/25/80.pt) as this package's CLIP
    prompt-learner model (models.released.ReleasedModel); the file holds CLIP too, nothing else is needed.
    Loaded with weights_only=True; a missing, unexpected or misshapen key is an error naming it."""
    from .models.released import load_released

    return load_released(path, device)


def _released_batch(images: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (B, S, S, 3) store images -> their test() input: [10:234] crop of 244 (224 as is), /255, ImageNet mean/std."""
    import torch

    from .models.released import IMAGENET_MEAN, IMAGENET_STD

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    if size == 244:
        x = x[:, :, RELEASED_CROP:RELEASED_CROP + 224, RELEASED_CROP:RELEASED_CROP + 224]
    x = x.float() / 255
    return (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def predict_released(model, store: str | os.PathLike, indices: np.ndarray | None = None, batch_size: int = 32,
                     amp: bool | None = None, progress: bool = True) -> np.ndarray:
    """The authors' prediction for store images: softmax over the third learner's pair ("high quality",
    "low quality"), probability of the first, on the 244-pixel image cropped at [10:234] (a 224 store is
    used whole, as their cross-dataset files were) normalised with ImageNet's mean and std.
    amp: float16 autocast as their test() ran (default: on CUDA only)."""
    import torch
    from tqdm.auto import tqdm

    from .models.released import QUALITY_HEAD

    labels = read_labels(store)
    size = int(labels.attrs["size"])
    if size not in (224, 244):
        raise ValueError(f"{store} holds {size}-pixel images; the released models take 224-pixel crops of 244-pixel "
                         "images: prepare the dataset with --size 244 (the default)")
    idx = np.arange(len(labels)) if indices is None else np.asarray(indices, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= len(labels)):
        raise IndexError(f"indices must lie in 0..{len(labels) - 1} for {store}")
    device = next(model.parameters()).device
    amp = device.type == "cuda" if amp is None else amp
    out = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.float16, enabled=amp):
        for start in tqdm(range(0, len(idx), batch_size), desc="released model", disable=not progress):
            x = _released_batch(read_images(store, idx[start:start + batch_size]), size).to(device)
            out.append(model(x)[:, QUALITY_HEAD].float().cpu().numpy())
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


def released_ratio(path: str | os.PathLike) -> int:
    """The label share (percent) of a released checkpoint from its file name koniq_rtNN.pt."""
    import re

    match = re.search(r"rt(\d{2})", Path(path).name)
    if match is None or int(match.group(1)) not in KONIQ_RATIOS:
        raise ValueError(f"cannot tell the label share of {Path(path).name} (expected koniq_rt05/10/25/80.pt); "
                         "pass ratio= (--ratio) to pick the KonIQ images it was tested on")
    return int(match.group(1))


def released_table(model, stores: list[str | os.PathLike], ratio: int, koniq_names: list[str] | None = None,
                   batch_size: int = 32, progress: bool = True):
    """The authors' intra/cross-dataset table for a released model: SRCC and PLCC (raw, as their
    pandas corr) per store; KonIQ-10k on the checkpoint's own held-out images (koniq_split), other
    stores whole."""
    import pandas as pd

    from .evaluation.metrics import plcc, srcc

    rows = []
    for store in stores:
        labels = read_labels(store)
        dataset = str(labels.attrs.get("dataset"))
        if dataset == "koniq10k":
            idx, part = koniq_split(labels, ratio, all_names=koniq_names)[1], f"held-out ({100 - ratio}%, their ind_test)"
        else:
            idx, part = np.arange(len(labels)), "whole (cross-dataset)"
        pred = predict_released(model, store, idx, batch_size=batch_size, progress=progress)
        rows.append(dict(dataset=dataset, images=len(idx), part=part, srcc=srcc(pred, labels.mos01[idx]),
                         plcc=plcc(pred, labels.mos01[idx]), store=str(store)))
    return pd.DataFrame(rows)

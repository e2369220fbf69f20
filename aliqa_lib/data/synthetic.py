"""The embedded default dataset: photos shipped inside installed wheels, distorted KADID-style.

Contents are square crops of photos from scikit-image, matplotlib and scikit-learn (no download).
Each content appears pristine and under every distortion at five levels. Labels are a pseudo-MOS
from full-reference metrics (see pseudo_mos.py): they are NOT human opinions.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from . import distortions as dist
from .pseudo_mos import DEFAULT_METRICS, check_metrics, pseudo_mos, score_batch
from .store import StoreWriter

BUILDER_VERSION = 1
LABEL_NOTE = ("pseudo-MOS computed from full-reference metrics against the pristine reference, "
              "mapped to [1, 5]; these are not human opinions")


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data
        return getattr(skimage.data, name)()
    return load


def _matplotlib(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import matplotlib
        return np.asarray(Image.open(Path(matplotlib.get_data_path()) / "sample_data" / name).convert("RGB"))
    return load


def _sklearn(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import sklearn.datasets
        return np.asarray(Image.open(Path(sklearn.datasets.__file__).parent / "images" / name).convert("RGB"))
    return load


# 19 photographs and one rendered product image (matplotlib's gift box); no logos or colour wheels.
# 11 colour, 9 grey.
PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"), "chelsea": _skimage("chelsea"), "coffee": _skimage("coffee"),
    "rocket": _skimage("rocket"), "hubble": _skimage("hubble_deep_field"),
    "ihc": _skimage("immunohistochemistry"), "retina": _skimage("retina"),
    "grace_hopper": _matplotlib("grace_hopper.jpg"), "gift": _matplotlib("Minduka_Present_Blue_Pack.png"),
    "china": _sklearn("china.jpg"), "flower": _sklearn("flower.jpg"),
    "camera": _skimage("camera"), "brick": _skimage("brick"), "coins": _skimage("coins"),
    "clock": _skimage("clock"), "grass": _skimage("grass"), "gravel": _skimage("gravel"),
    "moon": _skimage("moon"), "page": _skimage("page"), "text": _skimage("text"),
}


@dataclass(frozen=True)
class SyntheticConfig:
    """What the embedded dataset is built from; the store records it, and a rebuild is skipped if equal."""

    size: int = 244
    seed: int = 0
    photos: tuple[str, ...] = tuple(PHOTOS)
    crops_per_photo: int = 2
    distortions: tuple[str, ...] = tuple(dist.DISTORTIONS)
    levels: tuple[int, ...] = (1, 2, 3, 4, 5)
    metrics: tuple[str, ...] = DEFAULT_METRICS
    builder_version: int = field(default=BUILDER_VERSION)

    def validate(self) -> None:
        """Raise ValueError naming any unknown photo, distortion, metric or bad number."""
        unknown = [p for p in self.photos if p not in PHOTOS]
        if unknown or not self.photos:
            raise ValueError(f"unknown photos {unknown}; choose from {sorted(PHOTOS)}")
        bad = [d for d in self.distortions if d not in dist.DISTORTIONS]
        if bad or not self.distortions:
            raise ValueError(f"unknown distortions {bad}; choose from {sorted(dist.DISTORTIONS)}")
        check_metrics(self.metrics)
        if not set(self.levels) <= {1, 2, 3, 4, 5} or not self.levels:
            raise ValueError(f"levels must be a subset of 1..5, got {self.levels}")
        if self.size < 161 and {"ms_ssim", "ms_gmsd"} & set(self.metrics):
            raise ValueError(f"size {self.size} is too small for multi-scale metrics; use size >= 161")
        if self.crops_per_photo < 1:
            raise ValueError("crops_per_photo must be at least 1")

    @property
    def n_contents(self) -> int:
        return len(self.photos) * self.crops_per_photo

    @property
    def n_images(self) -> int:
        return self.n_contents * (1 + len(self.distortions) * len(self.levels))

    def as_attr(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def photo(name: str) -> np.ndarray:
    """A shipped photo as uint8 RGB (H, W, 3)."""
    img = PHOTOS[name]()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


def contents(config: SyntheticConfig) -> list[tuple[str, int, np.ndarray]]:
    """(photo name, photo id, uint8 S x S content) for every crop: crop 0 is the largest centred
    square, further crops are smaller squares (55-75% of the short side) at seeded positions."""
    out = []
    for pid, name in enumerate(config.photos):
        img = Image.fromarray(photo(name))
        w, h = img.size
        short = min(w, h)
        rng = np.random.default_rng([config.seed, pid, 7])
        for k in range(config.crops_per_photo):
            side = short if k == 0 else int(short * rng.uniform(0.55, 0.75))
            top = (h - side) // 2 if k == 0 else int(rng.integers(0, h - side + 1))
            left = (w - side) // 2 if k == 0 else int(rng.integers(0, w - side + 1))
            crop = img.crop((left, top, left + side, top + side)).resize((config.size,) * 2, Image.BICUBIC)
            out.append((name, pid, np.asarray(crop)))
    return out


def distorted_versions(content: np.ndarray, content_id: int, config: SyntheticConfig) -> list[tuple[str, int, np.ndarray]]:
    """(distortion, level, uint8 image) for the reference and every distortion x level of one content."""
    ref = content.astype(np.float32) / 255.0
    out = [("reference", 0, content)]
    for t, name in enumerate(config.distortions):
        for level in config.levels:
            rng = np.random.default_rng([config.seed, content_id, t, level])
            img = dist.apply(ref, name, level, rng)
            out.append((name, level, np.round(img * 255).astype(np.uint8)))
    return out


def build(out: str | os.PathLike, config: SyntheticConfig = SyntheticConfig(), progress: bool = True) -> Path:
    """Generate the embedded dataset into a store at `out` (temporary file, renamed when complete)."""
    config.validate()
    items = contents(config)
    per = 1 + len(config.distortions) * len(config.levels)
    n = len(items) * per
    names, refs, sources, kinds, levels = [], [], [], [], []
    scores: dict[str, list[np.ndarray]] = {m: [] for m in config.metrics}
    with StoreWriter(out, n=n, size=config.size, dataset="synthetic", score_range=(1.0, 5.0),
                     higher_is_better=True, label_note=LABEL_NOTE, build_params=config.as_attr()) as writer:
        for cid, (pname, pid, content) in enumerate(tqdm(items, desc="synthetic contents", disable=not progress)):
            versions = distorted_versions(content, cid, config)
            batch = np.stack([v[2] for v in versions])
            writer.write_images(cid * per, batch)
            for metric, values in score_batch(batch, np.broadcast_to(content, batch.shape), config.metrics).items():
                scores[metric].append(values)
            for kind, level, _ in versions:
                names.append(f"{pname}_c{cid:02d}__{kind}" + (f"_L{level}" if level else ""))
                refs.append(cid)
                sources.append(pid)
                kinds.append(kind)
                levels.append(level)
        metric_values = {m: np.concatenate(v) for m, v in scores.items()}
        mos, mos01 = pseudo_mos(metric_values)
        writer.set_labels(mos=mos, mos01=mos01, names=names, ref=refs, source=sources,
                          distortion=kinds, level=levels, metrics=metric_values)
    return Path(out)


def matches(attrs: dict, config: SyntheticConfig) -> bool:
    """Whether a store's recorded build parameters equal `config` (so it can be reused)."""
    return attrs.get("dataset") == "synthetic" and attrs.get("build_params") == config.as_attr()


def smoke_config(size: int = 244, seed: int = 0) -> SyntheticConfig:
    """A small but complete configuration for quick runs: 4 photos x 1 crop, all distortions."""
    return SyntheticConfig(size=size, seed=seed, photos=("astronaut", "coffee", "camera", "brick"), crops_per_photo=1)

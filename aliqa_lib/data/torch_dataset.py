"""A torch Dataset that reads a store lazily: random crop + flip for training, centre crop for testing."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from .store import read_labels

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class StoreDataset(Dataset):
    """Images of a store as normalised float tensors (3, crop, crop) with their [0, 1] scores.

    Training views draw a random crop and horizontal flip per image from a generator seeded by
    (seed, epoch, index), so results do not depend on worker count or order; call set_epoch().
    The HDF5 file is opened on first access in each worker process, never at construction.
    """

    def __init__(self, path: str | os.PathLike, indices: Sequence[int] | None = None, train: bool = False,
                 crop: int = 224, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 seed: int = 0) -> None:
        self.path = Path(path)
        labels = read_labels(self.path)
        self.size = int(labels.attrs["size"])
        if crop > self.size:
            raise ValueError(f"crop {crop} is larger than the stored size {self.size} of {self.path}")
        self.indices = np.arange(len(labels)) if indices is None else np.asarray(indices, dtype=np.int64)
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= len(labels)):
            raise IndexError(f"indices must lie in 0..{len(labels) - 1} for {self.path}")
        self.targets = labels.mos01[self.indices].astype(np.float32)
        self.train, self.crop, self.seed, self.epoch = train, crop, seed, 0
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self._file: h5py.File | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose random crops the next pass draws."""
        self.epoch = int(epoch)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"] = None
        return state

    def window(self, i: int) -> tuple[int, int, bool]:
        """Top, left and flip of the crop for item i in the current epoch."""
        if not self.train:
            off = (self.size - self.crop) // 2
            return off, off, False
        rng = np.random.default_rng([self.seed, self.epoch, int(self.indices[i])])
        top, left = rng.integers(0, self.size - self.crop + 1, size=2)
        return int(top), int(left), bool(rng.random() < 0.5)

    def raw(self, i: int) -> np.ndarray:
        """The cropped (and possibly flipped) uint8 image (3, crop, crop) of item i."""
        if self._file is None:
            self._file = h5py.File(self.path, "r")
        top, left, flip = self.window(i)
        img = self._file["images"][int(self.indices[i]), :, top:top + self.crop, left:left + self.crop]
        return img[:, :, ::-1].copy() if flip else img

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(self.raw(i)).float().div_(255.0)
        return (x - self.mean) / self.std, torch.tensor(self.targets[i])

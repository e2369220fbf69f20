"""Chapter 1 of the tutorial: data.

schema (the label columns every dataset shares), store (the HDF5 store), readers (the public IQA
databases' layouts), ingest (parallel decoding into a store), synthetic (the embedded dataset, with
distortions and pseudo_mos), prepare (one entry point for all), describe (summaries of the labels),
torch_dataset (a store as a torch Dataset) and splits (test first, then budget, then validation).
"""
from __future__ import annotations

from . import (
               describe,
               distortions,
               ingest,
               prepare,
               pseudo_mos,
               readers,
               schema,
               splits,
               store,
               synthetic,
               torch_dataset,
)
from .prepare import DATASET_NAMES
from .schema import Labels
from .splits import holdout_split, split_budget
from .store import StoreError, StoreWriter, read_images, read_labels
from .torch_dataset import StoreDataset

__all__ = ["schema", "store", "readers", "ingest", "synthetic", "distortions", "pseudo_mos", "prepare", "describe",
           "torch_dataset", "splits", "DATASET_NAMES", "Labels", "StoreError", "StoreWriter", "read_labels",
           "read_images", "StoreDataset", "holdout_split", "split_budget"]

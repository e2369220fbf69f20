"""Chapter 3 of the tutorial: models that predict quality.

backbones (timm models and their weights), features (quality-aware pooled features, cached),
heads (the three antonym heads), clip (zero-shot votes and CoOp prompt learners over frozen CLIP),
training (the honest training loop), finetune (the last blocks on images) and checkpoints.
"""
from __future__ import annotations

from . import backbones, checkpoints, clip, features, finetune, heads, training
from .backbones import load_backbone
from .checkpoints import load_checkpoint, save_checkpoint
from .features import POOLINGS, QualityFeatures, cached_features, extract_features
from .heads import HEAD_NAMES, HEADS, AntonymHeads
from .training import TrainConfig, TrainResult, fit, head_outputs, predict, train_heads

__all__ = ["backbones", "features", "heads", "clip", "training", "finetune", "checkpoints", "load_backbone",
           "extract_features", "cached_features", "QualityFeatures", "POOLINGS", "HEADS", "HEAD_NAMES",
           "AntonymHeads", "TrainConfig", "TrainResult", "fit", "train_heads", "predict", "head_outputs",
           "save_checkpoint", "load_checkpoint"]

"""Training with an honest protocol: validation inside the labelled budget picks the checkpoint and
drives the plateau schedule; test labels are never passed in."""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn
from tqdm.auto import tqdm

from .. import defaults
from .heads import HEAD_NAMES, AntonymHeads, combine, soft_bce

Batches = Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]]


@dataclass
class TrainConfig:
    """Optimisation settings. The paper used SGD (lr 1e-3 rising to 1e-2, batch 192) on CLIP prompts;
    on cached features AdamW converges in far fewer epochs, so it is our default."""

    epochs: int = defaults.EPOCHS
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"        # "adamw" or "sgd"
    patience: int = 6               # evaluations without a validation gain before the lr drops
    lr_factor: float = 0.3          # lr multiplier at a plateau (the best weights are reloaded first)
    min_lr: float = 5e-5            # stop once the lr falls below this
    eval_every: int = 1             # epochs between validation passes
    predict: str = "mean"           # "mean" of the heads or one head name
    seed: int = 0


@dataclass
class TrainResult:
    """A trained model and the story of its training."""

    model: nn.Module
    config: TrainConfig
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    best_val_srcc: float = float("nan")

    def curves(self) -> dict[str, list]:
        """History as columns (epoch, lr, train_loss, val_loss, val_srcc, val_srcc_<head>)."""
        return {k: [h.get(k) for h in self.history] for k in self.history[0]} if self.history else {}


def make_heads(in_dim: int, seed: int = 0, **kwargs) -> AntonymHeads:
    """Antonym heads with seeded initialisation."""
    torch.manual_seed(seed)
    return AntonymHeads(in_dim, **kwargs)


def _optimizer(params: Iterable[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; choose 'adamw' or 'sgd'")


@torch.inference_mode()
def head_outputs(model: nn.Module, inputs: Iterable[torch.Tensor] | np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Head probabilities (N, heads) for a feature array, or for an iterable of input batches."""
    was_training = model.training
    model.eval()
    if isinstance(inputs, np.ndarray):
        x = torch.from_numpy(np.asarray(inputs, dtype=np.float32))
        inputs = (x[i:i + batch_size] for i in range(0, len(x), batch_size))
    out = torch.cat([model(b) for b in inputs]).numpy()
    model.train(was_training)
    return out


def predict(model: nn.Module, features: np.ndarray, predict: str = "mean") -> np.ndarray:
    """One quality score per image in [0, 1]: the mean of the heads or one named head."""
    return combine(head_outputs(model, features), predict)


def fit(model: nn.Module, train_batches: Batches, val_inputs: Callable[[], Iterable[torch.Tensor]],
        val_targets: np.ndarray, config: TrainConfig, params: Iterable[nn.Parameter] | None = None,
        progress: bool = True) -> TrainResult:
    """The training loop shared by feature heads, prompt learners and fine-tuning."""
    torch.manual_seed(config.seed)
    opt = _optimizer(params if params is not None else [p for p in model.parameters() if p.requires_grad], config)
    result = TrainResult(model=model, config=config)
    best_state, best, stale, lr = copy.deepcopy(model.state_dict()), -np.inf, 0, config.lr
    bar = tqdm(range(config.epochs), desc="training", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        losses = []
        for x, y in train_batches(epoch):
            loss = soft_bce(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        if (epoch + 1) % config.eval_every:
            continue
        probs = head_outputs(model, val_inputs())
        score = validation_srcc(combine(probs, config.predict), val_targets)
        row = dict(epoch=epoch, lr=lr, train_loss=float(np.mean(losses)),
                   val_loss=float(soft_bce(torch.from_numpy(probs), torch.from_numpy(val_targets))),
                   val_srcc=score, **{f"val_srcc_{h}": validation_srcc(probs[:, i], val_targets)
                                      for i, h in enumerate(HEAD_NAMES[:probs.shape[1]])})
        result.history.append(row)
        bar.set_postfix(val_srcc=f"{score:.3f}", lr=f"{lr:.1e}")
        gain = -row["val_loss"] if np.isnan(score) else score
        if gain > best + 1e-6:
            best, stale, result.best_epoch, result.best_val_srcc = gain, 0, epoch, score
            best_state = copy.deepcopy(model.state_dict())
            continue
        stale += 1
        if stale >= config.patience:
            model.load_state_dict(best_state)
            lr *= config.lr_factor
            stale = 0
            if lr < config.min_lr:
                break
            for group in opt.param_groups:
                group["lr"] = lr
    model.load_state_dict(best_state)
    model.eval()
    return result


def validation_srcc(pred: np.ndarray, target: np.ndarray) -> float:
    """SRCC for choosing checkpoints: NaN, without a warning, while it is undefined (constant
    predictions early in training); evaluation.metrics.srcc is the one for reporting results."""
    if len(pred) < 3 or np.ptp(pred) == 0 or np.ptp(target) == 0:
        return float("nan")
    return float(spearmanr(pred, target)[0])


def feature_batches(features: np.ndarray, targets: np.ndarray, indices: np.ndarray, batch_size: int,
                    seed: int) -> Batches:
    """Shuffled training batches from cached features (N, D), or (k, N, D) cycling over k views per epoch."""
    feats = torch.from_numpy(np.asarray(features, dtype=np.float32))
    y = torch.from_numpy(np.asarray(targets, dtype=np.float32))

    def batches(epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        view = feats[epoch % feats.shape[0]] if feats.ndim == 3 else feats
        order = indices[np.random.default_rng([seed, epoch]).permutation(len(indices))]
        for i in range(0, len(order), batch_size):
            idx = torch.from_numpy(order[i:i + batch_size])
            yield view[idx], y[idx]
    return batches


def train_heads(features: np.ndarray, targets: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray,
                config: TrainConfig | None = None, eval_features: np.ndarray | None = None,
                head_kwargs: dict | None = None, progress: bool = True) -> TrainResult:
    """Train antonym heads on cached features of the labelled training images, validating on val_idx.

    features: (N, D) or (k, N, D) augmented views; eval_features: (N, D) centre view for validation
    (defaults to features when 2-D). targets: [0, 1] scores of all N (only train and val are read).
    """
    config = config or TrainConfig()
    train_idx, val_idx = np.asarray(train_idx), np.asarray(val_idx)
    if np.intersect1d(train_idx, val_idx).size:
        raise ValueError("training and validation indices overlap")
    if eval_features is None:
        if features.ndim == 3:
            raise ValueError("pass eval_features (the centre view) when training on augmented views")
        eval_features = features
    targets = np.asarray(targets, dtype=np.float32)
    if not np.isfinite(targets[np.concatenate([train_idx, val_idx])]).all():
        raise ValueError("NaN scores among the labelled images")
    model = make_heads(eval_features.shape[1], seed=config.seed, **(head_kwargs or {}))
    feats = np.asarray(features, dtype=np.float32)
    rows = feats[train_idx] if feats.ndim == 2 else feats[:, train_idx].reshape(-1, feats.shape[-1])
    model.fit_standardisation(torch.from_numpy(rows))
    val = np.asarray(eval_features, dtype=np.float32)[val_idx]
    return fit(model, feature_batches(features, targets, train_idx, config.batch_size, config.seed),
               lambda: [torch.from_numpy(val)], targets[val_idx], config, progress=progress)

"""Training with an honest protocol: validation inside the labelled budget picks the checkpoint and
drives the plateau schedule; test labels are never passed in."""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr
from torch import nn
from tqdm.auto import tqdm

from .. import defaults
from .clip import ClipBundle, PromptHeads
from .heads import HEAD_NAMES, AntonymHeads, combine, soft_bce

Batches = Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]]


CRITERIA = ("srcc", "heads_plcc_srcc")
AUTHORS_LR_STEPS = ((10, 3e-3), (20, 1e-2))   # their warm-up: `if epoch == 10: lr = 0.003`, `if epoch == 20: lr = 0.01`


@dataclass
class TrainConfig:
    """Optimisation settings. Our default is AdamW at a constant rate, validated every epoch and
    checkpointed by the SRCC of the prediction (on cached features it converges in far fewer epochs);
    `TrainConfig.authors()` is the authors' prompt-tuning schedule, `authors_finetune()` theirs for
    fine-tuning the encoders (docs/method.md, step 5 and deviation 10)."""

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
    lr_steps: tuple[tuple[int, float], ...] = ()   # (epoch, lr): once that 0-based epoch is done, lr becomes lr
    criterion: str = "srcc"         # checkpoint by "srcc" of the prediction, or "heads_plcc_srcc" (the authors')
    eval_at_start: bool = False     # score the untrained model first: the checkpoint to beat (the authors do)

    def __post_init__(self) -> None:
        if self.criterion not in CRITERIA:
            raise ValueError(f"unknown checkpoint criterion {self.criterion!r}; choose from {CRITERIA}")
        if self.eval_every < 1 or self.patience < 1:
            raise ValueError(f"eval_every and patience must be at least 1, got {self.eval_every} and {self.patience}")
        self.lr_steps = tuple((int(e), float(v)) for e, v in self.lr_steps)

    @classmethod
    def authors(cls, **changes) -> TrainConfig:
        """The authors' prompt tuning (training/livew_rt25_*_step.py): SGD without momentum, weight decay
        1e-4, batch 192, lr 1e-3, 3e-3 after epoch 10 and 1e-2 after epoch 20 (0-based), validation every
        5 epochs, 6 validations without gain -> reload the best, lr x 0.3, stop below 5e-5, at most 2,000
        epochs, checkpoint by mean PLCC + mean SRCC over the three heads, the untrained model scored first."""
        preset = dict(epochs=2000, batch_size=192, lr=1e-3, weight_decay=1e-4, optimizer="sgd", patience=6,
                      lr_factor=0.3, min_lr=5e-5, eval_every=5, lr_steps=AUTHORS_LR_STEPS,
                      criterion="heads_plcc_srcc", eval_at_start=True)
        return cls(**{**preset, **changes})

    @classmethod
    def authors_finetune(cls, **changes) -> TrainConfig:
        """The authors' encoder fine-tuning (training/livew_rt25_fourth_step_ftencoders.py): as `authors()`
        but batch 128 and a constant lr 1e-3 before the plateau rule (no warm-up steps)."""
        return cls.authors(**{"batch_size": 128, "lr_steps": (), **changes})


PRESETS = ("default", "authors", "authors_finetune")


def preset(name: str, **changes) -> TrainConfig:
    """A TrainConfig by name (a notebook's TRAIN_PRESET): "default" (ours), "authors" (TrainConfig.authors())
    or "authors_finetune"; `changes` override single settings (e.g. epochs, seed)."""
    if name not in PRESETS:
        raise ValueError(f"unknown training preset {name!r}; choose from {PRESETS}")
    return TrainConfig(**changes) if name == "default" else getattr(TrainConfig, name)(**changes)


@dataclass
class TrainResult:
    """A trained model and the story of its training."""

    model: nn.Module
    config: TrainConfig
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    best_val_srcc: float = float("nan")
    best_score: float = float("nan")      # the checkpoint criterion at the best epoch

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
    device = model_device(model)
    out = torch.cat([model(b.to(device)).cpu() for b in inputs]).numpy()
    model.train(was_training)
    return out


def model_device(model: nn.Module) -> torch.device:
    """Where a model's first parameter (or buffer) lives; the CPU for a model with neither."""
    first = next(iter(model.parameters()), None)
    first = first if first is not None else next(iter(model.buffers()), None)
    return first.device if first is not None else torch.device("cpu")


def predict(model: nn.Module, features: np.ndarray, predict: str = "mean") -> np.ndarray:
    """One quality score per image in [0, 1]: the mean of the heads or one named head."""
    return combine(head_outputs(model, features), predict)


def fit(model: nn.Module, train_batches: Batches, val_inputs: Callable[[], Iterable[torch.Tensor]],
        val_targets: np.ndarray, config: TrainConfig, params: Iterable[nn.Parameter] | None = None,
        progress: bool = True) -> TrainResult:
    """The training loop shared by feature heads, prompt learners and fine-tuning: validation every
    `eval_every` epochs, the lr steps, then the plateau rule, in the order of the authors' loop."""
    torch.manual_seed(config.seed)
    opt = _optimizer(params if params is not None else [p for p in model.parameters() if p.requires_grad], config)
    result = TrainResult(model=model, config=config)
    best_state, best, stale, lr = copy.deepcopy(model.state_dict()), -np.inf, 0, config.lr
    steps = dict(config.lr_steps)

    def evaluate(epoch: int, losses: list[float]) -> bool:
        """Validate, keep the best weights; True when this is a gain."""
        nonlocal best, best_state
        row = _validation_row(model, val_inputs, val_targets, config, epoch, lr, losses)
        result.history.append(row)
        gain = -row["val_loss"] if np.isnan(row["val_score"]) else row["val_score"]
        if gain > best + 1e-6:
            best, best_state = gain, copy.deepcopy(model.state_dict())
            result.best_epoch, result.best_val_srcc, result.best_score = epoch, row["val_srcc"], row["val_score"]
            return True
        return False

    if config.eval_at_start:
        evaluate(-1, [])
    bar = tqdm(range(config.epochs), desc="training", disable=not progress, leave=False)
    for epoch in bar:
        losses = _train_epoch(model, opt, train_batches, epoch)
        evaluated = (epoch + 1) % config.eval_every == 0
        if evaluated:
            stale = 0 if evaluate(epoch, losses) else stale + 1
            bar.set_postfix(val=f"{result.history[-1]['val_score']:.3f}", lr=f"{lr:.1e}")
        lr = steps.get(epoch, lr)
        if evaluated and stale >= config.patience:
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


def _train_epoch(model: nn.Module, opt: torch.optim.Optimizer, train_batches: Batches, epoch: int) -> list[float]:
    """One pass over the training batches of `epoch`; the batch losses."""
    model.train()
    losses = []
    for x, y in train_batches(epoch):
        loss = soft_bce(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def fit_epochs(model: nn.Module, train_batches: Batches, epochs: int, config: TrainConfig,
               after_epoch: Callable[[int, nn.Module], None] | None = None, progress: bool = True) -> TrainResult:
    """Exactly `epochs` epochs at the constant rate config.lr, no validation and no plateau rule (the
    last weights are kept); `after_epoch(epoch, model)` sees the model after each epoch."""
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    torch.manual_seed(config.seed)
    opt = _optimizer([p for p in model.parameters() if p.requires_grad], config)
    result = TrainResult(model=model, config=config, best_epoch=epochs - 1)
    for epoch in tqdm(range(epochs), desc="training", disable=not progress, leave=False):
        losses = _train_epoch(model, opt, train_batches, epoch)
        result.history.append(dict(epoch=epoch, lr=config.lr, train_loss=float(np.mean(losses))))
        if after_epoch is not None:
            after_epoch(epoch, model)
    model.eval()
    return result


def _validation_row(model: nn.Module, val_inputs: Callable[[], Iterable[torch.Tensor]], val_targets: np.ndarray,
                    config: TrainConfig, epoch: int, lr: float, losses: list[float]) -> dict:
    """One validation pass as a history row: losses, SRCC per head and of the prediction, the criterion."""
    probs = head_outputs(model, val_inputs())
    return dict(epoch=epoch, lr=lr, train_loss=float(np.mean(losses)) if losses else float("nan"),
                val_loss=float(soft_bce(torch.from_numpy(probs), torch.from_numpy(val_targets))),
                val_srcc=validation_srcc(combine(probs, config.predict), val_targets),
                val_score=validation_score(probs, val_targets, config),
                **{f"val_srcc_{h}": validation_srcc(probs[:, i], val_targets)
                   for i, h in enumerate(HEAD_NAMES[:probs.shape[1]])})


def validation_score(probs: np.ndarray, targets: np.ndarray, config: TrainConfig) -> float:
    """The checkpoint criterion: SRCC of the prediction, or (the authors') the mean PLCC plus the mean
    SRCC over the heads; NaN while undefined."""
    if config.criterion == "srcc":
        return validation_srcc(combine(probs, config.predict), targets)
    heads = range(probs.shape[1])
    return float(np.mean([validation_plcc(probs[:, i], targets) for i in heads])
                 + np.mean([validation_srcc(probs[:, i], targets) for i in heads]))


def validation_plcc(pred: np.ndarray, target: np.ndarray) -> float:
    """PLCC for choosing checkpoints: NaN, without a warning, while it is undefined."""
    if len(pred) < 3 or np.ptp(pred) == 0 or np.ptp(target) == 0:
        return float("nan")
    return float(pearsonr(pred, target)[0])


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


def _labelled_parts(features: np.ndarray, targets: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray,
                    eval_features: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Checked (targets, train_idx, val_idx, eval_features) for training on cached features."""
    train_idx, val_idx = np.asarray(train_idx), np.asarray(val_idx)
    if np.intersect1d(train_idx, val_idx).size:
        raise ValueError("training and validation indices overlap")
    if eval_features is None:
        if np.ndim(features) == 3:
            raise ValueError("pass eval_features (the centre view) when training on augmented views")
        eval_features = features
    targets = np.asarray(targets, dtype=np.float32)
    used = np.concatenate([train_idx, val_idx]).astype(np.int64)
    unknown = used[~np.isfinite(targets[used])]
    if unknown.size:
        raise ValueError(f"NaN scores for {unknown.size} of the {used.size} training and validation images (first "
                         f"positions {unknown[:5].tolist()}); {int(np.isfinite(targets).sum())} of {len(targets)} images "
                         "have one. Rate them first, or train only on rated images (evaluation.collection.train_on_ratings)")
    return targets, train_idx, val_idx, np.asarray(eval_features, dtype=np.float32)


def train_heads(features: np.ndarray, targets: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray,
                config: TrainConfig | None = None, eval_features: np.ndarray | None = None,
                head_kwargs: dict | None = None, progress: bool = True) -> TrainResult:
    """Train antonym heads on cached features of the labelled training images, validating on val_idx.

    features: (N, D) or (k, N, D) augmented views; eval_features: (N, D) centre view for validation
    (defaults to features when 2-D). targets: [0, 1] scores of all N (only train and val are read).
    """
    config = config or TrainConfig()
    targets, train_idx, val_idx, eval_features = _labelled_parts(features, targets, train_idx, val_idx, eval_features)
    model = make_heads(eval_features.shape[1], seed=config.seed, **(head_kwargs or {}))
    feats = np.asarray(features, dtype=np.float32)
    rows = feats[train_idx] if feats.ndim == 2 else feats[:, train_idx].reshape(-1, feats.shape[-1])
    val = eval_features[val_idx]
    if not (np.isfinite(rows).all() and np.isfinite(val).all()):
        raise ValueError("features of training or validation images are NaN: features extracted for some rows only "
                         "(extract_features rows=...) must include every training and validation image")
    model.fit_standardisation(torch.from_numpy(rows))
    return fit(model, feature_batches(features, targets, train_idx, config.batch_size, config.seed),
               lambda: [torch.from_numpy(val)], targets[val_idx], config, progress=progress)


def train_heads_epochs(features: np.ndarray, targets: np.ndarray, train_idx: np.ndarray, epochs: int,
                       config: TrainConfig | None = None, after_epoch: Callable[[int, nn.Module], None] | None = None,
                       head_kwargs: dict | None = None, progress: bool = True) -> TrainResult:
    """Antonym heads trained on cached features (N, D) of train_idx for exactly `epochs` epochs at a
    constant rate (fit_epochs): the refit on every rating once cross-validation has chosen `epochs`."""
    config = config or TrainConfig()
    train_idx = np.asarray(train_idx, dtype=np.int64)
    targets, train_idx, _, feats = _labelled_parts(features, targets, train_idx, train_idx[:0], None)
    model = make_heads(feats.shape[1], seed=config.seed, **(head_kwargs or {}))
    model.fit_standardisation(torch.from_numpy(feats[train_idx]))
    return fit_epochs(model, feature_batches(feats, targets, train_idx, config.batch_size, config.seed), epochs,
                      config, after_epoch, progress)


def train_prompts(bundle: ClipBundle, features: np.ndarray, targets: np.ndarray, train_idx: np.ndarray,
                  val_idx: np.ndarray, config: TrainConfig | None = None, n_ctx: int = 8, position: str = "end",
                  eval_features: np.ndarray | None = None, progress: bool = True) -> TrainResult:
    """Train the three CoOp prompt learners (PromptHeads, n_ctx context vectors each) over a frozen CLIP
    on its cached image embeddings (N, E) or views (k, N, E) (clip.clip_features), validating on val_idx.
    The learners train on the device of the CLIP model."""
    config = config or TrainConfig()
    targets, train_idx, val_idx, eval_features = _labelled_parts(features, targets, train_idx, val_idx, eval_features)
    device = model_device(bundle.model)
    heads = PromptHeads(bundle, n_ctx=n_ctx, position=position, seed=config.seed).to(device)
    val = torch.from_numpy(eval_features[val_idx]).to(device)
    batches = feature_batches(features, targets, train_idx, config.batch_size, config.seed)
    return fit(heads, lambda epoch: ((x.to(device), y.to(device)) for x, y in batches(epoch)),
               lambda: [val], targets[val_idx], config, progress=progress)

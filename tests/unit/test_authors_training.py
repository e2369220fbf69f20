"""The authors' training and fine-tuning presets: their numbers, their plateau schedule step by step,
and exactly the CLIP parameters their fine-tuning unfreezes."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from helpers import clip_with_layers, tiny_store
from torch import nn

from aliqa_lib.models import clip, finetune, training


def test_presets_carry_the_authors_numbers():
    a = training.TrainConfig.authors()
    assert (a.optimizer, a.weight_decay, a.batch_size, a.lr) == ("sgd", 1e-4, 192, 1e-3)
    assert a.lr_steps == ((10, 3e-3), (20, 1e-2))
    assert (a.eval_every, a.patience, a.lr_factor, a.min_lr, a.epochs) == (5, 6, 0.3, 5e-5, 2000)
    assert a.criterion == "heads_plcc_srcc" and a.eval_at_start
    f = training.TrainConfig.authors_finetune()
    assert (f.optimizer, f.weight_decay, f.batch_size, f.lr, f.lr_steps) == ("sgd", 1e-4, 128, 1e-3, ())
    assert (f.eval_every, f.patience, f.lr_factor, f.min_lr, f.criterion) == (5, 6, 0.3, 5e-5, "heads_plcc_srcc")
    assert training.TrainConfig.authors(epochs=3).epochs == 3
    d = training.TrainConfig()                             # our default is unchanged beside them
    assert (d.optimizer, d.eval_every, d.criterion, d.lr_steps, d.eval_at_start) == ("adamw", 1, "srcc", (), False)
    with pytest.raises(ValueError, match="unknown checkpoint criterion"):
        training.TrainConfig(criterion="plcc")
    assert finetune.AUTHORS_FINETUNE_BLOCKS == 4
    assert training.preset("authors", epochs=7) == training.TrainConfig.authors(epochs=7)
    assert training.preset("default", seed=3) == training.TrainConfig(seed=3)
    with pytest.raises(ValueError, match="unknown training preset"):
        training.preset("paper")


def test_authors_criterion_is_mean_plcc_plus_mean_srcc_over_heads():
    rng = np.random.default_rng(0)
    y = rng.random(20)
    probs = np.stack([y + rng.normal(0, s, 20) for s in (0.1, 0.3, 0.6)], axis=1)
    from scipy.stats import pearsonr, spearmanr
    expected = np.mean([pearsonr(probs[:, i], y)[0] for i in range(3)]) + np.mean([spearmanr(probs[:, i], y)[0]
                                                                                  for i in range(3)])
    got = training.validation_score(probs, y, training.TrainConfig.authors())
    assert got == pytest.approx(expected)
    assert training.validation_score(probs, y, training.TrainConfig()) == pytest.approx(spearmanr(probs.mean(1), y)[0])


class _Scalar(nn.Module):
    """Three identical 'heads' from one trainable scalar: its value tells which weights are loaded."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x * self.w).expand(-1, 3)


def test_plateau_schedule_reloads_best_cuts_lr_and_stops(monkeypatch):
    # scripted validation: untrained 0.0, then 0.3 (epoch 4), 0.5 (epoch 9), and never better again
    script = iter([0.0, 0.3, 0.5] + [0.1] * 1000)
    monkeypatch.setattr(training, "validation_score", lambda *a: next(script))
    model = _Scalar()
    seen: list[tuple[int, float, float]] = []           # (epoch, lr in use, weight at the epoch's start)
    opts = []
    real_optimizer = training._optimizer

    def spy_optimizer(params, config):
        opts.append(real_optimizer(params, config))
        return opts[-1]

    monkeypatch.setattr(training, "_optimizer", spy_optimizer)
    x, y = torch.ones(4, 1), torch.full((4,), 0.9)

    def batches(epoch):
        seen.append((epoch, opts[0].param_groups[0]["lr"], model.w.item()))
        yield x, y

    result = training.fit(model, batches, lambda: [x], y.numpy(), training.TrainConfig.authors(), progress=False)
    lrs = {e: lr for e, lr, _ in seen}
    start = {e: w for e, _, w in seen}
    # warm-up: 1e-3 for epochs 0-10, 3e-3 for 11-20, 1e-2 from 21
    assert lrs[0] == lrs[10] == 1e-3 and lrs[11] == lrs[20] == 3e-3 and lrs[21] == lrs[39] == 1e-2
    # validations at epochs 4, 9, 14, ...; the best is epoch 9; six validations without gain (14..39) -> plateau
    evals = [h["epoch"] for h in result.history]
    assert evals[:4] == [-1, 4, 9, 14] and all(e % 5 == 4 for e in evals[1:])
    assert result.best_epoch == 9 and result.best_score == 0.5
    best_w = start[10]                                   # the weights as validated after epoch 9
    assert start[40] == pytest.approx(best_w) and start[39] != pytest.approx(best_w)   # reloaded at epoch 39
    assert lrs[40] == pytest.approx(3e-3) and lrs[70] == pytest.approx(9e-4) and lrs[100] == pytest.approx(2.7e-4)
    assert lrs[130] == pytest.approx(8.1e-5)
    # the next cut (8.1e-5 x 0.3 < 5e-5) after epoch 159 stops training, on the best weights
    assert max(lrs) == 159 and len(seen) == 160
    assert model.w.item() == pytest.approx(best_w)


def test_authors_finetune_unfreezes_exactly_their_parameters():
    bundle = clip_with_layers(layers=6)
    names = set(finetune.unfreeze_clip_like_authors(bundle.model))
    # their rule (fourth step): resblocks 8-11 of 12 in both towers, ln_post, ln_final; here 2-5 of 6
    rule = re.compile(r"^(visual\.transformer\.resblocks\.[2-5]\.|transformer\.resblocks\.[2-5]\.|visual\.ln_post\.|ln_final\.)")
    expected = {n for n, _ in bundle.model.named_parameters() if rule.match(n)}
    assert names == expected and len(expected) == 2 * 4 * 12 + 4
    assert not {"visual.proj", "text_projection", "token_embedding.weight", "logit_scale"} & names
    with pytest.raises(ValueError, match="n_blocks must lie in 1..6"):
        finetune.unfreeze_clip_like_authors(bundle.model, n_blocks=7)


def test_clip_finetune_trains_only_those_and_leaves_the_bundle_alone(tmp_path):
    bundle = clip_with_layers(layers=6)
    _, y = tiny_store(tmp_path / "s.h5", n=24, size=20)
    heads = clip.PromptHeads(bundle, n_ctx=4, seed=0)
    before = {k: v.clone() for k, v in bundle.model.state_dict().items()}
    ctx_before = [learner.ctx.detach().clone() for learner in heads.learners]
    cfg = training.TrainConfig.authors_finetune(epochs=2, eval_every=1, batch_size=8, lr=0.5, eval_at_start=False)
    res = finetune.finetune_clip(bundle, heads, tmp_path / "s.h5", np.arange(16), np.arange(16, 24), cfg,
                                 crop=16, progress=False)
    model = res.model
    assert isinstance(model, finetune.ClipWithPrompts) and model.clip is not bundle.model
    assert all(torch.equal(v, bundle.model.state_dict()[k]) for k, v in before.items())      # the bundle untouched
    assert all(torch.equal(a, learner.ctx) for a, learner in zip(ctx_before, heads.learners))
    changed = {k for k, v in model.clip.state_dict().items() if not torch.equal(v, before[k])}
    trainable = {n.removeprefix("clip.") for n in res.trainable if n.startswith("clip.")}
    assert changed and changed <= trainable                # nothing outside their set moved
    assert "visual.proj" not in changed and "text_projection" not in changed
    assert {f"heads.learners.{i}.ctx" for i in range(3)} <= set(res.trainable)
    out = model(torch.zeros(2, 3, 16, 16))
    assert out.shape == (2, 3) and torch.all((out > 0) & (out < 1))

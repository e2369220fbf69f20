"""Backbones, quality-aware features, the feature cache, heads, training, checkpoints, fine-tuning."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import linear_features, tiny_store
from PIL import Image

from aliqa_lib.cache import cache_path
from aliqa_lib.data.splits import split_budget
from aliqa_lib.data.torch_dataset import IMAGENET_MEAN, IMAGENET_STD
from aliqa_lib.models import backbones, checkpoints, features, finetune, heads, training


@pytest.fixture(scope="module")
def lite0():
    return backbones.load_backbone("efficientnet_lite0", "bundled")


def test_bundled_backbone_recognises_espresso():
    import skimage.data
    model = backbones.load_backbone("efficientnet_lite0", "bundled", num_classes=1000)
    img = Image.fromarray(skimage.data.coffee())
    img = img.resize((round(img.width * 256 / img.height), 256), Image.BICUBIC)
    left = (img.width - 224) // 2
    x = torch.from_numpy(np.asarray(img.crop((left, 16, left + 224, 240)), np.float32) / 255).permute(2, 0, 1)
    x = (x - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
    with torch.inference_mode():
        top5 = model(x[None]).topk(5).indices[0].tolist()
    assert 967 in top5


def test_backbone_weight_sources(lite0, tmp_path, capsys):
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        ref = lite0(x)
    assert ref.shape == (2, 1280) and lite0.weights_id.startswith("bundled:")
    renamed = {f"layer{i}": v for i, v in enumerate(lite0.state_dict().values())}   # other names, same order
    torch.save(renamed, tmp_path / "w.pth")
    from_file = backbones.load_backbone("efficientnet_lite0", tmp_path / "w.pth")
    with torch.inference_mode():
        torch.testing.assert_close(from_file(x), ref)
    assert from_file.weights_id.startswith("file:w.pth:")
    with pytest.warns(UserWarning, match="RANDOMLY INITIALISED"):
        backbones.load_backbone("efficientnet_lite0", "random")
    assert "RANDOMLY INITIALISED" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="bundled"):
        backbones.load_backbone("efficientnet_lite0", tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="only for efficientnet_lite0"):
        backbones.load_backbone("resnet18", "bundled")


def test_stage_statistics_features(lite0):
    x = torch.randn(2, 3, 96, 96)
    feats = features.QualityFeatures(lite0, "stages")
    with torch.inference_mode():
        out, final = feats(x), lite0(x)
        first = lite0.blocks[0](lite0.bn1(lite0.conv_stem(x)))
    assert out.shape == (2, 2 * (16 + 24 + 40 + 112 + 320) + 1280)
    torch.testing.assert_close(out[:, -1280:], final)
    torch.testing.assert_close(out[:, :16], first.mean(dim=(2, 3)))
    torch.testing.assert_close(out[:, 16:32], first.std(dim=(2, 3), correction=0))
    with torch.inference_mode():
        torch.testing.assert_close(features.QualityFeatures(lite0, "final")(x), final)
    with pytest.raises(ValueError, match="unknown pooling"):
        features.QualityFeatures(lite0, "max")


def test_feature_cache_is_reused_and_keyed(lite0, tmp_path, monkeypatch):
    store = tmp_path / "s.h5"
    tiny_store(store, n=6, size=40)
    first = features.extract_features(store, lite0, "bundled", crop=32, pooling="final", progress=False)
    assert first.shape == (6, 1280) and first.dtype == np.float32
    assert cache_path(store).exists()
    calls = []
    real_run = features._run
    monkeypatch.setattr(features, "_run", lambda *a, **k: calls.append(1) or real_run(*a, **k))
    again = features.extract_features(store, lite0, "bundled", crop=32, pooling="final", progress=False)
    by_name = features.extract_features(store, "efficientnet_lite0", "bundled", crop=32, pooling="final", progress=False)
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(by_name, first)                 # a loaded model shares the cache of its name
    assert calls == []                                          # served from the cache
    aug = features.extract_features(store, lite0, "bundled", view="aug2", crop=32, pooling="final", progress=False)
    assert aug.shape == (2, 6, 1280) and calls == [1] and not np.allclose(aug[0], aug[1])
    features.extract_features(store, lite0, "bundled", crop=32, pooling="stages", progress=False)
    assert calls == [1, 1]                                      # another pooling is another entry
    tiny_store(store, n=6, size=40, seed=1)                     # the dataset changed
    changed = features.extract_features(store, lite0, "bundled", crop=32, pooling="final", progress=False)
    assert calls == [1, 1, 1] and not np.allclose(changed, first)
    with pytest.raises(ValueError, match="unknown view"):
        features.extract_features(store, lite0, "bundled", view="sideways", crop=32)


def test_views_of_some_rows_equal_those_rows_of_all_and_the_rest_is_nan(lite0, tmp_path):
    store = tmp_path / "s.h5"
    tiny_store(store, n=7, size=40)
    every = features.extract_features(store, lite0, "bundled", view="aug2", crop=32, pooling="final", progress=False)
    some = features.extract_features(store, lite0, "bundled", view="aug2", crop=32, pooling="final", progress=False,
                                     rows=[5, 1, 5])
    assert some.shape == every.shape == (2, 7, 1280)
    np.testing.assert_allclose(some[:, [1, 5]], every[:, [1, 5]], rtol=1e-5, atol=1e-5)   # the same crops
    assert np.isnan(np.delete(some, [1, 5], axis=1)).all()
    other = features.extract_features(store, lite0, "bundled", view="aug2", crop=32, pooling="final", progress=False,
                                      rows=[2])
    assert np.isnan(other[:, [1, 5]]).all() and np.isfinite(other[:, 2]).all()   # keyed by its rows
    with pytest.raises(ValueError, match=r"0\.\.6"):
        features.extract_features(store, lite0, "bundled", view="aug2", crop=32, rows=[7])
    with pytest.raises(ValueError, match="NaN"):                 # training on a row never computed is refused
        training.train_heads(some, np.linspace(0, 1, 7), np.array([1, 2]), np.array([5]), training.TrainConfig(epochs=1),
                             eval_features=every[0], progress=False)


def test_feature_extraction_gives_the_backbone_back_unchanged(tmp_path):
    with pytest.warns(UserWarning, match="RANDOMLY INITIALISED"):
        net = backbones.load_backbone("efficientnet_lite0", "random").train()
    store = tmp_path / "s.h5"
    tiny_store(store, n=3, size=40)
    features.extract_features(store, net, "random", crop=32, pooling="final", progress=False)
    assert net.training                                           # not left in eval mode
    convs = [p for p in net.parameters() if p.dim() == 4]
    assert all(p.is_contiguous() for p in convs)                  # not left channels_last


def _batchnorms(model: torch.nn.Module) -> int:
    return sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_folded_batchnorms_give_the_same_features_and_leave_the_model_alone(lite0):
    encoder = features.QualityFeatures(lite0, "stages").eval()
    before = {k: v.clone() for k, v in lite0.state_dict().items()}
    probe, x = torch.randn(2, 3, 64, 64), torch.randn(3, 3, 96, 96)
    folded = features.fold_batchnorms(encoder, probe)
    assert folded is not encoder and _batchnorms(folded) == 0 and _batchnorms(encoder) == 49
    with torch.inference_mode():
        expected, got = encoder(x), folded(x)
    assert got.shape == expected.shape == (3, 2304)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4 * float(expected.abs().max()))
    assert all(torch.equal(v, before[k]) for k, v in lite0.state_dict().items())   # the caller's model is untouched


class _ConvThenBn(torch.nn.Module):
    def __init__(self, reuse: bool = False, relu_between: bool = False) -> None:
        super().__init__()
        self.conv, self.bn, self.reuse, self.relu_between = torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), reuse, relu_between
        self.bn.running_mean.uniform_(-1, 1)
        self.bn.running_var.uniform_(0.5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        z = self.bn(torch.relu(y) if self.relu_between else y)
        return z + y if self.reuse else z


def test_batchnorms_fold_only_where_the_outputs_stay_the_same():
    probe = torch.randn(2, 3, 8, 8)
    plain = _ConvThenBn().eval()
    folded = features.fold_batchnorms(plain, probe)
    assert isinstance(folded.bn, torch.nn.Identity)
    torch.testing.assert_close(folded(probe), plain(probe), rtol=1e-5, atol=1e-5)
    reused = _ConvThenBn(reuse=True).eval()                  # the convolution's output is used again: folding would change it
    assert features.fold_batchnorms(reused, probe) is reused
    between = _ConvThenBn(relu_between=True).eval()          # the BatchNorm does not normalise the convolution's output
    assert features.fold_batchnorms(between, probe) is between
    training = _ConvThenBn()                                 # batch statistics: nothing to fold
    assert features.fold_batchnorms(training, probe) is training


def test_soft_bce_and_combine_hand_computed():
    p = torch.tensor([[0.8, 0.5, 0.2]])
    y = torch.tensor([0.75])
    expected = -sum(0.75 * np.log(q) + 0.25 * np.log(1 - q) for q in (0.8, 0.5, 0.2))
    assert heads.soft_bce(p, y).item() == pytest.approx(expected, rel=1e-5)
    assert heads.combine(p, "mean").item() == pytest.approx(0.5)
    assert heads.combine(p, "high_low_quality").item() == pytest.approx(0.2)
    with pytest.raises(ValueError, match="unknown prediction"):
        heads.combine(p, "median")


def test_training_learns_is_deterministic_and_never_reads_test_labels():
    x, y = linear_features(400)
    test = np.arange(300, 400)
    y_hidden = y.copy()
    y_hidden[test] = np.nan                                     # test labels are not even available
    train, val = split_budget(np.arange(300), 0.2, seed=0)
    assert len(np.intersect1d(train, val)) == 0 and len(val) == 60
    cfg = training.TrainConfig(epochs=60, seed=1)
    a = training.train_heads(x, y_hidden, train, val, cfg, progress=False)
    b = training.train_heads(x, y_hidden, train, val, cfg, progress=False)
    assert a.history == b.history
    pred = training.predict(a.model, x[test])
    np.testing.assert_array_equal(pred, training.predict(b.model, x[test]))
    from scipy.stats import spearmanr
    assert spearmanr(pred, y[test])[0] > 0.9
    assert a.best_val_srcc == max(h["val_srcc"] for h in a.history)
    y_bad = y.copy()
    y_bad[train[0]] = np.nan
    with pytest.raises(ValueError, match="NaN scores"):
        training.train_heads(x, y_bad, train, val, cfg, progress=False)
    with pytest.raises(ValueError, match="overlap"):
        training.train_heads(x, y, train, train[:5], cfg, progress=False)


def test_plateau_schedule_drops_lr_and_stops():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(120, 8)).astype(np.float32), rng.uniform(size=120).astype(np.float32)  # nothing to learn
    cfg = training.TrainConfig(epochs=500, patience=3, lr=1e-3, lr_factor=0.3, min_lr=5e-5, seed=0)
    res = training.train_heads(x, y, np.arange(90), np.arange(90, 120), cfg, progress=False)
    lrs = res.curves()["lr"]
    assert sorted(set(lrs), reverse=True) == pytest.approx([1e-3, 3e-4, 9e-5])
    assert len(lrs) < 500                                       # stopped once lr fell below min_lr


def test_augmented_views_train(tmp_path):
    x, y = linear_features(200)
    views = np.stack([x + np.random.default_rng(k).normal(0, 0.01, x.shape).astype(np.float32) for k in range(3)])
    with pytest.raises(ValueError, match="eval_features"):
        training.train_heads(views, y, np.arange(150), np.arange(150, 200), progress=False)
    res = training.train_heads(views, y, np.arange(150), np.arange(150, 200), training.TrainConfig(epochs=30),
                               eval_features=x, progress=False)
    assert res.best_val_srcc > 0.9


def test_checkpoint_round_trip(tmp_path):
    x, y = linear_features(200)
    res = training.train_heads(x, y, np.arange(150), np.arange(150, 200), training.TrainConfig(epochs=10), progress=False)
    path = checkpoints.save_checkpoint(tmp_path / "m.pt", res, backbone="efficientnet_lite0", weights="bundled:x",
                                       selected=np.arange(200), budget=200, seeds={"split": 0})
    model, payload = checkpoints.load_checkpoint(path)
    np.testing.assert_array_equal(training.predict(model, x), training.predict(res.model, x))
    assert payload["story"]["selected"] == list(range(200)) and payload["story"]["budget"] == 200
    assert payload["history"] == res.history and payload["train_config"]["epochs"] == 10
    with pytest.raises(FileNotFoundError):
        checkpoints.load_checkpoint(tmp_path / "none.pt")


def test_finetune_changes_only_the_last_blocks(lite0, tmp_path):
    store = tmp_path / "s.h5"
    tiny_store(store, n=12, size=40)
    encoder = features.QualityFeatures(backbones.load_backbone("efficientnet_lite0", "bundled"), "final")
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    head = training.make_heads(1280, seed=0)
    res = finetune.finetune(encoder, head, store, np.arange(8), np.arange(8, 12),
                            training.TrainConfig(epochs=2, batch_size=4, lr=1e-3), n_blocks=1, crop=32, progress=False)
    after = encoder.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("backbone.blocks.6", "backbone.conv_head", "backbone.bn2")) for k in changed)
    assert len(res.history) == 2

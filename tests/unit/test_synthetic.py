"""The embedded dataset: distortions, pseudo-MOS and the small store's structure."""
from __future__ import annotations

import numpy as np
import pytest

from aliqa_lib.data import distortions, pseudo_mos, synthetic
from aliqa_lib.data.store import read_labels


@pytest.fixture(scope="module")
def coffee() -> np.ndarray:
    return synthetic.photo("coffee")[:244, :244].astype(np.float32) / 255


@pytest.mark.parametrize("name", sorted(distortions.DISTORTIONS))
def test_distortion_grows_with_level(coffee, name):
    errors = []
    for level in range(1, 6):
        out = distortions.apply(coffee, name, level, np.random.default_rng(0))
        assert out.shape == coffee.shape and out.dtype == np.float32
        assert 0 <= out.min() and out.max() <= 1
        errors.append(float(np.mean((out - coffee) ** 2)))
    assert errors[0] > 1e-5, "level 1 must change the image"
    assert all(b > a for a, b in zip(errors, errors[1:])), errors


def test_distortion_rejects_unknown_names_and_levels(coffee):
    with pytest.raises(ValueError, match="unknown distortion 'fog'"):
        distortions.apply(coffee, "fog", 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="level must be 1..5"):
        distortions.apply(coffee, "jpeg", 6, np.random.default_rng(0))


def test_ecdf_and_pseudo_mos_hand_computed():
    np.testing.assert_allclose(pseudo_mos.ecdf([3.0, 1.0, 2.0]), [1, 1 / 3, 2 / 3])
    np.testing.assert_allclose(pseudo_mos.ecdf([3.0, 1.0, 2.0], higher_is_better=False), [1 / 3, 1, 2 / 3])
    np.testing.assert_allclose(pseudo_mos.ecdf([1.0, 1.0, 2.0]), [0.5, 0.5, 1])   # ties share the average rank
    # vif: higher is better; mdsi: lower is better
    mos, mos01 = pseudo_mos.pseudo_mos({"vif": np.array([0.9, 0.1, 0.5]), "mdsi": np.array([0.2, 0.3, 0.1])})
    expected = np.array([(1 + 2 / 3) / 2, (1 / 3 + 1 / 3) / 2, (2 / 3 + 1) / 2])
    np.testing.assert_allclose(mos01, expected, rtol=1e-6)
    np.testing.assert_allclose(mos, 1 + 4 * expected)
    with pytest.raises(ValueError, match="unknown metrics"):
        pseudo_mos.pseudo_mos({"psnr_typo": np.ones(3)})
    with pytest.raises(ValueError, match="NaN"):
        pseudo_mos.ecdf([1.0, np.nan])


def test_metrics_see_identical_images_as_perfect(coffee):
    img = (coffee[None] * 255).astype(np.uint8)
    img = np.concatenate([img, img])[:, :, :, :]
    big = np.repeat(np.repeat(img, 2, axis=1), 2, axis=2)          # 256 px for the multi-scale metric
    noisy = np.clip(big.astype(int) + np.random.default_rng(0).integers(-40, 40, big.shape), 0, 255).astype(np.uint8)
    same = pseudo_mos.score_batch(big, big)
    worse = pseudo_mos.score_batch(noisy, big)
    assert same["vif"] == pytest.approx([1, 1], abs=1e-3) and same["haarpsi"] == pytest.approx([1, 1], abs=1e-3)
    assert same["mdsi"] == pytest.approx([0, 0], abs=1e-3) and same["ms_gmsd"] == pytest.approx([0, 0], abs=1e-3)
    assert (worse["vif"] < 0.9).all() and (worse["mdsi"] > same["mdsi"] + 0.05).all()


def test_config_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown photos"):
        synthetic.SyntheticConfig(photos=("nope",)).validate()
    with pytest.raises(ValueError, match="unknown distortions"):
        synthetic.SyntheticConfig(distortions=("fog",)).validate()
    with pytest.raises(ValueError, match="too small for multi-scale"):
        synthetic.SyntheticConfig(size=64).validate()


def test_smoke_store_structure(smoke_store):
    labels = read_labels(smoke_store)
    n_types = len(distortions.DISTORTIONS)
    assert len(labels) == 4 * (1 + 5 * n_types)
    assert (labels.level[labels.distortion == "reference"] == 0).all()
    assert sorted(set(labels.level)) == [0, 1, 2, 3, 4, 5]
    assert labels.mos.min() >= 1 and labels.mos.max() <= 5
    np.testing.assert_allclose(labels.mos01, (labels.mos - 1) / 4, atol=1e-6)
    assert "not human opinions" in labels.attrs["label_note"]
    assert set(labels.metrics) == set(pseudo_mos.DEFAULT_METRICS)

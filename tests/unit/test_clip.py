"""The CLIP path on a tiny random CLIP: tokenisation, votes, prompt learners, tuning, save/load."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import tiny_store

from aliqa_lib.models import checkpoints, clip, training
from aliqa_lib.models.heads import soft_bce


@pytest.fixture(scope="module")
def bundle():
    return clip.tiny_clip(seed=0)


def test_zero_shot_votes_match_a_direct_computation(bundle):
    rng = np.random.default_rng(0)
    images = (rng.random((4, 48, 48, 3)) * 255).astype(np.uint8)
    votes = clip.clip_zero_shot_votes(bundle, bundle.tokenizer, images)
    assert votes.shape == (6, 4, 3) and votes.min() >= 0 and votes.max() <= 1
    x = clip.preprocess_uint8(bundle, images)
    with torch.inference_mode():
        img = F.normalize(bundle.model.encode_image(x), dim=-1)
        txt = F.normalize(bundle.model.encode_text(bundle.tokenizer(["this photo has obvious noise.",
                                                                     "this photo has unobvious noise."])), dim=-1)
        logits = bundle.model.logit_scale.exp() * img @ txt.T
    np.testing.assert_allclose(votes[4, :, 2], logits.softmax(-1)[:, 0].numpy(), rtol=1e-5)
    # the same votes from precomputed embeddings, and from a bare model with preprocessed tensors
    np.testing.assert_allclose(clip.clip_zero_shot_votes(bundle.model, bundle.tokenizer, img), votes, rtol=1e-5)
    np.testing.assert_allclose(clip.clip_zero_shot_votes(bundle.model, bundle.tokenizer, x), votes, rtol=1e-5)
    with pytest.raises(ValueError, match="ClipBundle"):
        clip.clip_zero_shot_votes(bundle.model, bundle.tokenizer, images)


@pytest.mark.parametrize("position, words, sentence", [("end", "a photo", "a photo good."),
                                                        ("front", "a photo", "good a photo."),
                                                        ("middle", "a photo", "a good photo.")])
def test_prompt_learner_reproduces_clip_text_encoder(bundle, position, words, sentence):
    learner = clip.PromptLearner(bundle.model, bundle.tokenizer, ("good", "bad"), n_ctx=2, position=position)
    ids = bundle.tokenizer([words])[0, 1:3]
    with torch.no_grad():
        learner.ctx.copy_(bundle.model.token_embedding(ids))
        expected = F.normalize(bundle.model.encode_text(bundle.tokenizer([sentence])), dim=-1)[0]
        torch.testing.assert_close(learner.text_features()[0], expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="class-token position"):
        clip.PromptLearner(bundle.model, bundle.tokenizer, ("good", "bad"), position="left")


def test_prompt_tuning_on_cached_features_learns_and_round_trips(bundle, tmp_path):
    store = tmp_path / "s.h5"
    tiny_store(store, n=60, size=40)
    feats = clip.clip_features(store, bundle, crop=32, progress=False)
    assert feats.shape == (60, 32)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(clip.clip_features(store, bundle, crop=32, progress=False), feats)   # cached
    y = np.linspace(0, 1, 60).astype(np.float32)
    heads = clip.PromptHeads(bundle, n_ctx=4, seed=0)
    assert sum(p.numel() for p in heads.parameters() if p.requires_grad) == 3 * 4 * 64   # only the contexts
    frozen = {k: v.clone() for k, v in bundle.model.state_dict().items()}
    x = torch.from_numpy(feats)
    res = training.fit(heads, training.feature_batches(feats, y, np.arange(45), 16, 0), lambda: [x[45:]], y[45:],
                       training.TrainConfig(epochs=15, lr=1e-2), progress=False)
    assert soft_bce(heads(x[:45]), torch.from_numpy(y[:45])).item() < soft_bce(
        clip.PromptHeads(bundle, n_ctx=4, seed=0)(x[:45]), torch.from_numpy(y[:45])).item()
    assert all(torch.equal(v, bundle.model.state_dict()[k]) for k, v in frozen.items())   # CLIP stays frozen
    path = checkpoints.save_checkpoint(tmp_path / "p.pt", res, clip_weights=bundle.weights_id)
    loaded, payload = checkpoints.load_checkpoint(path, clip_bundle=bundle)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x), heads(x))
    with pytest.raises(ValueError, match="pass the CLIP bundle"):
        checkpoints.load_checkpoint(path)
    with pytest.raises(ValueError, match="trained on CLIP tiny:seed0"):
        checkpoints.load_checkpoint(path, clip_bundle=clip.tiny_clip(seed=1))


def test_load_clip_needs_a_local_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="pass its path"):
        clip.load_clip("ViT-B-16", tmp_path / "missing.bin")

"""Small builders shared by tests."""
from __future__ import annotations

import numpy as np

from aliqa_lib.data.store import StoreWriter


def tiny_store(path, n: int = 8, size: int = 40, seed: int = 0, groups: bool = True):
    """A random store of n images whose score is their mean brightness; returns (images, mos01)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    mos01 = images.mean(axis=(1, 2, 3)) / 255
    with StoreWriter(path, n=n, size=size, dataset="tiny", score_range=(0, 1)) as w:
        w.write_images(0, images)
        w.set_labels(mos=mos01, mos01=mos01, names=[f"{i}.png" for i in range(n)],
                     ref=np.arange(n) // 2 if groups else None)
    return images, mos01.astype(np.float32)


def linear_features(n: int = 300, dim: int = 16, noise: float = 0.05, seed: int = 0):
    """Features whose first direction carries a [0, 1] score; returns (features, scores)."""
    rng = np.random.default_rng(seed)
    y = rng.uniform(0, 1, n).astype(np.float32)
    x = rng.normal(0, 1, (n, dim)).astype(np.float32)
    x[:, 0] = y * 3 + rng.normal(0, noise, n)
    return x, y


def tiny_notebook(path, params: str, body: str):
    """A notebook with a `parameters`-tagged cell (source `params`) and one code cell; returns its path."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook()
    cell = new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def clip_with_layers(layers: int = 4, seed: int = 0, image_size: int = 16):
    """A tiny random open_clip CLIP with `layers` blocks in both towers, as a ClipBundle (the authors'
    fine-tuning unfreezes the last 4 blocks, more than aliqa_lib.models.clip.tiny_clip has)."""
    import open_clip
    import torch

    from aliqa_lib.models.clip import ClipBundle

    torch.manual_seed(seed)
    model = open_clip.CLIP(embed_dim=16, vision_cfg=dict(layers=layers, width=32, patch_size=8, image_size=image_size,
                                                         head_width=16),
                           text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=layers))
    model.requires_grad_(False).eval()
    return ClipBundle(model, open_clip.get_tokenizer("ViT-B-16"), open_clip.OPENAI_DATASET_MEAN,
                      open_clip.OPENAI_DATASET_STD, image_size, f"tiny{layers}", f"tiny{layers}:seed{seed}")

"""The HDF5 store: schema, atomic writes, validation errors, lazy torch dataset."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from aliqa_lib.data.store import StoreError, StoreWriter, read_images, read_labels, validate_store
from aliqa_lib.data.torch_dataset import IMAGENET_MEAN, IMAGENET_STD, StoreDataset


def write_tiny(path, n=5, size=32, seed=0, **optional):
    """A small random store with known contents; returns the images (N, S, S, 3)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    mos = rng.uniform(0, 100, n)
    with StoreWriter(path, n=n, size=size, dataset="tiny", score_range=(0, 100)) as w:
        w.write_images(0, images[:2])
        w.write_images(2, images[2:])
        w.set_labels(mos=mos, mos01=mos / 100, names=[f"img{i}.jpg" for i in range(n)], **optional)
    return images, mos


def test_round_trip(tmp_path):
    path = tmp_path / "s.h5"
    images, mos = write_tiny(path, ref=[0, 0, 1, 1, 2], distortion=["a", "b", "reference", "é", "b"],
                             level=[1, 2, 0, 3, 4])
    labels = read_labels(path)
    np.testing.assert_array_equal(read_images(path, [3, 0, 4]), images[[3, 0, 4]])
    np.testing.assert_allclose(labels.mos, mos)
    assert labels.mos01.dtype == np.float32
    assert list(labels.names) == [f"img{i}.jpg" for i in range(5)]
    assert list(labels.distortion) == ["a", "b", "reference", "é", "b"]
    np.testing.assert_array_equal(labels.ref, [0, 0, 1, 1, 2])
    assert labels.groups is labels.ref
    assert labels.attrs["dataset"] == "tiny" and labels.attrs["size"] == 32
    assert labels.attrs["score_range"] == [0, 100] and labels.attrs["higher_is_better"] is True
    with h5py.File(path) as fh:
        assert fh["images"].chunks == (1, 3, 32, 32)
        assert fh["images"].dtype == np.uint8


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "s.h5"
    with pytest.raises(RuntimeError):
        with StoreWriter(path, n=3, size=8, dataset="x", score_range=(1, 5)) as w:
            w.write_images(0, np.zeros((1, 8, 8, 3), np.uint8))
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("problem, message", [("labels", "labels were never written"),
                                               ("images", "images never written"),
                                               ("nan", "NaN")])
def test_incomplete_or_bad_store_is_refused(tmp_path, problem, message):
    path = tmp_path / "s.h5"
    with pytest.raises(StoreError, match=message):
        with StoreWriter(path, n=3, size=8, dataset="x", score_range=(1, 5)) as w:
            w.write_images(0, np.zeros((3 if problem != "images" else 2, 8, 8, 3), np.uint8))
            if problem != "labels":
                w.set_labels(mos=[1, np.nan if problem == "nan" else 2, 3], mos01=[0, 0.25, 0.5], names="abc")
    assert list(tmp_path.iterdir()) == []


def test_writer_checks_shapes(tmp_path):
    with pytest.raises(StoreError, match=r"\(B, 3, 8, 8\)"):
        with StoreWriter(tmp_path / "s.h5", n=2, size=8, dataset="x", score_range=(1, 5)) as w:
            w.write_images(0, np.zeros((2, 9, 9, 3), np.uint8))
    with pytest.raises(StoreError, match="mos01 must lie in"):
        with StoreWriter(tmp_path / "s.h5", n=2, size=8, dataset="x", score_range=(1, 5)) as w:
            w.write_images(0, np.zeros((2, 8, 8, 3), np.uint8))
            w.set_labels(mos=[1, 5], mos01=[0, 1.5], names="ab")


def test_validation_names_the_problem(tmp_path):
    with pytest.raises(StoreError, match="no store at .*missing.h5.*prepare"):
        validate_store(tmp_path / "missing.h5")
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(StoreError, match="not a readable HDF5"):
        validate_store(tmp_path / "junk.h5")
    path = tmp_path / "s.h5"
    write_tiny(path)
    with h5py.File(path, "a") as fh:
        fh.attrs["format_version"] = 99
    with pytest.raises(StoreError, match="format_version 99"):
        validate_store(path)
    with h5py.File(path, "a") as fh:
        fh.attrs["format_version"] = 1
        del fh["mos01"]
    with pytest.raises(StoreError, match="lacks mos01"):
        validate_store(path)


def test_dataset_centre_crop_is_the_exact_normalised_slice(tmp_path):
    path = tmp_path / "s.h5"
    images, _ = write_tiny(path, n=3, size=40)
    ds = StoreDataset(path, indices=[2, 0], train=False, crop=32)
    x, y = ds[0]
    expected = torch.from_numpy(images[2, 4:36, 4:36].transpose(2, 0, 1)).float() / 255
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    torch.testing.assert_close(x, (expected - mean) / std)
    assert x.shape == (3, 32, 32) and y.dtype == torch.float32
    assert y.item() == pytest.approx(read_labels(path).mos01[2])


def test_dataset_train_crops_are_random_per_image_and_reproducible(tmp_path):
    path = tmp_path / "s.h5"
    images, _ = write_tiny(path, n=4, size=40)
    a = StoreDataset(path, train=True, crop=32, seed=1)
    b = StoreDataset(path, train=True, crop=32, seed=1)
    windows = [a.window(i) for i in range(4)]
    assert windows == [b.window(i) for i in range(4)]
    assert len(set(windows)) > 1                               # images get different crops
    a.set_epoch(1)
    assert [a.window(i) for i in range(4)] != windows          # and new crops each epoch
    for i in range(4):                                         # each view is a crop of its image
        top, left, flip = a.window(i)
        crop = images[i, top:top + 32, left:left + 32].transpose(2, 0, 1)
        np.testing.assert_array_equal(a.raw(i), crop[:, :, ::-1] if flip else crop)


def test_dataset_rejects_bad_crop_and_indices(tmp_path):
    path = tmp_path / "s.h5"
    write_tiny(path, n=3, size=16)
    with pytest.raises(ValueError, match="larger than the stored size"):
        StoreDataset(path, crop=32)
    with pytest.raises(IndexError):
        StoreDataset(path, indices=[0, 5], crop=8)

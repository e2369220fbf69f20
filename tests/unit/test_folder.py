"""`prepare folder`: any folder of photos into a store with unknown (NaN) or partly known scores."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aliqa_lib.cli import main
from aliqa_lib.data.folder import find_images, prepare_folder
from aliqa_lib.data.store import read_images, read_labels, validate_store
from aliqa_lib.data.torch_dataset import StoreDataset

S = 32
COLOURS = {"a.jpg": (200, 30, 30), "B.PNG": (30, 200, 30), "sub/c.bmp": (30, 30, 200), "sub/deep/d.TIFF": (220, 220, 40),
           "sub/deep/e.webp": (40, 220, 220)}


def solid(path, colour, size=(48, 36)):
    """Write a one-colour image (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


@pytest.fixture()
def photos(tmp_path):
    """A nested folder of five one-colour images in five formats, plus files that are not images."""
    root = tmp_path / "photos"
    for name, colour in COLOURS.items():
        solid(root / name, colour)
    (root / "notes.txt").write_text("not an image")
    solid(root / ".hidden" / "x.jpg", (0, 0, 0))
    solid(root / "._y.jpg", (0, 0, 0))
    return root


def no_store_left(out) -> bool:
    """Neither the store nor a temporary file of it exists."""
    return not out.exists() and not list(out.parent.glob(f".{out.name}.*"))


def test_nested_folder_becomes_a_store_with_unknown_scores(photos, tmp_path):
    assert find_images(photos) == sorted(COLOURS)
    out = prepare_folder(photos, tmp_path / "p.h5", size=S, workers=0, progress=False)
    labels = read_labels(out)
    assert labels.names.tolist() == sorted(COLOURS)          # paths relative to root, "/" separators
    assert np.isnan(labels.mos).all() and np.isnan(labels.mos01).all() and not labels.labelled.any()
    assert labels.attrs["unknown_scores"] is True and labels.attrs["dataset"] == "folder"
    images = read_images(out, range(len(labels)))
    for image, name in zip(images, labels.names):
        np.testing.assert_allclose(image.reshape(-1, 3).mean(axis=0), COLOURS[name], atol=3)  # JPEG/WebP loss
    dataset = StoreDataset(out, crop=S)
    x, y = dataset[0]
    assert x.shape == (3, S, S) and np.isnan(y.item())


def test_store_from_a_folder_works_with_features(photos, tmp_path):
    from aliqa_lib.models import features
    from aliqa_lib.models.backbones import load_backbone

    out = prepare_folder(photos, tmp_path / "p.h5", size=40, workers=0, progress=False)
    feats = features.extract_features(out, load_backbone("efficientnet_lite0", "bundled"), "bundled", crop=32,
                                      pooling="final", progress=False)
    assert feats.shape == (5, 1280) and np.isfinite(feats).all()


def test_exif_orientation_is_honoured(tmp_path):
    root = tmp_path / "exif"
    root.mkdir()
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = (255, 0, 0)                  # left half red, right half blue, as stored
    pixels[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6                               # "rotate 90 clockwise to display"
    Image.fromarray(pixels).save(root / "turned.jpg", exif=exif, quality=95)
    out = prepare_folder(root, tmp_path / "e.h5", size=S, workers=0, progress=False)
    image = read_images(out, [0])[0].astype(int)
    top, bottom = image[: S // 2 - 2].reshape(-1, 3).mean(0), image[S // 2 + 2:].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 60           # displayed upright: the left (red) half is on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_labels_csv_fills_known_scores_only(photos, tmp_path):
    csv = tmp_path / "scores.csv"
    pd.DataFrame({"name": ["sub/c.bmp", "a.jpg"], "score": [80.0, 20.0]}).to_csv(csv, index=False)
    out = prepare_folder(photos, tmp_path / "p.h5", labels=csv, score_range=(0, 100), size=S, workers=0, progress=False)
    labels = read_labels(out)
    by_name = dict(zip(labels.names, labels.mos01))
    assert by_name["sub/c.bmp"] == pytest.approx(0.8) and by_name["a.jpg"] == pytest.approx(0.2)
    assert labels.labelled.tolist() == [n in ("sub/c.bmp", "a.jpg") for n in labels.names]
    assert np.isnan(labels.mos[~labels.labelled]).all()
    assert labels.attrs["score_range"] == [0, 100]


@pytest.mark.parametrize("rows, match", [
    ({"name": ["a.jpg", "zz.jpg"], "score": [3, 4]}, r"1 image\(s\) that are not in the folder .*zz\.jpg"),
    ({"name": ["a.jpg", "B.PNG"], "score": [3, None]}, r"no numeric score .*B\.PNG"),
    ({"name": ["a.jpg", "B.PNG"], "score": [3, "good"]}, r"no numeric score .*B\.PNG"),
    ({"name": ["a.jpg", "B.PNG"], "score": [3, 7]}, r"outside --score-range 1\.\.5 .*B\.PNG: 7"),
    ({"name": ["a.jpg", "a.jpg"], "score": [3, 4]}, r"more than once"),
    ({"image": ["a.jpg"], "score": [3]}, r"lacks column\(s\) \['name'\]"),
])
def test_bad_labels_csv_names_the_file_and_writes_nothing(photos, tmp_path, rows, match):
    csv = tmp_path / "scores.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    out = tmp_path / "p.h5"
    with pytest.raises(ValueError, match=match) as info:
        prepare_folder(photos, out, labels=csv, score_range=(1, 5), size=S, workers=0, progress=False)
    assert str(csv) in str(info.value)
    assert no_store_left(out)


def test_labels_need_a_score_range(photos, tmp_path):
    csv = tmp_path / "scores.csv"
    pd.DataFrame({"name": ["a.jpg"], "score": [3]}).to_csv(csv, index=False)
    with pytest.raises(ValueError, match="needs --score-range"):
        prepare_folder(photos, tmp_path / "p.h5", labels=csv, size=S, workers=0, progress=False)


@pytest.mark.parametrize("workers", [0, 1])
def test_unreadable_images_are_all_listed_or_skipped(photos, tmp_path, workers):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (photos / "sub" / "empty.png").write_bytes(b"")
    out = tmp_path / "p.h5"
    with pytest.raises(ValueError, match=r"cannot read image .*broken\.jpg .* nor 1 more: .*empty\.png.*--skip-bad"):
        prepare_folder(photos, out, size=S, workers=workers, progress=False)
    assert no_store_left(out)
    labels = read_labels(prepare_folder(photos, out, size=S, workers=workers, skip_bad=True, progress=False))
    assert labels.names.tolist() == sorted(COLOURS)
    assert sorted(name for name, _ in labels.attrs["skipped"]) == ["broken.jpg", "sub/empty.png"]


def test_only_unreadable_images_is_a_clear_error_even_with_skip_bad(tmp_path):
    root = tmp_path / "junk"
    root.mkdir()
    for name in ("x.jpg", "y.png"):
        (root / name).write_bytes(b"not an image")
    out = tmp_path / "p.h5"
    with pytest.raises(ValueError, match=r"none of the 2 images could be read \(first: .*junk/x\.jpg"):
        prepare_folder(root, out, size=S, workers=0, skip_bad=True, progress=False)
    assert no_store_left(out)


def test_no_images_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "readme.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"no images under .*empty"):
        prepare_folder(empty, tmp_path / "p.h5", size=S, workers=0, progress=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prepare_folder(tmp_path / "nowhere", tmp_path / "p.h5", size=S, workers=0, progress=False)


def test_reused_until_the_folder_changes(photos, tmp_path):
    out = prepare_folder(photos, tmp_path / "p.h5", size=S, workers=0, progress=False)
    stamp = out.stat().st_mtime_ns
    assert prepare_folder(photos, out, size=S, workers=0, progress=False).stat().st_mtime_ns == stamp
    solid(photos / "new.png", (1, 2, 3))
    assert len(read_labels(prepare_folder(photos, out, size=S, workers=0, progress=False))) == 6


def test_cli_prepare_folder(photos, tmp_path, capsys):
    csv = tmp_path / "scores.csv"
    pd.DataFrame({"name": ["B.PNG"], "score": [4]}).to_csv(csv, index=False)
    out = tmp_path / "cli.h5"
    assert main(["prepare", "folder", "--root", str(photos), "--out", str(out), "--labels", str(csv),
                 "--score-range", "1", "5", "--size", str(S), "--workers", "0"]) == 0
    labels = read_labels(out)
    assert validate_store(out)["unknown_scores"] is True
    assert labels.mos[labels.names.tolist().index("B.PNG")] == 4 and labels.labelled.sum() == 1
    assert main(["prepare", "folder", "--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.h5")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["prepare", "bid", "--root", str(photos), "--labels", str(csv)]) == 2
    assert "apply to `prepare folder` only" in capsys.readouterr().err


def test_store_allows_nan_only_when_it_says_scores_are_unknown(tmp_path):
    from aliqa_lib.data.store import StoreError, StoreWriter

    images = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    for unknown, mos01, match in ((False, [np.nan, 0.5], "NaN/inf"), (True, [0.5, 0.5], "disagree"),
                                  (True, [np.inf, 0.5], "NaN/inf")):
        with pytest.raises(StoreError, match=match):
            with StoreWriter(tmp_path / "s.h5", n=2, size=8, dataset="x", score_range=(0, 1), unknown_scores=unknown) as w:
                w.write_images(0, images)
                w.set_labels(mos=[np.nan, 0.5], mos01=mos01, names=["a", "b"])
        assert no_store_left(tmp_path / "s.h5")


def test_the_one_prepare_entry_point_routes_folders(photos, tmp_path):
    from aliqa_lib.data.prepare import prepare

    out = prepare("folder", root=photos, out=tmp_path / "p.h5", size=S, workers=0, progress=False)
    assert read_labels(out).names.tolist() == sorted(COLOURS)
    with pytest.raises(ValueError, match="needs --root"):
        prepare("folder", out=tmp_path / "q.h5")
    with pytest.raises(ValueError, match="no variants"):
        prepare("folder", root=photos, variant="all")

"""Real-dataset readers and the parallel ingest, on tiny fake copies of each official layout."""
from __future__ import annotations

from pathlib import Path

import fakes
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io as sio
from PIL import Image

from aliqa_lib import cli
from aliqa_lib.authors import koniq_split as authors_koniq_split
from aliqa_lib.data import ingest
from aliqa_lib.data import prepare as prep
from aliqa_lib.data.readers import SCORE_RANGES, read_catalog
from aliqa_lib.data.store import read_images, read_labels

S = 32


def build(name: str, tmp_path: Path, **kw):
    """Make the fake layout of `name`, prepare it and return (labels, fake info, root, out)."""
    root, info = fake(tmp_path, name)
    out = tmp_path / f"{name}.h5"
    path = prep.prepare(name, root, out=out, size=S, workers=kw.pop("workers", 0), progress=False, **kw)
    return read_labels(path), info, root, out


def fake(tmp_path: Path, name: str, **kw) -> tuple[Path, dict]:
    """A fresh fake layout of `name` under tmp_path: (root, what the fake holds)."""
    root = tmp_path / name
    root.mkdir()
    return root, fakes.MAKERS[name](root, **kw)


def edit_table(path: Path, edit) -> None:
    """Rewrite a CSV or xlsx label file with edit(DataFrame) -> DataFrame."""
    if path.suffix == ".csv":
        edit(pd.read_csv(path)).to_csv(path, index=False)
    else:
        edit(pd.read_excel(path, engine="calamine")).to_excel(path, index=False)


def no_store_left(out: Path) -> bool:
    """Neither the store nor a temporary file exists in its folder."""
    return not out.exists() and not list(out.parent.glob(f".{out.name}.*"))


# ---------------------------------------------------------------- every dataset from its fake


def test_koniq10k_sorted_names_scaling_and_official_split(tmp_path):
    root, info = fake(tmp_path, "koniq10k", sets=True)
    labels = read_labels(prep.prepare("koniq10k", root, out=tmp_path / "k.h5", size=S, workers=0, progress=False))
    order = np.argsort(info["names"])
    assert list(labels.names) == sorted(info["names"])
    np.testing.assert_allclose(labels.mos, info["mos"][order])
    np.testing.assert_allclose(labels.mos01, (info["mos"][order] - 1) / 4, rtol=1e-6)
    assert labels.attrs["score_range"] == [1.0, 5.0] and labels.attrs["higher_is_better"] is True
    assert labels.attrs["variant"] == "1024x768"
    assert list(labels.split).count("training") == 8 and list(labels.split).count("test") == 2
    np.testing.assert_allclose(labels.mos_std, 0.5)


def test_koniq10k_reads_the_sets_file_alone(tmp_path):
    root, info = fake(tmp_path, "koniq10k", sets=True)
    (root / "koniq10k_scores_and_distributions.csv").unlink()
    catalog = read_catalog("koniq10k", root)
    assert catalog.label_file.name == "koniq10k_distributions_sets.csv"
    assert list(catalog.labels.names) == sorted(info["names"]) and list(catalog.labels.split).count("validation") == 2


def test_koniq10k_falls_back_to_the_512_folder_and_honours_variant(tmp_path):
    root, _ = fake(tmp_path, "koniq10k", folder="512x384")
    assert read_catalog("koniq10k", root).variant == "512x384"
    with pytest.raises(FileNotFoundError, match="1024x768"):
        read_catalog("koniq10k", root, variant="1024x768")
    with pytest.raises(ValueError, match="unknown variant"):
        read_catalog("koniq10k", root, variant="256x192")


@pytest.mark.parametrize("nested", [False, True])
def test_livec_common_and_all_in_mat_order(tmp_path, nested):
    root, info = fake(tmp_path, "livec", nested=nested)
    common = read_labels(prep.prepare("livec", root, out=tmp_path / "c.h5", size=S, workers=0, progress=False))
    assert list(common.names) == info["names"][7:]
    np.testing.assert_allclose(common.mos01, info["mos"][7:] / 100, rtol=1e-6)
    everything = read_labels(prep.prepare("livec", root, out=tmp_path / "a.h5", size=S, workers=0,
                                          progress=False, variant="all"))
    assert list(everything.names) == info["names"] and everything.attrs["variant"] == "all"
    np.testing.assert_allclose(everything.mos_std, 15.0)


def test_spaq_attributes_and_exif_orientation(tmp_path):
    labels, info, root, out = build("spaq", tmp_path)
    assert list(labels.names) == info["names"]
    np.testing.assert_allclose(labels.mos01, info["mos"] / 100, rtol=1e-6)
    np.testing.assert_allclose(labels.metrics["brightness"], info["mos"] / 2)
    rotated = read_images(out, [2])[0].astype(int)  # stored (S, S, 3)
    top, bottom = rotated[: S // 2 - 2], rotated[S // 2 + 2:]
    # orientation 6: rotate 90 degrees clockwise, so the left (red) half ends on top
    assert top[..., 0].mean() > 200 and top[..., 2].mean() < 60
    assert bottom[..., 2].mean() > 200 and bottom[..., 0].mean() < 60


def test_spaq_reads_a_csv_export_of_the_workbook(tmp_path):
    root, info = fake(tmp_path, "spaq")
    xlsx = root / "Annotations" / "MOS and Image attribute scores.xlsx"
    pd.read_excel(xlsx, engine="calamine").to_csv(xlsx.with_suffix(".csv"), index=False)
    xlsx.unlink()
    catalog = read_catalog("spaq", root)
    assert catalog.label_file.suffix == ".csv" and list(catalog.labels.names) == info["names"]
    np.testing.assert_allclose(catalog.labels.mos01, info["mos"] / 100)


def test_kadid10k_structure_and_exact_pixels(tmp_path):
    labels, info, root, out = build("kadid10k", tmp_path)
    rows = info["rows"]
    assert list(labels.names) == [r["dist_img"] for r in rows]
    np.testing.assert_allclose(labels.mos01, (info["mos"] - 1) / 4, rtol=1e-6)
    assert labels.ref.tolist() == [int(r["ref_img"][1:3]) for r in rows]
    assert labels.level.tolist() == [int(r["dist_img"][-6:-4]) for r in rows]
    assert labels.distortion[0] == "gaussian_blur" and labels.distortion[1] == "color_saturation_lab"  # types 1, 8
    np.testing.assert_allclose(labels.mos_std, 0.5)
    # PNG: no DCT scaling, so the stored pixels are a plain bicubic resize; Pillow as the reference
    path = root / "kadid10k" / "images" / rows[3]["dist_img"]
    expected = np.asarray(Image.open(path).convert("RGB").resize((S, S), Image.Resampling.BICUBIC)).astype(int)
    diff = np.abs(read_images(out, [3])[0].astype(int) - expected)
    assert diff.max() <= 1 and diff.mean() < 0.1


def test_bid_grades_scaled_by_five(tmp_path):
    root, info = fake(tmp_path, "bid")
    blank = pd.DataFrame([[None] * 3], columns=["Image Number", "Average Subjective Grade", "std"])
    edit_table(root / "DatabaseGrades.xlsx", lambda df: pd.concat([df.iloc[:5], blank, df.iloc[5:], blank]))
    labels = read_labels(prep.prepare("bid", root, out=tmp_path / "bid.h5", size=S, workers=0, progress=False))
    assert list(labels.names) == info["names"]
    np.testing.assert_allclose(labels.mos01, info["mos"] / 5, rtol=1e-6)
    np.testing.assert_allclose(labels.mos_std, 0.7)


def test_cid2013_sets_as_split_and_scenes_as_groups(tmp_path):
    labels, info, *_ = build("cid2013", tmp_path)
    assert list(labels.names) == info["names"]
    np.testing.assert_allclose(labels.mos01, (info["mos"] + 10) / 110, rtol=1e-6)   # -9.5 -> 0.0045
    assert labels.attrs["score_range"] == [-10.0, 100.0] and labels.mos[0] == -9.5
    assert list(labels.split) == ["IS1"] * 6 + ["IS2"] * 6
    assert labels.ref.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]  # set x scene, three devices each


def test_jpeg_draft_decoding_stays_close_to_a_full_decode(tmp_path):
    path = fakes.save(tmp_path / "big.jpg", 3)
    big = Image.open(path).resize((1024, 768), Image.Resampling.BICUBIC)
    big.save(path, quality=92)
    fast = ingest.load_image(path, 244).astype(float)
    full = ingest.load_image(path, 244, draft=False).astype(float)
    assert np.abs(fast - full).mean() < 2.0


def test_bicubic_resize_matches_pillow_within_one_grey_level():
    rng = np.random.default_rng(0)
    pixels = np.clip(rng.normal(128, 60, (97, 131, 3)), 0, 255).astype(np.uint8)
    for size in (40, 64):
        ours = ingest.resize_bicubic(pixels, size).astype(int)
        pil = np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.BICUBIC)).astype(int)
        assert ours.shape == (size, size, 3) and np.abs(ours - pil).max() <= 1


def test_workers_give_the_same_store_as_in_process(tmp_path):
    a, _, root, out_a = build("cid2013", tmp_path)
    out_b = tmp_path / "b.h5"
    prep.prepare("cid2013", root, out=out_b, size=S, workers=2, progress=False)
    with h5py.File(out_a) as fa, h5py.File(out_b) as fb:
        np.testing.assert_array_equal(fa["images"][:], fb["images"][:])
        np.testing.assert_array_equal(fa["mos"][:], fb["mos"][:])


def test_valid_store_is_reused_and_force_rebuilds(tmp_path):
    _, _, root, out = build("bid", tmp_path)
    before = out.stat().st_mtime_ns
    assert prep.prepare("bid", root, out=out, size=S, workers=0, progress=False) == out
    assert out.stat().st_mtime_ns == before
    prep.prepare("bid", root, out=out, size=S, workers=0, progress=False, force=True)
    assert out.stat().st_mtime_ns != before


def test_bid_reads_the_legacy_xls_workbook(tmp_path):
    import xlwt

    root, info = fake(tmp_path, "bid")
    (root / "DatabaseGrades.xlsx").unlink()
    book = xlwt.Workbook()
    sheet = book.add_sheet("Sheet1")
    for col, title in enumerate(["Image Number", "Average Subjective Grade", "std"]):
        sheet.write(0, col, title)
    for row, grade in enumerate(info["mos"], start=1):
        sheet.write(row, 0, row)
        sheet.write(row, 1, float(grade))
        sheet.write(row, 2, 0.7)
    book.save(str(root / "DatabaseGrades.xls"))
    catalog = read_catalog("bid", root)
    assert catalog.label_file.name == "DatabaseGrades.xls" and list(catalog.labels.names) == info["names"]
    np.testing.assert_allclose(catalog.labels.mos01, info["mos"] / 5)


def test_a_prepared_store_is_found_by_name_alone(tmp_path):
    root, _ = fake(tmp_path, "bid")
    with pytest.raises(ValueError, match="needs --root.*no prepared store"):
        prep.prepare("bid", size=S)
    made = prep.prepare("bid", root, size=S, workers=0, progress=False)  # default path under $ALIQA_CACHE
    assert prep.prepare("bid", size=S) == made and made.name == f"bid_{S}.h5"


def test_smoke_keeps_evenly_spaced_images(tmp_path, monkeypatch):
    monkeypatch.setattr(prep, "SMOKE_IMAGES", 4)
    labels, info, *_ = build("spaq", tmp_path, smoke=True)
    assert list(labels.names) == [info["names"][i] for i in (0, 4, 7, 11)]


# ---------------------------------------------------------------- bad input


def test_missing_label_file_names_the_file_and_download(tmp_path):
    root, _ = fake(tmp_path, "spaq")
    (root / "Annotations" / "MOS and Image attribute scores.xlsx").unlink()
    with pytest.raises(FileNotFoundError, match="MOS and Image attribute scores.xlsx.*github.com/h4nwei/SPAQ"):
        read_catalog("spaq", root)


def test_missing_root_and_missing_root_argument(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*kadid-10k-database"):
        read_catalog("kadid10k", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="needs --root"):
        prep.prepare("koniq10k")


def test_wrong_column_names_file_and_column(tmp_path):
    root, _ = fake(tmp_path, "kadid10k")
    edit_table(root / "kadid10k" / "dmos.csv", lambda df: df.rename(columns={"dmos": "DMOS"}))
    with pytest.raises(ValueError, match=r"dmos.csv lacks column\(s\) \['dmos'\]"):
        read_catalog("kadid10k", root)


def test_nan_score_is_refused(tmp_path):
    root, _ = fake(tmp_path, "bid")
    edit_table(root / "DatabaseGrades.xlsx", lambda df: df.assign(**{"Average Subjective Grade": df[
        "Average Subjective Grade"].where(df.index != 4)}))
    with pytest.raises(ValueError, match=r"DatabaseGrades.xlsx: 1 rows have no numeric score.*DatabaseImage0005"):
        read_catalog("bid", root)


def test_scores_outside_the_documented_range_are_refused(tmp_path):
    root, _ = fake(tmp_path, "koniq10k")
    # a user pointing at the wrong column
    edit_table(root / "koniq10k_scores_and_distributions.csv", lambda df: df.assign(MOS=df["MOS_zscore"]))
    with pytest.raises(ValueError, match="outside the published range 1..5"):
        read_catalog("koniq10k", root)


@pytest.mark.parametrize("name, column, wrong", [
    ("cid2013", "Realigned MOS", lambda v: v * 10),          # per mille instead of 0-100
    ("cid2013", "Realigned MOS", lambda v: v - 20),          # below the lowest published value
    ("livec", None, lambda v: v * 1.5),
    ("spaq", "MOS", lambda v: v / 10 - 2),
    ("kadid10k", "dmos", lambda v: v * 20),
    ("bid", "Average Subjective Grade", lambda v: v * 20)])
def test_each_reader_refuses_a_column_outside_what_its_published_files_hold(tmp_path, name, column, wrong):
    root, _ = fake(tmp_path, name)
    if name == "livec":
        mat = root / "Data" / "AllMOS_release.mat"
        sio.savemat(mat, {"AllMOS_release": wrong(sio.loadmat(mat)["AllMOS_release"])})
    elif name == "cid2013":
        xlsx = next(root.glob("*.xlsx"))
        table = pd.read_excel(xlsx, sheet_name="CID2013 MOS", engine="calamine")
        table[column] = wrong(table[column])
        table.to_excel(xlsx, sheet_name="CID2013 MOS", index=False)
    else:
        label = next(p for p in root.rglob("*") if p.suffix in (".csv", ".xlsx"))   # the one label file
        edit_table(label, lambda df: df.assign(**{column: wrong(df[column])}))
    lo, hi = SCORE_RANGES[name]
    with pytest.raises(ValueError, match=f"outside the published range {lo:g}..{hi:g}"):
        read_catalog(name, root)


def test_damaged_label_files(tmp_path):
    root, _ = fake(tmp_path, "cid2013")
    xlsx = next(root.glob("*.xlsx"))
    pd.DataFrame({"Source_ID": ["x"], "Realigned MOS": [1.0]}).to_excel(xlsx, sheet_name="Sheet1", index=False)
    with pytest.raises(ValueError, match="no sheet 'CID2013 MOS'"):
        read_catalog("cid2013", root)
    root, _ = fake(tmp_path, "livec")
    import scipy.io as sio
    sio.savemat(root / "Data" / "AllMOS_release.mat", {"mos": np.ones((1, 12))})
    with pytest.raises(ValueError, match="no variable 'AllMOS_release'"):
        read_catalog("livec", root)
    root, _ = fake(tmp_path, "kadid10k")
    edit_table(root / "kadid10k" / "dmos.csv", lambda df: df.replace({"dist_img": {df.dist_img[0]: "photo.png"}}))
    with pytest.raises(ValueError, match="do not follow I<ref>_<type"):
        read_catalog("kadid10k", root)


def test_an_image_listed_twice_is_refused(tmp_path):
    root, _ = fake(tmp_path, "koniq10k")
    edit_table(root / "koniq10k_scores_and_distributions.csv", lambda df: pd.concat([df, df.iloc[:1]]))
    with pytest.raises(ValueError, match="lists 1 images more than once"):
        read_catalog("koniq10k", root)


def test_missing_image_fails_whole_or_is_skipped_and_listed(tmp_path, capsys):
    root, info = fake(tmp_path, "bid")
    (root / "ImageDatabase" / "DatabaseImage0003.JPG").unlink()
    out = tmp_path / "bid.h5"
    with pytest.raises(FileNotFoundError, match=r"1 of 12 images .* missing.*DatabaseImage0003.*--skip-bad"):
        prep.prepare("bid", root, out=out, size=S, workers=0, progress=False)
    assert no_store_left(out)
    labels = read_labels(prep.prepare("bid", root, out=out, size=S, workers=0, progress=False, skip_bad=True))
    assert len(labels) == 11 and "DatabaseImage0003.JPG" not in labels.names
    np.testing.assert_allclose(labels.mos, np.delete(info["mos"], 2))
    assert labels.attrs["skipped"] == [["DatabaseImage0003.JPG", "missing"]]
    assert "DatabaseImage0003.JPG: missing" in capsys.readouterr().err


@pytest.mark.parametrize("workers", [0, 2])
def test_unreadable_image_fails_whole_or_is_skipped(tmp_path, workers):
    root, info = fake(tmp_path, "spaq")
    (root / "TestImage" / "00007.jpg").write_bytes(b"not a jpeg at all")
    out = tmp_path / "spaq.h5"
    with pytest.raises(ValueError, match=r"cannot read image .*00007.jpg.*--skip-bad"):
        prep.prepare("spaq", root, out=out, size=S, workers=workers, progress=False)
    assert no_store_left(out)
    labels = read_labels(prep.prepare("spaq", root, out=out, size=S, workers=workers, progress=False, skip_bad=True))
    assert list(labels.names) == [n for n in info["names"] if n != "00007.jpg"]
    np.testing.assert_allclose(labels.metrics["brightness"], np.delete(info["mos"], 6) / 2)
    with h5py.File(out) as fh:
        assert fh["images"].shape[0] == 11
    assert labels.attrs["n_skipped"] == 1 and "UnidentifiedImageError" in labels.attrs["skipped"][0][1]


def test_image_folder_that_does_not_match_the_labels(tmp_path):
    root, _ = fake(tmp_path, "koniq10k")
    for p in (root / "1024x768").iterdir():
        p.rename(p.with_name("other_" + p.name))
    out = tmp_path / "k.h5"
    with pytest.raises(FileNotFoundError, match="12 of 12 images .* does not match the labels"):
        prep.prepare("koniq10k", root, out=out, size=S, workers=0, progress=False)
    assert no_store_left(out)


def test_interrupted_preparation_leaves_no_store(tmp_path, monkeypatch):
    root, _ = fake(tmp_path, "cid2013")
    calls = []

    def fail_second(paths, size, draft=True):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real(paths, size, draft)

    real = ingest.decode_batch
    monkeypatch.setattr(ingest, "decode_batch", fail_second)
    out = tmp_path / "cid.h5"
    with pytest.raises(KeyboardInterrupt):
        ingest.ingest(read_catalog("cid2013", root), out, size=S, workers=0, batch=4, progress=False)
    assert no_store_left(out)


def test_cli_prepares_and_reports_errors(tmp_path, capsys):
    root, _ = fake(tmp_path, "kadid10k")
    out = tmp_path / "k.h5"
    assert cli.main(["prepare", "kadid10k", "--root", str(root), "--out", str(out), "--size", str(S),
                     "--workers", "0"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert cli.main(["prepare", "livec", "--root", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


# ---------------------------------------------------------------- the authors' KonIQ index files


def test_authors_koniq_indices_map_to_names_as_their_readme_says():
    names = [f"{k:07d}.jpg" for k in range(10073)][::-1]  # store order need not be sorted
    np.random.seed(0)
    perm = np.arange(10073)
    np.random.shuffle(perm)  # the authors' legacy-generator call, as an independent reference
    import scipy.io as sio

    from aliqa_lib.paths import project_root
    mat = sio.loadmat(project_root() / "data" / "authors_release" / "koniq_rt10_index.mat")
    train, test = authors_koniq_split(names, 10)
    assert (len(train), len(test)) == (1006, 9067)
    assert len(np.union1d(train, test)) == 10073
    p = int(np.ravel(mat["ind_train"])[0])
    assert names[train[0]] == sorted(names)[perm[p]]
    for ratio, n in ((5, 503), (25, 2518), (80, 8058)):
        assert len(authors_koniq_split(names, ratio)[0]) == n


def test_authors_koniq_split_refuses_incomplete_names_and_unknown_ratio():
    with pytest.raises(ValueError, match="all 10073"):
        authors_koniq_split([f"{k}.jpg" for k in range(100)], 25)
    with pytest.raises(ValueError, match="ratios"):
        authors_koniq_split([f"{k}.jpg" for k in range(10073)], 7)
    everything = [f"{k:07d}.jpg" for k in range(10073)]
    with pytest.raises(ValueError, match="not in this store"):
        authors_koniq_split(everything[:-50], 80, all_names=everything)

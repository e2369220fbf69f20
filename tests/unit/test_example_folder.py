"""The example folder notebook 08 writes from the embedded dataset: which images, their files, their scores."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aliqa_lib.data.example_folder import example_picks, folder_name, write_example_folder
from aliqa_lib.data.folder import find_images
from aliqa_lib.data.store import read_images, read_labels

DISTORTION = np.array(["reference", "blur", "blur", "noise", "noise", "jpeg",     # content 0
                       "reference", "blur", "noise", "jpeg", "jpeg", "jpeg"])     # content 1
REF = np.array([0] * 6 + [1] * 6)


def test_picks_are_each_reference_and_distinct_types_of_its_own_content():
    picks = example_picks(DISTORTION, REF, per_reference=2, seed=0)
    assert len(picks) == 6 and list(picks) == sorted(picks)
    for content in (0, 1):
        mine = picks[REF[picks] == content]
        kinds = DISTORTION[mine]
        assert (kinds == "reference").sum() == 1 and len(set(kinds)) == 3     # reference + 2 distinct types
    assert list(example_picks(DISTORTION, REF, 2, seed=0)) == list(picks)     # seeded


def test_picks_keep_to_the_chosen_types_and_run_out_of_them_gracefully():
    picks = example_picks(DISTORTION, REF, per_reference=5, seed=1, kinds=["jpeg"])
    assert sorted(DISTORTION[picks]) == ["jpeg", "jpeg", "reference", "reference"]
    with pytest.raises(ValueError, match=r"\['sharpen'\] are not in the store"):
        example_picks(DISTORTION, REF, 1, seed=0, kinds=["sharpen"])
    with pytest.raises(ValueError, match="per_reference"):
        example_picks(DISTORTION, REF, -1, seed=0)


def test_folder_names():
    assert folder_name("astronaut_c00__jpeg_L3") == "astronaut_c00/jpeg_L3.jpg"
    assert folder_name("astronaut_c00__reference") == "astronaut_c00/reference.jpg"


def test_the_written_folder_holds_the_store_images_and_the_csv_their_scores(smoke_store, tmp_path):
    folder, csv = write_example_folder(smoke_store, tmp_path / "photos", per_reference=2, seed=0,
                                       kinds=["jpeg", "gaussian_blur", "darken"])
    labels = read_labels(smoke_store)
    table = pd.read_csv(csv)
    assert csv == tmp_path / "photos.labels.csv" and list(table.columns) == ["name", "score"]
    assert sorted(table.name) == find_images(folder) and len(table) == 4 * 3       # 4 contents x (1 + 2)
    by_name = {folder_name(n): i for i, n in enumerate(labels.names)}
    rows = np.array([by_name[n] for n in table.name])
    np.testing.assert_allclose(table.score, labels.mos[rows])                      # the pseudo-MOS, unchanged
    assert set(labels.distortion[rows]) <= {"reference", "jpeg", "gaussian_blur", "darken"}
    pixels = np.asarray(Image.open(folder / table.name[0]))
    original = read_images(smoke_store, [rows[0]])[0].astype(int)
    assert pixels.shape == original.shape and np.abs(pixels - original).mean() < 3  # JPEG at quality 95
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]           # no temporary left behind


def test_a_folder_that_holds_files_is_refused(smoke_store, tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "mine.jpg").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="already holds files"):
        write_example_folder(smoke_store, tmp_path / "photos")
    assert [p.name for p in (tmp_path / "photos").iterdir()] == ["mine.jpg"]

"""Issue 12's acceptance command: notebook 08 run headless on a folder with a labels CSV and the
simulated rater writes predictions.csv, one row per image of the folder."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
from PIL import Image

import aliqa_lib as al
from aliqa_lib.data.example_folder import write_example_folder
from aliqa_lib.data.folder import find_images


def test_notebook_08_on_a_folder_with_labels_and_the_simulated_rater(smoke_store, tmp_path):
    folder, csv = write_example_folder(smoke_store, tmp_path / "photos", per_reference=13, seed=1)
    labels = pd.read_csv(csv)
    for name in labels.name[::5]:                               # some PNGs among the JPEGs
        png = name.replace(".jpg", ".png")
        Image.open(folder / name).save(folder / png)
        (folder / name).unlink()
        labels.loc[labels.name == name, "name"] = png
    labels["score"] = (labels.score - 1) * 25                   # a 0..100 scale: SCORE_RANGE is read off the file
    labels.to_csv(tmp_path / "scores.csv", index=False)
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-m", "aliqa_lib", "tutorial", "--only", "08", "--out", str(out),
                    "-p", "FOLDER", str(folder), "-p", "LABELS", str(tmp_path / "scores.csv"), "-p", "RATER", "simulated"],
                   check=True, capture_output=True, timeout=900)
    run = out / "08_your_images"
    predictions = pd.read_csv(run / "predictions.csv")
    assert list(predictions.columns) == ["name", "score", "uncertainty"]
    assert sorted(predictions.name) == find_images(folder) and len(predictions) == len(labels) == 4 * 14
    assert predictions.score.is_monotonic_decreasing and np.isfinite(predictions.to_numpy()[:, 1:].astype(float)).all()
    # round 1 was rated from the CSV's scores on their own range (0..100 here), plus the rater's noise
    results = al.read_results(run)
    first = results["rounds"][0]["picks"]
    truth = labels.set_index("name").score
    expected = al.rating.simulated_rater(truth[first].to_numpy(), results["parameters"]["RATER_NOISE"], seed=1,
                                         score_range=(truth.min(), truth.max()))
    given = pd.read_csv(run / "collection.simulated.csv")
    assert given.name[:len(first)].tolist() == first and given.score[:len(first)].tolist() == expected.tolist()
    assert len(given) == results["n_rated"] == sum(len(r["picks"]) for r in results["rounds"])

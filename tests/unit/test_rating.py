"""The ratings file, the simulated rater and the rating panel (driven from Python)."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest

from aliqa_lib.rating import RATINGS_COLUMNS, RatingsError, RatingsFile, ratings_path, simulated_rater
from tests.helpers import tiny_store


@pytest.fixture()
def store(tmp_path):
    """A tiny store of 8 images named 0.png .. 7.png."""
    path = tmp_path / "photos.h5"
    tiny_store(path, n=8)
    return path


def test_ratings_path_beside_store(store):
    assert ratings_path(store) == store.with_name("photos.ratings.csv")
    assert RatingsFile(store).path == store.with_name("photos.ratings.csv")


def test_round_trip_survives_a_new_object(store):
    ratings = RatingsFile(store)
    ratings.append(3, 4, rater="ana")
    ratings.append(5, 1, rater="ana")
    raw = pd.read_csv(ratings.path, keep_default_na=False)
    assert tuple(raw.columns) == RATINGS_COLUMNS
    assert raw["name"].tolist() == ["3.png", "5.png"] and raw["score"].tolist() == [4, 1]
    again = RatingsFile(store).read()     # a "kernel restart": nothing lost
    assert again[["position", "score", "rater", "source"]].values.tolist() == [[3, 4, "ana", "panel"], [5, 1, "ana", "panel"]]


def test_each_append_is_on_disk_at_once(store):
    ratings = RatingsFile(store)
    for i, score in enumerate([2, 3, 5]):
        ratings.append(i, score)
        assert len(ratings.path.read_text().strip().splitlines()) == i + 2  # header + ratings so far


def test_multi_rater_mos_sd_count_by_hand(store):
    ratings = RatingsFile(store)
    for rater, score in (("a", 2), ("b", 4), ("c", 5)):
        ratings.append(1, score, rater=rater)
    ratings.append(6, 3, rater="a")
    op = ratings.opinions()
    assert op.index.tolist() == [1, 6]
    assert op.loc[1, "mos"] == pytest.approx(11 / 3)
    assert op.loc[1, "sd"] == pytest.approx(np.sqrt(((2 - 11 / 3) ** 2 + (4 - 11 / 3) ** 2 + (5 - 11 / 3) ** 2) / 2))
    assert op.loc[1, "count"] == 3 and op.loc[6, "count"] == 1
    assert np.isnan(op.loc[6, "sd"])                          # one rating: no sample SD
    assert op.loc[1, "mos01"] == pytest.approx((11 / 3 - 1) / 4)
    assert op.loc[1, "name"] == "1.png"
    assert ratings.labelled(min_count=2).tolist() == [1]
    assert ratings.labelled().tolist() == [1, 6]


def test_rerating_replaces_and_undo_restores(store):
    ratings = RatingsFile(store)
    ratings.append(2, 1, rater="a")
    ratings.append(4, 5, rater="a")
    ratings.append(2, 3, rater="a")           # a second opinion of image 2 replaces the first
    ratings.append(4, 2, rater="b")
    assert ratings.opinions().loc[2, "mos"] == 3
    undone = ratings.undo("a")
    assert undone["position"] == 2 and undone["score"] == 3
    assert ratings.opinions().loc[2, "mos"] == 1            # the earlier opinion stands again
    assert ratings.undo("a")["position"] == 4               # b's rating of 4 is untouched
    assert ratings.undo("a")["position"] == 2
    assert ratings.undo("a") is None
    assert ratings.read()[["rater", "position", "score"]].values.tolist() == [["b", 4, 2]]
    history = ratings.history()
    assert len(history) == 7 and (history["score"] == 0).sum() == 3   # nothing was rewritten


def test_duplicates_skipped_by_source_and_ref(store):
    ratings = RatingsFile(store)
    records = [dict(name="1.png", score=4, rater="x", source="label-studio", ref="17"),
               dict(position=2, score=2, rater="x", source="label-studio", ref="18"),
               dict(position=2, score=2, rater="x", source="label-studio", ref="18")]
    assert ratings.extend(records) == 2
    assert ratings.extend(records) == 0
    assert ratings.extend([dict(position=3, score=5, source="label-studio", ref="19")]) == 1
    assert len(ratings.history()) == 3


def test_extend_checks_all_before_writing(store):
    ratings = RatingsFile(store)
    with pytest.raises(RatingsError, match="no image 'nope.png'"):
        ratings.extend([dict(position=1, score=3), dict(name="nope.png", score=3)])
    assert not ratings.path.exists()


@pytest.mark.parametrize("score", [0, 6, 2.5, "3", None, True])
def test_bad_rating_is_refused_and_nothing_written(store, score):
    ratings = RatingsFile(store)
    ratings.append(0, 3)
    with pytest.raises(RatingsError, match="integer from 1"):
        ratings.append(1, score)
    assert len(RatingsFile(store).history()) == 1


@pytest.mark.parametrize("position", [-1, 8, "2"])
def test_bad_position_is_refused(store, position):
    with pytest.raises(RatingsError, match="not an image of store"):
        RatingsFile(store).append(position, 3)


def test_ratings_file_from_another_store_is_refused(store, tmp_path):
    RatingsFile(store).append(0, 3)
    other = tmp_path / "other.h5"
    tiny_store(other, n=9)
    with pytest.raises(RatingsError, match="another store"):
        RatingsFile(other, path=ratings_path(store))


def test_not_a_ratings_file(store):
    ratings_path(store).write_text("a,b\n1,2\n")
    with pytest.raises(RatingsError, match="not a ratings file"):
        RatingsFile(store)


def test_line_cut_short_is_skipped_with_warning_and_appends_continue(store):
    ratings = RatingsFile(store)
    ratings.append(0, 3)
    with open(ratings.path, "a") as fh:
        fh.write(f"{ratings.store_id},1,1.png,")    # a crash in mid-line
    ratings.append(2, 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = ratings.read()
    assert table["position"].tolist() == [0, 2]
    assert any("cut short" in str(w.message) for w in caught)


def test_simulated_rater_matches_formula():
    truth = np.array([0.0, 0.25, 0.5, 1.0, 0.9])
    assert simulated_rater(truth, noise_sd=0.0, seed=0).tolist() == [1, 2, 3, 5, 5]
    rng = np.random.default_rng(4)
    expected = np.clip(np.rint(1 + 4 * truth + rng.normal(0, 0.7, 5)), 1, 5)
    assert simulated_rater(truth, noise_sd=0.7, seed=4).tolist() == expected.tolist()
    assert simulated_rater([1, 3, 5], noise_sd=0, seed=0, score_range=(1, 5)).tolist() == [1, 3, 5]
    with pytest.raises(ValueError, match="NaN"):
        simulated_rater([0.5, np.nan], 0.1, 0)


def test_lock_file_beside_and_fsync(store, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    RatingsFile(store).append(0, 5)
    assert synced


# ---------------------------------------------------------------- the panel, driven from Python


def test_panel_rates_writes_at_once_and_resumes(store):
    from aliqa_lib.rating import RatingPanel

    picks = [5, 2, 7, 0]
    panel = RatingPanel(store, picks, RatingsFile(store), rater="ana", side=64)
    assert panel.position == 5 and panel.counter.value == "rated 0 of 4"
    assert bytes(panel.image.value).startswith(b"\x89PNG")
    panel.rate(4)
    assert RatingsFile(store).read()[["position", "score", "rater"]].values.tolist() == [[5, 4, "ana"]]
    assert panel.position == 2 and panel.counter.value == "rated 1 of 4"
    panel.skip()
    assert panel.position == 7
    panel.buttons[1].click()                    # "2 poor"
    again = RatingPanel(store, picks, RatingsFile(store), rater="ana", side=64)
    assert again.position == 2                  # first unrated pick (the skipped one comes back)
    assert again.progress() == (2, 4)
    other = RatingPanel(store, picks, RatingsFile(store), rater="ben", side=64)
    assert other.position == 5 and other.progress() == (0, 4)


def test_panel_back_undoes_and_shows_that_image(store):
    from aliqa_lib.rating import RatingPanel

    ratings = RatingsFile(store)
    ratings.append(1, 5, rater="ana")           # outside the picks: back must not touch it
    panel = RatingPanel(store, [3, 4], ratings, rater="ana", side=64)
    panel.rate(2)
    panel.rate(3)
    assert panel.position is None and panel.buttons[0].disabled
    with pytest.raises(RatingsError, match="every pick is rated"):
        panel.rate(3)
    panel.back()
    assert panel.position == 4 and not panel.buttons[0].disabled
    panel.back()
    assert panel.position == 3
    panel.back()                                 # nothing of these picks left to undo
    assert "nothing to undo" in panel.status.value
    assert ratings.read()[["position", "score"]].values.tolist() == [[1, 5]]


def test_panel_keys_and_dom_classes(store):
    from aliqa_lib.rating import RatingPanel

    panel = RatingPanel(store, [0, 1, 2], RatingsFile(store), side=64)
    assert [b._dom_classes for b in panel.buttons] == [(f"aliqa-rate-{k}",) for k in range(1, 6)]
    assert [b.description for b in panel.buttons] == ["1 bad", "2 poor", "3 fair", "4 good", "5 excellent"]
    panel.keys.value = "5"                       # what typing 5 into the key box does
    assert panel.keys.value == ""
    panel.keys.value = "s"
    panel.keys.value = "3"
    panel.keys.value = "x"
    assert "does nothing" in panel.status.value
    assert RatingsFile(store).read()[["position", "score"]].values.tolist() == [[0, 5], [2, 3]]
    panel.keys.value = "b"
    assert RatingsFile(store).read()[["position", "score"]].values.tolist() == [[0, 5]]


def test_panel_bad_input_shows_message_not_exception(store):
    from aliqa_lib.rating import RatingPanel

    with pytest.raises(ValueError, match="not images of"):
        RatingPanel(store, [0, 99], RatingsFile(store))
    panel = RatingPanel(store, [0], RatingsFile(store), side=64)
    panel._safely(panel.rate, 9)
    assert panel.status.value.startswith("not saved") and not RatingsFile(store).path.exists()
    panel.rater_box.value = "zoe"
    assert panel.rater == "zoe"


def test_carry_over_after_the_store_was_rebuilt(store, tmp_path):
    from aliqa_lib.data.store import StoreWriter

    ratings = RatingsFile(store)
    ratings.append(1, 4, rater="a")
    ratings.append(5, 2, rater="a")
    ratings.undo("a")                           # retracts 5.png's rating: two rows about 5.png
    ratings.append(6, 3, rater="b")
    old = tmp_path / "old.csv"
    ratings.path.rename(old)
    names = ["6.png", "new.png", "1.png"]       # the folder prepared again: 5.png gone, a new photo
    with StoreWriter(store, n=3, size=8, dataset="tiny", score_range=(0, 1)) as w:
        w.write_images(0, np.zeros((3, 8, 8, 3), np.uint8))
        w.set_labels(mos=np.full(3, 0.5), mos01=np.full(3, 0.5), names=names)
    with pytest.raises(RatingsError, match="carry_over"):
        RatingsFile(store, path=old)
    again = RatingsFile(store)
    assert again.carry_over(old) == {"carried": 2, "left_out": 2}
    assert again.read()[["name", "position", "score"]].values.tolist() == [["1.png", 2, 4], ["6.png", 0, 3]]
    with pytest.raises(RatingsError, match="already holds ratings"):
        again.carry_over(old)


def test_import_csv_once_and_checked(store, tmp_path):
    ratings = RatingsFile(store)
    good = tmp_path / "sheet.csv"
    pd.DataFrame({"name": ["2.png", "4.png", "2.png"], "score": [5, 1, 3], "rater": ["x", "x", "y"]}).to_csv(good, index=False)
    assert ratings.import_csv(good) == 3
    assert ratings.import_csv(good) == 0                     # same file again: nothing new
    assert ratings.opinions().loc[2, "mos"] == 4 and ratings.opinions().loc[2, "count"] == 2
    assert set(ratings.read()["source"]) == {"csv"}
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"name": ["1.png", "3.png"], "score": [4, 4.5]}).to_csv(bad, index=False)
    with pytest.raises(RatingsError, match=r"bad.csv, line 3: score .*4.5"):
        ratings.import_csv(bad)
    unknown = tmp_path / "unknown.csv"
    pd.DataFrame({"name": ["zz.png"], "score": [4]}).to_csv(unknown, index=False)
    with pytest.raises(RatingsError, match="no image 'zz.png'"):
        ratings.import_csv(unknown)
    assert len(ratings.history()) == 3

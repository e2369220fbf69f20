"""The Label Studio bridge without a server: labelling configs, scores, picks files, images, settings."""
from __future__ import annotations

import base64
import io
import json
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from aliqa_lib.rating import label_studio as ls
from tests.helpers import tiny_store


def test_our_config_is_a_rating_and_others_are_refused():
    assert ls.rating_control(ls.LABEL_CONFIG) == ls.RATING_NAME
    for word in ("bad", "poor", "fair", "good", "excellent"):
        assert word in ls.LABEL_CONFIG
    ten_stars = ls.LABEL_CONFIG.replace('maxRating="5"', 'maxRating="10"')
    text_rating = '<View><Text name="t" value="$text"/><Rating name="r" toName="t"/></View>'
    choices = '<View><Image name="image" value="$image"/><Choices name="c" toName="image"/></View>'
    for config in (ten_stars, text_rating, choices, "", "<View><Image"):
        with pytest.raises(ls.LabelStudioError, match="not"):
            ls.rating_control(config, "project 7")
    # maxRating left out means 5 (Label Studio's default)
    assert ls.rating_control('<View><Image name="i" value="$image"/><Rating name="q" toName="i"/></View>') == "q"


@pytest.mark.parametrize("result, expected", [
    ([{"from_name": "quality", "type": "rating", "value": {"rating": 4}}], 4),
    ([{"from_name": "quality", "type": "rating", "value": {"rating": 5.0}}], 5),
    ([{"from_name": "quality", "type": "rating", "value": {"rating": 6}}], "score 6 is outside 1-5"),
    ([{"from_name": "quality", "type": "rating", "value": {"rating": 0}}], "score 0 is outside 1-5"),
    ([{"from_name": "quality", "type": "rating", "value": {"rating": 2.5}}], "score 2.5 is outside 1-5"),
    ([{"from_name": "quality", "type": "rating", "value": {}}], "has no score"),
    ([{"from_name": "other", "type": "rating", "value": {"rating": 3}}], "has no score"),
    ([], "has no score"),
])
def test_annotation_score(result, expected):
    assert ls.annotation_score({"result": result}, "quality") == expected


def test_a_cancelled_annotation_has_no_score():
    ann = {"was_cancelled": True, "result": [{"from_name": "quality", "value": {"rating": 3}}]}
    assert ls.annotation_score(ann, "quality") == "skipped by the rater"


def test_read_picks_in_every_format(tmp_path):
    store = tmp_path / "s.h5"
    tiny_store(store, n=6)                                # names 0.png .. 5.png
    (tmp_path / "a.json").write_text(json.dumps([3, 1]))
    (tmp_path / "b.json").write_text(json.dumps({"positions": [2]}))
    (tmp_path / "c.csv").write_text("position,score\n4,0.1\n0,0.2\n")
    (tmp_path / "d.csv").write_text("name\n5.png\n1.png\n")
    (tmp_path / "e.txt").write_text("1\n2\n")
    got = [ls.read_picks(tmp_path / f, store) for f in ("a.json", "b.json", "c.csv", "d.csv", "e.txt")]
    assert got == [[3, 1], [2], [4, 0], [5, 1], [1, 2]]
    (tmp_path / "f.csv").write_text("name\nnope.png\n")
    with pytest.raises(ValueError, match="not in store"):
        ls.read_picks(tmp_path / "f.csv", store)
    (tmp_path / "g.txt").write_text("one\n")
    with pytest.raises(ValueError, match="one position per line"):
        ls.read_picks(tmp_path / "g.txt", store)
    with pytest.raises(FileNotFoundError, match="no picks file"):
        ls.read_picks(tmp_path / "missing.csv", store)


def _decode(uri: str) -> tuple[str, bytes]:
    """(mime type, bytes) of a base64 data URI."""
    head, payload = uri.split(",", 1)
    return head[len("data:"):-len(";base64")], base64.b64decode(payload)


def test_image_sent_is_the_original_or_lossless(tmp_path):
    store = tmp_path / "s.h5"
    images, _ = tiny_store(store, n=2, size=16)
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(small).save(tmp_path / "small.jpg", quality=70)
    Image.fromarray(small).save(tmp_path / "small.tif")
    big = rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)
    Image.fromarray(big).save(tmp_path / "big.png")
    mime, data = _decode(ls.image_uri(store, 0, "small.jpg", tmp_path))
    assert mime == "image/jpeg" and data == (tmp_path / "small.jpg").read_bytes()     # unchanged
    mime, data = _decode(ls.image_uri(store, 0, "small.tif", tmp_path))             # browsers show no TIFF
    assert mime == "image/png" and np.array_equal(np.asarray(Image.open(io.BytesIO(data))), small)
    mime, data = _decode(ls.image_uri(store, 0, "big.png", tmp_path, max_side=45))  # too large: shrunk, aspect kept
    assert mime == "image/png" and Image.open(io.BytesIO(data)).size == (45, 30)
    mime, data = _decode(ls.image_uri(store, 1, "gone.png", tmp_path))             # folder lost: the stored image
    assert mime == "image/png" and np.array_equal(np.asarray(Image.open(io.BytesIO(data))), images[1])


def test_settings_from_environment_never_echo_the_key(monkeypatch):
    monkeypatch.setenv(ls.ENV_URL, "http://localhost:8080/")
    monkeypatch.setenv(ls.ENV_KEY, "s3cret")
    assert ls.connection_settings() == ("http://localhost:8080", "s3cret")
    assert ls.connection_settings("http://other:1", "k") == ("http://other:1", "k")
    monkeypatch.delenv(ls.ENV_KEY)
    with pytest.raises(ls.LabelStudioError, match="LABEL_STUDIO_API_KEY"):
        ls.connection_settings()
    monkeypatch.delenv(ls.ENV_URL)
    with pytest.raises(ls.LabelStudioError, match="LABEL_STUDIO_URL"):
        ls.connection_settings(api_key="k")


def test_push_checks_positions_before_any_network(tmp_path):
    store = tmp_path / "s.h5"
    tiny_store(store, n=3)
    with pytest.raises(ValueError, match="position 3 is not an image"):
        ls.push(store, [0, 3], 1, url="http://127.0.0.1:9", api_key="k")


def test_connection_lost_during_pull_writes_nothing(tmp_path):
    import httpx

    from aliqa_lib.rating import RatingsFile

    store = tmp_path / "s.h5"
    tiny_store(store, n=3)
    ratings = RatingsFile(store)
    ratings.append(0, 3, rater="kept")
    before = ratings.path.read_bytes()

    def gone(**_):
        raise httpx.ConnectError("connection refused")

    project = SimpleNamespace(id=1, title=ls.default_title(store), label_config=ls.LABEL_CONFIG)
    client = SimpleNamespace(projects=SimpleNamespace(list=lambda **_: [project]), users=SimpleNamespace(list=lambda: []),
                             tasks=SimpleNamespace(list=gone))
    with pytest.raises(ls.LabelStudioError, match="lost Label Studio at http://ls.test while reading"):
        ls.pull(store, server=ls.Server(client, "http://ls.test"))
    assert ratings.path.read_bytes() == before

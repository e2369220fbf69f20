"""A round trip through a real Label Studio server (started once for this module; see label_studio_server).

Three raters score a round's picks through the API; the ratings file must then hold exactly those
scores (MOS, SD and count checked against hand-computed values), and neither a second push nor a
second pull may duplicate anything. Every fault is a clear error or a listed skip that leaves the
ratings file as it was.
"""
from __future__ import annotations

import base64
import secrets
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aliqa_lib.cli import main
from aliqa_lib.data.folder import prepare_folder
from aliqa_lib.rating import RatingsFile
from aliqa_lib.rating import label_studio as ls
from tests import label_studio_server

pytestmark = pytest.mark.skipif(label_studio_server.label_studio_bin() is None,
                                reason="the Label Studio server environment is missing: run `make labelstudio` "
                                       "(make test does it)")

CHOICES_CONFIG = """<View><Image name="image" value="$image"/>
<Choices name="ok" toName="image"><Choice value="yes"/><Choice value="no"/></Choices></View>"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """One local Label Studio for the whole module, always stopped at the end."""
    running = label_studio_server.start(label_studio_server.label_studio_bin(), tmp_path_factory.mktemp("ls"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def conn(server) -> ls.Server:
    """A checked connection with the admin's legacy token."""
    return ls.connect(server.url, server.token)


@pytest.fixture(scope="module")
def raters(conn) -> dict[str, int]:
    """Three raters: the admin and two users created through the API ({email: user id})."""
    ids = {u.email: u.id for u in conn.client.users.list()}
    for name in ("ana", "ben"):
        email = f"{name}@aliqa.test"
        if email not in ids:
            ids[email] = conn.client.users.create(username=name, email=email).id
    return {email: ids[email] for email in (label_studio_server.ADMIN, "ana@aliqa.test", "ben@aliqa.test")}


def folder_store(tmp_path: Path, stem: str, n: int = 5) -> tuple[Path, Path]:
    """A `prepare folder` store of n tiny random PNGs (one in a sub-folder); returns (store, folder)."""
    rng = np.random.default_rng(len(stem))
    root = tmp_path / f"{stem}_photos"
    (root / "sub").mkdir(parents=True)
    for i in range(n):
        where = root / "sub" if i == n - 1 else root
        Image.fromarray(rng.integers(0, 256, (20 + i, 28, 3), dtype=np.uint8)).save(where / f"img{i}.png")
    return prepare_folder(root, tmp_path / f"{stem}.h5", size=32, workers=0, progress=False), root


def rate(conn: ls.Server, task: int, score, who: int, **extra):
    """Post one rater's annotation of a task (score None: a result without a rating)."""
    value = {} if score is None else {"rating": score}
    result = [{"from_name": ls.RATING_NAME, "to_name": ls.IMAGE_NAME, "type": "rating", "value": value}]
    return conn.client.annotations.create(task, result=result, completed_by=who, **extra)


def task_ids(conn: ls.Server, project: int) -> dict[int, int]:
    """{store position: task id} of every task in the project (duplicates would show as a shorter dict)."""
    tasks = list(conn.client.tasks.list(project=project, include="id,meta"))
    positions = [t.meta["position"] for t in tasks]
    assert len(positions) == len(set(positions)), f"duplicate tasks: {positions}"
    return {t.meta["position"]: t.id for t in tasks}


def test_round_trip_three_raters(tmp_path, conn, raters):
    store, root = folder_store(tmp_path, "trip")
    names = RatingsFile(store).names
    first = ls.push(store, [0, 2, 4], round_number=1, server=conn)
    assert first.added == (0, 2, 4) and first.already == ()
    again = ls.push(store, [4, 2, 1], round_number=2, server=conn)        # a re-run plus one new pick
    assert again.added == (1,) and again.already == (4, 2) and again.project == first.project
    tasks = task_ids(conn, first.project)
    assert sorted(tasks) == [0, 1, 2, 4]

    # each task carries its position and name, and the original file unchanged
    task = conn.client.tasks.get(str(tasks[4]))
    assert task.data["position"] == 4 and task.data["name"] == names[4] == "sub/img4.png"
    assert task.data["round"] == 1
    head, payload = task.data["image"].split(",", 1)
    assert head == "data:image/png;base64" and base64.b64decode(payload) == (root / "sub/img4.png").read_bytes()

    admin, ana, ben = raters.values()
    scores = {0: {admin: 5, ana: 4, ben: 4}, 2: {admin: 1, ana: 2, ben: 4}, 4: {admin: 3, ana: 3}}
    for position, given in scores.items():
        for who, score in given.items():
            rate(conn, tasks[position], score, who)

    report = ls.pull(store, server=conn)                                     # K = 3 by default
    assert report.added == 8 and report.skipped == ()
    table = report.opinions
    assert table.index.tolist() == [0, 2]                                    # position 4 has 2 ratings: still in the pool
    # by hand: (5, 4, 4): mean 13/3, SD sqrt(((2/3)^2 + 2 (1/3)^2) / 2) = sqrt(1/3); (1, 2, 4): 7/3, sqrt(21/9)
    assert table.loc[0, "mos"] == pytest.approx(13 / 3) and table.loc[0, "sd"] == pytest.approx((1 / 3) ** 0.5)
    assert table.loc[2, "mos"] == pytest.approx(7 / 3) and table.loc[2, "sd"] == pytest.approx((21 / 9) ** 0.5)
    assert table["count"].tolist() == [3, 3]
    ratings = RatingsFile(store)
    assert ratings.opinions(2).loc[4, "mos"] == 3.0 and ratings.opinions(2).loc[4, "count"] == 2
    kept = ratings.read()
    assert set(kept["rater"]) == {label_studio_server.ADMIN, "ana@aliqa.test", "ben@aliqa.test"}
    assert set(kept["source"]) == {"label-studio"} and len(kept) == 8
    assert ratings.labelled(3).tolist() == [0, 2]

    before = ratings.path.read_bytes()
    assert ls.pull(store, server=conn).added == 0                           # a second pull adds nothing
    assert ratings.path.read_bytes() == before

    # ana changes her mind about image 0 (4 -> 1): her new score replaces the old one, nothing is lost
    ann = next(a for a in conn.client.annotations.list(tasks[0]) if a.completed_by == ana)
    conn.client.annotations.update(ann.id, result=[{"from_name": ls.RATING_NAME, "to_name": ls.IMAGE_NAME,
                                                    "type": "rating", "value": {"rating": 1}}])
    assert ls.pull(store, server=conn).added == 1
    assert RatingsFile(store).opinions(3).loc[0, "mos"] == pytest.approx(10 / 3)
    assert len(RatingsFile(store).history()) == 9


def test_command_line_round_trip(tmp_path, conn, server, raters, monkeypatch, capsys):
    store, _ = folder_store(tmp_path, "cli", n=3)
    picks = tmp_path / "picks.csv"
    picks.write_text("name\nimg1.png\nsub/img2.png\n")
    monkeypatch.setenv(ls.ENV_URL, server.url)
    monkeypatch.setenv(ls.ENV_KEY, server.token)
    assert main(["label-studio", "push", "--store", str(store), "--round", "1", "--picks", str(picks)]) == 0
    assert "2 tasks imported, 0 already there" in capsys.readouterr().out
    assert main(["label-studio", "push", "--store", str(store), "--round", "1", "--positions", "1", "2"]) == 0
    assert "0 tasks imported, 2 already there" in capsys.readouterr().out
    project, _ = ls.find_project(conn, store, create=False)
    for who, score in zip(raters.values(), (2, 3, 5)):
        rate(conn, task_ids(conn, project)[1], score, who)
    assert main(["label-studio", "pull", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "3 new ratings" in out and "1 images have at least 3 ratings" in out and "img1.png" in out
    assert RatingsFile(store).opinions(3).loc[1, "mos"] == pytest.approx(10 / 3)
    monkeypatch.setenv(ls.ENV_KEY, "not-" + server.token)
    assert main(["label-studio", "pull", "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert "refused the API key" in err and server.token not in err


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK refreshes a token with pydantic v1 API
def test_personal_access_token_works(conn, server):
    """Label Studio's newer personal access tokens (JWT refresh tokens) work as well as legacy ones."""
    pat = conn.client.tokens.create().token
    assert pat.count(".") == 2                                             # a JWT
    assert ls.connect(server.url, pat).client.users.whoami().email == label_studio_server.ADMIN


def test_unreachable_and_wrong_token(tmp_path, server, monkeypatch):
    store, _ = folder_store(tmp_path, "faults", n=2)
    ratings = RatingsFile(store)
    ratings.append(0, 4, rater="kept")
    before = ratings.path.read_bytes()
    nobody = f"http://127.0.0.1:{label_studio_server.free_port()}"
    with pytest.raises(ls.LabelStudioError, match="cannot reach Label Studio"):
        ls.pull(store, url=nobody, api_key="x")
    with pytest.raises(ls.LabelStudioError, match="cannot reach Label Studio"):
        ls.push(store, [0], 1, url=nobody, api_key="x")
    wrong = secrets.token_hex(20)
    with pytest.raises(ls.LabelStudioError, match="refused the API key") as info:
        ls.pull(store, url=server.url, api_key=wrong)
    assert wrong not in str(info.value)
    monkeypatch.delenv(ls.ENV_URL, raising=False)
    with pytest.raises(ls.LabelStudioError, match="no Label Studio URL"):
        ls.pull(store, api_key="x")
    assert ratings.path.read_bytes() == before


def test_project_that_is_not_a_rating(tmp_path, conn):
    store, _ = folder_store(tmp_path, "notrating", n=2)
    other = conn.client.projects.create(title="yes or no", label_config=CHOICES_CONFIG)
    with pytest.raises(ls.LabelStudioError, match="not a 1-5 image rating"):
        ls.push(store, [0, 1], 1, project=other.id, server=conn)
    with pytest.raises(ls.LabelStudioError, match="not a 1-5 image rating"):
        ls.pull(store, project=other.id, server=conn)
    assert list(conn.client.tasks.list(project=other.id, include="id")) == []
    assert not RatingsFile(store).path.exists()
    with pytest.raises(ls.LabelStudioError, match="no Label Studio project 999999"):
        ls.pull(store, project=999999, server=conn)


def test_bad_annotations_and_foreign_tasks_are_listed_skips(tmp_path, conn, raters):
    store, _ = folder_store(tmp_path, "skips", n=3)
    pushed = ls.push(store, [0, 1], 1, server=conn)
    tasks = task_ids(conn, pushed.project)
    admin, ana, ben = raters.values()
    rate(conn, tasks[0], 4, admin)                 # the one good rating
    rate(conn, tasks[0], 7, ana)                   # outside 1-5
    rate(conn, tasks[0], None, ben)                # no score
    rate(conn, tasks[1], 0, admin)                 # outside 1-5
    rate(conn, tasks[1], None, ana, was_cancelled=True)   # the rater skipped the image
    # tasks whose image is not in the store: a name it lacks, and one from another store
    ghost = {"store_id": RatingsFile(store).store_id, "position": 2, "name": "ghost.png"}
    alien = {"store_id": "0123456789ab", "position": 0, "name": "img0.png"}
    conn.client.projects.import_tasks(pushed.project, request=[{"data": {"image": "data:,", **m}, "meta": m}
                                                             for m in (ghost, alien)])
    for t in conn.client.tasks.list(project=pushed.project, include="id,meta"):
        if t.id not in tasks.values():
            rate(conn, t.id, 5, admin)
    report = ls.pull(store, server=conn, min_ratings=1)
    assert report.added == 1 and report.labelled.tolist() == [0]
    text = "\n".join(report.skipped)
    assert len(report.skipped) == 6, text
    assert text.count("is outside 1-5") == 2 and "score 7" in text and "score 0" in text
    assert "has no score" in text and "(img1.png): skipped by 1 rater(s)" in text
    assert "'ghost.png' at position 2) is not in the store" in text and "another store" in text
    kept = RatingsFile(store).read()
    assert kept[["position", "score", "rater"]].values.tolist() == [[0, 4, label_studio_server.ADMIN]]
    assert ls.pull(store, server=conn).added == 0

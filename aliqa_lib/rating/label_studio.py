"""A team of raters through Label Studio: push a round's picks as tasks, pull every rater's scores.

Label Studio (open source; `label-studio` on PyPI) is the annotation server most rating teams run.
This module speaks to a running one through its Python client, label-studio-sdk:

- `push(store, positions, round_number)` creates (or reuses) a project whose labelling interface is
  a 1-5 absolute category rating of one image (a <Rating> of 5 stars; the five ACR words bad, poor,
  fair, good, excellent as a legend, since the Rating control has no per-star hints) and imports the
  picks as tasks. Each task carries its image inside the task (a data URI) and the store position,
  image name, store id and round in its data and meta. Positions already in the project are not
  imported again, so a re-run of a round is idempotent.
- `pull(store)` reads every annotation of the project and merges one rating per (rater, image) into
  the ratings file beside the store (rating.ratings; source "label-studio", rater = the Label
  Studio user's email, ref = "<annotation id>@<updated_at>": a second pull adds nothing, an edited
  annotation adds its new score, which replaces the rater's earlier one). Only images with at least
  `min_ratings` ratings count as labelled.

Why images travel inside the task: uploading files goes through a multipart endpoint the SDK does
not wrap, and serving the folder as Label Studio "local files" needs the server started with extra
environment variables and the photos on the server's own disk. A data URI works on any server,
local or remote, with no configuration, and the image, its position and its name arrive in one
request (no task can exist without its position). The image sent is the original file, unchanged,
when the store's folder is at hand, the image is at most `max_side` pixels and in a format browsers
show; otherwise a lossless PNG (the original, EXIF-rotated and shrunk to `max_side`, or the
stored image when the folder is gone), so no new compression changes what the raters judge.

The URL and API key come from the arguments or the environment variables LABEL_STUDIO_URL and
LABEL_STUDIO_API_KEY; the key is never printed, logged or put into an error message. Both kinds of
Label Studio key work: a personal access token (JWT) or a legacy token.
"""
from __future__ import annotations

import base64
import io
import json
import os
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from .ratings import ACR_LABELS, RatingsFile, store_names

ENV_URL = "LABEL_STUDIO_URL"
ENV_KEY = "LABEL_STUDIO_API_KEY"
SOURCE = "label-studio"
IMAGE_NAME = "image"
RATING_NAME = "quality"
MIN_RATINGS = 3          # images with fewer ratings stay in the pool
MAX_SIDE = 1024          # longest side of the image shown to raters (KonIQ-10k showed 1024 x 768)
BROWSER_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
                 ".bmp": "image/bmp"}
LEGEND = " · ".join(f"{k} {word}" for k, word in ACR_LABELS.items())   # 1 bad · 2 poor · ... · 5 excellent
LABEL_CONFIG = f"""<View>
  <Header value="How good is the quality of this image?"/>
  <Image name="{IMAGE_NAME}" value="$image" zoom="true"/>
  <Rating name="{RATING_NAME}" toName="{IMAGE_NAME}" maxRating="5" icon="star" size="large" required="true"/>
  <Header value="{LEGEND}" size="5"/>
</View>"""
INSTRUCTION = ("Rate the technical quality of each image on the five categories of absolute category rating: "
               f"{LEGEND.replace(' · ', ', ')}. Judge sharpness, noise, exposure, colour and compression "
               "artefacts, not the subject or the composition.")


class LabelStudioError(RuntimeError):
    """Label Studio cannot be reached, refused the key, or holds a project that is not a rating."""


@dataclass(frozen=True)
class PushReport:
    """What `push` did: the project, the positions imported now and those imported before."""

    project: int
    added: tuple[int, ...]
    already: tuple[int, ...]
    url: str

    def __str__(self) -> str:
        return (f"Label Studio project {self.project} at {self.url}: {len(self.added)} tasks imported, "
                f"{len(self.already)} already there")


@dataclass(frozen=True)
class PullReport:
    """What `pull` did: ratings added to the file, annotations left out (with why), and the opinions."""

    project: int
    added: int
    skipped: tuple[str, ...]
    opinions: pd.DataFrame = field(repr=False)
    min_ratings: int
    ratings_file: Path

    @property
    def labelled(self) -> np.ndarray:
        """Store positions with at least `min_ratings` ratings."""
        return self.opinions.index.to_numpy(np.int64)

    def __str__(self) -> str:
        lines = [f"Label Studio project {self.project}: {self.added} new ratings in {self.ratings_file}; "
                 f"{len(self.opinions)} images have at least {self.min_ratings} ratings"]
        lines += [f"  skipped: {reason}" for reason in self.skipped]
        return "\n".join(lines)


# ---------------------------------------------------------------- connecting

def connection_settings(url: str | None = None, api_key: str | None = None) -> tuple[str, str]:
    """The server URL and API key: the arguments, else LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY."""
    url = url or os.environ.get(ENV_URL, "")
    api_key = api_key or os.environ.get(ENV_KEY, "")
    if not url:
        raise LabelStudioError(f"no Label Studio URL: pass url= (--url) or set {ENV_URL}, e.g. http://localhost:8080")
    if not api_key:
        raise LabelStudioError(f"no Label Studio API key: set {ENV_KEY} (Account & Settings > Access Token in "
                               "Label Studio) or pass api_key=")
    return url.rstrip("/"), api_key


@dataclass(frozen=True)
class Server:
    """A checked connection: the label-studio-sdk client and the server's URL (for messages)."""

    client: Any
    url: str


def connect(url: str | None = None, api_key: str | None = None, timeout: float = 30.0) -> Server:
    """A label-studio-sdk client, checked: the server answers and accepts the key."""
    import httpx
    from label_studio_sdk import LabelStudio
    from label_studio_sdk.core.api_error import ApiError

    url, api_key = connection_settings(url, api_key)
    try:
        client = LabelStudio(base_url=url, api_key=api_key, timeout=timeout, max_retries=0)
        client.users.whoami()
    except httpx.HTTPError as err:
        raise LabelStudioError(f"cannot reach Label Studio at {url} ({type(err).__name__}); start it "
                               f"(README: Rating with a team) or fix {ENV_URL}") from None
    except ApiError as err:
        if err.status_code in (401, 403):
            raise LabelStudioError(f"Label Studio at {url} refused the API key (HTTP {err.status_code}); copy a "
                                   f"valid token from Account & Settings into {ENV_KEY}") from None
        raise LabelStudioError(f"Label Studio at {url} answered HTTP {err.status_code}: {_detail(err)}") from None
    return Server(client, url)


def _detail(err: Any) -> str:
    """The server's own message of an SDK error (never the request's headers)."""
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("validation_errors") or body)[:300]
    return str(body)[:300]


@contextmanager
def _talking(server: Server, what: str) -> Iterator[None]:
    """Turn a lost connection or an API error while doing `what` into a LabelStudioError."""
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    try:
        yield
    except httpx.HTTPError as err:
        raise LabelStudioError(f"lost Label Studio at {server.url} while {what} ({type(err).__name__}); nothing "
                               "that was already written to the ratings file is lost: run it again") from None
    except ApiError as err:
        raise LabelStudioError(f"Label Studio at {server.url} answered HTTP {err.status_code} while {what}: "
                               f"{_detail(err)}") from None


def _server(server: Server | None, url: str | None, api_key: str | None) -> Server:
    """The given connection, or a new checked one."""
    return server if server is not None else connect(url, api_key)


# ---------------------------------------------------------------- the project

def rating_control(label_config: str, where: str = "the labelling config") -> str:
    """The name of the 1-5 <Rating> on an <Image value="$image"> in a labelling config; LabelStudioError if none."""
    fix = ("use a project made by `python -m aliqa_lib label-studio push` (or leave --project out to create one), "
           "or give yours <Image name=\"image\" value=\"$image\"/> and <Rating toName=\"image\" maxRating=\"5\"/>")
    try:
        root = ET.fromstring(label_config or "<View/>")
    except ET.ParseError as err:
        raise LabelStudioError(f"{where} is not valid XML ({err}); {fix}") from None
    images = {el.get("name") for el in root.iter() if el.tag == "Image" and el.get("value") == "$image"}
    for el in root.iter():
        if el.tag == "Rating" and el.get("toName") in images and el.get("maxRating", "5") == "5":
            return str(el.get("name"))
    raise LabelStudioError(f"{where} is not a 1-5 image rating: it has no <Rating maxRating=\"5\"> on an "
                           f"<Image value=\"$image\">; {fix}")


def default_title(store: str | os.PathLike) -> str:
    """The project title for a store: its file name and the fingerprint of its image names."""
    from .ratings import store_id

    store = Path(store)
    return f"aliqa {store.stem} {store_id(store_names(store))}"


def find_project(server: Server, store: str | os.PathLike, project: int | None = None, title: str | None = None,
                 create: bool = True, min_ratings: int = MIN_RATINGS) -> tuple[int, str]:
    """(project id, rating control name): `project`, else the one titled `title` (default: from the
    store), else a new one (create=True) asking for `min_ratings` raters per image."""
    from label_studio_sdk.core.api_error import ApiError

    client = server.client
    if project is not None:
        try:
            found = client.projects.get(int(project))
        except ApiError as err:
            raise LabelStudioError(f"no Label Studio project {project} at {server.url} (HTTP {err.status_code}); "
                                   "leave --project out to create one for the store") from None
        return found.id, rating_control(found.label_config, f"project {found.id} ({found.title!r})")
    title = title or default_title(store)
    for candidate in client.projects.list(title=title):
        if candidate.title == title:
            return candidate.id, rating_control(candidate.label_config, f"project {candidate.id} ({title!r})")
    if not create:
        raise LabelStudioError(f"no Label Studio project titled {title!r} at {server.url}: push a round first "
                               "(python -m aliqa_lib label-studio push) or pass --project ID")
    made = client.projects.create(title=title, label_config=LABEL_CONFIG, expert_instruction=INSTRUCTION,
                                  show_instruction=True, maximum_annotations=int(min_ratings), show_overlap_first=True,
                                  description=f"Image quality ratings for the aliqa store {Path(store).name}")
    return made.id, RATING_NAME


def _tasks(client: Any, project: int, include: str = "id,meta") -> Iterable[Any]:
    """Every task of a project (only the `include`d fields: never the images, which are large)."""
    return client.tasks.list(project=project, include=include, page_size=100)


# ---------------------------------------------------------------- push

def _source_root(store: Path) -> Path | None:
    """The folder a `prepare folder` store was made from, if it is still there."""
    with h5py.File(store, "r") as fh:
        root = fh.attrs.get("source_root")
    root = Path(str(root)) if root else None
    return root if root is not None and root.is_dir() else None


def _png_uri(pixels: Any) -> str:
    """A PIL image or uint8 (H, W, 3) array as a lossless PNG data URI."""
    from PIL import Image

    image = Image.fromarray(pixels) if isinstance(pixels, np.ndarray) else pixels
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_uri(store: str | os.PathLike, position: int, name: str, root: Path | None, max_side: int = MAX_SIDE) -> str:
    """The image shown to raters, as a data URI: the original file unchanged when it is small enough and
    in a browser format; else a lossless PNG of it (EXIF-rotated, shrunk); else the stored image."""
    from PIL import Image, ImageOps

    from ..data.store import read_images

    path = root / name if root is not None else None
    if path is None or not path.is_file():
        return _png_uri(read_images(store, [position])[0])
    with Image.open(path) as image:
        mime = BROWSER_TYPES.get(path.suffix.lower())
        if mime is not None and max(image.size) <= max_side:
            return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")
        shown = ImageOps.exif_transpose(image).convert("RGB")
    shown.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return _png_uri(shown)


def _check_positions(positions: Iterable[int], names: np.ndarray, store: Path) -> list[int]:
    """Distinct store positions in the given order; RatingsError-style ValueError for one outside the store."""
    out: list[int] = []
    for p in positions:
        if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or not 0 <= int(p) < len(names):
            raise ValueError(f"position {p!r} is not an image of store {store} (0..{len(names) - 1})")
        if int(p) not in out:
            out.append(int(p))
    return out


def imported_positions(client: Any, project: int, sid: str) -> dict[int, int]:
    """{store position: task id} of the tasks of store `sid` already in the project."""
    found: dict[int, int] = {}
    for task in _tasks(client, project):
        meta = task.meta or {}
        if meta.get("store_id") == sid and isinstance(meta.get("position"), int):
            found.setdefault(meta["position"], task.id)
    return found


def push(store: str | os.PathLike, positions: Iterable[int], round_number: int | None = None,
         project: int | None = None, title: str | None = None, url: str | None = None, api_key: str | None = None,
         server: Server | None = None, min_ratings: int = MIN_RATINGS, max_side: int = MAX_SIDE, batch: int = 20) -> PushReport:
    """Import the images at `positions` of `store` as rating tasks (those already imported are left as
    they are) into `project` (default: the store's own project, created when missing)."""
    from .ratings import store_id

    store = Path(store)
    names = store_names(store)
    sid = store_id(names)
    picks = _check_positions(positions, names, store)
    if int(min_ratings) < 1:
        raise ValueError(f"min_ratings is the number of raters each image is offered to, >= 1; got {min_ratings}")
    server = _server(server, url, api_key)
    with _talking(server, "finding the project and its tasks"):
        pid, _ = find_project(server, store, project, title, create=True, min_ratings=min_ratings)
        known = imported_positions(server.client, pid, sid)
    new = [p for p in picks if p not in known]
    root = _source_root(store)
    for start in range(0, len(new), batch):
        tasks = []
        for p in new[start:start + batch]:
            info = dict(store_id=sid, position=p, name=str(names[p]), round=round_number)
            tasks.append(dict(data=dict(image=image_uri(store, p, str(names[p]), root, max_side), **info), meta=info))
        with _talking(server, f"importing tasks into project {pid} (positions {new[:start]} were imported; a re-run "
                              "adds the rest)"):
            server.client.projects.import_tasks(pid, request=tasks)
    return PushReport(project=pid, added=tuple(new), already=tuple(p for p in picks if p in known), url=server.url)


# ---------------------------------------------------------------- pull

def annotation_score(annotation: dict[str, Any], control: str) -> int | str:
    """The 1-5 score of an annotation, or why it has none (a string)."""
    if annotation.get("was_cancelled"):
        return "skipped by the rater"
    values = [r.get("value", {}).get("rating") for r in annotation.get("result") or []
              if r.get("from_name") == control and r.get("type", "rating") == "rating"]
    if not values or values[0] is None:
        return "has no score"
    score = values[0]
    if isinstance(score, bool) or not isinstance(score, (int, float)) or score != int(score) or not 1 <= score <= 5:
        return f"score {score!r} is outside 1-5"
    return int(score)


def _raters(client: Any) -> dict[int, str]:
    """{Label Studio user id: email (or a name when the user has none)}."""
    return {u.id: (u.email or u.username or f"label-studio-user-{u.id}") for u in client.users.list()}


def _task_position(task: Any, names: np.ndarray, sid: str, skipped: list[str]) -> int | None:
    """The store position a task rates, or None (with the reason appended to `skipped`)."""
    meta = task.meta or {}
    if meta.get("store_id") not in (None, sid):
        skipped.append(f"task {task.id}: its image belongs to another store (id {meta.get('store_id')}, this one {sid})")
        return None
    position, name = meta.get("position"), meta.get("name")
    if not isinstance(position, int) or not 0 <= position < len(names) or names[position] != name:
        skipped.append(f"task {task.id}: its image ({name!r} at position {position!r}) is not in the store; "
                       "only tasks made by push can be pulled")
        return None
    return position


def _stamp(value: Any) -> str:
    """A timestamp from the SDK (datetime or text) as ISO text."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _task_records(client: Any, task: Any, position: int, name: str, control: str, raters: dict[int, str],
                  skipped: list[str]) -> list[dict[str, Any]]:
    """The ratings records of one task's annotations (problems appended to `skipped`)."""
    records = []
    for ann in client.annotations.list(task.id):
        ann = ann if isinstance(ann, dict) else ann.dict()
        score = annotation_score(ann, control)
        if isinstance(score, str):
            skipped.append(f"task {task.id} ({name}), annotation {ann.get('id')}: {score}")
            continue
        who = ann.get("completed_by")
        who = who.get("id") if isinstance(who, dict) else who
        given = _stamp(ann.get("updated_at") or ann.get("created_at"))
        records.append(dict(position=position, score=score, rater=raters.get(who, f"label-studio-user-{who}"),
                            source=SOURCE, ref=f"{ann.get('id')}@{given}", time=given))
    return records


def pull(store: str | os.PathLike, project: int | None = None, title: str | None = None,
         min_ratings: int = MIN_RATINGS, url: str | None = None, api_key: str | None = None,
         server: Server | None = None, ratings: RatingsFile | None = None) -> PullReport:
    """Merge every rater's scores from the store's Label Studio project into its ratings file; return
    what was added, what was left out and why, and the opinions of images with >= `min_ratings` ratings."""
    if int(min_ratings) < 1:
        raise ValueError(f"min_ratings is the number of ratings that make an image labelled, >= 1; got {min_ratings}")
    store = Path(store)
    ratings = ratings if ratings is not None else RatingsFile(store)
    server = _server(server, url, api_key)
    records: list[dict[str, Any]] = []
    skipped: list[str] = []
    with _talking(server, "reading the annotations (nothing was written to the ratings file)"):
        pid, control = find_project(server, store, project, title, create=False)
        raters = _raters(server.client)
        for task in _tasks(server.client, pid, include="id,meta,total_annotations,cancelled_annotations"):
            position = _task_position(task, ratings.names, ratings.store_id, skipped)
            if position is None:
                continue
            if task.cancelled_annotations:
                skipped.append(f"task {task.id} ({ratings.names[position]}): skipped by {task.cancelled_annotations} "
                               "rater(s)")
            if task.total_annotations:
                records += _task_records(server.client, task, position, str(ratings.names[position]), control,
                                         raters, skipped)
    added = ratings.extend(records)
    return PullReport(project=pid, added=added, skipped=tuple(skipped), opinions=ratings.opinions(min_ratings),
                      min_ratings=int(min_ratings), ratings_file=ratings.path)


# ---------------------------------------------------------------- picks files

def read_picks(path: str | os.PathLike, store: str | os.PathLike) -> list[int]:
    """Store positions from a picks file: JSON (a list, or {"positions": [...]}), a CSV with a `position`
    or a `name` column, or one position per line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no picks file at {path}; write the round's picks there or pass --positions")
    text = path.read_text(encoding="utf-8").strip()
    if path.suffix.lower() == ".json":
        value = json.loads(text)
        value = value.get("positions", value.get("picks")) if isinstance(value, dict) else value
        return [int(v) for v in value]
    first = text.splitlines()[0].split(",") if text else []
    if "position" in first or "name" in first:
        table = pd.read_csv(path)
        if "position" in table:
            return [int(v) for v in table["position"]]
        names = list(store_names(store))
        unknown = sorted(set(table["name"]) - set(names))
        if unknown:
            raise ValueError(f"{path}: {len(unknown)} names are not in store {store} (e.g. {unknown[:3]})")
        return [names.index(n) for n in table["name"]]
    try:
        return [int(line) for line in text.split()]
    except ValueError:
        raise ValueError(f"{path}: expected JSON, a CSV with a position or name column, or one position per line") \
            from None



# ---------------------------------------------------------------- command line

def add_parser(sub: Any) -> None:
    """`python -m aliqa_lib label-studio push|pull ...` (the API key only from LABEL_STUDIO_API_KEY)."""
    ls = sub.add_parser("label-studio", help="rate with a team: push a round's picks to Label Studio, pull the ratings",
                        description=f"The server URL comes from --url or {ENV_URL}; the API key only from {ENV_KEY} "
                                    "(never on the command line, where shell history and ps would keep it).")
    lsub = ls.add_subparsers(dest="ls_command", required=True)
    push_p = lsub.add_parser("push", help="import one round's picks as rating tasks (those already there are kept)")
    pull_p = lsub.add_parser("pull", help="merge every rater's scores into the ratings file beside the store")
    for p in (push_p, pull_p):
        p.add_argument("--store", required=True, help="the store (.h5) whose images are rated")
        p.add_argument("--url", default=None, help=f"Label Studio URL (default: ${ENV_URL})")
        p.add_argument("--project", type=int, default=None, help="project id (default: the store's own project)")
        p.add_argument("--min-ratings", type=int, default=MIN_RATINGS,
                       help=f"ratings an image needs to count as labelled (default {MIN_RATINGS})")
    push_p.add_argument("--round", type=int, required=True, help="the active-learning round of these picks")
    picks = push_p.add_mutually_exclusive_group(required=True)
    picks.add_argument("--positions", type=int, nargs="+", help="store positions of the picks")
    picks.add_argument("--picks", help="file of picks: JSON list, CSV with a position or name column, or one per line")
    push_p.add_argument("--max-side", type=int, default=MAX_SIDE,
                        help=f"longest side of the image shown to raters (default {MAX_SIDE})")


def run(args: Any) -> int:
    """Run `label-studio push|pull` from parsed arguments; print what happened; 2 on a Label Studio error."""
    try:
        if args.ls_command == "push":
            positions = args.positions if args.positions else read_picks(args.picks, args.store)
            print(push(args.store, positions, args.round, project=args.project, url=args.url,
                       min_ratings=args.min_ratings, max_side=args.max_side))
        else:
            report = pull(args.store, project=args.project, url=args.url, min_ratings=args.min_ratings)
            print(report)
            if len(report.opinions):
                print(report.opinions[["name", "mos", "sd", "count"]].to_string(float_format=lambda v: f"{v:.3f}"))
    except LabelStudioError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0

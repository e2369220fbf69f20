"""A rating panel for JupyterLab (ipywidgets): one picked image large, the five ACR buttons, keys 1-5.

Every click writes the rating to the ratings file at once (RatingsFile.append), so a restarted
kernel or a closed tab loses nothing; a panel built again resumes at the first pick this rater has
not rated. The logic lives in plain methods (rate, skip, back, show) that tests call from Python;
the widgets only forward to them.

Keys: ipywidgets has no keyboard events of its own, and a key-event extension (ipyevents) would
need its JupyterLab extension in every environment that shows the notebook, so the panel has a
small text box instead: with the cursor in it, typing 1-5 rates, s skips and b goes back (each
keystroke is read and the box cleared). Every control carries a stable CSS class (aliqa-rate-1 ..
aliqa-rate-5, aliqa-skip, aliqa-back, aliqa-keys, aliqa-rater, aliqa-progress, aliqa-image,
aliqa-status) for browser tests.
"""
from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
from PIL import Image

from ..data.store import read_images
from .ratings import ACR_LABELS, RatingsError, RatingsFile

KEYS_HELP = "click here, then type 1-5 to rate, s to skip, b to go back"


def png_bytes(pixels: np.ndarray, side: int) -> bytes:
    """An (H, W, 3) uint8 image as PNG bytes, resized to `side` pixels wide (bicubic)."""
    image = Image.fromarray(pixels)
    if image.width != side:
        image = image.resize((side, round(side * image.height / image.width)), Image.BICUBIC)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


class RatingPanel:
    """Rate the images at `positions` of `store` one by one; ratings go to `ratings` as they are given.

    >>> panel = RatingPanel(store, picks, RatingsFile(store), rater="ana")
    >>> panel            # shows the widget in JupyterLab
    >>> panel.rate(4)    # the same as clicking "4 good"
    """

    def __init__(self, store: str | os.PathLike, positions: Iterable[int], ratings: RatingsFile,
                 rater: str = "", side: int = 512) -> None:
        self.store = Path(store)
        self.positions = [int(p) for p in positions]
        if not self.positions:
            raise ValueError("the rating panel needs at least one image position to show")
        n = len(ratings.names)
        outside = [p for p in self.positions if not 0 <= p < n]
        if outside:
            raise ValueError(f"positions {outside[:5]} are not images of {self.store} (0..{n - 1})")
        if Path(ratings.store).resolve() != self.store.resolve():
            raise ValueError(f"the ratings file {ratings.path} belongs to {ratings.store}, not to {self.store}")
        self.ratings, self.rater, self.side = ratings, str(rater), int(side)
        self.skipped: set[int] = set()
        self.current: int | None = None
        self._build()
        self.current = self._next_unrated(start=0)
        self.show()

    # ------------------------------------------------------------ the logic (no widgets needed)

    def rated(self) -> set[int]:
        """Picks this rater has an effective rating of."""
        return set(self.ratings.rated_by(self.rater).tolist()) & set(self.positions)

    @property
    def position(self) -> int | None:
        """The store position of the image on show (None when every pick is rated or skipped)."""
        return None if self.current is None else self.positions[self.current]

    def _next_unrated(self, start: int, rated: set[int] | None = None) -> int | None:
        """Index of the first pick at or after `start` (wrapping round) not rated and not skipped."""
        rated = self.rated() if rated is None else rated
        n = len(self.positions)
        for k in range(n):
            i = (start + k) % n
            p = self.positions[i]
            if p not in rated and p not in self.skipped:
                return i
        return None

    def rate(self, score: int) -> None:
        """Rate the image on show (1 bad .. 5 excellent), write it at once, and show the next unrated pick."""
        if self.current is None:
            raise RatingsError("every pick is rated or skipped; nothing on show to rate (press back to change one)")
        position = self.position
        self.ratings.append(position, score, rater=self.rater, source="panel")
        self._message(f"saved {int(score)} ({ACR_LABELS[int(score)]}) for {self.ratings.names[position]}")
        self.current = self._next_unrated(self.current + 1)
        self.show()

    def skip(self) -> None:
        """Leave the image on show unrated for now and show the next unrated pick."""
        if self.current is None:
            return
        self.skipped.add(self.position)
        self._message(f"skipped {self.ratings.names[self.position]}")
        self.current = self._next_unrated(self.current + 1)
        self.show()

    def back(self) -> None:
        """Undo this rater's latest rating among the picks (a retraction row) and show that image again."""
        undone = self.ratings.undo(self.rater, positions=self.positions)
        if undone is None:
            self._message("nothing to undo: no rating of these picks by this rater")
            return
        self.skipped.discard(undone["position"])
        self.current = self.positions.index(undone["position"])
        self._message(f"undid {undone['score']} for {undone['name']}")
        self.show()

    def set_rater(self, rater: str) -> None:
        """Switch to another rater: progress and the image on show follow that rater's ratings."""
        self.rater = str(rater)
        self.skipped.clear()
        self.current = self._next_unrated(0)
        self.show()

    def progress(self) -> tuple[int, int]:
        """(rated, picks) for this rater."""
        return len(self.rated()), len(self.positions)

    # ------------------------------------------------------------ the widgets

    def _build(self) -> None:
        """Create the widgets and wire them to the methods above."""
        self.image = widgets.Image(format="png", layout=widgets.Layout(width=f"{self.side}px"))
        self.image.add_class("aliqa-image")
        self.caption = widgets.HTML()
        self.buttons = []
        for score, label in ACR_LABELS.items():
            button = widgets.Button(description=f"{score} {label}", tooltip=f"rate {score} ({label}); key {score}",
                                    layout=widgets.Layout(width="110px"))
            button.add_class(f"aliqa-rate-{score}")
            button.on_click(lambda _b, s=score: self._safely(self.rate, s))
            self.buttons.append(button)
        self.skip_button = widgets.Button(description="skip", tooltip="leave unrated for now (key s)")
        self.skip_button.add_class("aliqa-skip")
        self.skip_button.on_click(lambda _b: self._safely(self.skip))
        self.back_button = widgets.Button(description="back / undo", tooltip="undo your last rating (key b)")
        self.back_button.add_class("aliqa-back")
        self.back_button.on_click(lambda _b: self._safely(self.back))
        self.keys = widgets.Text(value="", placeholder=KEYS_HELP, layout=widgets.Layout(width="340px"))
        self.keys.add_class("aliqa-keys")
        self.keys.observe(self._on_key, names="value")
        self.rater_box = widgets.Text(value=self.rater, description="rater", placeholder="your name (optional), then Enter",
                                      continuous_update=False)   # switch rater once the name is typed, not per letter
        self.rater_box.add_class("aliqa-rater")
        self.rater_box.observe(lambda change: self._safely(self.set_rater, change["new"]), names="value")
        self.bar = widgets.IntProgress(min=0, max=len(self.positions))
        self.counter = widgets.Label()
        self.counter.add_class("aliqa-progress")
        self.status = widgets.Label()
        self.status.add_class("aliqa-status")
        self.widget = widgets.VBox([
            widgets.HBox([self.rater_box, self.bar, self.counter]), self.caption, self.image,
            widgets.HBox(self.buttons), widgets.HBox([self.skip_button, self.back_button, self.keys]), self.status])
        self.widget.add_class("aliqa-panel")

    def show(self) -> None:
        """Bring the widgets up to date: image on show, caption, progress."""
        done, total = self.progress()
        self.bar.value = done
        self.counter.value = f"rated {done} of {total}"
        if self.current is None:
            self.caption.value = f"<b>All {total} picks rated or skipped.</b> Press back to change a rating."
            self.image.value = b""
            for button in self.buttons + [self.skip_button]:
                button.disabled = True
            return
        for button in self.buttons + [self.skip_button]:
            button.disabled = False
        position = self.position
        self.caption.value = (f"<b>{self.ratings.names[position]}</b> (pick {self.current + 1} of {total}): "
                              "how good is this image?")
        self.image.value = png_bytes(read_images(self.store, [position])[0], self.side)

    def _message(self, text: str) -> None:
        """Say what the last action did under the buttons."""
        self.status.value = text

    def _safely(self, action: Any, *args: Any) -> None:
        """Run an action from a widget callback; a refused one shows its message instead of vanishing in a log."""
        try:
            action(*args)
        except (RatingsError, ValueError) as err:
            self._message(f"not saved: {err}")

    def _on_key(self, change: dict[str, Any]) -> None:
        """Read the key typed into the key box, clear the box, and act on it."""
        text = change["new"]
        if not text:
            return
        self.keys.value = ""
        key = text[-1].lower()
        if key in "12345":
            self._safely(self.rate, int(key))
        elif key == "s":
            self._safely(self.skip)
        elif key == "b":
            self._safely(self.back)
        else:
            self._message(f"key {key!r} does nothing here: {KEYS_HELP}")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """Show the panel's widget when the panel is the value of a notebook cell."""
        return self.widget._repr_mimebundle_(**kwargs)

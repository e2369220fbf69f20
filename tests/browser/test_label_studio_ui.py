"""A rater in a real browser: Label Studio shows a pushed image with its five stars, a click rates it.

Headless system Chromium logs into a local Label Studio (tests/label_studio_server.py), opens the task
`push` created, checks that the image shown is the photo sent and the ACR legend is there, clicks the
fourth star and Submit; `pull` must then hold exactly that one rating (4, by that user).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aliqa_lib.data.folder import prepare_folder
from aliqa_lib.rating import RatingsFile
from aliqa_lib.rating import label_studio as ls
from tests import label_studio_server

WAIT_MS = 60_000     # the labelling editor's first load on a busy 2-core machine


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """A local Label Studio for this module, always stopped at the end (skipped without its environment)."""
    exe = label_studio_server.label_studio_bin()
    if exe is None:
        pytest.skip("the Label Studio server environment is missing: run `make labelstudio` (make test does it)")
    running = label_studio_server.start(exe, tmp_path_factory.mktemp("ls-ui"))
    try:
        yield running
    finally:
        running.stop()


def test_a_rater_rates_in_the_browser(tmp_path, server, chromium):
    from playwright.sync_api import expect, sync_playwright

    root = tmp_path / "photos"
    root.mkdir()
    ramp = np.linspace(0, 255, 160)[None, :, None] * np.ones((120, 1, 3))
    noisy = (ramp + np.random.default_rng(0).normal(0, 25, ramp.shape)).clip(0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(root / "noisy.jpg", quality=90)
    store = prepare_folder(root, tmp_path / "ui.h5", size=32, workers=0, progress=False)
    conn = ls.connect(server.url, server.token)
    pushed = ls.push(store, [0], 1, server=conn)
    task = next(iter(conn.client.tasks.list(project=pushed.project, include="id"))).id
    shots = Path(os.environ.get("ALIQA_OUTPUTS", "outputs")) / "browser"
    shots.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{server.url}/user/login/")
            page.fill("input[name=email]", label_studio_server.ADMIN)
            page.fill("input[name=password]", server.password)
            page.click("button[type=submit]")
            page.wait_for_load_state("networkidle")
            page.goto(f"{server.url}/projects/{pushed.project}/data?task={task}")
            # The editor renders, then re-renders once the data manager adds `&tab=1` to the address: a
            # one-shot count can catch the moment between (CI saw 0 stars), so every check below retries
            # until it holds or WAIT_MS passes (playwright's expect), and fails with what it saw.
            stars = page.locator("li.ant-rate-star")
            expect(stars).to_have_count(5, timeout=WAIT_MS)
            expect(page.get_by_text("1 bad · 2 poor · 3 fair · 4 good · 5 excellent")).to_be_visible(timeout=WAIT_MS)
            shown = page.locator("img[src^='data:image/jpeg']").first
            # the photo itself (160 px wide), not the store's 32-px copy
            expect(shown).to_have_js_property("naturalWidth", 160, timeout=WAIT_MS)
            stars.nth(3).click()
            expect(page.locator("li.ant-rate-star-full")).to_have_count(4, timeout=WAIT_MS)   # the click took
            page.screenshot(path=str(shots / "label_studio_task.png"))
            page.get_by_role("button", name="Submit").click()
            page.wait_for_load_state("networkidle")
        finally:
            browser.close()

    for _ in range(20):                                                       # the submit may land a moment later
        if len(ls.pull(store, server=conn, min_ratings=1).opinions):
            break
        time.sleep(0.5)
    kept = RatingsFile(store).read()
    assert kept[["position", "score", "rater", "source"]].values.tolist() == [[0, 4, label_studio_server.ADMIN,
                                                                               "label-studio"]]

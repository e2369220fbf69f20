"""The harness itself, on a plain ipywidgets button: JupyterLab starts, Chromium runs the notebook,
clicks reach the kernel, and the server is gone afterwards (so a panel failure is the panel's)."""
from __future__ import annotations

import nbformat
from labharness import cell_errors, chromium_page, jupyter_lab, open_notebook, run_command, wait_kernel_idle, wait_until

BUTTON_CELL = """\
import ipywidgets as w
from pathlib import Path
LOG = Path("clicks.txt")
def append(button):
    with LOG.open("a") as f:
        f.write(button.description + "\\n")
buttons = [w.Button(description=d) for d in ("a", "b")]
for b in buttons:
    b.add_class(f"harness-{b.description}")
    b.on_click(append)
w.HBox(buttons)
"""


def test_jupyterlab_runs_a_notebook_and_clicks_reach_the_kernel(chromium, tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(BUTTON_CELL)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "harness.ipynb")
    with jupyter_lab(tmp_path) as server:
        with chromium_page(chromium) as page:
            open_notebook(page, server, "harness.ipynb")
            run_command(page, "notebook:run-all-cells")
            wait_kernel_idle(page, 60_000)
            assert cell_errors(page) == []
            for name in ("b", "a", "b"):
                page.locator(f".harness-{name}").click()
            log = tmp_path / "clicks.txt"
            clicks = lambda: log.read_text().split() if log.exists() else []
            wait_until(lambda: len(clicks()) >= 3, 10, "three clicks in clicks.txt")
            assert clicks() == ["b", "a", "b"]
            assert server.api("/api/sessions")[0]["kernel"]["execution_state"] in ("idle", "busy")
    assert server.proc.poll() is not None, "the server is stopped at the end"

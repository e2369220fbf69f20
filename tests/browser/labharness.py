"""A JupyterLab server on localhost and a headless Chromium page driving it (the browser tier's harness).

The server runs from this test's own Python (the project's environment), on a free port with a random
token, in a temporary root folder, with its settings, workspaces and runtime files in that folder too
(so nothing of the user's JupyterLab state leaks in or out). Every wait is bounded; the server is
always stopped, and its log is attached to any failure.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_TIMEOUT_S = 90        # JupyterLab's first start builds nothing (prebuilt extensions), but 2 cores are slow
STOP_TIMEOUT_S = 15
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def system_chromium() -> str | None:
    """Path of the system's Chromium (Debian's package), or None when none is installed."""
    env = os.environ.get("ALIQA_CHROMIUM")
    for path in ([env] if env else []) + list(CHROMIUM_CANDIDATES) + [shutil.which("chromium") or ""]:
        if path and Path(path).is_file() and os.access(path, os.X_OK):
            return path
    return None


def free_port() -> int:
    """A TCP port that nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """A running JupyterLab: its base url, token, root folder and log."""

    def __init__(self, root: Path, port: int, token: str, proc: subprocess.Popen, log: Path):
        self.root, self.port, self.token, self.proc, self.log = root, port, token, proc, log

    @property
    def url(self) -> str:
        """Base url of the server."""
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, name: str) -> str:
        """Url opening notebook `name` (relative to the root) in JupyterLab, token included."""
        return f"{self.url}/lab/tree/{name}?token={self.token}"

    def api(self, path: str, timeout: float = 5.0) -> dict | list:
        """GET one REST endpoint of the server (its JSON answer)."""
        req = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (localhost, our own server)
            return json.loads(resp.read())

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log, for failure messages."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"


def _wait_until_up(server: LabServer, timeout_s: float) -> None:
    """Poll /api/status until the server answers; raise with its log if it dies or takes too long."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {server.proc.returncode} while starting:\n{server.log_tail()}")
        try:
            server.api("/api/status", timeout=2)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer /api/status within {timeout_s:.0f} s:\n{server.log_tail()}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server's process group: SIGTERM (kernels shut down), SIGKILL after STOP_TIMEOUT_S."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT_S)


@contextmanager
def jupyter_lab(root: Path, env: dict[str, str] | None = None, timeout_s: float = START_TIMEOUT_S) -> Iterator[LabServer]:
    """Start JupyterLab headless on localhost serving `root`; always stopped on exit. `env`: the
    server's (and so its kernels') environment, default this process's."""
    root = Path(root)
    state = root / ".lab-state"                     # settings, workspaces, runtime: private to this server
    for sub in ("settings", "workspaces", "runtime", "config", "data"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    port, token = free_port(), secrets.token_hex(16)
    log = state / "server.log"
    full_env = {**(os.environ if env is None else env), "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
                "JUPYTER_CONFIG_DIR": str(state / "config"), "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
                "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.open_browser=False",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.expose_app_in_browser=True",            # window.jupyterapp: run commands by name
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=None",
           "--ServerApp.terminals_enabled=False", "--allow-root"]
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(cmd, cwd=root, env=full_env, stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = LabServer(root, port, token, proc, log)
    try:
        _wait_until_up(server, timeout_s)
        yield server
    finally:
        _stop(proc)


@contextmanager
def chromium_page(executable: str, timeout_ms: int = 30_000, viewport: tuple[int, int] = (1280, 1000)) -> Iterator:
    """A headless Chromium page (playwright's Python API on the system browser); closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # --no-sandbox: the tests may run as root (CI containers), where Chromium's sandbox refuses to start
        browser = p.chromium.launch(executable_path=executable, headless=True, timeout=timeout_ms,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.set_default_timeout(timeout_ms)
            yield page
        finally:
            browser.close()


def open_notebook(page, server: LabServer, name: str, timeout_ms: int = 60_000) -> None:
    """Open notebook `name` in JupyterLab and wait until its kernel is idle."""
    page.goto(server.notebook_url(name), timeout=timeout_ms)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext", timeout=timeout_ms)
    page.wait_for_function(
        "() => { const s = window.jupyterapp.shell.currentWidget.sessionContext;"
        " return s.session && s.session.kernel && s.session.kernel.status === 'idle'; }", timeout=timeout_ms)


def run_cells_above(page, index: int) -> None:
    """Run every cell of the current notebook above cell `index` (JupyterLab's "Run All Above Selected Cell")."""
    page.evaluate("i => { window.jupyterapp.shell.currentWidget.content.activeCellIndex = i; }", index)
    run_command(page, "notebook:run-all-above")


def run_command(page, command: str, args: dict | None = None) -> None:
    """Execute one JupyterLab command by id (as the command palette does), e.g. notebook:run-all-cells."""
    page.evaluate("([c, a]) => window.jupyterapp.commands.execute(c, a)", [command, args or {}])


def wait_kernel_idle(page, timeout_ms: int) -> None:
    """Wait until the current notebook's kernel has finished running (no cell queued, status idle)."""
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget; const k = w.sessionContext.session.kernel;"
        " const busy = [...w.node.querySelectorAll('.jp-InputPrompt')].some(p => p.textContent.includes('*'));"
        " return k.status === 'idle' && !busy; }", timeout=timeout_ms, polling=500)


def cell_errors(page) -> list[str]:
    """Every error output (ename: evalue) of the current notebook's cells, from JupyterLab's own model."""
    return page.evaluate(
        "() => { const errs = []; const cells = window.jupyterapp.shell.currentWidget.content.model.cells;"
        " for (let i = 0; i < cells.length; i++) { const c = cells.get(i);"
        " if (c.type !== 'code') continue; for (const o of c.toJSON().outputs || [])"
        " if (o.output_type === 'error') errs.push(`${o.ename}: ${o.evalue}`); } return errs; }")


def wait_until(check, timeout_s: float, what: str, interval_s: float = 0.2):
    """Call `check()` until it returns something truthy (returned); TimeoutError naming `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")
        time.sleep(interval_s)

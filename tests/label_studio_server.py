"""A throw-away Label Studio server for the real-server tests: its own environment, SQLite, localhost.

The server is the `label-studio` package in .venv-labelstudio/ (made by `make labelstudio`, which
`make test` runs when it is missing), so its pinned dependencies never meet the project's. The first
start migrates an empty database (minutes on a busy machine); that migrated data folder is kept as a
template inside the server's environment and copied for every later server, which then starts in
seconds. Each server gets a fresh copy, a free port on 127.0.0.1, an admin with a known legacy API
token, a bounded start-up wait (polling /health), and is stopped with its whole process group.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

REPO = Path(__file__).resolve().parents[1]
LS_VENV = Path(os.environ.get("ALIQA_LABEL_STUDIO_VENV", REPO / ".venv-labelstudio"))
START_TIMEOUT = 300.0        # seconds: a server started on a copy of the migrated template
TEMPLATE_TIMEOUT = 1800.0    # seconds: the one migration (make labelstudio does it; about 2 min on a loaded 2-core machine)
ADMIN = "admin@aliqa.test"


def label_studio_bin() -> Path | None:
    """The label-studio executable of the server's environment, or None when it is not installed."""
    exe = LS_VENV / "bin" / "label-studio"
    return exe if exe.is_file() else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    """The server's environment: ours without any Label Studio settings, no update check, no telemetry."""
    drop = ("LABEL_STUDIO_", "HEARTEX_", "USERNAME", "PASSWORD", "USER_TOKEN", "DATABASE_NAME", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(LATEST_VERSION_CHECK="false", COLLECT_ANALYTICS="false", SENTRY_DSN="", FRONTEND_SENTRY_DSN="",
               PYTHONUNBUFFERED="1")
    return env


def template(exe: Path, timeout: float = TEMPLATE_TIMEOUT) -> Path:
    """A migrated, empty data folder (made once per server environment, under a lock)."""
    done = LS_VENV / "aliqa-template-data"
    with FileLock(str(done) + ".lock"):
        if not done.is_dir():
            tmp = done.with_name(done.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            # `label-studio version` applies the database migrations and exits
            subprocess.run([str(exe), "version", "--data-dir", str(tmp)], env=_env(), check=True, timeout=timeout,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            tmp.rename(done)
    return done


@dataclass
class LocalLabelStudio:
    """A running server: `url`, the admin's legacy `token` and `password`, its data folder and log."""

    url: str
    token: str
    password: str
    data_dir: Path
    log: Path
    process: subprocess.Popen

    def stop(self) -> None:
        """Stop the server's whole process group (TERM, then KILL after 15 s)."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)


def _healthy(url: str) -> bool:
    """Whether the server answers its health check."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def start(exe: Path, workdir: Path, timeout: float = START_TIMEOUT) -> LocalLabelStudio:
    """Start a fresh server on a copy of the template; wait (at most `timeout` s) until it is healthy."""
    data_dir = workdir / "label-studio-data"
    shutil.copytree(template(exe), data_dir)
    port, token, password = free_port(), secrets.token_hex(20), secrets.token_hex(12)
    log = workdir / "label-studio.log"
    cmd = [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
           "--data-dir", str(data_dir), "--username", ADMIN, "--password", password,
           "--user-token", token, "--enable-legacy-api-token", "--log-level", "WARNING"]
    with open(log, "wb") as fh:
        process = subprocess.Popen(cmd, env=_env(), stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    server = LocalLabelStudio(f"http://127.0.0.1:{port}", token, password, data_dir, log, process)
    deadline = time.monotonic() + timeout
    while not _healthy(server.url):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"Label Studio did not become healthy at {server.url} within {timeout:.0f} s "
                               f"(exit code {process.poll()}); its log ends:\n{tail}")
        time.sleep(0.5)
    return server

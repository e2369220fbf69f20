"""Notebooks: the one call that starts each of them, and the headless runner (papermill).

Every numbered notebook's first code cell is `run = al.start("NN_name", globals())`: it applies the
visible smoke preset, resolves the output folder and the store, records the parameters and returns
what the notebook needs.
"""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import defaults
from .data.prepare import prepare
from .data.schema import Labels
from .data.store import read_labels
from .paths import output_dir, outputs_dir, project_root
from .results import RUN_DIR_ENV, record

PARAMETER = re.compile(r"^[A-Z][A-Z0-9_]*$")
HEADLESS_ENV = "ALIQA_HEADLESS"   # set by the runner in its kernels: no progress bars there


@dataclass
class Run:
    """What a started notebook works with: its output folder, store and labels, and its parameters."""

    name: str
    out: Path
    store: Path | None
    labels: Labels | None
    params: dict[str, Any]


def start(name: str, namespace: MutableMapping[str, Any], prepare_store: bool = False, needs_store: bool = True) -> Run:
    """Start notebook `name` from its parameters (the UPPER_CASE names in `namespace`, i.e. globals()).

    With SMOKE=True the smoke preset of defaults.SMOKE_PRESETS replaces the parameters it lists, in
    `namespace` too, and says so. The store is STORE when given, else the dataset DATASET prepared
    (or reused) under data/cache/; `prepare_store=True` (notebook 01) prepares STORE itself from the
    preparation parameters; `needs_store=False` (notebook 08, which prepares a folder of its own)
    leaves store and labels None. Seed, smoke flag, parameters and any preset change go to results.json.
    """
    params = {k: v for k, v in namespace.items() if PARAMETER.match(k) and _is_value(v)}
    missing = [k for k in ("SEED", "SMOKE", "OUT_DIR") if k not in params]
    if missing:
        raise ValueError(f"{name}: the parameters cell lacks {missing}")
    changed = {}
    if params["SMOKE"]:
        for key, value in defaults.smoke_preset(name).items():
            if key in params and params[key] != value:
                changed[key] = [params[key], value]
                namespace[key] = params[key] = value
        if changed:
            print("SMOKE preset (aliqa_lib.defaults.SMOKE_PRESETS): "
                  + ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items()))
    out = output_dir(name, params["OUT_DIR"])
    store = _store(params, prepare_store) if needs_store else None
    labels = read_labels(store) if store is not None else None
    record("seed", params["SEED"], out)
    record("smoke", bool(params["SMOKE"]), out)
    record("parameters", {k: v for k, v in params.items() if k != "OUT_DIR"}, out)
    record("smoke_preset", changed, out)
    print(f"{labels.attrs['dataset']}: {len(labels)} images in {store}; outputs in {out}" if labels is not None
          else f"outputs in {out}")
    return Run(name=name, out=out, store=store, labels=labels, params=params)


def _is_value(value: Any) -> bool:
    """Whether a global is a parameter value (None, a number, a string or a list/dict of them), not an
    UPPER_CASE import such as a class."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_value(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_value(v) for k, v in value.items())
    return False


def _store(params: dict[str, Any], prepare_store: bool) -> Path:
    """The store a notebook reads: STORE as given, or its dataset prepared with the notebook's settings."""
    store = params.get("STORE")
    if store is not None and not prepare_store:
        return Path(store)
    options = {"root": "ROOT", "size": "SIZE", "workers": "WORKERS", "skip_bad": "SKIP_BAD", "variant": "VARIANT"}
    given = {arg: params[key] for arg, key in options.items() if key in params}
    return prepare(params.get("DATASET", "synthetic"), out=store, seed=params["SEED"], smoke=bool(params["SMOKE"]),
                   progress=prepare_store and not os.environ.get(HEADLESS_ENV), **given)


def notebook_dir() -> Path:
    """The folder of the numbered tutorial notebooks (notebooks/ of the checkout)."""
    root = project_root()
    if root is None:
        raise FileNotFoundError("the notebooks ship with the repository checkout; clone it to run them")
    return root / "notebooks"


def list_notebooks(folder: str | os.PathLike | None = None) -> list[Path]:
    """The numbered notebooks NN_*.ipynb of a folder, in order."""
    folder = Path(folder) if folder else notebook_dir()
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def select_notebooks(only: Sequence[str] | None = None, folder: str | os.PathLike | None = None) -> list[Path]:
    """The numbered notebooks whose names start with one of `only` (all when None); raise ValueError
    listing the notebooks there are when a prefix matches none, before anything runs."""
    notebooks = list_notebooks(folder)
    if not only:
        return notebooks
    unmatched = [o for o in only if not any(nb.name.startswith(o) for nb in notebooks)]
    if unmatched:
        raise ValueError(f"no notebook matches {unmatched}; the notebooks are {[nb.stem for nb in notebooks]} "
                         "(pass a number such as 01 or a full name)")
    return [nb for nb in notebooks if any(nb.name.startswith(o) for o in only)]


def notebook_parameters(notebook: str | os.PathLike) -> set[str]:
    """The names the notebook's `parameters`-tagged cell defines (read by papermill, nothing executed)."""
    import papermill

    notebook = Path(notebook)
    if not notebook.is_file():
        raise FileNotFoundError(f"no notebook at {notebook}")
    return set(papermill.inspect_notebook(str(notebook)))


def check_parameters(notebook: str | os.PathLike, parameters: Iterable[str], set_by_runner: Iterable[str] = ()) -> None:
    """Raise ValueError naming any parameter the notebook's parameters cell does not define (papermill
    would inject it with only a warning and the run would go on with the defaults), or one the runner sets."""
    known, names, reserved = notebook_parameters(notebook), set(parameters), set(set_by_runner)
    unknown = sorted(names - known)
    if unknown:
        raise ValueError(f"{Path(notebook).name} has no parameter(s) {unknown}; its parameters are {sorted(known - reserved)}")
    reserved = sorted(names & reserved)
    if reserved:
        raise ValueError(f"{Path(notebook).name}: {reserved} is set by the runner for each run; leave it out")


THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")   # torch, MKL and numpy's BLAS read these


def _kernel_manager(run_dir: Path, socket_dir: str | None = None, threads: int | None = None) -> type:
    """A Jupyter kernel manager whose kernels see ALIQA_RUN_DIR=run_dir, so that `al.record(key, value)`
    without a folder lands in the run's folder (the environment is per kernel, not per process, which
    keeps runs in threads of one process apart). With `socket_dir` the kernel talks over local IPC
    sockets there instead of TCP on localhost (nothing listens on a port, and the kernel does not warn
    that its TCP traffic is unencrypted). With `threads` the kernel's numerical libraries use that many
    threads (a sweep running several kernels at once gives each its share of the cores)."""
    from jupyter_client import AsyncKernelManager

    class RunKernelManager(AsyncKernelManager):
        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            if socket_dir is not None:
                self.transport, self.ip = "ipc", os.path.join(socket_dir, "kernel")

        async def start_kernel(self, **kw: Any) -> None:
            kw["env"] = {**kw.get("env", os.environ), RUN_DIR_ENV: str(run_dir)}
            if threads is not None:
                kw["env"].update({name: str(threads) for name in THREAD_ENV})
            await super()._async_start_kernel(**kw)

    return RunKernelManager


def execute(notebook: str | os.PathLike, executed: str | os.PathLike, run_dir: str | os.PathLike,
            parameters: dict[str, Any] | None = None, progress: bool = False, threads: int | None = None) -> Path:
    """Execute `notebook` into `executed` with papermill; OUT_DIR and the default folder of every
    `al.record` in it are `run_dir`; `threads` caps the kernel's math threads (default: the libraries'
    own, one per core). Parameters are not checked here: callers check them first."""
    import papermill

    notebook, run_dir = Path(notebook), Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    # IPC sockets where the platform has them (POSIX), in a short private folder: a socket path must
    # stay under about 100 characters, so not inside run_dir
    sockets = tempfile.TemporaryDirectory(prefix="aliqa-kernel-") if os.name == "posix" else contextlib.nullcontext()
    with inline_figures(), sockets as socket_dir:
        papermill.execute_notebook(str(notebook), str(executed),
                                   parameters={**absolute_paths(parameters or {}), "OUT_DIR": str(run_dir)},
                                   cwd=str(notebook.parent), progress_bar=progress, kernel_name="python3",
                                   kernel_manager_class=_kernel_manager(run_dir, socket_dir, threads))
    return Path(executed)


def absolute_paths(parameters: dict[str, Any], cwd: str | os.PathLike | None = None) -> dict[str, Any]:
    """Make each relative string value that names an existing path under `cwd` (the caller's) absolute,
    since the kernel runs in the notebook's folder."""
    base = Path(cwd) if cwd is not None else Path.cwd()
    return {name: str((base / value).resolve())
            if isinstance(value, str) and value and not Path(value).is_absolute() and os.path.exists(base / value)
            else value for name, value in parameters.items()}


@contextlib.contextmanager
def inline_figures() -> Iterator[None]:
    """Set the environment the runner's kernels inherit: figures inline (a non-interactive MPLBACKEND,
    e.g. Agg, which headless scripts and CI set, would make every plt.show() blank) and HEADLESS_ENV,
    so that progress bars stay quiet (no frontend draws them, and an executed notebook would keep a
    frozen bar as text)."""
    saved = {name: os.environ.pop(name, None) for name in ("MPLBACKEND", HEADLESS_ENV)}
    os.environ[HEADLESS_ENV] = "1"
    try:
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value


def run_notebook(notebook: str | os.PathLike, out_dir: str | os.PathLike, parameters: dict[str, Any] | None = None,
                 progress: bool = False) -> Path:
    """Execute one notebook into out_dir/<name>.ipynb; its OUT_DIR parameter becomes out_dir/<name>/."""
    notebook, out_dir = Path(notebook), Path(out_dir)
    check_parameters(notebook, parameters or {}, set_by_runner=["OUT_DIR"])
    return execute(notebook, out_dir / notebook.name, out_dir / notebook.stem, parameters, progress)


def run_all(out_dir: str | os.PathLike | None = None, parameters: dict[str, Any] | None = None,
            only: Sequence[str] | None = None, progress: bool = True) -> list[Path]:
    """Execute every numbered notebook in order (or those whose names start with one of `only`);
    each receives only the parameters its parameters cell defines."""
    out_dir = Path(out_dir) if out_dir else outputs_dir()
    chosen = select_notebooks(only)
    parameters = parameters or {}
    own = {nb: notebook_parameters(nb) for nb in chosen}
    known = set().union(*own.values())
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise ValueError(f"no notebook among {[nb.stem for nb in chosen]} has parameter(s) {unknown}; "
                         f"their parameters are {sorted(known - {'OUT_DIR'})}")
    if "OUT_DIR" in parameters:
        raise ValueError("OUT_DIR is set by the runner (out_dir/<notebook>/); pass the output folder as out_dir (--out)")
    done = []
    for nb in chosen:
        print(f"running {nb.name} -> {out_dir / nb.name}", flush=True)
        done.append(run_notebook(nb, out_dir, {k: v for k, v in parameters.items() if k in own[nb]}, progress=progress))
    return done

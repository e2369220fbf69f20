"""Parameter sweeps over a notebook with papermill: every grid point a run, results in one table.

Runs are independent: a grid point whose run folder already holds a finished results.json is
skipped; a failing grid point is reported with its parameters and error while the others complete.
Any concurrent.futures executor can run the grid: local processes by default, a Dask cluster with
`dask_scheduler=ADDRESS` (distributed.Client's executor; the notebook, its inputs and out_dir must lie
on a filesystem every worker sees) or any other executor passed as `executor`.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import traceback
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from ..cache import atomic_path
from ..notebook import check_parameters, execute
from ..results import read_results

DONE = "_sweep_done"


@dataclass
class SweepResult:
    """The collected table and the failed grid points (parameters, error)."""

    table: pd.DataFrame
    failed: list[dict]
    csv: Path


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The Cartesian product of a {name: [values]} grid, as a list of parameter dicts."""
    if not grid:
        return [{}]
    bad = [k for k, v in grid.items() if not isinstance(v, (list, tuple)) or not v]
    if bad:
        raise ValueError(f"grid values must be non-empty lists; fix {bad}")
    names = list(grid)
    return [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]


def run_name(params: Mapping[str, Any]) -> str:
    """A stable folder name for a grid point."""
    text = json.dumps(params, sort_keys=True, default=str)
    short = "_".join(f"{k}-{v}" for k, v in sorted(params.items()))[:60].replace("/", "-").replace(" ", "")
    return f"{short}_{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def _execute(notebook: str, run_dir: str, params: dict, threads: int | None = None) -> dict:
    """Run one grid point (in a worker process); return its status."""
    run_dir_p = Path(run_dir)
    try:
        execute(notebook, run_dir_p / Path(notebook).name, run_dir_p, params, threads=threads)
    except Exception as err:  # papermill wraps the notebook's exception; keep its last line
        message = str(err).strip().splitlines()
        return dict(ok=False, params=params, error=message[-1] if message else repr(err),
                    detail=traceback.format_exc(limit=2))
    (run_dir_p / DONE).write_text(json.dumps(params, sort_keys=True, default=str))
    return dict(ok=True, params=params)


def _flatten(results: Mapping[str, Any]) -> dict[str, Any]:
    """Scalars stay columns; nested values become JSON strings."""
    return {k: v if v is None or isinstance(v, (bool, int, float, str)) else json.dumps(v) for k, v in results.items()}


@contextmanager
def dask_executor(address: str) -> Iterator[Executor]:
    """A concurrent.futures executor on the Dask cluster whose scheduler listens at `address`
    (e.g. tcp://10.0.0.5:8786); the client is closed on exit, the cluster keeps running."""
    from distributed import Client

    try:
        client = Client(address, timeout="20s")
    except OSError as err:
        raise ConnectionError(f"cannot reach the Dask scheduler at {address!r} ({err}); start one with "
                              "`dask scheduler` and its workers with `dask worker ADDRESS`") from None
    try:
        yield client.get_executor(pure=False)      # every grid point runs, even one with the same arguments
    finally:
        client.close()


def kernel_threads(workers: int, cores: int | None = None) -> int | None:
    """Math threads for each of `workers` kernels running at once on this machine's cores (None: one
    kernel keeps the libraries' default). Without a cap every kernel starts one thread per core, so
    `workers` kernels would run workers x cores threads on the cores, and OpenMP threads that wait for
    a busy core spin instead of sleeping."""
    if workers <= 1:
        return None
    return max(1, (cores or os.cpu_count() or 1) // workers)


def run_sweep(notebook: str | os.PathLike, grid: Mapping[str, Sequence[Any]], out_dir: str | os.PathLike,
              workers: int = 1, executor: Executor | None = None, progress: bool = True,
              dask_scheduler: str | None = None) -> SweepResult:
    """Execute `notebook` for every grid point into out_dir/runs/<point>/ and write out_dir/results.csv
    (one row per successful point: a column per parameter and per recorded key). The points run in
    `workers` local processes, each kernel with its share of the cores (kernel_threads), or on
    `executor`, or on the Dask cluster at `dask_scheduler` (give its workers --nthreads 1)."""
    if dask_scheduler is not None:
        if executor is not None:
            raise ValueError("pass either executor or dask_scheduler, not both")
        with dask_executor(dask_scheduler) as on_cluster:
            return run_sweep(notebook, grid, out_dir, executor=on_cluster, progress=progress)
    notebook, out_dir = Path(notebook).resolve(), Path(out_dir).resolve()
    if not notebook.is_file():
        raise FileNotFoundError(f"no notebook at {notebook}")
    check_parameters(notebook, grid, set_by_runner=["OUT_DIR"])   # before any point runs
    points = grid_points(grid)
    runs = {run_name(p): p for p in points}
    todo = {name: p for name, p in runs.items() if not (out_dir / "runs" / name / DONE).exists()}
    failed = []
    if todo:
        own = executor is None
        pool = executor or ProcessPoolExecutor(max_workers=max(1, workers))
        threads = kernel_threads(min(workers, len(todo))) if own else None
        try:
            futures = [pool.submit(_execute, str(notebook), str(out_dir / "runs" / n), p, threads)
                       for n, p in todo.items()]
            for fut in tqdm(as_completed(futures), total=len(futures), desc="sweep", disable=not progress):
                status = fut.result()
                if not status["ok"]:
                    failed.append({**status["params"], "error": status["error"]})
        finally:
            if own:
                pool.shutdown()
    rows = [{**p, **_flatten(read_results(out_dir / "runs" / n))} for n, p in runs.items()
            if (out_dir / "runs" / n / DONE).exists()]
    table = pd.DataFrame(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv = out_dir / "results.csv"
    with atomic_path(csv) as tmp:
        table.to_csv(tmp, index=False)
    if failed:
        pd.DataFrame(failed).to_csv(out_dir / "failed.csv", index=False)
    return SweepResult(table=table, failed=failed, csv=csv)

"""Run the numbered notebooks headless with papermill."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from .paths import outputs_dir, project_root


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


def run_notebook(notebook: str | os.PathLike, out_dir: str | os.PathLike, parameters: dict[str, Any] | None = None,
                 progress: bool = False) -> Path:
    """Execute one notebook into out_dir/<name>.ipynb; its OUT_DIR parameter becomes out_dir/<name>/."""
    import papermill

    notebook, out_dir = Path(notebook), Path(out_dir)
    run_dir = out_dir / notebook.stem
    run_dir.mkdir(parents=True, exist_ok=True)
    params = {"OUT_DIR": str(run_dir.resolve()), **(parameters or {})}
    executed = out_dir / notebook.name
    papermill.execute_notebook(str(notebook), str(executed), parameters=params, cwd=str(notebook.parent),
                               progress_bar=progress, kernel_name="python3")
    return executed


def run_all(out_dir: str | os.PathLike | None = None, parameters: dict[str, Any] | None = None,
            only: Sequence[str] | None = None, progress: bool = True) -> list[Path]:
    """Execute every numbered notebook in order (or those whose names start with one of `only`)."""
    out_dir = Path(out_dir) if out_dir else outputs_dir()
    done = []
    for nb in list_notebooks():
        if only and not any(nb.name.startswith(o) for o in only):
            continue
        print(f"running {nb.name} -> {out_dir / nb.name}", flush=True)
        done.append(run_notebook(nb, out_dir, parameters, progress=progress))
    return done

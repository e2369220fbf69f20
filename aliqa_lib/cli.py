"""Command line: `python -m aliqa_lib prepare|tutorial|sweep|test-released ...`."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from .data.prepare import DATASET_NAMES, prepare
from .data.store import StoreError
from .notebook import run_all


def parser() -> argparse.ArgumentParser:
    """The argument parser of `python -m aliqa_lib`."""
    p = argparse.ArgumentParser(prog="python -m aliqa_lib", description="Label-efficient BIQA by active learning.")
    sub = p.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="prepare a dataset into an HDF5 store")
    prep.add_argument("name", choices=DATASET_NAMES, help="dataset name")
    prep.add_argument("--root", default=None, help="folder of the downloaded dataset (real datasets), or of your photos (folder)")
    prep.add_argument("--out", default=None, help="store file to write (default: data/cache/synthetic_<size>_seed<seed>.h5, "
                                                  "or <name>_<size>.h5 for a real dataset)")
    prep.add_argument("--size", type=int, default=244, help="stored image side in pixels (default 244)")
    prep.add_argument("--seed", type=int, default=0, help="random seed of generated data (default 0)")
    prep.add_argument("--variant", default=None,
                      help="koniq10k: 1024x768 (default) or 512x384 image folder; livec: common (1,162, default) or all (1,169)")
    prep.add_argument("--workers", type=int, default=None, help="decoding processes (default: one per core; 0: none)")
    prep.add_argument("--skip-bad", action="store_true", help="leave out missing or unreadable images and list them")
    prep.add_argument("--smoke", action="store_true", help="small version for quick runs (48 images of a real dataset)")
    prep.add_argument("--force", action="store_true", help="rebuild even if a valid store exists")
    prep.add_argument("--labels", default=None, help="folder: CSV of name,score for the images whose score is known")
    prep.add_argument("--score-range", nargs=2, type=float, default=None, metavar=("LO", "HI"),
                      help="folder: the range of the --labels scores (higher = better), mapped onto [0, 1]")
    tut = sub.add_parser("tutorial", help="run every numbered notebook headless into outputs/")
    tut.add_argument("--out", default=None, help="folder for executed notebooks (default: outputs/)")
    tut.add_argument("--smoke", action="store_true", help="run with SMOKE=True (small and fast)")
    tut.add_argument("--only", nargs="*", default=None, help="notebook number prefixes to run, e.g. 01 05")
    tut.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="notebook parameter (VALUE parsed as JSON when possible)")
    sw = sub.add_parser("sweep", help="run a notebook over a parameter grid and collect results.csv")
    sw.add_argument("notebook", help="notebook to execute")
    sw.add_argument("--grid", required=True, help="JSON file: {parameter: [values, ...]} (the product is run)")
    sw.add_argument("--out", required=True, help="output folder (results.csv, runs/)")
    sw.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    sw.add_argument("--dask-scheduler", default=None, metavar="ADDRESS",
                    help="run the grid on this Dask cluster (e.g. tcp://host:8786) instead of local processes")
    rel = sub.add_parser("test-released", help="the intra/cross-dataset table of one of the authors' released models")
    rel.add_argument("checkpoint", help="koniq_rt05/10/25/80.pt from the authors' repository")
    rel.add_argument("--store", action="append", required=True,
                     help="a prepared store (repeat): KonIQ-10k is tested on the checkpoint's held-out images, others whole")
    rel.add_argument("--ratio", type=int, default=None, help="label share of the checkpoint (default: from its name)")
    rel.add_argument("--device", default="cpu", help="torch device (default cpu)")
    rel.add_argument("--batch-size", type=int, default=32, help="images per batch (default 32)")
    rel.add_argument("--out", default=None, help="CSV to write (default: outputs/test_released/<checkpoint>.csv)")
    from .rating.label_studio import add_parser as add_label_studio

    add_label_studio(sub)
    return p


def _value(text: str) -> Any:
    """A command-line parameter value: JSON when it parses, else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _sweep(args: argparse.Namespace) -> int:
    """Run a sweep from the command line; exit 1 if any grid point failed."""
    from .evaluation.sweep import run_sweep

    try:
        grid = json.loads(open(args.grid, encoding="utf-8").read())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read grid {args.grid}: {err}; expected JSON like {{\"SEED\": [0, 1]}}") from None
    if not isinstance(grid, dict):
        raise ValueError(f"grid {args.grid} must be a JSON object mapping parameter names to lists")
    result = run_sweep(args.notebook, grid, args.out, workers=args.workers, dask_scheduler=args.dask_scheduler)
    print(f"{len(result.table)} runs in {result.csv}")
    for fail in result.failed:
        print(f"FAILED {fail}", file=sys.stderr)
    return 1 if result.failed else 0


def _test_released(args: argparse.Namespace) -> int:
    """Print and write the released model's intra/cross-dataset table."""
    from pathlib import Path

    from . import authors
    from .cache import atomic_path
    from .paths import output_dir

    ratio = args.ratio if args.ratio is not None else authors.released_ratio(args.checkpoint)
    model = authors.load_released_model(args.checkpoint, device=args.device)
    table = authors.released_table(model, args.store, ratio, batch_size=args.batch_size)
    out = Path(args.out) if args.out else output_dir("test_released") / f"{Path(args.checkpoint).stem}.csv"
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False)
    print(table.drop(columns="store").to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"written to {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = parser().parse_args(argv)
    try:
        if args.command == "prepare":
            path = prepare(args.name, root=args.root, out=args.out, size=args.size, seed=args.seed,
                           smoke=args.smoke, force=args.force, workers=args.workers, skip_bad=args.skip_bad,
                           variant=args.variant, labels=args.labels,
                           score_range=tuple(args.score_range) if args.score_range else None)
            print(path)
        elif args.command == "tutorial":
            params = {name: _value(value) for name, value in args.param}
            if args.smoke:
                params["SMOKE"] = True
            run_all(args.out, params, only=args.only)
        elif args.command == "sweep":
            return _sweep(args)
        elif args.command == "test-released":
            return _test_released(args)
        elif args.command == "label-studio":
            from .rating.label_studio import run as run_label_studio

            return run_label_studio(args)
    except (StoreError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0

"""Command line: `python -m aliqa_lib prepare|tutorial ...`."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from .notebooks import run_all
from .prepare import DATASETS, prepare
from .store import StoreError


def parser() -> argparse.ArgumentParser:
    """The argument parser of `python -m aliqa_lib`."""
    p = argparse.ArgumentParser(prog="python -m aliqa_lib", description="Label-efficient BIQA by active learning.")
    sub = p.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="prepare a dataset into an HDF5 store")
    prep.add_argument("name", choices=DATASETS, help="dataset name")
    prep.add_argument("--root", default=None, help="folder of the downloaded dataset (real datasets)")
    prep.add_argument("--out", default=None, help="store file to write (default: data/cache/<name>_<size>_seed<seed>.h5)")
    prep.add_argument("--size", type=int, default=244, help="stored image side in pixels (default 244)")
    prep.add_argument("--seed", type=int, default=0, help="random seed of generated data (default 0)")
    prep.add_argument("--smoke", action="store_true", help="small embedded dataset for quick runs")
    prep.add_argument("--force", action="store_true", help="rebuild even if a valid store exists")
    tut = sub.add_parser("tutorial", help="run every numbered notebook headless into outputs/")
    tut.add_argument("--out", default=None, help="folder for executed notebooks (default: outputs/)")
    tut.add_argument("--smoke", action="store_true", help="run with SMOKE=True (small and fast)")
    tut.add_argument("--only", nargs="*", default=None, help="notebook number prefixes to run, e.g. 01 05")
    tut.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="notebook parameter (VALUE parsed as JSON when possible)")
    return p


def _value(text: str) -> Any:
    """A command-line parameter value: JSON when it parses, else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = parser().parse_args(argv)
    try:
        if args.command == "prepare":
            path = prepare(args.name, root=args.root, out=args.out, size=args.size, seed=args.seed,
                           smoke=args.smoke, force=args.force)
            print(path)
        elif args.command == "tutorial":
            params = {name: _value(value) for name, value in args.param}
            if args.smoke:
                params["SMOKE"] = True
            run_all(args.out, params, only=args.only)
    except (StoreError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0

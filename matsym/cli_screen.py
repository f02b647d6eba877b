"""``matsym screen``: one order-parameter search per pair of a CSV, on Dask, into an ASE database.

::

    matsym screen pairs.csv --db screen.db                        # local cluster, one process per core
    matsym screen pairs.csv --db screen.db --workers 2 --irreps 1e+1o --steps 200
    matsym screen pairs.csv --db postgresql://me:pw@dbhost:5432/screen --scheduler tcp://10.0.0.5:8786
    ase db screen.db status=failed name,error                     # what failed, and why

The engine is :func:`matsym.screen.screen`; this module only parses options (the search options are those of
``matsym find``: :func:`matsym.cli.add_search_options`) and prints. Exit status: 0 every pair done, 1 any pair
failed (the others are done and stored) or a user error (unreadable or malformed pairs file, database or
scheduler unreachable: one line on stderr), 2 usage error, 130 interrupted (finished pairs are stored; a rerun
carries on).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from matsym.errors import InputError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``screen`` subcommand to the ``matsym`` parser's subparsers."""
    from matsym.cli import _positive_int, add_search_options

    screen = subparsers.add_parser(
        "screen",
        help="search many PARENT/TARGET pairs of a CSV on Dask; one row per pair in an ASE database",
        description="Run one order-parameter search per row of PAIRS (CSV with columns name,parent,target and "
        "optional sites,irreps,tie,mask; file paths relative to the CSV's folder) on a Dask cluster, and store "
        "each pair as a row of the ASE database DB (predicted structure, status, space groups, result JSON). "
        "Search options apply to every row; a row's own columns override them. A rerun skips pairs already done "
        "with the same inputs and settings and retries failed ones.",
        epilog="Exit status: 0 every pair done, 1 a pair failed or a user error, 2 usage error, 130 interrupted. "
        "List the rows with 'ase db DB'; e.g. 'ase db DB status=failed name,error'.",
    )
    screen.add_argument("pairs", metavar="PAIRS", help="CSV file of pairs")
    screen.add_argument(
        "--db", required=True, metavar="DB", help="ASE database: a file (screen.db, SQLite) or a postgresql:// URL"
    )
    where = screen.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=_positive_int, metavar="N", help="worker processes of the local cluster (default: cores)"
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="address of a running Dask scheduler (tcp://host:8786) instead of a local cluster",
    )
    screen.add_argument(
        "--threads-per-worker",
        dest="threads_per_worker",
        type=_positive_int,
        default=1,
        metavar="T",
        help="threads of each local worker process (default 1; each search uses --threads torch threads)",
    )
    add_search_options(screen)
    screen.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    screen.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    screen.set_defaults(func=run)
    return screen


def run(args: argparse.Namespace) -> int:
    """Run ``matsym screen``; returns the exit status."""
    from matsym.cli import _print_json, search_settings

    try:
        from matsym.screen import screen
    except ImportError as exc:
        raise InputError(str(exc)) from None
    summary = screen(
        args.pairs,
        args.db,
        settings=search_settings(args),
        workers=args.workers,
        scheduler=args.scheduler,
        threads_per_worker=args.threads_per_worker,
        progress=not args.no_progress,
    )
    if args.json:
        _print_json(summary.as_dict())
    else:
        print(
            f"{summary.total} pairs: {summary.done} done ({summary.skipped} skipped, already done), "
            f"{summary.failed} failed, {summary.not_run} not run; {summary.seconds:.1f} s; database {summary.db}"
        )
        for name, error in summary.failures.items():
            print(f"  failed {name}: {error}")
    if summary.interrupted:
        print(
            f"matsym: interrupted: {summary.done + summary.failed} pairs stored, {summary.not_run} not run; "
            "run the same command again to carry on",
            file=sys.stderr,
        )
    return summary.exit_status

"""Screen several parent/target pairs with one jobflow Flow, run locally.

Builds perovskite pairs with :mod:`matsym.structures` (Glazer tilt patterns a+b-b- (Pnma), a0a0c- (I4/mcm),
a0a0c+ (P4/mbm), a polar [001] off-centring (P4mm), and an undistorted control), makes one
:class:`matsym.workflows.OrderParameterMaker` job per pair plus a summary job, runs the flow with
``jobflow.run_locally`` and an in-memory store, and prints the summary table. The full run takes under a
minute on one core; ``--quick`` runs two small pairs with short searches (a few seconds; used by the tests).

Usage::

    python workflows/screening_flow.py                 # all pairs
    python workflows/screening_flow.py --quick         # two small pairs, short searches
    python workflows/screening_flow.py --json out.json # also write the summary rows as JSON (no overwrite
                                                       # without --force)

The same ``flow`` runs on a cluster through jobflow-remote: see ``workflows/README.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

__all__ = ["QUICK_SEARCH", "build_flow", "main", "pairs"]

#: Search settings of ``--quick``: short phases (the results are rough; enough to exercise the flow).
QUICK_SEARCH: dict[str, Any] = {"fit_steps": 60, "max_steps": 60, "search_steps": 40, "polish_steps": 30}


def pairs(quick: bool = False) -> dict[str, tuple[Any, Any]]:
    """The (parent, target) pairs of the screening, keyed by a label that names the expected space group."""
    from matsym.structures import cubic_perovskite, polar_perovskite, tilted_perovskite

    out = {
        "polar [001] (P4mm)": polar_perovskite((0, 0, 1), 0.1),
        "undistorted (Pm-3m)": (cubic_perovskite(), cubic_perovskite()),
    }
    if quick:
        return out
    return {
        "a+b-b- (Pnma)": tilted_perovskite("a+b-b-", 8.0),
        "a0a0c- (I4/mcm)": tilted_perovskite("a0a0c-", 8.0),
        "a0a0c+ (P4/mbm)": tilted_perovskite("a0a0c+", 8.0),
        **out,
    }


def build_flow(quick: bool = False):
    """The screening Flow: B sites (Ti) may carry an L=1 order parameter of either parity."""
    from matsym.workflows import OrderParameterMaker, screening_flow

    maker = OrderParameterMaker(sites="Ti", irreps="1e+1o", search_kwargs=QUICK_SEARCH if quick else {})
    return screening_flow(pairs(quick), maker)


def main(argv: list[str] | None = None) -> int:
    """Run the screening and print its table; 0 if every search finished, 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two small pairs, short searches")
    parser.add_argument("--json", metavar="PATH", help="write the summary rows to PATH (JSON)")
    parser.add_argument("--force", action="store_true", help="overwrite the --json file if it exists")
    parser.add_argument("--log", action="store_true", help="show jobflow's log")
    args = parser.parse_args(argv)

    from jobflow import JobStore, run_locally
    from maggma.stores import MemoryStore

    from matsym.errors import MatsymError
    from matsym.io import atomic_write_text

    if args.json and Path(args.json).exists() and not args.force:  # fail before the searches, not after
        print(f"error: {args.json} exists; use --force to overwrite it", file=sys.stderr)
        return 1
    try:
        flow = build_flow(args.quick)
    except MatsymError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    store = JobStore(MemoryStore())
    with warnings.catch_warnings():
        # jobflow 0.4.0 calls monty.os.cd, which recent monty marks deprecated; nothing for a user to act on
        warnings.filterwarnings("ignore", message="cd is deprecated", category=FutureWarning)
        run_locally(flow, store=store, log=args.log, ensure_success=False)
    summary = store.get_output(flow.jobs[-1].uuid)
    print(summary["table"])
    if args.json:
        try:
            atomic_write_text(args.json, json.dumps(summary["rows"], indent=1), force=args.force)
        except MatsymError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {args.json}")
    if summary["num_failed"]:
        print(
            f"{summary['num_failed']} of {summary['num_pairs']} searches failed (run with --log)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Throughput of ``matsym screen``: pairs per minute with 1 and 2 Dask worker processes, and the speed-up.

The same 24 pairs (:func:`matsym.screening_set.perovskite_pairs`: 13 Glazer tilt systems, 6 polar off-centrings,
5 Jahn-Teller orders; 5 to 40 atoms) are written as CIF files with a pairs CSV, then screened with default search
settings into a fresh SQLite database by a :class:`distributed.LocalCluster` of 1, then 2 worker processes (one
thread each, as ``matsym screen --workers N`` starts). The cluster is started and its workers have imported the
search stack before the clock starts, so the figure is the steady throughput; the start-up is reported apart.
Every run must store 24 ``done`` rows whose predicted space group (spglib, symprec 1e-3) is the target's.

A search is one process on one core (1 torch thread), so on an otherwise idle 2-core machine 2 workers should
give close to 2x; the issue asks for at least 1.6x. On a shared machine the ratio is bounded by the cores the
other processes leave free: the load average is recorded in the section header.

Run: ``python benchmarks/bench_screen.py [--quick] [--repeats N] [--no-record]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _common import Report, add_common_args, parse_common

TARGET_SPEEDUP = 1.6
QUICK = {"fit_steps": 40, "max_steps": 40, "search_steps": 20, "polish_steps": 20}
QUICK_PAIRS = ("polar 001", "polar 111", "JT Q2+", "tilt a0a0c-")


def _warm() -> bool:
    import matsym.search  # the import (torch, e3nn) is start-up, not throughput
    import matsym.symmetry  # noqa: F401

    return True


def run_once(csv: Path, db: Path, workers: int, settings: dict) -> dict:
    """Screen the pairs with a fresh local cluster of ``workers`` processes; the wall times and the rows' state."""
    import ase.db
    import distributed

    from matsym.screen import screen

    t0 = time.perf_counter()
    with (
        distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.run(_warm)
        t1 = time.perf_counter()
        summary = screen(csv, db, settings=settings, client=client, progress=False)
        t2 = time.perf_counter()
    with ase.db.connect(str(db)) as con:
        rows = list(con.select())
    right = sum(r.status == "done" and r.get("space_group") == r.get("target_space_group") for r in rows)
    return {
        "workers": workers,
        "startup_s": t1 - t0,
        "screen_s": t2 - t1,
        "done": summary.done,
        "failed": summary.failed,
        "rows": len(rows),
        "right_group": right,
        "search_s": sum(float(r.get("seconds", 0.0)) for r in rows),
    }


def main(argv=None) -> int:
    parser = add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--repeats", type=int, default=1, help="runs per worker count (alternating; default 1)")
    args = parse_common(parser, argv)
    from matsym.screening_set import perovskite_pairs, write_pairs

    pairs = perovskite_pairs()
    if args.quick:
        pairs = {k: pairs[k] for k in QUICK_PAIRS}
    settings = QUICK if args.quick else {}
    report = Report("bench_screen", args.quick)
    runs: dict[int, list[dict]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="bench-screen-") as tmp:
        csv = write_pairs(Path(tmp) / "pairs", pairs)
        for k in range(args.repeats):
            for workers in (1, 2):
                run = run_once(csv, Path(tmp) / f"w{workers}-{k}.db", workers, settings)
                runs[workers].append(run)
                print(
                    f"{workers} worker(s), run {k + 1}: {run['screen_s']:.1f} s for {len(pairs)} pairs "
                    f"(start-up {run['startup_s']:.1f} s), {run['done']} done, {run['right_group']} right group",
                    flush=True,
                )
    n = len(pairs)
    median = {w: statistics.median(r["screen_s"] for r in rs) for w, rs in runs.items()}
    rows = []
    for w, rs in runs.items():
        rows.append(
            [
                w,
                f"{median[w]:.1f}",
                f"{60 * n / median[w]:.1f}",
                f"{statistics.median(r['startup_s'] for r in rs):.1f}",
                f"{statistics.median(r['search_s'] for r in rs):.1f}",
                f"{statistics.median(r['search_s'] / r['screen_s'] for r in rs):.2f}",
                f"{min(r['done'] for r in rs)}/{n}",
                f"{min(r['right_group'] for r in rs)}/{n}",
                len(rs),
            ]
        )
    report.table(
        f"`matsym screen` on {n} pairs ({'quick settings' if args.quick else 'default settings'}), LocalCluster "
        "of worker processes, 1 thread each, SQLite (median of runs)",
        ["workers", "screen s", "pairs/min", "start-up s", "sum of search s", "busy", "done", "right group", "runs"],
        rows,
    )
    speedup = median[1] / median[2]
    met = speedup >= TARGET_SPEEDUP
    report.note(
        f"Speed-up of 2 workers over 1: {speedup:.2f}x (target >= {TARGET_SPEEDUP}x: {'met' if met else 'NOT met'}). "
        "'screen s' runs from submitting the first pair to storing the last, on a started cluster whose workers "
        "have imported the search stack; 'start-up s' is that start; 'sum of search s' adds the seconds each "
        "search took on its worker (work, not wall); 'busy' is that sum over 'screen s': how many searches ran "
        "at once on average (near the worker count when the engine keeps every worker fed, whatever the load). "
        "'right group': rows whose predicted space group equals the "
        "target's at symprec 1e-3."
    )
    report.data.update(runs={str(w): rs for w, rs in runs.items()}, speedup=speedup, pairs=n)
    return report.finish(args)


if __name__ == "__main__":
    raise SystemExit(main())

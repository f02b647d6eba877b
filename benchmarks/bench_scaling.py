"""Scaling: time per search step and peak memory on 1x ... 64x supercells of the 20-atom Pnma cell.

Each size runs in a fresh Python process (so memory peaks do not accumulate): it builds
``OrderParameterSearch(parent * k, target * k, sites="Ti", irreps="0e+0o+1e+1o+2e+2o")`` with the default
settings, times joint-search steps (forward + backward + Adam + proximal step, as in ``bench_step.py``) and
reports its peak resident memory (``getrusage`` ``ru_maxrss``). The exponent is the slope of a least-squares
line through log(step time) against log(atoms). The largest cell also runs a whole short search (``run()``
with small step budgets), whose peak memory is reported.

Run: ``python benchmarks/bench_scaling.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time

from _common import (
    Report,
    add_common_args,
    fmt_ms,
    fmt_ratio,
    parse_common,
    python_executable,
    subprocess_env,
)

# multiples of the 20-atom cell (a, b, c) -> 1x, 2x, 4x, ..., 64x
SUPERCELLS = ((1, 1, 1), (2, 1, 1), (2, 2, 1), (2, 2, 2), (4, 2, 2), (4, 4, 2), (4, 4, 4))
QUICK_SUPERCELLS = ((1, 1, 1), (2, 1, 1), (2, 2, 1))
IRREPS = "0e+0o+1e+1o+2e+2o"
SHORT_SEARCH = {"fit_steps": 10, "max_steps": 10, "polish_steps": 10}  # step budgets of each phase
QUICK_SHORT_SEARCH = {"fit_steps": 5, "max_steps": 5, "polish_steps": 5}
WORKER_TIMEOUT = 900  # s per size


def _peak_rss_mib() -> float:
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kb / 1024.0 if sys.platform != "darwin" else kb / 2**20


def _current_rss_mib() -> float | None:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        return None


def worker(cell: tuple[int, int, int], steps: int, budget_s: float, short: dict | None) -> dict:
    """Measure one size in this process and return the figures."""
    t0 = time.perf_counter()
    import torch  # noqa: F401 - import cost belongs to the baseline memory
    from bench_step import make_step, set_threads, time_steps

    from matsym.search import OrderParameterSearch
    from matsym.structures import tilted_perovskite

    import_s = time.perf_counter() - t0
    rss_imports = _peak_rss_mib()
    parent, target = tilted_perovskite("a+b-b-", 8.0)
    parent, target = parent * cell, target * cell
    out: dict = {
        "cell": list(cell),
        "atoms": len(parent),
        "import_s": import_s,
        "rss_after_imports_mib": rss_imports,
    }
    if short is not None:
        t0 = time.perf_counter()
        search = OrderParameterSearch(parent, target, sites="Ti", irreps=IRREPS, **short)
        out["search_build_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = search.run()
        out["search_run_s"] = time.perf_counter() - t0
        out["search_steps"] = int(result.metrics.get("steps", len(result.loss_history)))
        out["search_settings"] = dict(short)
        out["search_peak_rss_mib"] = _peak_rss_mib()
        del result
    else:
        t0 = time.perf_counter()
        search = OrderParameterSearch(parent, target, sites="Ti", irreps=IRREPS)
        out["build_s"] = time.perf_counter() - t0
    out["threads"] = set_threads(search)
    out["edges"] = int(search.problem.graph.num_edges)
    out["num_parameters"] = int(search.network.num_parameters)
    out["dtype"] = str(search.dtype).replace("torch.", "")
    step = make_step(search)
    times, _ = time_steps(step, warmup=2, repeats=steps, budget_s=budget_s)
    out["step_times_s"] = times
    out["step_s"] = statistics.median(times)
    out["peak_rss_mib"] = _peak_rss_mib()
    out["rss_now_mib"] = _current_rss_mib()
    return out


def run_worker(cell, steps: int, budget_s: float, short: dict | None) -> dict:
    cmd = [
        python_executable(),
        __file__,
        "--worker",
        ",".join(str(c) for c in cell),
        "--steps",
        str(steps),
        "--budget",
        str(budget_s),
    ]
    if short is not None:
        cmd += ["--short-search", json.dumps(short)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=WORKER_TIMEOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"worker for supercell {cell} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fit_exponent(atoms, times) -> float:
    """Slope of the least-squares line through (log atoms, log time)."""
    import numpy as np

    return float(np.polyfit(np.log(np.asarray(atoms, float)), np.log(np.asarray(times, float)), 1)[0])


def main(argv=None) -> int:
    parser = add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--steps", type=int, default=None, help="most timed steps per size (default 20; quick 5)")
    parser.add_argument("--budget", type=float, default=None, help="seconds of timed steps per size")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--short-search", default=None, help=argparse.SUPPRESS)
    args = parse_common(parser, argv)
    steps = args.steps or (5 if args.quick else 20)
    budget = args.budget or (1.0 if args.quick else 4.0)

    if args.worker:
        cell = tuple(int(x) for x in args.worker.split(","))
        short = json.loads(args.short_search) if args.short_search else None
        print(json.dumps(worker(cell, steps, budget, short)))
        return 0

    report = Report("bench_scaling", args.quick)
    cells = QUICK_SUPERCELLS if args.quick else SUPERCELLS
    short = QUICK_SHORT_SEARCH if args.quick else SHORT_SEARCH
    results = []
    for cell in cells:
        r = run_worker(cell, steps, budget, short if cell == cells[-1] else None)
        results.append(r)
        print(
            f"  {r['atoms']:5d} atoms: {fmt_ms(r['step_s'])} ms/step, peak {r['peak_rss_mib']:.0f} MiB, "
            f"build {r.get('build_s', r.get('search_build_s', 0.0)):.1f} s",
            flush=True,
        )

    base = results[0]
    rows = []
    for k, r in enumerate(results):
        mult = r["atoms"] // base["atoms"]
        prev = results[k - 1] if k else None
        rows.append(
            [
                f"{mult}x",
                "x".join(str(c) for c in r["cell"]),
                f"{r['atoms']:,}",
                f"{r['edges']:,}",
                fmt_ms(r["step_s"]),
                len(r["step_times_s"]),
                fmt_ratio(r["step_s"] / base["step_s"]),
                ""
                if prev is None
                else f"{math.log(r['step_s'] / prev['step_s']) / math.log(r['atoms'] / prev['atoms']):.2f}",
                f"{r.get('build_s', r.get('search_build_s', float('nan'))):.1f}",
                f"{r['peak_rss_mib']:,.0f}",
            ]
        )
    report.table(
        f"Time per search step and peak memory, supercells of the 20-atom Pnma cell ({base['dtype']}, "
        f"{base['threads']} thread(s), {base['num_parameters']:,} parameters; one fresh process per size)",
        [
            "size",
            "cell",
            "atoms",
            "edges",
            "ms/step",
            "steps",
            "/ 1x",
            "local exp.",
            "build s",
            "peak RSS MiB",
        ],
        rows,
    )
    atoms = [r["atoms"] for r in results]
    times = [r["step_s"] for r in results]
    exponent = fit_exponent(atoms, times)
    tail = [(a, t) for a, t in zip(atoms, times, strict=True) if a >= 8 * base["atoms"]]
    tail_exp = fit_exponent(*zip(*tail, strict=True)) if len(tail) >= 2 else None
    largest = results[-1]
    gib = largest["search_peak_rss_mib"] / 1024
    report.note(
        f"Fitted exponent (least squares on log-log) from {atoms[0]} to {atoms[-1]} atoms: **{exponent:.3f}**"
        + ("" if tail_exp is None else f"; from 8x up: {tail_exp:.3f}")
        + f'. "local exp." is the slope between neighbouring sizes; "build s" is the construction of '
        f"OrderParameterSearch (registration, graph, network). Peak RSS after imports alone: "
        f"{base['rss_after_imports_mib']:,.0f} MiB."
    )
    report.note(
        f"Whole short search on the {atoms[-1]:,}-atom cell ({largest['cell']}; "
        f"{', '.join(f'{k}={v}' for k, v in largest['search_settings'].items())}, "
        f"{largest['search_steps']} steps "
        f"taken): build {largest['search_build_s']:.1f} s, run {largest['search_run_s']:.1f} s, "
        f"peak RSS {largest['search_peak_rss_mib']:,.0f} MiB ({gib:.2f} GiB)."
    )
    full = not args.quick
    report.check(
        "per-step exponent <= 1.1 from 1x to 64x",
        f"{exponent:.3f} ({atoms[0]}-{atoms[-1]} atoms)",
        exponent <= 1.1 if full else None,
    )
    report.check(
        "search on the 64x supercell peaks below 4 GiB",
        f"{gib:.2f} GiB ({atoms[-1]} atoms)",
        gib < 4.0 if full else None,
    )
    report.data.update({"results": results, "exponent": exponent, "exponent_from_8x": tail_exp})
    return report.finish(args)


if __name__ == "__main__":
    raise SystemExit(main())

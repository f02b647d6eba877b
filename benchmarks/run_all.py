"""Run every matsym benchmark, one fresh process each; exit nonzero if any of them fails.

Each script prints its tables and appends its own section to ``benchmarks/RESULTS.md``; this runner then
appends a summary section with the wall time of each script and of the whole suite (the issue asks for under
10 minutes). ``make bench`` runs ``python benchmarks/run_all.py`` with ``OMP_NUM_THREADS=1``.

Run: ``python benchmarks/run_all.py [--quick] [--only graph,step] [--no-record]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from _common import BENCH_DIR, Report, add_common_args, parse_common, python_executable, subprocess_env

SCRIPTS = {
    "graph": "bench_graph.py",
    "step": "bench_step.py",
    "end_to_end": "bench_end_to_end.py",
    "startup": "bench_startup.py",
    "scaling": "bench_scaling.py",
    "threads": "bench_threads.py",
    "cuda": "bench_cuda.py",  # measures only where a CUDA device exists
}
SUITE_LIMIT_S = 600.0  # issue 5: `make bench` under 10 minutes
SCRIPT_TIMEOUT_S = 1200


def main(argv=None) -> int:
    parser = add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(SCRIPTS)}")
    args = parse_common(parser, argv)
    names = list(SCRIPTS) if args.only is None else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCRIPTS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(SCRIPTS)}")

    report = Report("run_all", args.quick)
    passthrough = ["--quick"] if args.quick else []
    passthrough += ["--record" if args.record else "--no-record", "--results", args.results]
    if args.strict:
        passthrough.append("--strict")

    rows, failed = [], []
    t_suite = time.perf_counter()
    for name in names:
        script = BENCH_DIR / SCRIPTS[name]
        print(f"\n===== {SCRIPTS[name]}{' --quick' if args.quick else ''} =====", flush=True)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                [python_executable(), str(script), *passthrough],
                env=subprocess_env(),
                timeout=SCRIPT_TIMEOUT_S,
                check=False,
            )
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
        wall = time.perf_counter() - t0
        if code == 0:
            status = "ok"
        elif code == 3 and args.strict:
            status = "acceptance not met (--strict)"
        else:
            status = f"FAILED ({code})"
        if code != 0:
            failed.append(name)
        rows.append([SCRIPTS[name], f"{wall:.1f}", status])
    total = time.perf_counter() - t_suite

    rows.append(["**total**", f"{total:.1f}", "ok" if not failed else f"{len(failed)} failed"])
    report.table("Benchmark suite (wall s per script, each in a fresh process)", ["script", "wall s", "status"], rows)
    if set(names) == set(SCRIPTS):
        report.check(
            "make bench runs all benchmarks in under 10 minutes",
            f"{total:.0f} s ({total / 60:.1f} min)",
            total < SUITE_LIMIT_S if not args.quick else None,
        )
    report.data.update({"total_s": total, "failed": failed})
    status = report.finish(args)
    if failed:
        print(f"run_all: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())

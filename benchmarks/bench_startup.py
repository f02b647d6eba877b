"""Start-up: ``matsym find`` Pm-3m -> a+b-b- on the 40-atom 2x2x2 cell, wall and CPU time, start-up included.

The case of issue 14: parent and target from ``matsym.structures.tilted_perovskite("a+b-b-", 8.0,
supercell=2 * identity)`` written to CIF, ``matsym find parent.cif target.cif --sites Ti --irreps
0e+0o+1e+1o+2e+2o``, each run a fresh process (``OMP_NUM_THREADS=1``), medians of 5 runs (3 with ``--quick``).
Wall time is what a user waits; CPU time (user + system of the child, from ``os.wait4``) moves less when other
work shares the machine. Also measured, in fresh processes: the wall time of ``import matsym.search`` alone.

Run: ``python benchmarks/bench_startup.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _common import Report, add_common_args, parse_common, python_executable, subprocess_env

IRREPS = "0e+0o+1e+1o+2e+2o"
LIMIT_S = 3.5  # issue 14 acceptance (goal 3 s)
RUN_TIMEOUT = 600


def write_inputs(folder: Path) -> tuple[Path, Path]:
    import numpy as np

    from matsym.io import write_structure
    from matsym.structures import tilted_perovskite

    parent, target = tilted_perovskite("a+b-b-", 8.0, supercell=2 * np.eye(3, dtype=int))
    paths = folder / "parent40.cif", folder / "target40.cif"
    write_structure(parent, paths[0])
    write_structure(target, paths[1])
    return paths


def run_child(cmd: list[str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of ``cmd`` run to completion, and its stdout (CPU from ``os.wait4``)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=subprocess_env())
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed with exit {proc.returncode}:\n{stderr[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, stdout


def main(argv=None) -> int:
    parser = add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--runs", type=int, default=None, help="runs of matsym find (default 5; quick 3)")
    args = parse_common(parser, argv)
    report = Report("bench_startup", args.quick)
    runs = args.runs or (3 if args.quick else 5)
    py = python_executable()
    with tempfile.TemporaryDirectory() as tmp:
        parent, target = write_inputs(Path(tmp))
        imports = [run_child([py, "-c", "import matsym.search"])[:2] for _ in range(runs)]
        finds, groups, steps = [], set(), set()
        for k in range(runs):
            out = Path(tmp) / f"run{k}"
            cmd = [py, "-m", "matsym", "find", str(parent), str(target), "--sites", "Ti", "--irreps", IRREPS]
            wall, cpu, stdout = run_child([*cmd, "--out", str(out), "--no-progress", "--json"])
            result = json.loads(stdout)
            groups.add(result["space_groups"]["0.001"][1])
            steps.add(int(result["metrics"]["steps"]))
            finds.append((wall, cpu))
            print(f"  run {k + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
    rows = []
    for name, values in (("matsym find (40 atoms)", finds), ("import matsym.search", imports)):
        walls, cpus = [v[0] for v in values], [v[1] for v in values]
        rows.append(
            [
                name,
                f"{statistics.median(walls):.2f}",
                f"{min(walls):.2f}-{max(walls):.2f}",
                f"{statistics.median(cpus):.2f}",
                f"{min(cpus):.2f}-{max(cpus):.2f}",
                len(values),
            ]
        )
    report.table(
        "Start-up included: Pm-3m -> a+b-b- on the 40-atom cell (fresh processes, 1 thread)",
        ["what", "wall s (median)", "wall range", "CPU s (median)", "CPU range", "runs"],
        rows,
    )
    report.note(
        f"Space group of predicted.cif at symprec 1e-3: {', '.join(sorted(groups))}; steps {sorted(steps)}. "
        "CPU = user + system time of the child process (os.wait4)."
    )
    median_wall = statistics.median(v[0] for v in finds)
    report.check(
        f"matsym find, 40-atom Pm-3m -> a+b-b-, <= {LIMIT_S:g} s wall, start-up included (issue 14)",
        f"{median_wall:.2f} s (Pnma: {groups == {'Pnma'}})",
        (median_wall <= LIMIT_S and groups == {"Pnma"}) if not args.quick else None,
    )
    report.data.update({"find_s": finds, "import_s": imports, "space_groups": sorted(groups)})
    return report.finish(args)


if __name__ == "__main__":
    raise SystemExit(main())

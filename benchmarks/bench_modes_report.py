"""The symmetry-mode report of a search result (``matsym.modes.result_modes``): wall time in a fresh process.

``matsym find`` ends by decomposing two fields of its result (the learned order parameter and the decoded
displacements) into the parent's symmetry modes (issue 14: that report was 0.24-0.33 s of the ~4 s 40-atom run).
This script runs ``matsym find`` Pm-3m -> a+b-b- on the 40-atom cell once (the inputs of bench_startup.py), then
times ``result_modes`` on the saved ``result.json`` in fresh processes, as ``find`` meets it: "cold" is the first
call in the process (spgrep's irreps, the parent's group and the label tables built, imports included), "warm"
a second call on the same result. With ``--baseline DIR`` (a checkout of another commit, e.g. ``git worktree add
/tmp/base e0ba757``) the runs alternate between that code and this one, so both see the same machine load, and
the two reports are compared (labels, subgroups, patterns equal; numbers to 1e-10). ``--in-find`` also times
``attach_modes`` inside whole ``matsym find`` runs (the search's own result: the 20-site search cell).

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_modes_report.py [--runs 7] [--baseline DIR] [--result PATH]
[--in-find]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from _common import REPO_ROOT, Report, add_common_args, parse_common, python_executable
from bench_startup import IRREPS, run_child, write_inputs

LIMIT_S = 0.1  # issue 14 start-up work: the mode report well under 0.1 s of a find run

_CHILD = """
import json, sys, time
t0 = time.perf_counter()
from matsym.modes import result_modes
from matsym.result import OrderParameterResult
result = OrderParameterResult.from_json(sys.argv[1])
t1 = time.perf_counter()
report = result_modes(result)
t2 = time.perf_counter()
result_modes(result)
t3 = time.perf_counter()
import matsym
print(json.dumps({"cold": t2 - t1, "warm": t3 - t2, "load": t1 - t0, "file": matsym.__file__, "report": report}))
"""

_IN_FIND = """
import json, sys, time
import matsym.modes
inner = matsym.modes.attach_modes
spent = []

def timed(result):  # search.py imports attach_modes from matsym.modes when the search ends
    t = time.perf_counter()
    out = inner(result)
    spent.append(time.perf_counter() - t)
    return out

matsym.modes.attach_modes = timed
from matsym.cli import main
with open(sys.argv[1], "w") as fh:
    sys.stdout = fh
    status = main(sys.argv[2:])
sys.stdout = sys.__stdout__
print(json.dumps({"status": status, "attach_modes": spent, "file": matsym.__file__}))
"""


def _differences(a, b, path: str = "") -> list[str]:
    """Where two reports differ: any key, label or count; floats beyond 1e-10 (relative above 1)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(set(a) ^ set(b))}"]
        return [d for k in a for d in _differences(a[k], b[k], f"{path}/{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} entries"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float | int):
        return [] if abs(a - b) <= 1e-10 * max(1.0, abs(a)) else [f"{path}: {a!r} vs {b!r}"]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def main(argv=None) -> int:
    parser = add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--runs", type=int, default=None, help="fresh processes per code (default 7; quick 3)")
    parser.add_argument("--baseline", default=None, metavar="DIR", help="checkout of other code, timed alternately")
    parser.add_argument("--result", default=None, metavar="PATH", help="a saved result.json (default: run find)")
    parser.add_argument(
        "--in-find", action="store_true", help="also time attach_modes inside `matsym find` runs (about 4 s each)"
    )
    args = parse_common(parser, argv)
    report = Report("bench_modes_report", args.quick)
    runs = args.runs or (3 if args.quick else 7)
    py = python_executable()
    codes = {"this tree": REPO_ROOT}
    if args.baseline:
        codes = {"baseline": Path(args.baseline).resolve(), **codes}
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(args.result) if args.result else None
        parent, target = write_inputs(Path(tmp))
        if result is None:
            cmd = [py, "-m", "matsym", "find", str(parent), str(target), "--sites", "Ti", "--irreps", IRREPS]
            run_child([*cmd, "--out", str(Path(tmp) / "out"), "--no-progress", "--json"])
            result = Path(tmp) / "out" / "result.json"
        times: dict[str, list[dict]] = {name: [] for name in codes}
        for k in range(runs):
            for name, root in codes.items():
                # the code under test first on the path (run_child's environment puts this tree next)
                child = f"import sys; sys.path.insert(0, {str(root)!r})\n" + _CHILD
                _, _, stdout = run_child([py, "-c", child, str(result)])
                times[name].append(json.loads(stdout))
                t = times[name][-1]
                print(f"  run {k + 1} {name}: cold {t['cold'] * 1e3:.1f} ms, warm {t['warm'] * 1e3:.1f} ms", flush=True)
        in_find: dict[str, list[float]] = {name: [] for name in codes}
        for k in range(runs if args.in_find else 0):
            for name, root in codes.items():
                child = f"import sys; sys.path.insert(0, {str(root)!r})\n" + _IN_FIND
                find = ["find", str(parent), str(target), "--sites", "Ti", "--irreps", IRREPS, "--force"]
                find += ["--out", str(Path(tmp) / f"find_{k}"), "--no-progress", "--json"]
                _, _, stdout = run_child([py, "-c", child, str(Path(tmp) / "find.json"), *find])
                got = json.loads(stdout)
                if got["status"] != 0 or len(got["attach_modes"]) != 1:
                    raise RuntimeError(f"matsym find ({name}): exit {got['status']}, modes {got['attach_modes']}")
                in_find[name].append(got["attach_modes"][0])
                print(f"  find {k + 1} {name}: attach_modes {in_find[name][-1] * 1e3:.1f} ms", flush=True)
    rows = []
    for name, values in times.items():
        cold, warm = [v["cold"] for v in values], [v["warm"] for v in values]
        rows.append(
            [
                name,
                f"{statistics.median(cold) * 1e3:.1f}",
                f"{min(cold) * 1e3:.1f}-{max(cold) * 1e3:.1f}",
                f"{statistics.median(warm) * 1e3:.1f}",
                len(values),
            ]
        )
    report.table(
        "result_modes on the 40-atom a+b-b- result (fresh processes, 1 thread; runs alternate between codes)",
        ["code", "cold ms (median)", "cold range", "warm ms (median)", "runs"],
        rows,
    )
    if args.in_find:
        report.table(
            "attach_modes inside `matsym find` Pm-3m -> a+b-b-, 40 atoms (fresh processes, runs alternate)",
            ["code", "ms (median)", "range", "runs"],
            [
                [name, f"{statistics.median(v) * 1e3:.1f}", f"{min(v) * 1e3:.1f}-{max(v) * 1e3:.1f}", len(v)]
                for name, v in in_find.items()
            ],
        )
        report.data["in_find"] = in_find
    ours = times["this tree"][0]["report"]
    labels = [m["irrep"] for m in (ours[1] or {}).get("modes", [])]
    report.note(f"Displacement modes reported: {', '.join(labels) or 'none'}.")
    report.note("Code timed: " + "; ".join(f"{name}: {vs[0]['file']}" for name, vs in times.items()) + ".")
    if args.baseline:
        diff = _differences(times["baseline"][0]["report"], ours)
        base = statistics.median(v["cold"] for v in times["baseline"])
        new = statistics.median(v["cold"] for v in times["this tree"])
        report.note(
            f"Cold ratio baseline / this tree: {base / new:.2f}. Reports identical (numbers to 1e-10): "
            f"{'yes' if not diff else 'NO: ' + '; '.join(diff[:5])}."
        )
        report.data["differences"] = diff
    median_cold = statistics.median(v["cold"] for v in times["this tree"])
    report.check(
        f"mode report of a 40-atom find result, cold, <= {LIMIT_S * 1e3:.0f} ms (issue 14)",
        f"{median_cold * 1e3:.1f} ms",
        median_cold <= LIMIT_S if not args.quick else None,
    )
    report.data.update({name: [{k: v[k] for k in ("cold", "warm", "load")} for v in vs] for name, vs in times.items()})
    return report.finish(args)


if __name__ == "__main__":
    raise SystemExit(main())

"""Big cells: ``matsym find`` and ``matsym check`` on 1,280-10,240-atom inputs, as a user runs them.

Cases (structures from :mod:`matsym.structures`, written to CIF, each command a fresh process):
- ``pnma-444``: the 4 x 4 x 4 supercell of the 20-atom a+b-b- cell (8 degrees), parent (cubic, same cell) and
  target, 1,280 atoms each; default settings (every site carries an order parameter). Expected: Pnma.
- ``p4mm-10``: a 10 x 10 x 10 perovskite with every Ti moved 0.05 Å along z (5,000 atoms) against the 5-atom
  parent. Expected: P4mm.
- ``antiphase-16``: an antiphase domain pair: the 16 x 2 x 2 supercell of the 20-atom a+b-b- cell with every
  displacement reversed in the half with first index >= 8 (1,280 atoms), parent (cubic) on the same cell, every
  site with an order parameter. Expected: the target's own space group (spglib on the target file).
- ``antiphase-32`` (``--large``): the same from a 32 x 4 x 4 supercell (10,240 atoms).
- ``check`` rows: ``matsym check`` on the P4mm and antiphase-16 pairs.

Each row gives the wall time of the command (start-up included), its CPU time (user + system; on a shared,
loaded machine the figure that compares across runs) and peak resident memory (both from ``os.wait4``),
the space group of ``predicted.cif`` (matsym.symmetry, symprec 1e-3) against the target's, and the search cell
the result reports (``registration.reduction``). ``--no-reduce`` adds rows that search the user's cell as given,
to show what the smallest-repeating-cell reduction saves.

Run: ``python benchmarks/bench_bigcells.py [--large] [--no-reduce] [--repeats N] [--cases a,b]``.
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

from _common import python_executable, subprocess_env

LIMITS = {"pnma-444": 15.0, "p4mm-10": 60.0, "antiphase-16": 30.0, "antiphase-32": 600.0}  # s, issue 14


def antiphase_pair(repeat: tuple[int, int, int]):
    """Parent and antiphase target on ``repeat`` x the 20-atom a+b-b- cell.

    Built by :func:`matsym.structures.antiphase_perovskite`.
    """
    from matsym.structures import antiphase_perovskite

    return antiphase_perovskite(repeat)


def write_cases(folder: Path, names: list[str]) -> dict[str, tuple[Path, Path]]:
    from matsym.io import write_structure
    from matsym.structures import cubic_perovskite, polar_perovskite, tilted_perovskite

    pairs = {}
    for name in names:
        if name == "pnma-444":
            p, t = tilted_perovskite("a+b-b-", 8.0)
            pair = p.make_supercell((4, 4, 4), in_place=False), t.make_supercell((4, 4, 4), in_place=False)
        elif name == "p4mm-10":
            pair = cubic_perovskite(), polar_perovskite(amplitude=0.05)[1].make_supercell((10, 10, 10), in_place=False)
        elif name == "antiphase-16":
            pair = antiphase_pair((16, 2, 2))
        elif name == "antiphase-32":
            pair = antiphase_pair((32, 4, 4))
        else:
            raise SystemExit(f"unknown case {name!r}")
        paths = folder / f"{name}-parent.cif", folder / f"{name}-target.cif"
        for s, path in zip(pair, paths, strict=True):
            write_structure(s, path)
        pairs[name] = paths
    return pairs


def run(cmd: list[str], timeout: float, omp_threads: int | None = None) -> tuple[float, float, float, int, str]:
    """Wall time (s), CPU time (user + system, s) and peak RSS (MB) of the child, exit status, stdout.

    ``omp_threads``: ``OMP_NUM_THREADS`` of the child; None runs it as a user does, without it (torch then uses
    every core outside the search; the search itself runs on ``--threads``, 1 by default).
    """
    start = time.perf_counter()
    env = subprocess_env(OMP_WAIT_POLICY="PASSIVE")
    env.pop("OMP_NUM_THREADS", None)
    if omp_threads is not None:
        env["OMP_NUM_THREADS"] = str(omp_threads)
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        text = out.read().decode(errors="replace")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, proc.returncode, text


def space_group(path: Path) -> str:
    from matsym.io import load_structure
    from matsym.symmetry import space_group as sg

    number, symbol = sg(load_structure(path), 1e-3)
    return f"{symbol} ({number})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--large", action="store_true", help="add the 10,240-atom antiphase pair")
    ap.add_argument("--no-reduce", action="store_true", help="add rows searched on the user's cell as given")
    ap.add_argument("--repeats", type=int, default=1, help="runs per row (median reported)")
    ap.add_argument("--cases", help="comma-separated subset of the cases")
    ap.add_argument("--no-check", action="store_true", help="skip the matsym check rows")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per command")
    ap.add_argument(
        "--omp-threads", type=int, default=None, help="OMP_NUM_THREADS of the commands (default: unset, as users run)"
    )
    ap.add_argument("--threads", default=None, help="--threads of matsym find (default: matsym's, 1); e.g. auto")
    args = ap.parse_args()
    names = ["pnma-444", "p4mm-10", "antiphase-16"] + (["antiphase-32"] if args.large else [])
    if args.cases:
        names = [n for n in args.cases.split(",") if n]
    matsym = [python_executable(), "-m", "matsym"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pairs = write_cases(folder, names)
        jobs = []
        for name in names:
            jobs.append((name, "find", []))
            if args.no_reduce:
                jobs.append((name, "find", ["--no-reduce"]))
        if not args.no_check:
            jobs += [(n, "check", []) for n in names if n in ("p4mm-10", "antiphase-16")]
        for name, command, extra in jobs:
            parent, target = pairs[name]
            walls, cpus, rss, group, cell, rc = [], [], [], "-", "-", 0
            for k in range(args.repeats):
                out = folder / f"out-{name}-{command}-{len(extra)}-{k}"
                cmd = [*matsym, command, str(parent), str(target), "--json", "--no-progress", *extra]
                if command == "find":
                    cmd += ["--out", str(out)] + (["--threads", args.threads] if args.threads else [])
                wall, cpu, peak, rc, text = run(cmd, args.timeout, args.omp_threads)
                walls.append(wall)
                cpus.append(cpu)
                rss.append(peak)
                if rc != 0:
                    print(text[-2000:])
                    break
                if command == "find":
                    group = space_group(out / "predicted.cif")
                    reg = json.loads((out / "result.json").read_text()).get("registration") or {}
                    red = reg.get("reduction")
                    cell = f"{red['search_sites']} of {red['target_sites']}" if red else "as given"
                else:
                    report = json.loads(text[text.index("{") :])
                    group = "compatible" if report.get("compatible") else "incompatible"
                    red = report.get("reduction")
                    cell = f"{red['search_sites']} of {red['target_sites']}" if red else "as given"
            label = f"{command} {name}{' ' + ' '.join(extra) if extra else ''}"
            target_group = space_group(target)
            limit = LIMITS.get(name) if command == "find" and not extra else None
            cpu = statistics.median(cpus)
            rows.append(
                (label, statistics.median(walls), cpu, max(rss), group, target_group, cell, rc, limit, len(walls))
            )
            print(
                f"{label:34s} wall {statistics.median(walls):7.1f} s  cpu {cpu:7.1f} s  peak RSS {max(rss):6.0f} MB  "
                f"predicted {group:16s} target {target_group:14s} search cell {cell}  exit {rc}"
                + (f"  limit {limit:.0f} s" if limit else ""),
                flush=True,
            )
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2-core machine)")
    omp = "unset (torch's default: every core)" if args.omp_threads is None else str(args.omp_threads)
    print(f"OMP_NUM_THREADS of the commands: {omp}; matsym find --threads {args.threads or '1 (the default)'}")
    print("\n| command | wall (s) | CPU (s) | limit (s) | peak RSS (MB) | predicted | target | search cell | runs |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, wall, cpu, peak, group, tg, cell, rc, limit, n in rows:
        flag = "" if rc == 0 else f" (exit {rc})"
        lim = "-" if limit is None else f"{limit:.0f}"
        print(f"| `{label}` | {wall:.1f}{flag} | {cpu:.1f} | {lim} | {peak:.0f} | {group} | {tg} | {cell} | {n} |")


if __name__ == "__main__":
    main()

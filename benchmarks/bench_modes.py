"""Wall time of ``matsym modes PARENT TARGET`` (issue 10): start-up included, as a user runs it.

Two pairs, written as CIF files into a temporary folder:

* the 40-atom Pnma pair: cubic SrTiO3 (5 atoms) and a+b-b- (7, 6, 6 degrees) in the 2×2×2 cell (target ≤ 3 s);
* a 1,280-atom supercell: the same tilt system in the 8×8×4 cell (target ≤ 30 s).

Each command runs ``--repeats`` times in a fresh process (``python -m matsym modes ...``); the script prints every
wall time and the median, and the modes found, so a reader can see the runs did the work. Not part of ``make
test``; the machine's load matters (say how loaded it was when quoting the figures).

Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_modes.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIMITS = {"40-atom Pnma": 3.0, "1,280-atom Pnma": 30.0}


def _write_pairs(folder: Path) -> dict[str, tuple[Path, Path]]:
    sys.path.insert(0, str(REPO))
    from matsym.structures import cubic_perovskite, tilted_perovskite

    parent = folder / "parent.cif"
    cubic_perovskite().to(filename=str(parent))
    out = {}
    for name, cell in (
        ("40-atom Pnma", [[2, 0, 0], [0, 2, 0], [0, 0, 2]]),
        ("1,280-atom Pnma", [[8, 0, 0], [0, 8, 0], [0, 0, 4]]),
    ):
        _, target = tilted_perovskite("a+b-b-", [7.0, 6.0, 6.0], supercell=cell)
        path = folder / f"target_{len(target)}.cif"
        target.to(filename=str(path))
        out[name] = (parent, path)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        pairs = _write_pairs(Path(tmp))
        for name, (parent, target) in pairs.items():
            times, last = [], None
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                run = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "matsym",
                        "modes",
                        str(parent),
                        str(target),
                        "--origin",
                        "1/2,1/2,1/2",
                        "--json",
                    ],
                    capture_output=True,
                    text=True,
                    env=env,
                    check=False,
                )
                times.append(time.perf_counter() - t0)
                if run.returncode != 0:
                    print(run.stderr)
                    return 1
                last = json.loads(run.stdout)
            modes = ", ".join(f"{m['irrep']} {m['amplitude']:.4f}" for m in last["modes"][:4])
            med = statistics.median(times)
            print(
                f"{name}: wall {', '.join(f'{t:.2f}' for t in times)} s, median {med:.2f} s "
                f"(limit {LIMITS[name]:.0f} s: {'met' if med <= LIMITS[name] else 'NOT met'}); "
                f"subgroup {last['subgroup']['symbol']}; modes {modes}"
            )
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

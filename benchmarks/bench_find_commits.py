"""Wall time of ``matsym find`` on the Pnma example at two or more git commits, alternating, as ratios.

Each commit is checked out in a temporary ``git worktree`` and run as ``python -m matsym find`` in a fresh process
whose ``PYTHONPATH`` puts that tree first (the virtual environment is shared; only matsym differs). The commits run
in turn, ``--rounds`` times, and medians are compared, so drift of a shared host reaches every commit alike.

Pairs (written once, with the current tree's builders):

- ``pnma``: the 5-atom cubic SrTiO3 parent and the 20-atom a+b-b- target (rigid octahedra, the parent's lattice:
  no strain), what ``make demo`` searches;
- ``pbnm-strained``: the same target in the Pbnm setting, origin shifted and its lattice strained by
  (1.02, 0.985, 1.015), as in ``tests/test_cli.py`` (the strain is part of the target from the strain commit on).
- ``startup40``: the 40-atom Pm-3m -> a+b-b- pair of ``bench_startup.py`` (2x2x2 cells, ``--sites Ti --irreps
  0e+0o+1e+1o+2e+2o``), the start-up case of issue 14; ``--compile`` compiles each tree's bytecode first, as
  ``make venv`` leaves the working tree.

Run: ``python benchmarks/bench_find_commits.py OLD NEW [--rounds 3] [--pairs pnma,pbnm-strained,startup40]
[--compile]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _write_pairs(folder: Path) -> dict[str, tuple[Path, Path]]:
    from pymatgen.core import Lattice, Structure

    from matsym.io import write_structure
    from matsym.structures import cubic_perovskite, tilted_perovskite

    _, target = tilted_perovskite("a+b-b-", 8.0)
    write_structure(cubic_perovskite(), folder / "parent.cif")
    write_structure(target, folder / "pnma.cif")
    lat = target.lattice.matrix
    frac = target.frac_coords[:, [1, 0, 2]] * np.array([1.0, 1.0, -1.0])
    lattice = np.array([lat[1], lat[0], -lat[2]]) * np.array([1.02, 0.985, 1.015])[:, None]
    pbnm = Structure(Lattice(lattice), target.species, frac + np.array([0.13, 0.27, 0.41]))
    write_structure(pbnm, folder / "pbnm_strained.cif")
    parent = folder / "parent.cif"
    parent40, target40 = folder / "parent40.cif", folder / "target40.cif"
    cells = tilted_perovskite("a+b-b-", 8.0, supercell=2 * np.eye(3, dtype=int))
    write_structure(cells[0], parent40)
    write_structure(cells[1], target40)
    return {
        "pnma": (parent, folder / "pnma.cif", []),
        "pbnm-strained": (parent, folder / "pbnm_strained.cif", []),
        "startup40": (parent40, target40, ["--sites", "Ti", "--irreps", "0e+0o+1e+1o+2e+2o"]),
    }


def _time_find(tree: Path, parent: Path, target: Path, options: list[str], out: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "matsym", "find", str(parent), str(target), *options, "--out", str(out), "--force"],
        env=env,
        cwd=out.parent,  # not the repository root: ``python -m`` puts the working directory before PYTHONPATH
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"matsym find failed in {tree}: {proc.stderr.strip()[-500:]}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("commits", nargs="+", help="git commits (the first is the reference)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pairs", default="pnma,pbnm-strained", help="any of pnma, pbnm-strained, startup40")
    parser.add_argument(
        "--compile", action="store_true", help="compile each tree's bytecode first, as `make venv` does"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pairs = _write_pairs(tmp)
        names = [p for p in args.pairs.split(",") if p]
        trees = []
        for k, commit in enumerate(args.commits):
            tree = tmp / f"tree{k}"
            subprocess.run(["git", "worktree", "add", "--detach", str(tree), commit], cwd=ROOT, check=True,
                           capture_output=True)  # fmt: skip
            if args.compile:
                subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "matsym")], check=True)
            trees.append(tree)
        try:
            times: dict[tuple[str, int], list[float]] = {}
            for _ in range(args.rounds):
                for name in names:
                    for k, tree in enumerate(trees):
                        t = _time_find(tree, *pairs[name], tmp / f"out{k}")
                        times.setdefault((name, k), []).append(t)
            print(f"matsym find wall time, median of {args.rounds} alternating rounds (s); ratio to {args.commits[0]}")
            for name in names:
                ref = statistics.median(times[(name, 0)])
                cells = []
                for k, commit in enumerate(args.commits):
                    med = statistics.median(times[(name, k)])
                    cells.append(f"{commit}: {med:.2f} ({med / ref:.3f}x)")
                print(f"  {name:14s} " + "  ".join(cells))
        finally:
            for tree in trees:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

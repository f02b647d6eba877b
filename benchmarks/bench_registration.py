"""Registration time against atom count, and the time to refuse a pair that cannot be registered.

Cases (all built from ``matsym.structures``; sites of the target shuffled, so no case relies on the site order):

- ``same cell``: the k x k x k supercell of the ideal 20-atom Pnma cell (parent) against the same supercell of the
  8-degree a+b-b- target (20, 160, 1,280 and 10,240 atoms), target rigidly shifted by a non-lattice vector;
- ``supercell``: the 5-atom cubic parent against a 10 x 10 x 10 perovskite with every Ti moved 0.05 Å along z
  (5,000 atoms, P4mm), and against the 4 x 4 x 4 supercell of the Pnma target (1,280 atoms);
- ``refused``: the 1,280-atom same-cell pair with every site moved by a random vector of length up to 5.5 Å
  (beyond the 1 Å limit); the time until ``RegistrationError``.

Each figure is the median of ``--repeats`` runs in this process (the first call pays for imports and is not
counted). Exponent: least-squares slope of log(time) against log(atoms) over the same-cell rows.

Run: ``python benchmarks/bench_registration.py [--quick]``.
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np
from _common import Report, add_common_args, parse_common

from matsym.errors import RegistrationError
from matsym.registration import register
from matsym.structures import cubic_perovskite, polar_perovskite, tilted_perovskite


def _shuffled(s, seed: int = 0, shift=(0.0, 0.0, 0.0)):
    from pymatgen.core import Structure

    order = np.random.default_rng(seed).permutation(len(s))
    frac = np.asarray(s.frac_coords)[order] + np.asarray(shift) / np.asarray(s.lattice.abc)
    return Structure(s.lattice, [s[int(i)].species for i in order], frac)


def _time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cases(quick: bool):
    p20, t20 = tilted_perovskite("a+b-b-", 8.0)
    ks = (1, 2, 4) if quick else (1, 2, 4, 8)
    for k in ks:
        p, t = p20 * (k, k, k), t20 * (k, k, k)
        yield "same cell", len(t), p, _shuffled(t, shift=(0.37, 0.21, 0.11))
    yield "supercell of 5-atom parent (Pnma 4x4x4)", 1280, cubic_perovskite(), _shuffled(t20 * (4, 4, 4))
    if not quick:
        _, polar = polar_perovskite((0, 0, 1), 0.05)
        yield "supercell of 5-atom parent (P4mm 10x10x10)", 5000, cubic_perovskite(), _shuffled(polar * (10, 10, 10))


def refused_pair(k: int = 4):
    from pymatgen.core import Structure

    p20, _ = tilted_perovskite("a+b-b-", 8.0)
    p = p20 * (k, k, k)
    rng = np.random.default_rng(1)
    v = rng.normal(size=(len(p), 3))
    v *= (rng.uniform(0.0, 5.5, len(p)) / np.linalg.norm(v, axis=1))[:, None]
    t = Structure(p.lattice, p.species, np.asarray(p.cart_coords) + v, coords_are_cartesian=True)
    return p, t


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    args = parse_common(parser)
    repeats = 1 if args.quick else 3
    register(cubic_perovskite(), cubic_perovskite())  # imports
    rows, same = [], []
    for name, n, p, t in cases(args.quick):
        reps = 1 if n > 2000 else repeats
        reg = register(p, t)
        seconds = _time(lambda p=p, t=t: register(p, t), reps)
        rows.append(
            [name, str(n), f"{seconds * 1e3:.0f}", str(reg.timings["assignments"]), f"{reg.max_displacement:.3f}"]
        )
        if name == "same cell":
            same.append((n, seconds))
        print(rows[-1], flush=True)
    p, t = refused_pair()
    start = time.perf_counter()
    try:
        register(p, t)
        message = "registered (unexpected)"
    except RegistrationError as exc:
        message = str(exc)
    refuse = time.perf_counter() - start
    rows.append(["refused (displacements up to 5.5 Å)", str(len(t)), f"{refuse * 1e3:.0f}", "-", "-"])
    print(rows[-1], flush=True)
    x = np.log([n for n, _ in same])
    y = np.log([s for _, s in same])
    slope = float(np.polyfit(x, y, 1)[0]) if len(same) > 1 else math.nan
    report = Report("Registration time vs atom count (bench_registration.py)", args.quick)
    report.table("Registration", ["case", "atoms", "ms (median)", "assignments", "max disp. Å"], rows)
    report.note(f"Same-cell exponent (log time vs log atoms): {slope:.2f}. Refusal message: {message[:400]}")
    report.finish(args)


if __name__ == "__main__":
    main()

"""matsym's registration against pymatgen's ``StructureMatcher`` on the same parent/target pairs.

Cases: baddeleyite ZrO2 and monoclinic HfO2 on an ideal fluorite parent (:mod:`matsym.published`), the Pnma
example in the Pbnm setting with a shifted origin, strain and shuffled sites (as in ``tests/test_cli.py``), and a
1,280-site same-cell pair (the 4 x 4 x 4 supercells of the ideal and the 8-degree a+b-b- 20-site cells, target
sites shuffled).

Both are asked the same question: put the parent on the target's cell and map the sites one to one.
matsym: :func:`matsym.registration.register` with defaults. pymatgen: ``StructureMatcher(primitive_cell=False,
attempt_supercell=True, scale=True)`` with its default tolerances (ltol 0.2, stol 0.3, angle_tol 5) and with the
angle tolerance widened to 15 degrees; ``get_s2_like_s1(target, parent)`` gives the parent on the target's cell,
site by site, from which the displacements are measured the same way (minimal image, mean removed).
"Same" compares the two mappings site by site: both displacement fields are taken as fractional coordinates in
the target's basis (matsym reports Cartesian displacements in the parent's unstrained frame, pymatgen maps the
parent onto the target's strained lattice), mean removed, and the largest per-site difference, in Å on the
target's lattice, must be below 1e-3 Å. The largest displacement is quoted in each matcher's own frame.
Each figure is one run (the first call of each matcher pays its imports before timing); cases over
``--timeout`` seconds are stopped.

Run: ``python benchmarks/bench_matchers.py [--quick]``.
"""

from __future__ import annotations

import signal
import time

import numpy as np
from _common import Report, add_common_args, parse_common

from matsym.published import baddeleyite_hfo2, baddeleyite_zro2, fluorite_primitive
from matsym.registration import register
from matsym.structures import cubic_perovskite, tilted_perovskite


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout


def _pbnm(t):
    from pymatgen.core import Lattice, Structure

    perm = [2, 0, 1]
    lattice = t.lattice.matrix[perm] * np.array([1.02, 0.99, 1.015])[:, None]
    frac = t.frac_coords[:, perm] + np.array([0.13, 0.27, 0.41])
    order = np.random.default_rng(0).permutation(len(t))
    return Structure(Lattice(lattice), [t[int(i)].species for i in order], frac[order])


def _shuffled(s):
    from pymatgen.core import Structure

    order = np.random.default_rng(0).permutation(len(s))
    return Structure(s.lattice, [s[int(i)].species for i in order], s.frac_coords[order])


def cases(quick: bool):
    for make in (baddeleyite_zro2, baddeleyite_hfo2):
        t = make()
        yield (
            f"{t.composition.reduced_formula} P2_1/c on fluorite",
            fluorite_primitive(t[0].specie.symbol, t.volume / 4),
            t,
        )
    p20, t20 = tilted_perovskite("a+b-b-", 8.0)
    yield "Pnma example (Pbnm, shifted, strained)", cubic_perovskite(), _pbnm(t20)
    k = 2 if quick else 4
    yield f"same cell, {20 * k**3} sites", p20 * (k, k, k), _shuffled(t20 * (k, k, k))


def _pymatgen_displacements(parent, target, angle_tol: float):
    from pymatgen.analysis.structure_matcher import StructureMatcher

    sm = StructureMatcher(primitive_cell=False, attempt_supercell=True, scale=True, angle_tol=angle_tol)
    mapped = sm.get_s2_like_s1(target, parent)  # the parent on the target's cell, in the target's site order
    if mapped is None:
        return None
    d = np.asarray(target.frac_coords) - np.asarray(mapped.frac_coords)
    d -= np.round(d)
    return d - d.mean(axis=0)  # fractional, in the target's basis


def _timed(fn, timeout: int):
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout)
    start = time.perf_counter()
    try:
        out = fn()
        status = "ok"
    except _Timeout:
        out, status = None, f"stopped after {timeout} s"
    except Exception as exc:  # report what the matcher said
        out, status = None, f"{type(exc).__name__}: {str(exc)[:80]}"
    finally:
        signal.alarm(0)
    return out, time.perf_counter() - start, status


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--timeout", type=int, default=300, help="seconds per matcher and case (default 300)")
    args = parse_common(parser)
    register(cubic_perovskite(), cubic_perovskite())  # imports
    _pymatgen_displacements(cubic_perovskite(), cubic_perovskite(), 5.0)
    rows = []
    for name, parent, target in cases(args.quick):
        reg, seconds, status = _timed(lambda p=parent, t=target: register(p, t), args.timeout)
        ours = None if reg is None else float(reg.max_displacement)
        ours_frac = None if reg is None else reg.displacements @ np.linalg.inv(reg.parent.lattice.matrix)
        t_lat = np.asarray(target.lattice.matrix)
        rows.append(
            [name, str(len(target)), "matsym", f"{seconds:.3f}", status, "-" if ours is None else f"{ours:.4f}", "-"]
        )
        print(rows[-1], flush=True)
        for angle in (5.0, 15.0):
            disp, seconds, status = _timed(
                lambda p=parent, t=target, a=angle: _pymatgen_displacements(p, t, a), args.timeout
            )
            if status == "ok" and disp is None:
                status = "no match"
            theirs = None if disp is None else float(np.linalg.norm(disp @ t_lat, axis=1).max())
            if theirs is None or ours_frac is None:
                same = "-"
            else:
                diff = float(np.linalg.norm((disp - ours_frac) @ t_lat, axis=1).max())
                same = f"{'yes' if diff < 1e-3 else 'no'} ({diff:.1e} Å)"
            rows.append(
                [
                    name,
                    str(len(target)),
                    f"pymatgen (angle_tol {angle:g})",
                    f"{seconds:.3f}",
                    status,
                    "-" if theirs is None else f"{theirs:.4f}",
                    same,
                ]
            )
            print(rows[-1], flush=True)
    report = Report("Registration: matsym against pymatgen StructureMatcher (bench_matchers.py)", args.quick)
    report.table(
        "Same pairs, both matchers",
        ["case", "sites", "matcher", "seconds", "status", "max disp. Å", "same as matsym"],
        rows,
    )
    report.finish(args)


if __name__ == "__main__":
    main()

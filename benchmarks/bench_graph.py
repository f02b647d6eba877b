"""Graph construction: matsym.graph.build_graph against ASE, pymatgen, vesin and matscipy neighbour lists.

Structures: cubic SrTiO3 perovskite supercells (``matsym.structures.cubic_perovskite() * (n, n, n)``, 40 to
20,480 atoms) with every atom rattled by a Gaussian of 0.02 Å (fixed seed), so that no pair sits exactly at
the cutoff. Every library is asked for the same thing: all ordered pairs ``(i, j, shift)`` within the
cutoff, periodic images included (ASE/matscipy ``"ijS"``, vesin ``full_list=True`` with ``"ijS"``, pymatgen
``get_neighbor_list``). Where torch-cluster is installed (extra ``cluster``), matsym's graph is also built with
``backend="torch-cluster"`` (torch-cluster's radius search over the explicit periodic images). matsym's figure
includes what a user pays for ``build_graph``: validation, edge vectors and sorting.

Run: ``python benchmarks/bench_graph.py [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
from collections.abc import Callable

import numpy as np
from _common import Report, add_common_args, fmt_ms, fmt_ratio, parse_common, time_call

SIZES = (2, 4, 8, 16)  # supercell n: 5 n^3 atoms = 40, 320, 2,560, 20,480
QUICK_SIZES = (2, 4)
CUTOFFS = (5.0, 8.0)
RATTLE = 0.02  # Å, standard deviation
SINGLE_RUN_ABOVE = 4.0  # s: calls slower than this are timed once (ASE at 20,480 atoms and 8 Å)


def perovskite_supercell(n: int, seed: int = 0):
    """Rattled ``cubic_perovskite() * (n, n, n)`` as a pymatgen Structure."""
    from pymatgen.core import Structure

    from matsym.structures import cubic_perovskite

    s = cubic_perovskite() * (n, n, n)
    rng = np.random.default_rng(seed)
    cart = np.asarray(s.cart_coords) + rng.normal(0.0, RATTLE, size=(len(s), 3))
    return Structure(s.lattice, s.species, cart, coords_are_cartesian=True)


def libraries() -> tuple[dict[str, Callable], list[str]]:
    """Neighbour-list callables ``f(structure, atoms, cutoff) -> number of pairs``, and the ones missing."""
    from ase.neighborlist import neighbor_list

    from matsym.graph import build_graph

    libs: dict[str, Callable] = {
        "matsym": lambda s, a, rc: build_graph(s, rc).num_edges,
        "ase": lambda s, a, rc: len(neighbor_list("ijS", a, rc)[0]),
        "pymatgen": lambda s, a, rc: len(s.get_neighbor_list(r=rc)[0]),
    }
    missing = []
    try:
        from vesin import NeighborList

        def _vesin(s, a, rc):
            i, _, _ = NeighborList(cutoff=rc, full_list=True).compute(a.positions, a.cell.array, True, quantities="ijS")
            return len(i)

        libs["vesin"] = _vesin
    except ImportError:
        missing.append("vesin")
    try:
        import torch_cluster  # noqa: F401

        # matsym's graph with torch-cluster's radius search on the explicit periodic images (it has no periodicity
        # of its own): the backend a user selects with build_graph(..., backend="torch-cluster")
        libs["matsym (torch-cluster)"] = lambda s, a, rc: build_graph(s, rc, backend="torch-cluster").num_edges
    except ImportError:
        missing.append("torch-cluster")
    try:
        from matscipy.neighbours import neighbour_list

        libs["matscipy"] = lambda s, a, rc: len(neighbour_list("ijS", a, rc)[0])
    except ImportError:
        missing.append("matscipy")
    return libs, missing


def main(argv=None) -> int:
    parser = add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per cell (default 7; quick 3)")
    args = parse_common(parser, argv)
    report = Report("bench_graph", args.quick)
    repeats = args.repeats or (3 if args.quick else 7)
    budget = 1.0 if args.quick else 4.0

    import matsym
    from matsym.io import to_ase

    libs, missing = libraries()
    names = list(libs)
    rows, results, mismatches = [], [], []
    worst_vs_ase, worst_vs_fastest = 0.0, 0.0
    for n in QUICK_SIZES if args.quick else SIZES:
        structure = perovskite_supercell(n)
        atoms = to_ase(structure)
        for rc in CUTOFFS:
            timings = {}
            for name in names:
                gc.collect()
                t = time_call(
                    lambda f=libs[name], s=structure, a=atoms, r=rc: f(s, a, r),
                    repeats=repeats,
                    warmup=1,
                    budget_s=budget,
                    single_above_s=SINGLE_RUN_ABOVE,
                )
                timings[name] = t
            pairs = timings["matsym"].value
            t_ase = timings["ase"].median
            t_min = min(t.median for t in timings.values())
            fastest = min(timings, key=lambda k: timings[k].median)
            for name in names:
                t = timings[name]
                ok_pairs = t.value == pairs
                if not ok_pairs:
                    mismatches.append(f"{name} at {len(structure)} atoms, {rc:g} Å: {t.value} pairs vs {pairs}")
                rows.append(
                    [
                        f"{len(structure):,}",
                        f"{rc:g}",
                        name + (" (fastest)" if name == fastest else ""),
                        fmt_ms(t.median),
                        t.runs,
                        f"{t.value:,}" + ("" if ok_pairs else " (!)"),
                        fmt_ratio(t.median / t_ase),
                        fmt_ratio(t.median / t_min),
                    ]
                )
                results.append(
                    {
                        "atoms": len(structure),
                        "cutoff": rc,
                        "library": name,
                        "median_s": t.median,
                        "times_s": t.times,
                        "pairs": t.value,
                    }
                )
            worst_vs_ase = max(worst_vs_ase, timings["matsym"].median / t_ase)
            worst_vs_fastest = max(worst_vs_fastest, timings["matsym"].median / t_min)
            print(
                f"  {len(structure):6d} atoms {rc:g} Å: "
                + ", ".join(f"{k} {fmt_ms(v.median)} ms" for k, v in timings.items()),
                flush=True,
            )

    report.table(
        "Neighbour-list construction (ms, median of repeats; ratios to ASE and to the fastest, same run)",
        ["atoms", "cutoff Å", "library", "ms", "runs", "pairs", "/ ASE", "/ fastest"],
        rows,
    )
    notes = [
        f"Rattled cubic SrTiO3 supercells (σ = {RATTLE} Å); {repeats} timed repeats after one warm-up call, "
        f"fewer when they exceed {budget:g} s in all; calls slower than {SINGLE_RUN_ABOVE:g} s are timed "
        "once "
        f"(runs = 1). matsym {matsym.__file__.rsplit('/matsym/', 1)[0]}."
    ]
    if missing:
        notes.append(f"Not installed, not measured: {', '.join(missing)} (`pip install {' '.join(missing)}`).")
    if mismatches:
        notes.append("Pair counts differ from matsym's: " + "; ".join(mismatches) + ".")
    else:
        notes.append("Every library found the same number of pairs as matsym in every cell.")
    report.note(" ".join(notes))
    full = not args.quick
    report.check(
        "matsym graph never slower than ASE neighbor_list",
        f"worst matsym/ASE {worst_vs_ase:.3g}",
        worst_vs_ase <= 1.0 if full else None,
    )
    report.check(
        "matsym graph within 2.5x of the fastest library, every size",
        f"worst matsym/fastest {worst_vs_fastest:.3g}",
        worst_vs_fastest <= 2.5 if full else None,
    )
    report.check("all libraries agree on the pairs", f"{len(mismatches)} mismatching cells", not mismatches)
    report.data["results"] = results
    return report.finish(args)


if __name__ == "__main__":
    raise SystemExit(main())

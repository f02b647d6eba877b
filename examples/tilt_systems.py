"""Octahedral tilt systems with default settings: does the predicted structure keep the target's space group?

Each target is built from its Glazer symbol (:func:`matsym.structures.tilted_perovskite`); unequal angles are used
where the symbol allows them (5, 6, 7 degrees), so no accidental symmetry helps. The search runs with every setting
at its default: order parameters on every site, candidates 0e+0o+1e+1o+2e+2o, float32. The predicted structure's
space group (spglib, symprec 1e-3 and 1e-2) is compared with the target's at 1e-3.

Run::

    python examples/tilt_systems.py                       # 13 tilt systems, about 30 s
    python examples/tilt_systems.py --cases a+b+c-,a+b+c+ --out /tmp/tilts

Writes ``results.json`` to ``--out``; exits 1 if a predicted group differs from the target's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from matsym.screening_set import TILT_SYSTEMS

NAME = "tilt_systems"
QUICK = {"fit_steps": 40, "max_steps": 40, "search_steps": 20, "polish_steps": 20}
CASES = TILT_SYSTEMS  # Glazer symbol -> tilt angles (degrees, about x, y, z); shared with matsym screen's set


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("examples_output") / NAME, help="output folder")
    parser.add_argument("--quick", action="store_true", help="small step budgets (smoke test; not converged)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the network's initial weights")
    parser.add_argument("--cases", default="all", help=f"comma-separated Glazer symbols or 'all'; of {list(CASES)}")
    args = parser.parse_args(argv)
    args.selected = list(CASES) if args.cases == "all" else [k.strip() for k in args.cases.split(",") if k.strip()]
    unknown = sorted(set(args.selected) - set(CASES))
    if unknown:
        parser.error(f"unknown tilt system(s) {unknown}; choose from {list(CASES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from matsym.search import OrderParameterSearch
    from matsym.structures import tilted_perovskite
    from matsym.symmetry import verify_space_group

    overrides = QUICK if args.quick else {}
    rows = []
    print(f"{'tilts':8s} {'angles':18s} {'target (1e-3)':16s} {'found 1e-3':16s} {'found 1e-2':16s} error   time")
    for glazer in args.selected:
        angles = CASES[glazer]
        parent, target = tilted_perovskite(glazer, angles)
        want = verify_space_group(target, symprecs=(1e-3,))[1e-3]
        t0 = time.perf_counter()
        result = OrderParameterSearch(parent, target, seed=args.seed, **overrides).run()
        seconds = time.perf_counter() - t0
        found = verify_space_group(result.predicted_structure, symprecs=(1e-3, 1e-2))
        same = all(number == want[0] for number, _ in found.values())
        error = float(result.metrics["displacement_error_ratio"])
        rows.append(
            {
                "glazer": glazer,
                "angles": angles,
                "target": list(want),
                "found": {f"{p:g}": list(v) for p, v in found.items()},
                "same_group": same,
                "displacement_error_ratio": error,
                "seconds": seconds,
            }
        )
        cells = [f"{n} {s}" for n, s in (want, found[1e-3], found[1e-2])]
        print(
            f"{glazer:8s} {angles!s:18s} {cells[0]:16s} {cells[1]:16s} {cells[2]:16s} "
            f"{100 * error:5.2f} % {seconds:4.1f} s{'' if same else '  DIFFERENT'}",
            flush=True,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"quick": args.quick, "seed": args.seed, "cases": rows}, indent=2))
    tmp.replace(path)
    kept = sum(r["same_group"] for r in rows)
    print(f"{kept} of {len(rows)} keep the target's group at 1e-3 and 1e-2; wrote {path}")
    return 0 if args.quick or kept == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())

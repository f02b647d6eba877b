"""Distortions the paper does not show: other tilt systems, a polar and a Jahn-Teller distortion of Pm-3m.

Each target is built from its physical description (:mod:`matsym.structures`), the order parameter is searched
on the B sites, and the predicted structure is checked with spglib against the group the distortion should have:

==================  ================================  ===================  ==================
case                builder                           candidates           expected group
==================  ================================  ===================  ==================
a0a0c- tilt         ``tilted_perovskite("a0a0c-")``   1e+1o                I4/mcm (140)
a0a0c+ tilt         ``tilted_perovskite("a0a0c+")``   1e+1o                P4/mbm (127)
a-a-a- tilt         ``tilted_perovskite("a-a-a-")``   1e+1o                R-3c (167)
polar [001]         ``polar_perovskite((0, 0, 1))``   1o+1e                P4mm (99)
polar [111]         ``polar_perovskite((1, 1, 1))``   1o+1e                R3m (160)
Jahn-Teller Q2      ``jahn_teller_perovskite(q2)``    0e+1e+2e             the builder's group
==================  ================================  ===================  ==================

A tilt should come out as a pseudovector (1e), an off-centring as a vector (1o), a Jahn-Teller distortion as a
rank-2 tensor (2e, x²-y² in the local frame).

Run::

    python examples/other_distortions.py
    python examples/other_distortions.py --quick --cases a0a0c-,polar001 --out /tmp/other

Writes ``results.json`` and ``summary.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

NAME = "other_distortions"
QUICK = {"fit_steps": 40, "max_steps": 40, "search_steps": 20, "polish_steps": 20}


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    build: Callable[[argparse.Namespace], tuple]
    irreps: str
    expected: int | None  # None: the target's own group (at symprec 1e-3)
    expected_irrep: str


def _tilt(glazer: str) -> Callable:
    def build(args):
        from matsym.structures import tilted_perovskite

        return tilted_perovskite(glazer, args.angle)

    return build


def _polar(direction: tuple[int, int, int]) -> Callable:
    def build(args):
        from matsym.structures import polar_perovskite

        return polar_perovskite(direction, args.polar_amplitude)

    return build


def _jahn_teller(args):
    from matsym.structures import jahn_teller_perovskite

    return jahn_teller_perovskite(q2=args.q2)


CASES = (
    Case("a0a0c-", "a0a0c- tilt", _tilt("a0a0c-"), "1e+1o", 140, "1e"),
    Case("a0a0c+", "a0a0c+ tilt", _tilt("a0a0c+"), "1e+1o", 127, "1e"),
    Case("a-a-a-", "a-a-a- tilt", _tilt("a-a-a-"), "1e+1o", 167, "1e"),
    Case("polar001", "polar [001]", _polar((0, 0, 1)), "1o+1e", 99, "1o"),
    Case("polar111", "polar [111]", _polar((1, 1, 1)), "1o+1e", 160, "1o"),
    Case("jt-q2", "Jahn-Teller Q2", _jahn_teller, "0e+1e+2e", None, "2e"),
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("examples_output") / NAME, help="output folder")
    parser.add_argument("--quick", action="store_true", help="small step budgets (smoke test; not converged)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the network's initial weights")
    parser.add_argument(
        "--cases",
        default="all",
        help=f"comma-separated cases to run, or 'all' (default); one of {', '.join(c.key for c in CASES)}",
    )
    parser.add_argument("--angle", type=float, default=8.0, help="tilt angle in degrees (default 8)")
    parser.add_argument("--polar-amplitude", type=float, default=0.1, help="B-site off-centring in Å (0.1)")
    parser.add_argument("--q2", type=float, default=0.1, help="Jahn-Teller Q2 amplitude in Å (0.1)")
    args = parser.parse_args(argv)
    keys = [c.key for c in CASES]
    if args.cases == "all":
        args.selected = keys
    else:
        args.selected = [k.strip() for k in args.cases.split(",") if k.strip()]
        unknown = sorted(set(args.selected) - set(keys))
        if unknown:
            parser.error(f"unknown case(s) {unknown}; choose from {keys}")
    return args


def run_case(case: Case, args, overrides: dict) -> dict:
    from matsym.search import OrderParameterSearch
    from matsym.symmetry import verify_space_group

    symprecs = (1e-3, 1e-2)
    parent, target = case.build(args)
    target_groups = verify_space_group(target, symprecs=symprecs)
    expected = case.expected if case.expected is not None else target_groups[1e-3][0]
    t0 = time.perf_counter()
    result = OrderParameterSearch(parent, target, sites="Ti", irreps=case.irreps, seed=args.seed, **overrides).run()
    seconds = time.perf_counter() - t0
    found = verify_space_group(result.predicted_structure, symprecs=symprecs)
    shares = result.irrep_fractions()
    dominant = max(shares, key=shares.get) if shares else "-"
    return {
        "case": case.label,
        "key": case.key,
        "atoms": len(target),
        "candidates": case.irreps,
        "expected_group": expected,
        "target_groups": {f"{p:g}": list(v) for p, v in target_groups.items()},
        "found_groups": {f"{p:g}": list(v) for p, v in found.items()},
        "group_ok": all(n == expected for n, _ in found.values()),
        "dominant_irrep": dominant,
        "dominant_share": shares.get(dominant, 0.0),
        "expected_irrep": case.expected_irrep,
        "irrep_shares": shares,
        "loss_ratio": result.metrics["loss_ratio"],
        "displacement_error_ratio": result.metrics["displacement_error_ratio"],
        "seconds": seconds,
        "summary": result.summary(),
    }


def print_table(rows: list[dict]) -> None:
    head = (
        f"{'case':16s} {'expected':>9s} {'found 1e-3':>14s} {'found 1e-2':>14s} {'dominant irrep':>16s} "
        f"{'loss ratio':>10s} {'disp. err':>9s} {'time':>6s}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        f3, f2 = r["found_groups"]["0.001"], r["found_groups"]["0.01"]
        mark = "" if r["group_ok"] else "  <- group differs"
        dominant = f"{r['dominant_irrep']} ({100 * r['dominant_share']:.1f}%)"
        print(
            f"{r['case']:16s} {r['expected_group']:>9d} {f'{f3[0]} {f3[1]}':>14s} {f'{f2[0]} {f2[1]}':>14s} "
            f"{dominant:>16s} {r['loss_ratio']:>10.2e} "
            f"{100 * r['displacement_error_ratio']:>8.1f}% {r['seconds']:>5.1f}s{mark}"
        )


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = sorted({k for r in rows for k in r["irrep_shares"]})
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    x = np.arange(len(rows))
    bottom = np.zeros(len(rows))
    for name in names:
        values = np.array([r["irrep_shares"].get(name, 0.0) for r in rows])
        if values.max() <= 0:
            continue
        ax1.bar(x, values, bottom=bottom, label=name)
        bottom += values
    ax1.set_xticks(x, [r["case"] for r in rows], rotation=30, ha="right")
    ax1.set_ylabel("share of the squared norm of the order parameter")
    ax1.set_title("learned order parameter by irrep (B sites)")
    ax1.legend(fontsize=8)
    errors = np.array([100 * r["displacement_error_ratio"] for r in rows])
    colours = ["tab:green" if r["group_ok"] else "tab:red" for r in rows]
    ax2.bar(x, errors, color=colours)
    for xi, e in zip(x, errors, strict=True):
        ax2.text(xi, e, f"{e:.1f}%", ha="center", va="bottom", fontsize=8)
    ax2.axhline(10.0, color="k", ls="--", lw=1, label="10%")
    ax2.set_xticks(x, [r["case"] for r in rows], rotation=30, ha="right")
    ax2.set_ylabel("RMS error of decoded displacements (% of RMS target)")
    ax2.set_title("fit (green: expected space group at 1e-3 and 1e-2)")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = dict(QUICK) if args.quick else {}
    args.out.mkdir(parents=True, exist_ok=True)
    print(
        "Distortions of cubic SrTiO3 beyond the paper; order parameters on the B (Ti) sites, untied"
        + (" [--quick: small step budgets, not converged]" if args.quick else "")
    )
    rows = []
    for case in CASES:
        if case.key not in args.selected:
            continue
        row = run_case(case, args, overrides)
        rows.append(row)
        print(
            f"\n{case.label} ({row['atoms']} atoms, candidates {case.irreps}, expected group {row['expected_group']}):"
        )
        print("  " + row["summary"].replace("\n", "\n  "))
    print()
    print_table(rows)
    bad_fit = [r["case"] for r in rows if r["displacement_error_ratio"] > 0.10]
    if bad_fit:
        print(
            f"\nnote: decoded displacements off by more than 10% RMS for {', '.join(bad_fit)} (see examples/README.md)."
        )
    (args.out / "results.json").write_text(
        json.dumps({"quick": args.quick, "seed": args.seed, "cases": rows}, indent=1)
    )
    plot(rows, args.out / "summary.png")
    print(f"\nwrote results.json, summary.png to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

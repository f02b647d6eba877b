"""Pm-3m -> Imma: a symmetry-intermediate structure from constrained order parameters (paper Fig. 3).

The target is the a+b-b- (Pnma) perovskite of ``perovskite_pnma.py``. The search is given only 1e
(pseudovector) candidates on the B sites, with two constraints:

* **mask**: the component along the in-phase tilt axis (x for ``tilted_perovskite("a+b-b-")``) is forced
  to zero;
* **tie by a lattice translation**: B sites related by a translation that maps the anti-phase (R-point)
  tilt pattern onto itself but reverses the in-phase (M-point) pattern must carry the same order parameter.
  In the 20-atom cell this is the body centring (1/2, 1/2, 1/2), the cubic lattice vector (1, 0, 1): the
  anti-phase sign (-1)^(n_x+n_y+n_z) is unchanged by it, the in-phase sign about x, (-1)^(n_y+n_z), flips.
  Tied sites therefore cannot carry in-phase tilts of any component.

What is left is the anti-phase tilt about y and z, a0b-b-, whose space group is Imma (74). The constrained
fit is worse than the unconstrained one, since the in-phase tilt of the target cannot be reproduced.

Run::

    python examples/perovskite_imma.py
    python examples/perovskite_imma.py --quick --out /tmp/imma

Writes ``result_imma.json``, ``result_unconstrained.json``, ``predicted_imma.cif`` and
``order_parameters.png``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

NAME = "perovskite_imma"
QUICK = {"fit_steps": 40, "max_steps": 40, "search_steps": 20, "polish_steps": 20}
AXES = "xyz"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("examples_output") / NAME, help="output folder")
    parser.add_argument("--quick", action="store_true", help="small step budgets (smoke test; not converged)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the network's initial weights")
    parser.add_argument("--glazer", default="a+b-b-", help="tilt pattern with exactly one in-phase (+) axis")
    parser.add_argument("--angles", type=float, nargs="+", default=[8.0], help="tilt angle(s) in degrees")
    return parser.parse_args(argv)


def separating_translation(parent, in_phase_axis: int, a: float) -> tuple[np.ndarray, np.ndarray]:
    """A half-integer lattice translation of the cell that keeps anti-phase tilts and reverses in-phase ones.

    Returns:
        ``(fractional translation, the same translation in cubic lattice units)``.
    """
    lattice = np.asarray(parent.lattice.matrix)
    others = [k for k in range(3) if k != in_phase_axis]
    for f in itertools.product((0.0, 0.5), repeat=3):
        if not any(f):
            continue
        dn = np.asarray(f) @ lattice / a  # cubic units
        if not np.allclose(dn, np.round(dn), atol=1e-6):
            continue  # not a lattice translation of the cubic parent
        dn = np.round(dn).astype(int)
        anti_phase_kept = dn.sum() % 2 == 0
        in_phase_flipped = (dn[others[0]] + dn[others[1]]) % 2 == 1
        if anti_phase_kept and in_phase_flipped:
            return np.asarray(f), dn
    raise SystemExit(
        f"no half-integer translation of this cell separates in-phase from anti-phase tilts about "
        f"{AXES[in_phase_axis]}; use the default 20-atom cell"
    )


def one_e_vectors(result) -> np.ndarray:
    """Cartesian (x, y, z) 1e pseudovector of every site; standard m=-1, 0, 1 are y, z, x.  # [n, 3]"""
    start = list(result.components).index("1e m=-1 y")
    y, z, x = (result.order_parameter[:, start + k] for k in range(3))
    return np.stack([x, y, z], axis=1)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12, 5.5))
    for col, (label, (result, groups)) in enumerate(results.items()):
        ax = fig.add_subplot(1, len(results), col + 1, projection="3d")
        cart = np.asarray(result.parent.cart_coords)
        lattice = np.asarray(result.parent.lattice.matrix)
        corners = np.array(list(itertools.product((0, 1), repeat=3)), dtype=float) @ lattice
        for i, j in itertools.combinations(range(8), 2):
            if bin(i ^ j).count("1") == 1:
                ax.plot(*zip(corners[i], corners[j], strict=True), color="0.7", lw=0.8)
        vectors = one_e_vectors(result)
        scale = 2.5 / max(float(np.linalg.norm(vectors, axis=1).max()), 1e-12)
        b = np.asarray(result.sites)
        ax.scatter(*cart[b].T, s=60, color="tab:blue", depthshade=False, label="B (Ti)")
        for i in b:
            ax.quiver(*cart[i], *(vectors[i] * scale), color="k", lw=2, arrow_length_ratio=0.25)
        ax.set_box_aspect(np.ptp(corners, axis=0))
        ax.set_title(
            f"{label}: predicted {groups[1e-3][1]} ({groups[1e-3][0]})\nloss ratio {result.metrics['loss_ratio']:.2e}",
            fontsize=9,
        )
        ax.set_xlabel("x (Å)")
        ax.set_ylabel("y (Å)")
        ax.set_zlabel("z (Å)")
    fig.suptitle("1e order parameters on the B sites (arrows, scaled per panel)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from matsym.io import write_structure
    from matsym.search import OrderParameterSearch
    from matsym.structures import glazer_phases, tilted_perovskite
    from matsym.symmetry import verify_space_group

    phases = glazer_phases(args.glazer)
    if phases.count("+") != 1:
        raise SystemExit(f"--glazer needs exactly one in-phase (+) axis, got {args.glazer!r}")
    axis = phases.index("+")
    angles = args.angles[0] if len(args.angles) == 1 else args.angles
    parent, target = tilted_perovskite(args.glazer, angles)
    overrides = dict(QUICK) if args.quick else {}
    args.out.mkdir(parents=True, exist_ok=True)
    symprecs = (1e-3, 1e-2)

    cubic_a = _cubic_parameter(parent)
    frac_t, dn = separating_translation(parent, axis, cubic_a)
    direction = tuple(float(k == axis) for k in range(3))
    print(
        f"Pm-3m -> {args.glazer} target (Pnma); constrained search for the intermediate Imma structure"
        + (" [--quick: small step budgets, not converged]" if args.quick else "")
    )
    print(f"  in-phase tilt axis: {AXES[axis]}; mask = ('1e', {direction}) removes the 1e component along it")
    print(
        f"  tie = {{'translation': {frac_t.tolist()}}}: this translation of the cell is the cubic lattice "
        f"vector {dn.tolist()};\n    it keeps the anti-phase sign (-1)^(n_x+n_y+n_z) (sum {dn.sum()}, even) "
        f"and flips the in-phase sign about {AXES[axis]},\n    (-1)^(n_{AXES[(axis + 1) % 3]}+n_"
        f"{AXES[(axis + 2) % 3]}), so B sites tied by it can carry anti-phase tilts only"
    )

    t0 = time.perf_counter()
    free = OrderParameterSearch(parent, target, sites="Ti", irreps="1e", seed=args.seed, **overrides).run()
    t_free = time.perf_counter() - t0
    t0 = time.perf_counter()
    constrained = OrderParameterSearch(
        parent,
        target,
        sites="Ti",
        irreps="1e",
        mask=("1e", direction),
        tie={"translation": frac_t.tolist()},
        seed=args.seed,
        **overrides,
    ).run()
    t_con = time.perf_counter() - t0

    results = {}
    for label, result, seconds in (("unconstrained", free, t_free), ("constrained", constrained, t_con)):
        groups = verify_space_group(result.predicted_structure, symprecs=symprecs)
        results[label] = (result, groups)
        print(f"\n{label} (candidates 1e, {seconds:.1f} s):")
        print("  " + result.summary().replace("\n", "\n  "))
        print(
            "  space group of the predicted structure: "
            + ", ".join(f"{n} ({s}) at symprec {p:g}" for p, (n, s) in groups.items())
        )

    loss_free, loss_con = free.metrics["loss_ratio"], constrained.metrics["loss_ratio"]
    vec = one_e_vectors(constrained)[constrained.sites]
    imma = all(n == 74 for n, _ in results["constrained"][1].values())
    print(
        f"\nloss ratio: constrained {loss_con:.3e} vs unconstrained {loss_free:.3e} "
        f"(x{loss_con / max(loss_free, 1e-300):.3g}); the constrained fit "
        f"{'stays above' if loss_con > loss_free else 'does NOT stay above'} the unconstrained one"
    )
    print(f"largest |1e {AXES[axis]}| in the constrained result: {np.abs(vec[:, axis]).max():.2e}")
    print(f"constrained result is Imma (74) at symprec 1e-3 and 1e-2: {'yes' if imma else 'NO'}")

    free.to_json(args.out / "result_unconstrained.json", force=True)
    constrained.to_json(args.out / "result_imma.json", force=True)
    write_structure(constrained.predicted_structure, args.out / "predicted_imma.cif", force=True)
    plot(results, args.out / "order_parameters.png")
    print(
        f"\nwrote result_unconstrained.json, result_imma.json, predicted_imma.cif, order_parameters.png to {args.out}"
    )
    return 0


def _cubic_parameter(parent) -> float:
    """Cubic lattice parameter of a perovskite supercell (5 atoms per cubic cell)."""
    return float((abs(parent.volume) / (len(parent) / 5)) ** (1.0 / 3.0))


if __name__ == "__main__":
    sys.exit(main())

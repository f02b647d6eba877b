"""The paper's first example: square <-> rectangle (Smidt, Geiger & Miller 2021, Figs. 1 and 2).

Four points at the vertices of a square in the xy plane, ``(+-1, +-1, 0)``, and of a rectangle elongated
along x.

* **Fig. 1 (Curie's principle).** With no order parameter, a network fits rectangle -> square, but not
  square -> rectangle: its predicted signal at every vertex has two equal maxima (it cannot tell x from y).
* **Order parameter.** With one global order parameter (``tie="all"``) the square -> rectangle fit succeeds.
  With candidates up to L = 5 the learned order parameter lies in the irrep B1g of D4h (components
  2e m=2 x²-y², 3e m=-2 xyz, 4e m=2, 5e m=-2); with candidates 1e+1o+2e+2o it is 2e m=2 (x²-y²).
* **Fig. 2.** The input order parameter (top) and the output signal of vertex 0 (bottom) at the start, middle
  and end of the order-parameter optimisation, drawn on the xy plane.

Run::

    python examples/square_rectangle.py                 # full settings (~30 s)
    python examples/square_rectangle.py --quick --out /tmp/sq

Writes ``fig1_curie.png``, ``fig2_order_parameter.png`` and ``figures.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

NAME = "square_rectangle"
ALL_L5 = "+".join(f"{l}{p}" for l in range(6) for p in "eo")
LOW_L = "1e+1o+2e+2o"
B1G = ("2e m=2", "3e m=-2", "4e m=2", "5e m=-2")  # the irrep B1g of D4h, standard basis, z polar
QUICK = {"fit_steps": 40, "max_steps": 25, "search_steps": 20, "polish_steps": 10}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("examples_output") / NAME, help="output folder")
    parser.add_argument("--quick", action="store_true", help="small step budgets (smoke test; figures not converged)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the network's initial weights")
    parser.add_argument("--elongation", type=float, default=0.2, help="relative elongation of the rectangle along x")
    parser.add_argument("--curie-steps", type=int, default=600, help="step budget of the no-order-parameter fits")
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------------------------- helpers
def _signals_in_angstrom(search) -> np.ndarray:
    """Predicted signals of every site (e3nn basis, Å).  # [n, (lmax+1)^2]"""
    return search.predicted_signals()


def _xy_directions(n: int = 361) -> tuple[np.ndarray, np.ndarray]:
    phi = np.linspace(0.0, 2.0 * math.pi, n)
    return phi, np.stack([np.cos(phi), np.sin(phi), np.zeros_like(phi)], axis=1)  # [n, 3]


def _op_function(op_std: np.ndarray, components: tuple[str, ...], directions: np.ndarray) -> np.ndarray:
    """The even part of the order parameter as a function on the sphere, as in the paper's Fig. 2.

    ``f(u) = 1 * Y_00 + sum over even-L, even-parity components (0e, 2e, 4e) of c_lm Y_lm(u)``: the first
    term is the fixed scalar input of value 1. Odd-parity or odd-L components (1o, 3e, ...) are left out.
    Returns [n_dir] values.
    """
    from matsym.basis import real_spherical_harmonics

    values = np.full(len(directions), 1.0 / math.sqrt(4.0 * math.pi))  # the constant scalar input, value 1
    k = 0
    while k < len(components):
        name = components[k].split()[0].split("[")[0]
        ell, parity = int(name[:-1]), name[-1]
        if parity == "e" and ell % 2 == 0:
            values = values + real_spherical_harmonics(ell, directions) @ op_std[k : k + 2 * ell + 1]
        k += 2 * ell + 1
    return values


def _polar_curve(ax, phi, values, *, origin=(0.0, 0.0), scale=1.0, label=None, polar=False):
    """Draw r = |f| around ``origin``; positive lobes solid blue, negative lobes dashed red."""
    r = np.abs(values) * scale
    for sign, style in ((1, {"color": "tab:blue", "ls": "-"}), (-1, {"color": "tab:red", "ls": "--"})):
        rr = np.where(np.sign(values) == sign, r, np.nan)
        if polar:
            ax.plot(phi, rr, lw=1.5, label=(label if sign == 1 else None), **style)
        else:
            ax.plot(origin[0] + rr * np.cos(phi), origin[1] + rr * np.sin(phi), lw=1.5, **style)


class _Snapshots:
    """Records the order parameter and the output signal of one site after every order-parameter step.

    Pass it as ``search.run(callback=recorder)``; it only reads state, so the run is unchanged.
    """

    ORDER_PARAMETER_PHASES = ("grow", "search", "prune")

    def __init__(self, search, site: int = 0) -> None:
        import torch

        self.search, self.site, self.records = search, site, []
        self._torch = torch

    def __call__(self, search, record: dict) -> None:
        if record["phase"].startswith(self.ORDER_PARAMETER_PHASES):
            if not self.records:
                self.record()  # the start: after the model-only fit, order parameter still zero
            self.record()

    def record(self) -> None:
        s = self.search
        with self._torch.no_grad():
            pred = s.network(s._features(), s.geometry)
            loss = float(((pred - s.target_signal) ** 2).mean() / s.target_scale)
        self.records.append(
            {
                "loss": loss,
                "op": s.order_parameter.standard().detach().numpy()[self.site].copy(),
                "signal": pred[self.site].double().numpy() * s.length_scale * s.signal_scale,
            }
        )

    def start_middle_end(self) -> list[tuple[str, dict]]:
        """Start, middle (loss halfway, in log scale, from start to end) and end."""
        if not self.records:
            return []
        first, last = self.records[0], self.records[-1]
        target = math.sqrt(max(first["loss"], 1e-30) * max(last["loss"], 1e-30))
        middle = min(range(len(self.records)), key=lambda i: abs(math.log(self.records[i]["loss"] / target)))
        return [("start", first), ("middle", self.records[middle]), ("end", last)]


# ----------------------------------------------------------------------------------------------- parts
def curie_part(square, rectangle, args, overrides) -> dict:
    """Fig. 1: fits with no order parameter in both directions."""
    from matsym.search import OrderParameterSearch
    from matsym.signals import find_peaks

    out = {}
    steps = min(args.curie_steps, 200) if overrides else args.curie_steps  # cheap: 4 points
    for key, (start, goal) in {
        "rectangle_to_square": (rectangle, square),
        "square_to_rectangle": (square, rectangle),
    }.items():
        search = OrderParameterSearch(start, goal, irreps="0e", seed=args.seed, **{**overrides, "fit_steps": steps})
        t0 = time.perf_counter()
        report = search.curie()
        signals = _signals_in_angstrom(search)
        lmax = search.config.signal_lmax
        peaks = find_peaks(signals, lmax)
        print(f"\n{key.replace('_', ' ')} (no order parameter, {time.perf_counter() - t0:.1f} s)")
        print(f"  verdict: {report.verdict}")
        print(f"  loss ratio {report.loss_ratio:.3g} (loss / mean square of the target signal)")
        print(f"  degenerate vertices: {list(report.degenerate_sites) or 'none'}")
        for i, site_peaks in enumerate(peaks):
            desc = ", ".join(
                f"({', '.join(f'{x:+.3f}' for x in p.direction)}) height {p.height:.4f} Å" for p in site_peaks
            )
            print(f"  vertex {i} at {np.round(start.cart_coords[i], 3).tolist()}: maxima {desc}")
        out[key] = {
            "compatible": report.compatible,
            "loss_ratio": report.loss_ratio,
            "displacement_error_ratio": report.displacement_error_ratio,
            "degenerate_vertices": list(report.degenerate_sites),
            "verdict": report.verdict,
            "signals": signals.tolist(),
            "lmax": lmax,
            "start": np.asarray(start.cart_coords).tolist(),
            "goal": np.asarray(goal.cart_coords).tolist(),
        }
    return out


def order_parameter_part(square, rectangle, args, overrides) -> tuple[dict, list]:
    """Global order parameter, candidates up to L=5 (with Fig. 2 snapshots) and 1e+1o+2e+2o."""
    from matsym.search import OrderParameterSearch

    out, snapshots = {}, []
    for key, irreps in (("up_to_L5", ALL_L5), ("low_L", LOW_L)):
        search = OrderParameterSearch(square, rectangle, irreps=irreps, tie="all", seed=args.seed, **overrides)
        recorder = _Snapshots(search) if key == "up_to_L5" else None
        result = search.run(callback=recorder)
        if recorder is not None:
            recorder.record()  # the end: after the final network polish
        shares = result.component_fractions(min_l=1)
        b1g = sum(v for k, v in shares.items() if k.startswith(B1G))
        print(
            f"\nsquare -> rectangle, one global order parameter, candidates {irreps} "
            f"({result.metrics['seconds']:.1f} s, {result.metrics['steps']} steps)"
        )
        print(
            f"  loss ratio {result.metrics['loss_ratio']:.3g}, decoded-displacement error "
            f"{100 * result.metrics['displacement_error_ratio']:.2f}% of the RMS target displacement"
        )
        print("  share of the squared norm of the L > 0 order parameter:")
        for name, value in sorted(shares.items(), key=lambda kv: -kv[1]):
            if value >= 1e-4:
                print(f"    {name:16s} {100 * value:7.3f}%")
        print(f"  B1g components (2e m=2, 3e m=-2, 4e m=2, 5e m=-2) together: {100 * b1g:.3f}%")
        if key == "low_L":
            print(f"  2e m=2 x²-y² alone: {100 * shares.get('2e m=2 x²-y²', 0.0):.3f}%")
        out[key] = {
            "irreps": irreps,
            "loss_ratio": result.metrics["loss_ratio"],
            "displacement_error_ratio": result.metrics["displacement_error_ratio"],
            "seconds": result.metrics["seconds"],
            "b1g_share": b1g,
            "shares": {k: v for k, v in shares.items() if v > 0},
            "order_parameter": dict(
                (c, float(v)) for c, v in zip(result.components, result.order_parameter[0], strict=True) if v != 0
            ),
        }
        if recorder is not None:
            snapshots = [(label, rec, result.components) for label, rec in recorder.start_middle_end()]
    return out, snapshots


# ----------------------------------------------------------------------------------------------- plots
def plot_fig1(curie: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matsym.signals import evaluate

    phi, dirs = _xy_directions()
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    titles = {"rectangle_to_square": "rectangle -> square", "square_to_rectangle": "square -> rectangle"}
    for ax, (key, data) in zip(axes, curie.items(), strict=True):
        start, goal = np.array(data["start"]), np.array(data["goal"])
        signals = np.array(data["signals"])
        values = evaluate(signals, data["lmax"], dirs)  # [4, n_dir]
        scale = 0.6 / max(float(np.abs(values).max()), 1e-12)
        ax.fill(start[:, 0], start[:, 1], fill=False, lw=1.5, color="k", label="input")
        ax.fill(goal[:, 0], goal[:, 1], fill=False, lw=1.2, ls=":", color="gray", label="desired")
        for i in range(len(start)):
            ax.annotate("", xy=goal[i, :2], xytext=start[i, :2], arrowprops={"arrowstyle": "->", "color": "green"})
            _polar_curve(ax, phi, values[i], origin=start[i, :2], scale=scale)
        verdict = "compatible" if data["compatible"] else "incompatible"
        ax.set_title(
            f"{titles[key]}: {verdict}\nloss ratio {data['loss_ratio']:.2g}; degenerate: "
            f"{data['degenerate_vertices'] or 'none'}",
            fontsize=10,
        )
        ax.set_aspect("equal")
        ax.set_xlabel("x (Å)")
        ax.set_ylabel("y (Å)")
        ax.legend(loc="center", fontsize=8)
    fig.suptitle("Fig. 1: predicted displacement signals in the xy plane (blue > 0, red dashed < 0; scaled to fit)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_fig2(snapshots: list, lmax: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matsym.signals import evaluate

    phi, dirs = _xy_directions()
    fig, axes = plt.subplots(2, 3, figsize=(11, 7.5), subplot_kw={"projection": "polar"})
    for col, (label, rec, components) in enumerate(snapshots):
        f_in = _op_function(rec["op"], components, dirs)
        _polar_curve(axes[0, col], phi, f_in, polar=True)
        big = 1e-3 * max(float(np.abs(rec["op"]).max()), 1e-30)
        nonzero = [" ".join(c.split()[:2]) for c, v in zip(components, rec["op"], strict=True) if abs(v) > big]
        axes[0, col].set_title(
            f"{label}: input (1·Y00 + 0e, 2e, 4e parts)\n{', '.join(nonzero[:4]) or 'scalar only'}",
            fontsize=9,
        )
        f_out = evaluate(rec["signal"], lmax, dirs)
        _polar_curve(axes[1, col], phi, f_out, polar=True)
        axes[1, col].set_title(f"{label}: output signal of vertex 0 (Å)\nloss ratio {rec['loss']:.2g}", fontsize=9)
    fig.suptitle(
        "Fig. 2: global order parameter (top; 2e, 4e and the fixed scalar) and output signal of vertex 0 "
        "(bottom)\nin the xy plane, at the start, middle and end of the order-parameter optimisation"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from matsym.structures import square_rectangle

    overrides = dict(QUICK) if args.quick else {}
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    square, rectangle = square_rectangle(args.elongation)
    print(
        f"Square -> rectangle (paper Figs. 1 and 2); rectangle {100 * args.elongation:g}% longer along x"
        + (" [--quick: small step budgets, figures not converged]" if args.quick else "")
    )

    curie = curie_part(square, rectangle, args, overrides)
    ops, snapshots = order_parameter_part(square, rectangle, args, overrides)

    plot_fig1(curie, args.out / "fig1_curie.png")
    lmax = curie["square_to_rectangle"]["lmax"]
    if snapshots:
        plot_fig2(snapshots, lmax, args.out / "fig2_order_parameter.png")
        print("\nFig. 2 snapshots (candidates up to L=5): the global order parameter, nonzero components")
        for label, rec, components in snapshots:
            parts = ", ".join(f"{c} {v:+.4f}" for c, v in zip(components, rec["op"], strict=True) if abs(v) > 1e-6)
            print(f"  {label:6s} loss ratio {rec['loss']:.3g}: {parts or 'zero (only the fixed scalar input)'}")
    summary = {
        "curie": {
            k: {kk: vv for kk, vv in v.items() if kk not in ("signals", "start", "goal")} for k, v in curie.items()
        },
        "order_parameter": ops,
        "fig2": [
            {
                "stage": label,
                "loss_ratio": rec["loss"],
                "order_parameter": {c: float(v) for c, v in zip(components, rec["op"], strict=True) if v != 0},
            }
            for label, rec, components in snapshots
        ],
        "quick": args.quick,
        "seed": args.seed,
        "seconds": time.perf_counter() - t0,
    }
    (args.out / "figures.json").write_text(json.dumps(summary, indent=1))
    print(
        f"\nwrote {args.out / 'fig1_curie.png'}, {args.out / 'fig2_order_parameter.png'}, "
        f"{args.out / 'figures.json'} ({summary['seconds']:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

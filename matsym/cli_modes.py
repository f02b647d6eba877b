"""``matsym modes PARENT TARGET``: the distortion from PARENT to TARGET as symmetry modes of PARENT's group.

The AMPLIMODES/ISODISTORT job with no network: the target is registered onto the parent exactly as ``matsym
find`` does, the displacements are projected onto the irreps of the parent's space group, and a mode table is
printed (``--json``: one object with ``parent``, ``subgroup``, ``modes``, ``strain``; ``--plot FILE``: a PNG bar
chart of the amplitudes). Exit status as for every ``matsym`` command: 0 success, 1 user error (one line on
stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from matsym.errors import InputError

__all__ = ["add_parser", "run"]


def _origin(text: str) -> tuple[float, float, float]:
    from fractions import Fraction

    parts = text.replace(" ", "").split(",")
    try:
        values = tuple(float(Fraction(p)) for p in parts)
    except (ValueError, ZeroDivisionError) as exc:
        raise argparse.ArgumentTypeError(f"expected three fractions like 1/2,1/2,1/2, got {text!r}") from exc
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three fractions like 1/2,1/2,1/2, got {text!r}")
    return values  # type: ignore[return-value]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``matsym modes``."""
    p = subparsers.add_parser(
        "modes",
        help="decompose the distortion PARENT -> TARGET into symmetry modes (irreps, amplitudes in Å)",
        description="Decompose the distortion that takes PARENT to TARGET into symmetry modes of PARENT's space "
        "group: irrep labels (CDML, with matsym[labels]), amplitudes As/Ap in Å (ISODISTORT normalisation), "
        "directions, isotropy subgroups, strain by the point group's irreps. No network, no search.",
    )
    p.add_argument("parent", metavar="PARENT", help="high-symmetry structure file")
    p.add_argument("target", metavar="TARGET", help="distorted structure file")
    p.add_argument(
        "--origin",
        type=_origin,
        metavar="X,Y,Z",
        help="put the parent's origin at this point (fractional, e.g. 1/2,1/2,1/2); labels depend on it",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", metavar="FILE", help="write a PNG bar chart of the amplitudes")
    p.add_argument("--force", action="store_true", help="overwrite the --plot file if it exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``matsym modes``."""
    from matsym.io import load_structure
    from matsym.modes import decompose

    plot = Path(args.plot) if args.plot else None
    if plot is not None and plot.exists() and not args.force:
        raise InputError(f"--plot {plot} exists; use --force to overwrite it")
    parent, target = load_structure(args.parent), load_structure(args.target)
    result = decompose(parent, target, origin=args.origin)
    if plot is not None:
        _plot(result, plot)
    if args.json:
        print(json.dumps(result.as_dict(), indent=1))
    else:
        print(result.table())
    return 0


def _plot(result, path: Path) -> None:
    import os
    import tempfile

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise InputError("--plot needs matplotlib: pip install matsym[plot]") from exc
    names = [m.irrep for m in result.modes]
    fig, ax = plt.subplots(figsize=(max(3.0, 0.6 * len(names) + 1.5), 3.0))
    ax.bar(names, [m.amplitude for m in result.modes], color="tab:blue")
    ax.set_ylabel("As (Å)" if result.kind == "displacement" else "share of |OP|²")
    ax.set_title(f"{result.parent['space_group']['symbol']} → {result.subgroup['symbol']}")
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent if str(path.parent) else ".")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)

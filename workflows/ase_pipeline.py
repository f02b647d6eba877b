"""An ASE pipeline: Atoms in, order parameters on Atoms out, through an extxyz file.

Builds a parent and a target as ASE Atoms (cubic SrTiO3 and its a0a0c- tilted I4/mcm form, via
:mod:`matsym.structures` and :func:`matsym.io.to_ase`), runs :func:`matsym.atoms.find_order_parameter`, writes
the predicted structure as extended XYZ with the per-site arrays (``order_parameter``,
``predicted_displacements``, ...) and the run's metadata (``atoms.info``), reads the file back with
``ase.io.read`` and prints the order parameter of every site that carries one.

Usage::

    python workflows/ase_pipeline.py out/predicted.extxyz           # refuses to overwrite ...
    python workflows/ase_pipeline.py out/predicted.extxyz --force   # ... unless --force
    python workflows/ase_pipeline.py out/predicted.extxyz --quick   # short search (tests)
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["QUICK_SEARCH", "main", "run"]

#: Search settings of ``--quick``.
QUICK_SEARCH: dict[str, Any] = {"fit_steps": 60, "max_steps": 60, "search_steps": 40, "polish_steps": 30}


def run(output: str | Path, *, quick: bool = False, force: bool = False):
    """Search, write ``output`` (extxyz, atomically), read it back; return ``(written_atoms, read_atoms)``.

    Raises:
        MatsymError: the search fails, or ``output`` exists and ``force`` is False.
    """
    import ase.io

    from matsym.atoms import find_order_parameter
    from matsym.errors import FileFormatError
    from matsym.io import atomic_write_text, to_ase
    from matsym.structures import tilted_perovskite

    output = Path(output)
    if output.exists() and not force:  # fail before the search, not after
        raise FileFormatError(f"{output} exists; use --force to overwrite it")
    parent, target = tilted_perovskite("a0a0c-", 8.0)
    parent_atoms, target_atoms = to_ase(parent), to_ase(target)
    atoms = find_order_parameter(parent_atoms, target_atoms, sites="Ti", irreps="1e", **(QUICK_SEARCH if quick else {}))
    buffer = io.StringIO()
    ase.io.write(buffer, atoms, format="extxyz")
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output, buffer.getvalue(), force=force)
    back = ase.io.read(output, format="extxyz")
    return atoms, back


def main(argv: list[str] | None = None) -> int:
    """Run the pipeline and print the order parameters read back from the file; 0 on success, 1 on error."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", help="extxyz file to write, e.g. out/predicted.extxyz")
    parser.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    parser.add_argument("--quick", action="store_true", help="short search (rough result)")
    args = parser.parse_args(argv)

    from matsym.errors import MatsymError

    try:
        atoms, back = run(args.output, quick=args.quick, force=args.force)
    except MatsymError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    components = str(back.info["components"]).split(";")
    op = np.asarray(back.arrays["order_parameter"]).reshape(len(back), -1)  # [n, dim]
    same = np.allclose(op, atoms.arrays["order_parameter"].reshape(len(atoms), -1), atol=1e-6)
    print(f"wrote {args.output}: {len(back)} atoms, arrays {sorted(back.arrays)}")
    prefix = "irrep_fraction_"
    fractions = ", ".join(f"{k[len(prefix) :]}={float(v):.3f}" for k, v in back.info.items() if k.startswith(prefix))
    print(f"space group {back.info.get('space_group_1e-3')} (symprec 1e-3), irrep fractions {fractions}")
    print(f"order parameter per site ({', '.join(components)}), read back from the file:")
    for i in np.asarray(back.info["order_parameter_sites"]).reshape(-1):
        values = " ".join(f"{v:+.4f}" for v in op[int(i)])
        print(f"  site {int(i):3d} {back[int(i)].symbol:>2s}: {values}")
    print("round trip:", "order parameters identical to within 1e-6" if same else "MISMATCH")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

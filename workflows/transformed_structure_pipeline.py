"""A pymatgen ``TransformedStructure`` pipeline: parent -> order parameter -> distorted structures as CIF.

1. ``OrderParameterSearchTransformation(target, ...)`` runs the search inside a transformation: one step from
   the cubic parent to the distorted structure (here the a+b-b- tilted, Pnma SrTiO3 of
   :mod:`matsym.structures`).
2. ``OrderParameterTransformation(result, amplitude)`` replays the learned distortion on the parent at
   amplitudes 0.5 and 1.0 (half way along the path, and the full distortion).

Each TransformedStructure's history (space groups found, amplitude, order-parameter summary) is printed, and
the structures are written as CIF (plus the search result as JSON and each TransformedStructure as JSON, for
provenance) into the output folder, atomically; existing files are never replaced without ``--force``.

Usage::

    python workflows/transformed_structure_pipeline.py out/            # writes out/*.cif, out/*.json
    python workflows/transformed_structure_pipeline.py out/ --force    # overwrite existing files
    python workflows/transformed_structure_pipeline.py out/ --quick    # short search (tests)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["AMPLITUDES", "QUICK_SEARCH", "main", "outputs", "run"]

#: Amplitudes at which the learned distortion is replayed.
AMPLITUDES: tuple[float, ...] = (0.5, 1.0)
#: Search settings of ``--quick``.
QUICK_SEARCH: dict[str, Any] = {"fit_steps": 60, "max_steps": 60, "search_steps": 40, "polish_steps": 30}


def _tag(amplitude: float) -> str:
    return repr(float(amplitude))  # "0.5", "1.0"


def outputs(folder: str | Path) -> dict[str, Path]:
    """Every file the pipeline writes, by role."""
    folder = Path(folder)
    files = {
        "search_cif": folder / "searched.cif",
        "search_ts": folder / "searched_transformed_structure.json",
        "result": folder / "result.json",
    }
    for amplitude in AMPLITUDES:
        files[f"cif_{_tag(amplitude)}"] = folder / f"amplitude_{_tag(amplitude)}.cif"
        files[f"ts_{_tag(amplitude)}"] = folder / f"amplitude_{_tag(amplitude)}_transformed_structure.json"
    return files


def _history_lines(ts: Any) -> list[str]:
    lines = []
    for step, entry in enumerate(ts.history):
        out = entry.get("output") or {}
        op = out.get("order_parameter") or {}
        groups = out.get("space_groups") or {}
        lines.append(
            f"  step {step}: {entry.get('@class')} amplitude={out.get('amplitude')} "
            f"matched_as={out.get('matched_as')!r} "
            f"max_displacement={out.get('max_displacement', float('nan')):.4f} A"
        )
        lines.append(
            "          space groups: "
            + ", ".join(f"{tol}: {sg[1]} ({sg[0]})" for tol, sg in groups.items())
            + f"; dominant irreps {op.get('dominant_irreps')}"
        )
        if "search" in out:
            lines.append(f"          search verdict: {out['search'].get('verdict')}")
    return lines


def run(folder: str | Path, *, quick: bool = False, force: bool = False) -> dict[str, Any]:
    """Run the pipeline and write its files into ``folder``.

    Returns:
        ``{"search": TransformedStructure, 0.5: TransformedStructure, 1.0: ..., "files": {role: Path}}``.

    Raises:
        MatsymError: the search fails, or an output exists and ``force`` is False (checked before the search).
    """
    from monty.json import MontyEncoder
    from pymatgen.alchemy.materials import TransformedStructure

    from matsym.errors import FileFormatError
    from matsym.io import atomic_write_text, write_structure
    from matsym.structures import tilted_perovskite
    from matsym.transformations import OrderParameterSearchTransformation, OrderParameterTransformation

    files = outputs(folder)
    existing = [str(p) for p in files.values() if p.exists()]
    if existing and not force:
        raise FileFormatError(f"output files exist: {', '.join(existing)}; use --force to overwrite them")
    parent, target = tilted_perovskite("a+b-b-", 8.0)

    search = OrderParameterSearchTransformation(
        target, sites="Ti", irreps="1e+1o", amplitude=1.0, search_kwargs=QUICK_SEARCH if quick else {}
    )
    out: dict[str, Any] = {"search": TransformedStructure(parent, [search])}
    result = search.result  # kept by the transformation after it ran
    for amplitude in AMPLITUDES:
        out[amplitude] = TransformedStructure(parent, [OrderParameterTransformation(result, amplitude)])

    Path(folder).mkdir(parents=True, exist_ok=True)
    result.to_json(files["result"], force=force)
    for key, ts in (("search", out["search"]), *((_tag(a), out[a]) for a in AMPLITUDES)):
        cif, ts_json = (
            (files["search_cif"], files["search_ts"])
            if key == "search"
            else (
                files[f"cif_{key}"],
                files[f"ts_{key}"],
            )
        )
        write_structure(ts.final_structure, cif, force=force)
        atomic_write_text(ts_json, json.dumps(ts.as_dict(), indent=1, cls=MontyEncoder), force=force)
    out["files"] = files
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the pipeline, print the histories and the files written; 0 on success, 1 on error."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="output folder (created if missing)")
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")
    parser.add_argument("--quick", action="store_true", help="short search (rough result)")
    args = parser.parse_args(argv)

    from matsym.errors import MatsymError

    try:
        out = run(args.folder, quick=args.quick, force=args.force)
    except MatsymError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("OrderParameterSearchTransformation (parent -> distorted in one step):")
    print("\n".join(_history_lines(out["search"])))
    for amplitude in AMPLITUDES:
        print(f"OrderParameterTransformation at amplitude {_tag(amplitude)}:")
        print("\n".join(_history_lines(out[amplitude])))
    print("wrote:")
    for path in out["files"].values():
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

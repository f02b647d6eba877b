"""A built-in screening set: 24 perovskite parent/target pairs, and a writer for pairs files.

The pairs are built from their physical description by :mod:`matsym.structures` (no coordinates copied from a
database): the 13 Glazer tilt systems of ``examples/tilt_systems.py`` (Glazer, Acta Cryst. B 28, 3384 (1972);
space groups of Howard & Stokes, Acta Cryst. B 54, 782 (1998)), six ferroelectric off-centrings (B site alone
and B with A along [001], [011], [111]: P4mm, Amm2, R3m) and five cooperative Jahn-Teller orders (LaMnO3-like
Q2 and Q3 orders stacked in and out of phase, and Q2 with the a-a-c+ tilts of LaMnO3's Pnma structure: Rodriguez-
Carvajal et al., Phys. Rev. B 57, R3189 (1998)). Each searches in seconds on one core with default settings;
``benchmarks/bench_screen.py`` and the acceptance check of ``matsym screen`` use them. The target's space group is
never stored here: spglib computes it from the built target.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matsym.errors import FileFormatError, InputError

__all__ = ["TILT_SYSTEMS", "perovskite_pairs", "write_pairs"]

_UNEQUAL = (5.0, 6.0, 7.0)
#: Glazer symbol -> tilt angles in degrees (one for every tilted axis, or about x, y, z).
TILT_SYSTEMS: dict[str, float | tuple[float, float, float]] = {
    "a0a0c-": 8.0,
    "a0a0c+": 8.0,
    "a-a-a-": 6.0,
    "a+a+a+": 6.0,
    "a+b-b-": 8.0,
    "a0b-b-": 7.0,
    "a0b+b+": (0.0, 6.0, 6.0),
    "a0b+c-": (0.0, 6.0, 7.0),
    "a0b-c-": (0.0, 6.0, 7.0),
    "a+b+c-": _UNEQUAL,
    "a+b-c-": _UNEQUAL,
    "a-b-c-": _UNEQUAL,
    "a+b+c+": _UNEQUAL,
}
_POLAR = {"001": (0, 0, 1), "011": (0, 1, 1), "111": (1, 1, 1)}


def perovskite_pairs() -> dict[str, tuple[Any, Any]]:
    """The 24 pairs ``{name: (parent, target)}`` (pymatgen Structures, parent on the target's cell).

    Names: ``tilt a+b-b-`` ..., ``polar 001`` (B off centre by 0.1 Å), ``polar 001 A+B`` (A too, by 0.05 Å),
    ``JT Q2+``, ``JT Q2-``, ``JT Q3+``, ``JT Q3-`` (0.1 Å, stacked in or out of phase along z) and
    ``JT Q2+ a-a-c+`` (with 8-degree tilts).
    """
    from matsym.structures import jahn_teller_perovskite, polar_perovskite, tilted_perovskite

    pairs: dict[str, tuple[Any, Any]] = {}
    for glazer, angles in TILT_SYSTEMS.items():
        pairs[f"tilt {glazer}"] = tilted_perovskite(glazer, list(angles) if isinstance(angles, tuple) else angles)
    for label, direction in _POLAR.items():
        pairs[f"polar {label}"] = polar_perovskite(direction, 0.1)
        pairs[f"polar {label} A+B"] = polar_perovskite(direction, 0.1, a_site_amplitude=0.05)
    for q, kwargs in (("Q2", {"q2": 0.1}), ("Q3", {"q2": 0.0, "q3": 0.1})):
        for pattern in "+-":
            pairs[f"JT {q}{pattern}"] = jahn_teller_perovskite(pattern=pattern, **kwargs)
    pairs["JT Q2+ a-a-c+"] = jahn_teller_perovskite(q2=0.1, pattern="+", glazer="a-a-c+", angles_deg=8.0)
    return pairs


def _file_stem(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name.replace("+", "p").replace("-", "m"))


def write_pairs(
    folder: str | os.PathLike,
    pairs: Mapping[str, tuple[Any, Any]],
    *,
    csv_name: str = "pairs.csv",
    columns: Mapping[str, Mapping[str, str]] | None = None,
) -> Path:
    """Write each pair as two CIF files and a pairs CSV (``name,parent,target`` and optional columns).

    Args:
        folder: Output folder (created if missing); no existing file in it is overwritten.
        pairs: ``{name: (parent, target)}``; a structure given as a path (str or Path) is written into the CSV as
            it is (relative to ``folder``), not copied, so a pair can name a file that does not exist.
        csv_name: File name of the CSV.
        columns: Optional per-pair cells ``{name: {"sites": "Ti", "irreps": "1e", ...}}``.

    Returns:
        The CSV's path.

    Raises:
        FileFormatError: a file to write exists.
        InputError: a name is empty or has a line break.
    """
    import csv
    import io as _io

    from matsym.io import atomic_write_text, write_structure

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    extra = sorted({k for cells in (columns or {}).values() for k in cells})
    rows = []
    for name, (parent, target) in pairs.items():
        if not name or "\n" in name or "\r" in name:
            raise InputError(f"pair names must be non-empty single lines, got {name!r}")
        files = []
        for role, structure in (("parent", parent), ("target", target)):
            if isinstance(structure, (str, os.PathLike)):
                files.append(str(structure))
                continue
            file_name = f"{_file_stem(name)}_{role}.cif"
            write_structure(structure, out / file_name)
            files.append(file_name)
        cells = (columns or {}).get(name, {})
        rows.append([name, *files, *(cells.get(k, "") for k in extra)])
    buffer = _io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", "parent", "target", *extra])
    writer.writerows(rows)
    path = out / csv_name
    if path.exists():
        raise FileFormatError(f"cannot write {path}: it exists")
    return atomic_write_text(path, buffer.getvalue())

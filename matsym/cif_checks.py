"""Checks of CIF cells and POSCAR counts that pymatgen's readers skip or report without a reason.

Measured on main at 186e0aa: a CIF with a NaN, zero or collinear cell, or with an atom listed twice, failed with
pymatgen's "No structure parsed for section 1"; a negative cell length or angle was accepted and gave a
left-handed cell; a POSCAR whose counts promised fewer atoms than it listed was read as another compound (the
extra lines were dropped silently), and one that promised more ended in "IndexError: list index out of range".
An extended XYZ file whose first line promises 99,999,999,999 atoms made ASE's reader loop for hours on an
exhausted file (found by ``make fuzz``). These functions look at the raw numbers first and say what was expected
and what the file holds.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from matsym.errors import FileFormatError, StructureError

__all__ = ["check_cif_cells", "check_poscar_counts", "check_xyz_header", "explain_cif_failure"]

_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?:\(\d+\))?\s*$")
_CELL = ("_cell_length_a", "_cell_length_b", "_cell_length_c", "_cell_angle_alpha", "_cell_angle_beta")
_CELL += ("_cell_angle_gamma",)


def _cif_number(text: Any) -> float:
    """A CIF number ("5.52", "5.52(3)"), or NaN for anything else ("?", ".", "nan", garbage)."""
    m = _NUMBER.match(str(text))
    return float(m.group(1)) if m else math.nan


def check_cif_cells(blocks: list, path: Path) -> None:
    """Refuse a CIF block whose cell parameters are missing numbers, non-positive, or describe no volume.

    Raises:
        StructureError: a length <= 0 or not a number, an angle outside (0, 180) degrees, or angles that leave the
            three vectors in one plane.
    """
    for block in blocks:
        data = block.data
        if "_cell_length_a" not in data:
            continue
        values = {}
        for key in _CELL:
            raw = data.get(key, "90" if "angle" in key else None)
            if raw is None:
                raise StructureError(f"{path}: {key} is missing; expected the six cell parameters")
            if isinstance(raw, list):
                raw = raw[0] if raw else ""
            value = _cif_number(raw)
            if not math.isfinite(value):
                raise StructureError(f"{path}: {key} is {raw!r}; expected a finite number")
            values[key] = value
        for key in _CELL[:3]:
            if values[key] <= 0:
                raise StructureError(f"{path}: {key} is {values[key]:g}; expected a length > 0 Å")
        for key in _CELL[3:]:
            if not 0 < values[key] < 180:
                raise StructureError(f"{path}: {key} is {values[key]:g}; expected an angle between 0 and 180 degrees")
        ca, cb, cg = (math.cos(math.radians(values[k])) for k in _CELL[3:])
        factor = 1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg
        if factor <= 1e-10:
            angles = ", ".join(f"{values[k]:g}" for k in _CELL[3:])
            raise StructureError(
                f"{path}: cell angles {angles} degrees put the three cell vectors in one plane (no volume); "
                "expected angles of a three-dimensional cell"
            )


def explain_cif_failure(blocks: list, path: Path) -> Exception | None:
    """A clearer error for a CIF that pymatgen could not parse (atoms listed twice, a coordinate that is not a
    number), or None when there is none to give."""
    for block in blocks:
        data = block.data
        if "_atom_site_fract_x" not in data:
            continue
        try:
            frac = np.array(
                [[_cif_number(x) for x in data[f"_atom_site_fract_{k}"]] for k in "xyz"], dtype=np.float64
            ).T
        except (KeyError, TypeError):
            break
        labels = [str(x) for x in data.get("_atom_site_label", range(len(frac)))]
        bad = ~np.isfinite(frac).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            label = labels[i] if i < len(labels) else i
            return StructureError(f"{path}: atom site {label} has a coordinate that is not a number")
        for i in range(len(frac)):
            d = frac[i + 1 :] - frac[i]
            d -= np.round(d)
            close = np.flatnonzero(np.abs(d).max(axis=1) < 1e-3)
            if close.size:
                j = i + 1 + int(close[0])
                return StructureError(
                    f"{path}: atom sites {labels[i]} and {labels[j]} are at the same position "
                    f"({', '.join(f'{x:g}' for x in frac[i])}); remove the duplicate row"
                )
    return None


def check_poscar_counts(text: str, path: Path) -> None:
    """Refuse a POSCAR whose atom counts do not match the coordinate lines that follow.

    The counts line is the sixth line, or the seventh when the sixth names the elements (VASP 5). After it come
    an optional "Selective dynamics" line, the "Direct"/"Cartesian" line, and one line per atom; a further line of
    three numbers right after them (no blank line) means the counts promise fewer atoms than the file lists.

    Raises:
        FileFormatError: counts that are not non-negative integers, fewer coordinate lines than the counts
            promise, or more.
    """
    lines = text.splitlines()
    if len(lines) < 7:
        raise FileFormatError(f"cannot read {path} as poscar: {len(lines)} lines; a POSCAR has at least 8")
    k = 5
    if not _is_int(lines[5].split()[0] if lines[5].split() else ""):
        k = 6  # element symbols on line 6, counts on line 7
    counts_text = lines[k].split() if k < len(lines) else []
    if not counts_text or not all(_is_int(x) for x in counts_text):
        raise FileFormatError(
            f"cannot read {path} as poscar: line {k + 1} should hold the atom counts (integers), got "
            f"{(lines[k] if k < len(lines) else '').strip()[:60]!r}"
        )
    counts = [int(x) for x in counts_text]
    if any(c < 0 for c in counts) or sum(counts) == 0:
        raise FileFormatError(f"cannot read {path} as poscar: atom counts {counts} must be >= 0 with a positive sum")
    if k == 6 and len(lines[5].split()) != len(counts):
        raise FileFormatError(
            f"cannot read {path} as poscar: {len(lines[5].split())} element symbols on line 6 but "
            f"{len(counts)} counts on line 7"
        )
    start = k + 1
    if start < len(lines) and lines[start].strip()[:1] in ("S", "s"):
        start += 1  # Selective dynamics
    start += 1  # Direct / Cartesian
    n = sum(counts)
    coords = lines[start : start + n]
    listed = sum(1 for line in coords if _is_coordinate(line))
    if listed < n:
        raise FileFormatError(
            f"cannot read {path} as poscar: the counts {counts} promise {n} atoms but {listed} coordinate lines follow"
        )
    if start + n < len(lines) and _is_coordinate(lines[start + n]):
        extra = 0
        for line in lines[start + n :]:
            if not _is_coordinate(line):
                break
            extra += 1
        raise FileFormatError(
            f"cannot read {path} as poscar: the counts {counts} promise {n} atoms but {n + extra} coordinate "
            "lines follow; correct the counts"
        )


def _is_int(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?\d+", text))


def _is_coordinate(line: str) -> bool:
    parts = line.split()
    if len(parts) < 3:
        return False
    try:
        [float(x) for x in parts[:3]]
    except ValueError:
        return False
    return True


def check_xyz_header(text: str, path: Path, max_atoms: int) -> None:
    """Refuse an (extended) XYZ file whose first frame's atom count is not an integer in 1..``max_atoms`` or
    promises more atom lines than the file holds.

    Raises:
        FileFormatError: the count line is malformed or promises too many atoms.
    """
    lines = text.splitlines()
    first = lines[0].strip() if lines else ""
    if not _is_int(first):
        raise FileFormatError(f"cannot read {path} as extxyz: line 1 should be the number of atoms, got {first[:40]!r}")
    n = int(first)
    if not 1 <= n <= max_atoms:
        raise FileFormatError(
            f"cannot read {path} as extxyz: line 1 promises {n} atoms; expected 1 to max_atoms={max_atoms} "
            "(--max-atoms)"
        )
    if len(lines) < n + 2:
        raise FileFormatError(
            f"cannot read {path} as extxyz: line 1 promises {n} atoms but the file has {max(len(lines) - 2, 0)} "
            "atom lines"
        )

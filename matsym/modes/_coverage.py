"""Check the character matching of spgrep's small irreps against the Bilbao tables, one space group at a time.

For a space group, a structure with one atom in general position is built in the tables' setting (spglib's
database operations for the Hall number of :func:`matsym.modes._labels.table_hall_number`); at every k-point of
the table, spgrep's small irreps of the structure's primitive cell are matched by characters. A k-point counts as
matched one to one when every one of spgrep's irreps matches exactly one table irrep and no table irrep is used
twice.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from matsym.modes import _labels as lab

# three orbits of general positions with three species: one orbit alone can have more symmetry (P1 with one
# atom is P-1)
_GENERAL = np.array([[0.1234, 0.2345, 0.3456], [0.3817, 0.0741, 0.1922], [0.2718, 0.4142, 0.0577]])


@dataclasses.dataclass(frozen=True)
class GroupCoverage:
    """Matching figures of one space group: k-points in the table, k-points matched one to one, failures."""

    number: int
    kpoints: int
    matched: int
    failures: tuple[str, ...]


def _lattice(number: int) -> np.ndarray:
    from pymatgen.core import Lattice

    if number <= 2:
        return Lattice.from_parameters(5.0, 6.0, 7.0, 80.0, 85.0, 95.0).matrix
    if number <= 15:
        return Lattice.from_parameters(5.0, 6.0, 7.0, 90.0, 100.0, 90.0).matrix
    if number <= 74:
        return Lattice.from_parameters(5.0, 6.0, 7.0, 90.0, 90.0, 90.0).matrix
    if number <= 142:
        return Lattice.from_parameters(5.0, 5.0, 7.0, 90.0, 90.0, 90.0).matrix
    if number <= 194:
        return Lattice.from_parameters(5.0, 5.0, 7.0, 90.0, 90.0, 120.0).matrix
    return Lattice.cubic(5.0).matrix


def general_structure(number: int):
    """A structure of space group ``number`` in the tables' setting: one orbit of a general position."""
    from pymatgen.core import Lattice, Structure

    from matsym.symmetry import _spglib_raising

    with _spglib_raising() as spglib:
        ops = spglib.get_symmetry_from_database(lab.table_hall_number(number))
    pts: list[np.ndarray] = []
    species: list[str] = []
    for element, point in zip(("C", "N", "O"), _GENERAL, strict=True):
        orbit: list[np.ndarray] = []
        for r, t in zip(ops["rotations"], ops["translations"], strict=True):
            x = (r @ point + t) % 1.0
            if not any(np.abs((x - y) - np.rint(x - y)).max() < 1e-6 for y in orbit):
                orbit.append(x)
        pts += orbit
        species += [element] * len(orbit)
    return Structure(Lattice(_lattice(number)), species, pts)


def group_coverage(number: int) -> GroupCoverage:
    """Match characters at every k-point of the table of space group ``number``.

    Raises:
        RuntimeError: the optional tables (``matsym[labels]``) are not installed.
    """
    from matsym.modes._decompose import _Setting
    from matsym.modes._group import parent_group
    from matsym.modes._project import small_irreps

    table = lab.load_table(number)
    if table is None:
        raise RuntimeError("the irreptables data files are not installed: pip install matsym[labels]")
    group = parent_group(general_structure(number), symprec=1e-4)
    setting = _Setting(group, 1e-4, want_labels=True)
    w, t = setting.std_ops(group)
    matched, failures = 0, []
    for tk in table.kpoints:
        k_p = setting.k_prim(tk.k)
        mats, little = small_irreps(group, k_p)
        chars = np.array([np.trace(m, axis1=1, axis2=2) for m in mats])
        idx = lab.match_characters(tk, table, w[little], t[little], chars)
        if None not in idx and len(set(idx)) == len(idx) == len(tk.labels):
            matched += 1
        else:
            failures.append(
                f"{tk.name} {tk.k.tolist()}: {len(mats)} spgrep irreps, {len(tk.labels)} in table, matches {idx}"
            )
    return GroupCoverage(number, len(table.kpoints), matched, tuple(failures))

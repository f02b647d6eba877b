"""Space-group verification with spglib (the only matsym module that imports spglib).

Small distortions are easily symmetrised away at a loose tolerance, and numerical noise breaks symmetry at a
tight one, so matsym always verifies over a sweep of tolerances (:data:`DEFAULT_SYMPRECS`) and reports the
group found at
each::

    >>> verify_space_group(structure, expect="Pnma")  # raises SymmetryMismatchError unless 62 at every
    symprec {1e-05: (62, 'Pnma'), 0.0001: (62, 'Pnma'), ...}

Expected groups may be given as a number or a Hermann-Mauguin symbol in any setting ("Pnma", "Pbnm", "P2_1/n",
"R-3c"); a symbol is resolved to its number through spglib's table of the 530 Hall settings.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from matsym.errors import DisorderError, MatsymError, StructureError, SymmetryMismatchError

if TYPE_CHECKING:
    from pymatgen.core import Molecule, Structure

__all__ = [
    "DEFAULT_SYMPRECS",
    "point_group",
    "space_group",
    "space_group_number",
    "symmetry_operations",
    "verify_space_group",
]

DEFAULT_SYMPRECS: tuple[float, ...] = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


# ------------------------------------------------------------------------------------------------------------
# spglib access
# ------------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _spglib_raising() -> Iterator[Any]:
    """Import spglib and make it raise :class:`spglib.error.SpglibError` instead of returning None + warning.

    spglib 2.7 prints a DeprecationWarning on every call under its old error handling and asks callers to opt
    in to exceptions by setting ``spglib.error.OLD_ERROR_HANDLING = False``; we do that for the duration of
    our own calls and restore the previous value afterwards.
    """
    import spglib

    err = getattr(spglib, "error", None)
    has_flag = err is not None and hasattr(err, "OLD_ERROR_HANDLING")
    old = err.OLD_ERROR_HANDLING if has_flag else None
    try:
        if has_flag:
            err.OLD_ERROR_HANDLING = False
        with warnings.catch_warnings():
            # SPGLIB_OLD_ERROR_HANDLING=1 in the environment overrides the flag; keep quiet then as well
            warnings.filterwarnings("ignore", message=".*OLD_ERROR_HANDLING.*", category=DeprecationWarning)
            yield spglib
    finally:
        if has_flag:
            err.OLD_ERROR_HANDLING = old


def _spglib_errors(spglib: Any) -> tuple[type[BaseException], ...]:
    err = getattr(spglib, "error", None)
    cls = getattr(err, "SpglibError", None)
    return (cls,) if isinstance(cls, type) else ()


def _to_structure(obj: Any) -> Structure:
    """Accept a pymatgen Structure, an ASE Atoms or a file path; return an ordered pymatgen Structure."""
    from pymatgen.core import IMolecule, IStructure

    from matsym.io import load_structure

    if isinstance(obj, IMolecule):
        raise StructureError(
            "space groups need a periodic structure, got a pymatgen Molecule; use point_group() for finite clouds"
        )
    structure = obj if isinstance(obj, IStructure) else load_structure(obj, validate=False)
    if not isinstance(structure, IStructure):
        raise StructureError(
            f"space groups need a periodic structure, got a finite point cloud from {type(obj).__name__}; "
            "use point_group() for finite clouds"
        )
    if len(structure) == 0:
        raise StructureError("expected a structure with at least one site, got an empty structure")
    if not structure.is_ordered:
        raise DisorderError(
            f"space-group analysis needs an ordered structure; {structure.composition.reduced_formula} has "
            f"partially occupied or mixed sites"
        )
    return structure


def _cell(structure: Structure) -> tuple[np.ndarray, np.ndarray, list[int]]:
    lattice = np.asarray(structure.lattice.matrix, dtype=np.float64)  # [3, 3]
    frac = np.asarray(structure.frac_coords, dtype=np.float64)  # [n, 3]
    numbers = [site.specie.Z for site in structure]
    return lattice, frac, numbers


def space_group(structure: Structure | Any, symprec: float = 1e-3, angle_tolerance: float = -1) -> tuple[int, str]:
    """Space group of a structure at one tolerance.

    Args:
        structure: pymatgen Structure, ASE Atoms or structure file.
        symprec: Distance tolerance in Angstrom.
        angle_tolerance: Angle tolerance in degrees; -1 lets spglib choose.

    Returns:
        ``(number, international short symbol)``, e.g. ``(62, "Pnma")``.

    Raises:
        StructureError: spglib cannot analyse the structure (its message is included), e.g. atoms closer than
            ``symprec``.
    """
    if not (np.isfinite(symprec) and symprec > 0):
        raise StructureError(f"symprec must be a positive distance in Angstrom, got {symprec!r}")
    s = _to_structure(structure)
    with _spglib_raising() as spglib:
        try:
            dataset = spglib.get_symmetry_dataset(_cell(s), symprec=symprec, angle_tolerance=angle_tolerance)
        except _spglib_errors(spglib) as exc:
            raise StructureError(
                f"spglib could not find the space group of {s.composition.reduced_formula} ({len(s)} "
                f"sites) at symprec={symprec}: {exc}"
            ) from exc
    if dataset is None:  # older spglib: None instead of an exception
        raise StructureError(
            f"spglib could not find the space group of {s.composition.reduced_formula} ({len(s)} sites) at "
            f"symprec={symprec}"
        )
    return int(dataset.number), str(dataset.international)


def _symbol_key(symbol: str) -> str:
    key = symbol.split(":")[0].replace(" ", "").replace("_", "")
    return key[:1].upper() + key[1:]


@functools.cache
def _symbol_table() -> dict[str, int]:
    """Map of normalised Hermann-Mauguin symbols (every setting spglib knows) to space-group numbers."""
    table: dict[str, int] = {}
    with _spglib_raising() as spglib:
        for hall in range(1, 531):
            t = spglib.get_spacegroup_type(hall)
            names = [t.international_short, t.international_full, *t.international.split("=")]
            tokens = t.international_full.split()
            if len(tokens) == 4 and tokens.count("1") == 2:  # monoclinic "P 1 2_1/n 1" -> "P2_1/n"
                names.append(tokens[0] + next(tok for tok in tokens[1:] if tok != "1"))
            for name in names:
                table.setdefault(_symbol_key(name), int(t.number))
    return table


def space_group_number(expect: int | str) -> int:
    """Resolve a space group given as a number or a Hermann-Mauguin symbol in any setting to its number.

    Args:
        expect: 1-230, a numeric string, or a symbol such as ``"Pnma"``, ``"Pbnm"``, ``"P 2_1/n"``,
            ``"Pm-3m"``.
            Spaces and underscores are ignored.

    Returns:
        The International Tables number.

    Raises:
        SymmetryMismatchError: the number is out of range or the symbol is not known in any setting.
    """
    if isinstance(expect, bool) or not isinstance(expect, int | np.integer | str):
        raise SymmetryMismatchError(
            f"expected space group must be a number 1-230 or a Hermann-Mauguin symbol, got {expect!r}"
        )
    if isinstance(expect, str) and expect.strip().isdigit():
        expect = int(expect.strip())
    if isinstance(expect, int | np.integer):
        if not 1 <= int(expect) <= 230:
            raise SymmetryMismatchError(f"expected space group number must be in 1-230, got {int(expect)}")
        return int(expect)
    number = _symbol_table().get(_symbol_key(expect.strip()))
    if number is None:
        raise SymmetryMismatchError(
            f"unknown space-group symbol {expect!r}: expected a Hermann-Mauguin symbol in any setting (e.g. "
            f"'Pnma', 'Pbnm', 'P2_1/c', 'Pm-3m') or a number 1-230"
        )
    return number


def verify_space_group(
    structure: Structure | Any,
    *,
    symprecs: Sequence[float] = DEFAULT_SYMPRECS,
    expect: int | str | None = None,
    angle_tolerance: float = -1,
) -> dict[float, tuple[int, str]]:
    """Space group of a structure over a sweep of tolerances, optionally checked against an expected group.

    Args:
        structure: pymatgen Structure, ASE Atoms, or a structure file path.
        symprecs: Distance tolerances (Angstrom) to try, in the order given.
        expect: Expected group as a number or a Hermann-Mauguin symbol in any setting; compared by number.
        angle_tolerance: spglib angle tolerance in degrees (-1: spglib's choice).

    Returns:
        ``{symprec: (number, symbol)}`` in the order of ``symprecs``.

    Raises:
        SymmetryMismatchError: ``expect`` is given and the group differs at any tolerance; the message lists
            the
            group found at every tolerance.
        StructureError: spglib fails at one of the tolerances (e.g. atoms closer than it).
    """
    s = _to_structure(structure)
    symprecs = tuple(float(p) for p in np.atleast_1d(np.asarray(symprecs, dtype=np.float64)))
    if not symprecs:
        raise StructureError("symprecs must hold at least one tolerance, got an empty sequence")
    expected = None if expect is None else space_group_number(expect)
    found = {p: space_group(s, p, angle_tolerance) for p in symprecs}
    if expected is not None and any(num != expected for num, _ in found.values()):
        table = ", ".join(f"{p:g}: {num} ({sym})" for p, (num, sym) in found.items())
        raise SymmetryMismatchError(
            f"expected space group {expect!r} (No. {expected}) for {s.composition.reduced_formula} "
            f"({len(s)} sites) at every symprec, found {table}"
        )
    return found


def point_group(molecule: Molecule | Any, tolerance: float = 0.3, eigen_tolerance: float = 0.01) -> str:
    """Schoenflies point group of a finite point cloud (pymatgen's PointGroupAnalyzer).

    Args:
        molecule: pymatgen Molecule, or ASE Atoms without periodicity.
        tolerance: Distance tolerance (Angstrom) of the analyser.
        eigen_tolerance: Tolerance on the inertia-tensor eigenvalues.

    Returns:
        The Schoenflies symbol, e.g. ``"D4h"`` for a square, ``"D2h"`` for a rectangle.

    Raises:
        StructureError: the input is not a finite molecule.
    """
    from pymatgen.core import Molecule

    if not isinstance(molecule, Molecule):
        try:
            from ase import Atoms
        except ImportError:  # pragma: no cover - ase is a core dependency
            Atoms = ()
        if isinstance(molecule, Atoms) and not any(molecule.pbc):
            from pymatgen.io.ase import AseAtomsAdaptor

            molecule = AseAtomsAdaptor.get_molecule(molecule)
        else:
            raise StructureError(
                f"point_group needs a finite point cloud (pymatgen Molecule or non-periodic ASE Atoms), got "
                f"{type(molecule).__name__}"
            )
    if len(molecule) == 0:
        raise StructureError("point_group needs at least one site, got an empty molecule")
    from pymatgen.symmetry.analyzer import PointGroupAnalyzer

    try:
        return str(PointGroupAnalyzer(molecule, tolerance=tolerance, eigen_tolerance=eigen_tolerance).sch_symbol)
    except MatsymError:  # pragma: no cover
        raise
    except Exception as exc:  # pragma: no cover - pymatgen internals
        raise StructureError(f"could not determine the point group of {molecule.formula}: {exc}") from exc


def symmetry_operations(structure: Structure | Any, symprec: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Space-group operations of a structure from spglib: fractional rotations [k, 3, 3] and translations [k, 3].

    For verification (e.g. checking that a learned order-parameter field is invariant under the target's
    operations); the search itself never uses them.
    """
    s = _to_structure(structure)
    with _spglib_raising() as spglib:
        dataset = spglib.get_symmetry_dataset(_cell(s), symprec=symprec)
    return np.asarray(dataset.rotations), np.asarray(dataset.translations)

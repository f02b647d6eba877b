"""Reading, validating, converting and writing structures.

Everything that enters matsym passes through :func:`load_structure`, which accepts

* a pymatgen :class:`~pymatgen.core.Structure` (periodic crystal) or :class:`~pymatgen.core.Molecule` (finite
  point cloud);
* an ASE :class:`~ase.Atoms`: ``pbc`` all True gives a Structure, ``pbc`` all False a Molecule, and mixed
  ``pbc`` (slabs, wires) a Structure whose ``lattice.pbc`` keeps the non-periodic directions, so that
  neighbour lists take no periodic images along them. The cell must still be non-singular (give the
  non-periodic directions a vacuum length);
* a numpy array or nested list of shape ``[n, 3]`` (Cartesian coordinates in Å): a finite point cloud whose
  sites all carry the dummy species ``X`` (:class:`pymatgen.core.DummySpecies`);
* a pymatgen ``as_dict()`` dictionary of a Structure or Molecule;
* a path to a CIF, POSCAR/CONTCAR, extxyz/xyz or JSON (``Structure.as_dict()``) file.

The site order is always the input's order. Validation (:func:`validate_structure`) rejects structures matsym
cannot work with: empty, non-finite, singular lattice, atoms too close, partial occupancy.
"""

from __future__ import annotations

import contextlib
import io as _stdio
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from matsym.errors import DisorderError, FileFormatError, MatsymError, OutputExistsError, StructureError

if TYPE_CHECKING:
    from ase import Atoms
    from pymatgen.core import Molecule, Structure

__all__ = [
    "FORMATS",
    "atomic_write_text",
    "detect_format",
    "like_input",
    "load_structure",
    "site_symbols",
    "to_ase",
    "to_pymatgen",
    "validate_structure",
    "write_structure",
]

#: Formats matsym reads and writes, with the file names that select them.
FORMATS: dict[str, str] = {
    "cif": "CIF (.cif, .mcif)",
    "poscar": "POSCAR (.vasp, .poscar, or a name starting with POSCAR / CONTCAR)",
    "extxyz": "extended XYZ (.extxyz, .xyz)",
    "json": "JSON of pymatgen Structure.as_dict() / Molecule.as_dict() (.json)",
}
_SUFFIXES = {
    ".cif": "cif",
    ".mcif": "cif",
    ".vasp": "poscar",
    ".poscar": "poscar",
    ".extxyz": "extxyz",
    ".xyz": "extxyz",
    ".json": "json",
}
_MIN_VOLUME = 1e-3  # Å^3
_MAX_COND = 1e8
_MAX_CELLS_AWAY = 100.0  # largest |fractional coordinate| accepted


def _supported() -> str:
    return "; ".join(FORMATS.values())


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def detect_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    """Choose a file format from ``fmt`` or from the file name.

    Args:
        path: File name (need not exist).
        fmt: Explicit format, one of :data:`FORMATS` (case-insensitive; ``"vasp"`` and ``"xyz"`` are aliases).

    Returns:
        One of ``"cif"``, ``"poscar"``, ``"extxyz"``, ``"json"``.

    Raises:
        FileFormatError: the format is unknown.
    """
    if fmt is not None:
        key = str(fmt).lower().lstrip(".")
        key = {"vasp": "poscar", "contcar": "poscar", "xyz": "extxyz", "mcif": "cif"}.get(key, key)
        if key not in FORMATS:
            raise FileFormatError(f"unknown format {fmt!r} for {path}; supported: {_supported()}")
        return key
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    if p.name.upper().startswith(("POSCAR", "CONTCAR")):
        return "poscar"
    raise FileFormatError(
        f"cannot tell the format of {path} from its name (suffix {suffix or 'none'!r}); supported: {_supported()}"
    )


# -------------------- loading


def load_structure(
    obj: Any,
    *,
    validate: bool = True,
    min_distance: float | None = None,
    fmt: str | None = None,
) -> Structure | Molecule:
    """Read or convert ``obj`` into a pymatgen Structure (periodic) or Molecule (finite point cloud).

    Args:
        obj: A pymatgen Structure or Molecule, an ASE Atoms, an array or list of shape ``[n, 3]``
            (Cartesian coordinates in Å; every site gets the dummy species ``X``), a pymatgen ``as_dict()``
            dictionary, or a path to a CIF, POSCAR/CONTCAR, extxyz/xyz or JSON file. For a CIF with several
            data blocks the first structure is taken, its sites in the order of the atom_site loop (images
            made by symmetry follow their row); for an extxyz with several frames, the first frame.
            Atoms (and extxyz frames) with ``pbc`` all False become Molecules, all others Structures (see the
            module docstring).
        validate: Run :func:`validate_structure` on the result.
        min_distance: Smallest allowed distance between two atoms in Å (periodic images included), used when
            ``validate`` is True; default: :func:`matsym.limits.current` (0.5 Å unless changed). Validation also
            bounds the number of sites and the cell volume (:mod:`matsym.limits`).
        fmt: Force a file format (``"cif"``, ``"poscar"``, ``"extxyz"``, ``"json"``) instead of guessing it
            from the file name. Only used for paths.

    Returns:
        A new Structure or Molecule (never the caller's object), sites in the input's order.

    Raises:
        FileFormatError: the file is missing, unreadable, or in an unknown format.
        StructureError: the input cannot be turned into a structure, or fails validation.
        DisorderError: the structure has partially occupied or mixed-species sites (when validating).
    """
    from pymatgen.core import IMolecule, IStructure, Molecule, Structure

    if isinstance(obj, (str, os.PathLike)):
        s = _read_file(obj, fmt)
    elif isinstance(obj, Structure):
        s = obj.copy()
    elif isinstance(obj, IStructure):
        s = Structure.from_sites(obj.sites)
    elif isinstance(obj, Molecule):
        s = obj.copy()
    elif isinstance(obj, IMolecule):
        s = Molecule.from_sites(obj.sites)
    elif _is_atoms(obj):
        s = _from_atoms(obj)
    elif isinstance(obj, dict):
        s = _from_dict(obj, where="dictionary")
    elif isinstance(obj, (np.ndarray, list, tuple)) or hasattr(obj, "__array__"):
        s = _from_array(obj)
    else:
        raise StructureError(
            "expected a pymatgen Structure or Molecule, an ASE Atoms, an [n, 3] array of coordinates, or a "
            f"path to a structure file; got {type(obj).__name__}"
        )
    if validate:
        from matsym.limits import check_size, current

        check_size(s, what=str(obj) if isinstance(obj, (str, os.PathLike)) else "structure")
        validate_structure(s, min_distance=current().min_distance if min_distance is None else min_distance)
    return s


def _is_atoms(obj: Any) -> bool:
    from ase import Atoms

    return isinstance(obj, Atoms)


def _from_array(obj: Any) -> Molecule:
    from pymatgen.core import DummySpecies, Molecule

    try:
        coords = np.asarray(obj, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise StructureError(f"expected an [n, 3] array of Cartesian coordinates; got {_one_line(exc)}") from exc
    if coords.ndim == 2 and coords.shape[0] == 0:
        coords = coords.reshape(0, 3)
    if coords.ndim != 2 or coords.shape[1] != 3:
        raise StructureError(f"expected an [n, 3] array of Cartesian coordinates; got shape {coords.shape}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Molecule([DummySpecies("X")] * len(coords), coords)
    except Exception as exc:
        raise StructureError(f"cannot build a point cloud from the array: {_one_line(exc)}") from exc


def _from_atoms(atoms: Atoms) -> Structure | Molecule:
    from pymatgen.core import Lattice, Molecule, Structure

    pbc = tuple(bool(p) for p in atoms.pbc)
    positions = np.asarray(atoms.get_positions(), dtype=np.float64)
    cell = np.asarray(atoms.cell.array, dtype=np.float64)
    symbols = atoms.get_chemical_symbols()
    if not np.all(np.isfinite(positions)):
        bad = _first_rows(~np.isfinite(positions).all(axis=1))
        raise StructureError(
            f"non-finite (NaN or inf) coordinates: expected finite Cartesian coordinates in Å, got them at "
            f"atom(s) {bad}"
        )
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            if not any(pbc):
                return Molecule(symbols, positions)
            if not np.all(np.isfinite(cell)):
                raise StructureError(
                    f"lattice has non-finite (NaN or inf) entries: expected finite lattice vectors in Å, got "
                    f"{cell.tolist()}"
                )
            volume = abs(float(np.linalg.det(cell)))
            if volume < _MIN_VOLUME:
                raise StructureError(
                    f"lattice is singular or nearly so: volume {volume:.6g} Å^3 "
                    f"(expected >= {_MIN_VOLUME:g}); cell {cell.tolist()} with pbc={pbc}. A non-periodic "
                    "direction still needs a cell vector (e.g. atoms.center(vacuum=10, axis=2))"
                )
            return Structure(Lattice(cell, pbc=pbc), symbols, positions, coords_are_cartesian=True, to_unit_cell=False)
    except MatsymError:
        raise
    except Exception as exc:
        raise StructureError(f"cannot convert ASE Atoms ({atoms.get_chemical_formula()}): {_one_line(exc)}") from exc


def _from_dict(d: dict, *, where: str) -> Structure | Molecule:
    from matsym.safejson import structure_from_dict

    # a cleaned copy: site properties plain data only, so that monty's decoder imports nothing the data names
    return structure_from_dict(d, where=f"cannot read a structure from {where}")


def _read_file(path: str | os.PathLike, fmt: str | None) -> Structure | Molecule:
    from matsym.safejson import read_regular_file

    p = Path(path)
    if p.is_dir():
        raise FileFormatError(f"cannot read structure: {p} is a directory, expected a file")
    kind = detect_format(p, fmt)
    # regular files only (a FIFO would hang, /dev/zero fill the memory), of bounded size
    text = read_regular_file(p, what="structure").decode("utf-8", errors="replace")
    try:
        if kind == "cif":
            s = _read_cif(p, text)
        elif kind == "poscar":
            s = _read_poscar(p, text)
        elif kind == "extxyz":
            s = _read_extxyz(p, text)
        else:
            s = _read_json(p, text)
    except MatsymError:
        raise
    except Exception as exc:
        raise FileFormatError(
            f"cannot read {p} as {kind}: {_one_line(exc)} (supported formats: {_supported()})"
        ) from exc
    _check_handedness(s, p)
    return s


def _check_handedness(s: Any, p: Path) -> None:
    from pymatgen.core import IStructure

    if isinstance(s, IStructure):
        with np.errstate(all="ignore"):
            det = float(np.linalg.det(np.asarray(s.lattice.matrix, dtype=np.float64)))
        if det < 0:
            raise StructureError(
                f"{p}: the lattice vectors are left-handed (determinant {det:.6g} Å^3); expected a right-handed "
                "cell: swap two lattice vectors (and their fractional coordinates) or negate one"
            )


def _read_cif(p: Path, text: str) -> Structure:
    from pymatgen.io.cif import CifFile, CifParser

    from matsym.cif_checks import check_cif_cells, explain_cif_failure

    # pymatgen warns freely while parsing CIFs (missing symmetry keys, rounding of occupancies, ...).
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        blocks = list(CifFile.from_str(text).data.values())
        check_cif_cells(blocks, p)  # lengths > 0, angles in (0, 180), a cell with volume: before pymatgen guesses
        parser = CifParser(_stdio.StringIO(text))
        try:
            structures = parser.parse_structures(primitive=False, on_error="raise")
        except (ValueError, KeyError, IndexError, TypeError, ArithmeticError):
            better = explain_cif_failure(blocks, p)
            if better is not None:
                raise better from None
            raise
    if not structures:
        raise FileFormatError(f"cannot read {p} as cif: no structure found in the file")
    return _in_file_order(structures[0], blocks)


def _in_file_order(structure: Structure, blocks: list) -> Structure:
    """Put the sites pymatgen parsed (grouped by species) back in the order of the CIF's atom_site loop.

    Images generated by symmetry follow their row. If labels are missing or repeated, pymatgen's order stays.
    """
    from pymatgen.core import Structure

    labels: list[str] = []
    for block in blocks:
        data = block.data
        if "_atom_site_label" in data and ("_atom_site_fract_x" in data or "_atom_site_Cartn_x" in data):
            labels = [str(x) for x in data["_atom_site_label"]]
            break
    rank = {label: k for k, label in enumerate(labels)}
    site_labels = [site.label for site in structure]
    if len(rank) != len(labels) or not all(label in rank for label in site_labels):
        return structure
    order = sorted(range(len(structure)), key=lambda i: rank[site_labels[i]])  # stable within a row
    if order == list(range(len(structure))):
        return structure
    return Structure.from_sites([structure[i] for i in order], properties=structure.properties)


def _read_poscar(p: Path, text: str) -> Structure:
    from pymatgen.io.vasp import Poscar

    from matsym.cif_checks import check_poscar_counts

    check_poscar_counts(text, p)  # counts against the coordinate lines that follow
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        poscar = Poscar.from_str(text, read_velocities=False)
    for w in caught:
        if "cannot be determined" in str(w.message):
            raise FileFormatError(
                f"cannot read {p} as poscar: the file names no elements (VASP 4 format); add the line of "
                "element symbols above the counts"
            )
    return poscar.structure


def _read_extxyz(p: Path, text: str) -> Structure | Molecule:
    import ase.io

    from matsym.cif_checks import check_xyz_header
    from matsym.limits import current

    check_xyz_header(text, p, current().max_atoms)  # a count beyond the file made ASE loop for hours

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        atoms = ase.io.read(_stdio.StringIO(text), index=0, format="extxyz")
    return _from_atoms(atoms)


def _read_json(p: Path, text: str) -> Structure | Molecule:
    from matsym.safejson import loads

    d = loads(text, where=f"cannot read {p} as json")
    if not isinstance(d, dict):
        raise FileFormatError(
            f"cannot read {p} as json: expected an object (Structure.as_dict()), got {type(d).__name__}"
        )
    return _from_dict(d, where=str(p))


# -------------------- validation


def _first_rows(mask: np.ndarray, limit: int = 5) -> str:
    idx = np.flatnonzero(mask)
    text = ", ".join(str(int(i)) for i in idx[:limit])
    return text + (f", ... ({len(idx)} in all)" if len(idx) > limit else "")


def site_symbols(s: Any) -> list[str] | None:
    """Element symbol of every site of a pymatgen structure, or None if a site is disordered (not one species of
    occupancy 1).

    What ``site.specie.symbol`` gives, with the same test of order as pymatgen's ``Site.is_ordered``, read once
    per site instead of twice (14 ms -> 7 ms at 20,480 sites).
    """
    symbols = []
    for site in s:
        composition = site.species
        if len(composition) != 1 or composition.num_atoms != 1:
            return None
        symbols.append(str(next(iter(composition)).symbol))
    return symbols


def _species_label(site: Any) -> str:
    if site.is_ordered:
        return str(site.specie.symbol)
    return site.species.formula


def validate_structure(s: Structure | Molecule, *, min_distance: float = 0.5, check_order: bool = True) -> None:
    """Check that a structure is usable by matsym.

    Checks, in this order: at least one site; finite lattice and coordinates; a lattice that is not singular
    (volume at least 1e-3 Å^3 and condition number at most 1e8); fully ordered sites; no two atoms closer than
    ``min_distance`` (periodic images included for Structures, so an atom closer to its own image also fails).

    Args:
        s: A pymatgen Structure or Molecule.
        min_distance: Smallest allowed interatomic distance in Å; 0 disables the check.
        check_order: Check that every site is ordered (callers that read ``site.specie`` anyway, which raises on
            a disordered site, may skip this loop and call again on failure for the message).

    Raises:
        StructureError: one of the checks failed; the message names the offending sites or lattice.
        DisorderError: a site is partially occupied or holds several species (subclass of StructureError).
    """
    _validated_positions(s, min_distance=min_distance, check_order=check_order)


def _validated_positions(s: Any, *, min_distance: float, check_order: bool) -> np.ndarray:
    """:func:`validate_structure`, returning the Cartesian coordinates it read (a new float64 array, [n, 3]), so
    that callers do not read them from pymatgen's sites a second time."""
    from pymatgen.core import IMolecule, IStructure

    if not isinstance(s, (IStructure, IMolecule)):
        raise StructureError(f"expected a pymatgen Structure or Molecule, got {type(s).__name__}")
    if not (isinstance(min_distance, (int, float, np.number)) and np.isfinite(min_distance) and min_distance >= 0):
        raise StructureError(f"min_distance must be a finite number >= 0 (Å), got {min_distance!r}")
    if len(s) == 0:
        raise StructureError("structure is empty: expected at least one site, got 0")

    periodic = isinstance(s, IStructure)
    with np.errstate(all="ignore"):
        if periodic:
            matrix = np.asarray(s.lattice.matrix, dtype=np.float64)
            if not np.all(np.isfinite(matrix)):
                raise StructureError(
                    "lattice has non-finite (NaN or inf) entries: expected finite lattice vectors in Å, got "
                    f"{matrix.tolist()}"
                )
            volume = abs(float(np.linalg.det(matrix)))
            cond = float(np.linalg.cond(matrix)) if volume > 0 else np.inf
            if volume < _MIN_VOLUME or not cond <= _MAX_COND:
                raise StructureError(
                    f"lattice is singular or nearly so: volume {volume:.6g} Å^3 "
                    f"(expected >= {_MIN_VOLUME:g}), condition number {cond:.3g} "
                    f"(expected <= {_MAX_COND:g}); lattice vectors {matrix.tolist()}"
                )
        # a non-finite fractional coordinate makes the Cartesian one non-finite too (the lattice is finite here)
        cart = np.array(s.cart_coords, dtype=np.float64)
        bad = ~np.isfinite(cart).all(axis=1)
        if bad.any():
            raise StructureError(
                "non-finite (NaN or inf) coordinates: expected finite Cartesian coordinates in Å, got them "
                f"at site(s) {_first_rows(bad)}"
            )
        if periodic:
            # pymatgen's neighbour search bins the span of the coordinates: a fractional coordinate of 1e11 (found by
            # make fuzz in a POSCAR) asked for more than 10 GB
            far = np.abs(np.asarray(s.frac_coords, dtype=np.float64)).max(axis=1) > _MAX_CELLS_AWAY
            if far.any():
                raise StructureError(
                    f"site(s) {_first_rows(far)} lie more than {_MAX_CELLS_AWAY:g} cells from the unit cell "
                    f"(fractional coordinates up to {np.abs(s.frac_coords).max():.4g}); expected fractional "
                    f"coordinates within ±{_MAX_CELLS_AWAY:g}"
                )

    for i, site in enumerate(s if check_order else ()):
        if not site.is_ordered:
            comp = {str(sp): round(float(occ), 6) for sp, occ in site.species.items()}
            raise DisorderError(
                f"site {i} is disordered (partial occupancy or mixed species): composition {comp}; matsym "
                "needs an ordered structure with one species at full occupancy on every site (order it "
                "first, e.g. with pymatgen's OrderDisorderedStructureTransformation)"
            )

    if min_distance > 0:
        _check_distances(s, float(min_distance), periodic, cart)
    return cart


def _check_distances(s: Any, min_distance: float, periodic: bool, cart: np.ndarray) -> None:
    if periodic:
        centers, points, offsets, dist = s.get_neighbor_list(r=min_distance, numerical_tol=1e-8, exclude_self=True)
        keep = dist < min_distance
        centers, points, offsets, dist = centers[keep], points[keep], offsets[keep], dist[keep]
    else:
        from scipy.spatial import cKDTree

        pairs = cKDTree(cart).query_pairs(min_distance, output_type="ndarray")
        centers, points = pairs[:, 0], pairs[:, 1]
        dist = np.linalg.norm(cart[points] - cart[centers], axis=1)
        keep = dist < min_distance
        centers, points, dist = centers[keep], points[keep], dist[keep]
        offsets = np.zeros((len(dist), 3))
    if len(dist) == 0:
        return
    k = int(np.argmin(dist))
    i, j = sorted((int(centers[k]), int(points[k])))
    shift = tuple(round(float(x)) for x in offsets[k])
    if i == j:
        who = f"atom {i} ({_species_label(s[i])}) and its own periodic image at shift {shift}"
    elif periodic and any(shift):
        who = f"atoms {i} ({_species_label(s[i])}) and {j} ({_species_label(s[j])}, periodic image)"
    else:
        who = f"atoms {i} ({_species_label(s[i])}) and {j} ({_species_label(s[j])})"
    n_pairs = len(dist) // (2 if periodic else 1)
    raise StructureError(
        f"{who} are {dist[k]:.4g} Å apart, closer than min_distance={min_distance:g} Å "
        f"({n_pairs} such pair(s)); remove duplicate sites or lower min_distance"
    )


# -------------------- conversion


def to_pymatgen(obj: Any) -> Structure | Molecule:
    """Convert an ASE Atoms (or anything :func:`load_structure` takes) to a pymatgen Structure or Molecule.

    No validation is done. A pymatgen input is copied.

    Args:
        obj: An ASE Atoms, pymatgen Structure or Molecule, array, dictionary, or path.

    Returns:
        A Structure, or a Molecule for finite point clouds (Atoms with ``pbc`` all False).
    """
    return load_structure(obj, validate=False)


def to_ase(s: Any) -> Atoms:
    """Convert a pymatgen Structure or Molecule (or anything :func:`load_structure` takes) to ASE Atoms.

    Args:
        s: A Structure, Molecule, Atoms (copied), array, dictionary, or path.

    Returns:
        A plain :class:`ase.Atoms`: cell and ``pbc`` from the Structure's lattice, or no cell and ``pbc``
        False for a Molecule; dummy species become ``X``.

    Raises:
        DisorderError: the structure is disordered (ASE Atoms hold one species per site).
    """
    from ase import Atoms
    from pymatgen.core import IStructure

    if _is_atoms(s):
        return Atoms(s)
    s = load_structure(s, validate=False)
    symbols = site_symbols(s)
    if symbols is None:
        i, site = next((i, site) for i, site in enumerate(s) if not site.is_ordered)
        raise DisorderError(
            f"cannot convert to ASE Atoms: site {i} is disordered ({site.species.formula}); ASE Atoms "
            "need one species per site"
        )
    positions = np.asarray(s.cart_coords, dtype=np.float64)
    if isinstance(s, IStructure):
        return Atoms(symbols=symbols, positions=positions, cell=s.lattice.matrix, pbc=s.lattice.pbc)
    return Atoms(symbols=symbols, positions=positions, pbc=False)


def like_input(result: Any, template: Any) -> Atoms | Structure | Molecule:
    """Return ``result`` in the same kind of object as ``template``.

    Public entry points use this so that Atoms in gives Atoms out. Anything other than Atoms (a Structure, a
    path, an array) gives a pymatgen Structure (or Molecule for a finite result).

    Args:
        result: A pymatgen Structure or Molecule (or Atoms).
        template: The object the user passed in.

    Returns:
        ASE Atoms if ``template`` is Atoms, else a pymatgen Structure / Molecule.
    """
    if _is_atoms(template):
        return to_ase(result)
    return to_pymatgen(result)


# -------------------- writing


def atomic_write_text(path: str | os.PathLike, text: str, *, force: bool = False) -> Path:
    """Write ``text`` to ``path`` atomically: a temporary file in the same folder, then a rename.

    Readers never see a half-written file, and an existing file is replaced only with ``force=True``. Without
    ``force`` the final step is a hard link, which fails if another process created ``path`` meanwhile.

    Args:
        path: Destination file; its folder must exist.
        text: Content, written as UTF-8.
        force: Replace ``path`` if it exists.

    Returns:
        The destination path.

    Raises:
        FileFormatError: ``path`` exists and ``force`` is False, is a directory, or cannot be written.
    """
    p = Path(path)
    exists_msg = f"cannot write {p}: it exists; pass force=True to overwrite"
    if p.is_dir():
        raise FileFormatError(f"cannot write {p}: it is a directory, expected a file name")
    if not force and (p.exists() or p.is_symlink()):
        raise OutputExistsError(exists_msg, path=p)
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise FileFormatError(f"cannot write {p}: folder {folder} does not exist")
    try:
        mode = p.stat().st_mode & 0o777 if p.exists() else 0o666 & ~_umask()
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{p.name}.", suffix=".tmp")
    except OSError as exc:
        raise FileFormatError(f"cannot write {p}: {_one_line(exc)}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if force:
            os.replace(tmp, p)
        else:
            try:
                os.link(tmp, p)  # atomic and never clobbers
            except FileExistsError:
                raise OutputExistsError(exists_msg, path=p) from None
            except OSError:  # file systems without hard links
                if p.exists():
                    raise OutputExistsError(exists_msg, path=p) from None
                os.replace(tmp, p)
    except FileFormatError:
        raise
    except OSError as exc:
        raise FileFormatError(f"cannot write {p}: {_one_line(exc)}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return p


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def write_structure(s: Any, path: str | os.PathLike, *, fmt: str | None = None, force: bool = False) -> Path:
    """Write a structure to CIF, POSCAR, extxyz or JSON, atomically.

    The format comes from ``fmt`` or the file name (see :data:`FORMATS`). CIF stores lattice parameters, not
    lattice vectors, so reading a CIF back gives the same fractional coordinates in pymatgen's standard
    orientation of the cell; POSCAR, extxyz and JSON keep the Cartesian frame. Molecules can only be written
    as extxyz or JSON.

    Args:
        s: A pymatgen Structure or Molecule, or ASE Atoms (anything :func:`load_structure` takes).
        path: Destination file.
        fmt: ``"cif"``, ``"poscar"``, ``"extxyz"`` or ``"json"``; default: from the suffix.
        force: Overwrite ``path`` if it exists. Without it an existing file (e.g. the input) is never
            replaced.

    Returns:
        The destination path.

    Raises:
        FileFormatError: unknown format, a Molecule as CIF/POSCAR, an existing file without ``force``, or an
            unwritable path.
    """
    from pymatgen.core import IStructure

    kind = detect_format(path, fmt)
    structure = load_structure(s, validate=False)
    periodic = isinstance(structure, IStructure)
    if not periodic and kind in ("cif", "poscar"):
        raise FileFormatError(
            f"cannot write {path} as {kind}: a finite point cloud (Molecule) has no cell; use .extxyz/.xyz or .json"
        )
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            if kind == "cif":
                from pymatgen.io.cif import CifWriter

                text = str(CifWriter(structure))
            elif kind == "poscar":
                from pymatgen.io.vasp import Poscar

                text = Poscar(structure).get_str(significant_figures=16)
            elif kind == "extxyz":
                import ase.io

                buffer = _stdio.StringIO()
                ase.io.write(buffer, to_ase(structure), format="extxyz")
                text = buffer.getvalue()
            else:
                text = json.dumps(structure.as_dict(), indent=1)
    except MatsymError:
        raise
    except Exception as exc:
        raise FileFormatError(f"cannot write {path} as {kind}: {_one_line(exc)}") from exc
    return atomic_write_text(path, text, force=force)

"""Built-in example structures: perovskites (tilted, polar, Jahn-Teller) and the square/rectangle pair.

Every structure here is *built* from its physical description, never typed in as coordinates:

* :func:`cubic_perovskite` is the aristotype ABX3 in Pm-3m (5 atoms).
* :func:`tilted_perovskite` rotates rigid BO6 octahedra by a Glazer tilt pattern on any commensurate
  supercell.
* :func:`polar_perovskite` moves the B (and optionally the A) cation off centre along a direction.
* :func:`jahn_teller_perovskite` puts cooperative Q2/Q3 Jahn-Teller distortions on the octahedra, optionally
  combined with a tilt pattern (the LaMnO3 recipe).
* :func:`square`, :func:`rectangle`, :func:`square_rectangle` are the finite point clouds of the paper's first
  example.

Perovskite conventions (used by every builder here): the cubic cell ``n = (n_x, n_y, n_z)`` (integers, in
units of the cubic lattice parameter ``a``) holds A at ``n``, B at ``n + (1/2, 1/2, 1/2)`` and the three X
(oxygen) sites at ``n + (1/2, 1/2, 0)``, ``n + (1/2, 0, 1/2)``, ``n + (0, 1/2, 1/2)``. The B site of cell
``n`` is labelled by ``n``. A supercell matrix ``S`` is an integer 3x3 matrix whose rows are the new lattice
vectors in cubic units (pymatgen's ``make_supercell`` convention: new lattice = ``S @ old lattice``).

Site order of every perovskite supercell: all A sites, then all B sites, then all X sites; within each block
the cubic cells are in the order of :func:`perovskite_cells`; within a cell the X sites are in the order X_z
``(1/2, 1/2, 0)``, X_y ``(1/2, 0, 1/2)``, X_x ``(0, 1/2, 1/2)``. Parent and target from one builder call
always share this order.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import numpy as np
from pymatgen.core import Lattice, Molecule, Structure

from matsym.errors import StructureError

__all__ = [
    "HOWARD_STOKES_TILTS",
    "antiphase_perovskite",
    "cubic_perovskite",
    "glazer_phases",
    "jahn_teller_perovskite",
    "perovskite_cells",
    "polar_perovskite",
    "rectangle",
    "rotation_matrix",
    "square",
    "square_rectangle",
    "tilted_perovskite",
]

_DEFAULT_A = 3.905  # SrTiO3 cubic lattice parameter, Angstrom
_DEFAULT_SPECIES = ("Sr", "Ti", "O")

#: The 14 tilted systems of Howard & Stokes, Acta Cryst. B54, 782 (1998), Table 2, with tilt angles in degrees for
#: :func:`tilted_perovskite`: unequal where the symbol allows (examples and tests use them).
HOWARD_STOKES_TILTS: dict[str, float | list[float]] = {
    "a0a0c+": [0, 0, 6],
    "a0b+b+": [0, 6, 6],
    "a+a+a+": 6.0,
    "a+b+c+": [5, 6, 7],
    "a0a0c-": [0, 0, 6],
    "a0b-b-": [0, 6, 6],
    "a-a-a-": 6.0,
    "a0b-c-": [0, 6, 7],
    "a-b-b-": [7, 6, 6],
    "a-b-c-": [5, 6, 7],
    "a0b+c-": [0, 6, 7],
    "a+b-b-": [7, 6, 6],
    "a+b-c-": [5, 6, 7],
    "a+a+c-": [6, 6, 7],
}
_AXES = "xyz"
_GLAZER_RE = re.compile(r"^([a-zA-Z])([0+-])([a-zA-Z])([0+-])([a-zA-Z])([0+-])$")

# The 20-atom sqrt2 x sqrt2 x 2 cell with its long axis along cubic axis k (rows are lattice vectors, cubic
# units). Axes (i, j, k) are cyclic so that the determinant is +4.
_LONG_AXIS_CELL = {
    2: ((1, 1, 0), (-1, 1, 0), (0, 0, 2)),
    0: ((0, 1, 1), (0, -1, 1), (2, 0, 0)),
    1: ((1, 0, 1), (1, 0, -1), (0, 2, 0)),
}


# ------------------------------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------------------------------


def rotation_matrix(omega: Sequence[float] | np.ndarray) -> np.ndarray:
    """Rotation matrix of a rotation pseudovector (Rodrigues' formula, exact).

    Args:
        omega: Rotation vector, shape [3]: axis ``omega/|omega|``, angle ``|omega|`` in radians (right hand).

    Returns:
        The proper rotation matrix, shape [3, 3], acting on column vectors (``x' = R @ x``).
    """
    w = np.asarray(omega, dtype=np.float64).reshape(3)
    theta = float(np.linalg.norm(w))
    if theta == 0.0:
        return np.eye(3)
    k = w / theta
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])  # [3, 3]
    return np.eye(3) + np.sin(theta) * kx + (1.0 - np.cos(theta)) * (kx @ kx)


def _check_species(species: Sequence[str]) -> tuple[str, str, str]:
    if isinstance(species, str) or len(species) != 3:
        raise StructureError(f"species must be three element symbols (A, B, X), got {species!r}")
    return tuple(str(s) for s in species)  # type: ignore[return-value]


def _check_a(a: float) -> float:
    a = float(a)
    if not np.isfinite(a) or a <= 0.0:
        raise StructureError(f"lattice parameter a must be a positive finite number of Angstrom, got {a!r}")
    return a


def _check_supercell(supercell: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    m = np.asarray(supercell)
    if m.shape != (3, 3):
        raise StructureError(f"supercell must be an integer 3x3 matrix, got shape {m.shape}")
    if not np.all(np.isfinite(m.astype(np.float64))) or not np.allclose(m, np.round(m)):
        raise StructureError(f"supercell must be an integer 3x3 matrix, got {m.tolist()}")
    m = np.round(m).astype(np.int64)
    det = round(float(np.linalg.det(m)))
    if det <= 0:
        raise StructureError(
            f"supercell matrix must have a positive determinant (right-handed cell), got det={det} for {m.tolist()}"
        )
    return m


def perovskite_cells(supercell: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    """The cubic cells ``n`` inside a supercell: one per cubic lattice point modulo the supercell.

    Args:
        supercell: Integer 3x3 matrix, rows are the supercell vectors in cubic units, positive determinant.

    Returns:
        Integer array [det, 3] of the cells whose origin has fractional supercell coordinates in [0, 1),
        sorted lexicographically by (n_x, n_y, n_z).
    """
    m = _check_supercell(supercell)
    inv = np.linalg.inv(m.astype(np.float64))
    corners = np.array(list(itertools.product((0, 1), repeat=3))) @ m  # [8, 3]
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    grid = np.array(
        list(itertools.product(*(range(int(lo[i]), int(hi[i]) + 1) for i in range(3)))), dtype=np.int64
    )  # [n_grid, 3]
    frac = grid @ inv  # [n_grid, 3]
    eps = 1e-9
    keep = np.all((frac > -eps) & (frac < 1.0 - eps), axis=1)
    cells = grid[keep]
    det = round(float(np.linalg.det(m)))
    if len(cells) != det:  # pragma: no cover - guards the enumeration itself
        raise StructureError(f"found {len(cells)} cubic cells in supercell {m.tolist()}, expected {det}")
    return cells


def _parse_glazer(glazer: str) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
    if not isinstance(glazer, str):
        raise StructureError(f"glazer must be a string like 'a+b-b-', got {glazer!r}")
    match = _GLAZER_RE.match(glazer.replace(" ", ""))
    if match is None:
        raise StructureError(
            f"glazer must be three letter+sign pairs, one per cubic axis x, y, z, with signs '+', '-' or '0' "
            f"(e.g. 'a+b-b-', 'a0a0c-'), got {glazer!r}"
        )
    g = match.groups()
    letters = (g[0].lower(), g[2].lower(), g[4].lower())
    signs = (g[1], g[3], g[5])
    return letters, signs


def glazer_phases(glazer: str) -> tuple[str, str, str]:
    """The tilt phase per cubic axis of a Glazer symbol.

    Args:
        glazer: Glazer symbol, e.g. ``"a+b-b-"``.

    Returns:
        ``(phase_x, phase_y, phase_z)``, each ``"+"`` (in-phase), ``"-"`` (anti-phase) or ``"0"`` (no tilt).
    """
    return _parse_glazer(glazer)[1]


def _tilt_angles(glazer: str, angles_deg: float | Sequence[float]) -> tuple[tuple[str, str, str], np.ndarray]:
    """Validate a Glazer symbol and its angles; return the phases and the angles in radians, shape [3]."""
    letters, signs = _parse_glazer(glazer)
    arr = np.asarray(angles_deg, dtype=np.float64)
    if arr.ndim == 0:
        angles = np.array([0.0 if s == "0" else float(arr) for s in signs])
    elif arr.shape == (3,):
        angles = arr.copy()
    else:
        raise StructureError(f"angles_deg must be one number or three (x, y, z), got {angles_deg!r}")
    if not np.all(np.isfinite(angles)):
        raise StructureError(f"angles_deg must be finite, got {angles_deg!r}")
    for k in range(3):
        if signs[k] == "0" and angles[k] != 0.0:
            raise StructureError(
                f"glazer {glazer!r} has no tilt about {_AXES[k]} ('{letters[k]}0') but angles_deg gives "
                f"{angles[k]} degrees about {_AXES[k]}"
            )
    for i, j in itertools.combinations(range(3), 2):
        if letters[i] == letters[j] and not np.isclose(abs(angles[i]), abs(angles[j]), rtol=0.0, atol=1e-9):
            raise StructureError(
                f"glazer {glazer!r} gives axes {_AXES[i]} and {_AXES[j]} the same letter '{letters[i]}' "
                f"(equal tilt angles) but angles_deg gives {angles[i]} and {angles[j]} degrees; use "
                f"different letters for different angles"
            )
    return signs, np.deg2rad(angles)


def _phase_sign(phase: str, k: int, cells: np.ndarray) -> np.ndarray:
    """Sign pattern [n_cells] of a tilt (or any pseudovector component) about axis k with the given phase."""
    if phase == "0":
        return np.zeros(len(cells))
    if phase == "+":
        i, j = (a for a in range(3) if a != k)
        return (-1.0) ** (cells[:, i] + cells[:, j])
    return (-1.0) ** cells.sum(axis=1)


def _check_commensurate(supercell: np.ndarray, phases: Sequence[str], what: str) -> None:
    for row in supercell:
        for k, phase in enumerate(phases):
            if phase == "0":
                continue
            if phase == "+":
                i, j = (a for a in range(3) if a != k)
                parity = int(row[i] + row[j]) % 2
                rule = f"(-1)^(n_{_AXES[i]}+n_{_AXES[j]})"
            else:
                parity = int(row.sum()) % 2
                rule = "(-1)^(n_x+n_y+n_z)"
            if parity:
                raise StructureError(
                    f"supercell {supercell.tolist()} is not commensurate with {what}: its vector "
                    f"{row.tolist()} flips the {'in' if phase == '+' else 'anti'}-phase pattern {rule} about "
                    f"{_AXES[k]}; every supercell vector must leave each phase pattern invariant"
                )


def _default_supercell(phases: Sequence[str]) -> np.ndarray:
    n_plus = sum(p == "+" for p in phases)
    if all(p == "0" for p in phases):
        return np.eye(3, dtype=np.int64)
    if n_plus == 1:
        return np.array(_LONG_AXIS_CELL[phases.index("+")], dtype=np.int64)
    if n_plus == 0:
        # pure anti-phase patterns live on the fcc sublattice: the sqrt2 x sqrt2 x 2 cell (I4/mcm setting)
        long_axis = 2 if phases[2] != "0" else max(k for k in range(3) if phases[k] != "0")
        return np.array(_LONG_AXIS_CELL[long_axis], dtype=np.int64)
    return 2 * np.eye(3, dtype=np.int64)


def _build_perovskite(
    supercell: np.ndarray,
    a: float,
    species: tuple[str, str, str],
    omega: np.ndarray | None = None,
    bond_delta: np.ndarray | None = None,
    a_shift: np.ndarray | None = None,
    b_shift: np.ndarray | None = None,
) -> Structure:
    """Build a perovskite supercell from per-B-site octahedral distortions.

    Args:
        supercell: Integer [3, 3] matrix (rows = supercell vectors in cubic units).
        a: Cubic lattice parameter (Angstrom).
        species: (A, B, X) element symbols.
        omega: Rotation pseudovector of each octahedron in radians, [n_cells, 3]; None for no rotation.
        bond_delta: Outward displacement of the X sites of each octahedron along its three bond axes (before
            rotation), Angstrom, [n_cells, 3]; None for none.
        a_shift: Cartesian shift of every A site, [3] Angstrom; None for none.
        b_shift: Cartesian shift of every B site, [3] Angstrom; None for none. X sites do not follow.

    Returns:
        The structure; shared X sites sit at the mean of the positions the two octahedra give them.
    """
    cells = perovskite_cells(supercell)  # [n_cells, 3]
    n_cells = len(cells)
    omega = np.zeros((n_cells, 3)) if omega is None else omega
    bond_delta = np.zeros((n_cells, 3)) if bond_delta is None else bond_delta
    lattice = a * supercell.astype(np.float64)  # [3, 3], rows are lattice vectors
    index = {tuple(c): i for i, c in enumerate(cells.tolist())}
    inv_s = np.linalg.inv(supercell.astype(np.float64))

    def cell_index(n: np.ndarray) -> int:
        # reduce a cubic cell onto the supercell's representative set
        f = n @ inv_s
        reduced = np.round((f - np.floor(f + 1e-9)) @ supercell).astype(np.int64)
        return index[tuple(reduced.tolist())]

    rotations = np.stack([rotation_matrix(w) for w in omega])  # [n_cells, 3, 3]
    b_sites = a * (cells + 0.5)  # [n_cells, 3] Cartesian
    x_cart: list[np.ndarray] = []
    for ci, n in enumerate(cells):
        for k in (2, 1, 0):  # X_z, X_y, X_x: the X at B_n - a/2 e_k, shared with B_{n - e_k}
            e = np.zeros(3)
            e[k] = 1.0
            nb = n - e.astype(np.int64)
            bi = cell_index(nb)
            from_n = b_sites[ci] + rotations[ci] @ (-(a / 2 + bond_delta[ci, k]) * e)
            from_nb = a * (nb + 0.5) + rotations[bi] @ ((a / 2 + bond_delta[bi, k]) * e)
            x_cart.append(0.5 * (from_n + from_nb))
    a_cart = a * cells.astype(np.float64)  # [n_cells, 3]
    if a_shift is not None:
        a_cart = a_cart + a_shift
    b_cart = b_sites + (b_shift if b_shift is not None else 0.0)
    cart = np.concatenate([a_cart, b_cart, np.array(x_cart)])  # [5 n_cells, 3]
    frac = cart @ np.linalg.inv(lattice)
    frac = frac - np.floor(frac)
    frac[np.isclose(frac, 1.0, rtol=0.0, atol=1e-12)] = 0.0
    names = [species[0]] * n_cells + [species[1]] * n_cells + [species[2]] * (3 * n_cells)
    return Structure(Lattice(lattice), names, frac)


# ------------------------------------------------------------------------------------------------------------
# perovskites
# ------------------------------------------------------------------------------------------------------------


def cubic_perovskite(a: float = _DEFAULT_A, species: Sequence[str] = _DEFAULT_SPECIES) -> Structure:
    """The cubic perovskite ABX3 (Pm-3m, 5 atoms).

    Args:
        a: Cubic lattice parameter in Angstrom.
        species: Element symbols (A, B, X).

    Returns:
        Structure with A at (0, 0, 0), B at (1/2, 1/2, 1/2), X at (1/2, 1/2, 0), (1/2, 0, 1/2), (0, 1/2, 1/2).

    Raises:
        StructureError: ``a`` is not positive or ``species`` is not three symbols.
    """
    return _build_perovskite(np.eye(3, dtype=np.int64), _check_a(a), _check_species(species))


def tilted_perovskite(
    glazer: str,
    angles_deg: float | Sequence[float],
    *,
    supercell: Sequence[Sequence[int]] | np.ndarray | None = None,
    a: float = _DEFAULT_A,
    species: Sequence[str] = _DEFAULT_SPECIES,
) -> tuple[Structure, Structure]:
    """A perovskite with rigid octahedral tilts in any Glazer pattern, and its cubic parent on the same cell.

    The B site of cubic cell ``n`` gets the rotation pseudovector ``omega(n)`` with component
    ``omega_k = theta_k * s_k(n)``: ``s_k = (-1)^(n_i + n_j)`` (i, j != k) for an in-phase ``+`` tilt about k,
    ``s_k = (-1)^(n_x + n_y + n_z)`` for an anti-phase ``-`` tilt, 0 for ``0``. Each octahedron turns rigidly
    about its B site by ``R(omega)`` (Rodrigues, exact); an X shared by two octahedra sits at the mean of the
    two rotated positions. A and B sites and the (pseudo-cubic) lattice stay as in the parent.

    Args:
        glazer: Three letter+sign pairs, one per cubic axis x, y, z, e.g. ``"a+b-b-"``, ``"a0a0c-"``. Equal
            letters mean equal tilt angles; signs are ``+`` (in-phase), ``-`` (anti-phase), ``0`` (no tilt).
        angles_deg: Tilt angle in degrees: one number for every tilted axis, or three numbers (x, y, z) which
            must respect the symbol (0 on ``0`` axes, equal magnitudes on equal letters).
        supercell: Integer 3x3 matrix, rows are the cell vectors in cubic units. Default: the
            sqrt2 x sqrt2 x 2 cell (20 atoms) with its long axis along the ``+`` axis when exactly one axis is
            ``+``, or along z (else the last tilted axis) when no axis is ``+``; 2x2x2 (40 atoms) when two or
            more axes are ``+``; the 5-atom cell when nothing tilts.
        a: Cubic lattice parameter in Angstrom.
        species: Element symbols (A, B, X).

    Returns:
        ``(parent, target)``: the cubic perovskite on the supercell and the tilted structure, same lattice and
        site order (see the module docstring for the order).

    Raises:
        StructureError: Bad symbol, angles inconsistent with it, or a supercell not commensurate with the tilt
            pattern (the message names the offending vector and axis).

    Example:
        >>> parent, target = tilted_perovskite("a+b-b-", 8.0)  # Pnma, 20 atoms
    """
    phases, angles = _tilt_angles(glazer, angles_deg)
    a = _check_a(a)
    species = _check_species(species)
    cell = _default_supercell(phases) if supercell is None else _check_supercell(supercell)
    _check_commensurate(cell, phases, f"tilt pattern {glazer!r}")
    cells = perovskite_cells(cell)
    omega = np.stack([angles[k] * _phase_sign(phases[k], k, cells) for k in range(3)], axis=1)  # [n_cells, 3]
    parent = _build_perovskite(cell, a, species)
    target = _build_perovskite(cell, a, species, omega=omega)
    return parent, target


def polar_perovskite(
    direction: Sequence[float] = (0, 0, 1),
    amplitude: float = 0.1,
    *,
    a_site_amplitude: float = 0.0,
    a: float = _DEFAULT_A,
    species: Sequence[str] = _DEFAULT_SPECIES,
) -> tuple[Structure, Structure]:
    """A ferroelectric perovskite: the B (and optionally A) cation moved off centre, X sites fixed.

    Off-centring along [001] gives P4mm (99), along [011] Amm2 (38), along [111] R3m (160).

    Args:
        direction: Cartesian direction of the displacement (normalised here), shape [3].
        amplitude: B-site displacement in Angstrom.
        a_site_amplitude: A-site displacement in Angstrom along the same direction (default 0).
        a: Cubic lattice parameter in Angstrom.
        species: Element symbols (A, B, X).

    Returns:
        ``(parent, target)`` on the 5-atom cubic cell, same site order (A, B, X_z, X_y, X_x).

    Raises:
        StructureError: zero or non-finite direction, non-finite amplitudes.
    """
    d = np.asarray(direction, dtype=np.float64)
    if d.shape != (3,) or not np.all(np.isfinite(d)) or np.linalg.norm(d) == 0.0:
        raise StructureError(f"direction must be a non-zero finite 3-vector, got {direction!r}")
    if not (np.isfinite(amplitude) and np.isfinite(a_site_amplitude)):
        raise StructureError(
            f"amplitudes must be finite, got amplitude={amplitude!r}, a_site_amplitude={a_site_amplitude!r}"
        )
    d = d / np.linalg.norm(d)
    a = _check_a(a)
    species = _check_species(species)
    cell = np.eye(3, dtype=np.int64)
    parent = _build_perovskite(cell, a, species)
    target = _build_perovskite(cell, a, species, a_shift=float(a_site_amplitude) * d, b_shift=float(amplitude) * d)
    return parent, target


def jahn_teller_perovskite(
    q2: float = 0.1,
    q3: float = 0.0,
    pattern: str = "+",
    *,
    glazer: str | None = None,
    angles_deg: float | Sequence[float] = 0.0,
    supercell: Sequence[Sequence[int]] | np.ndarray | None = None,
    a: float = _DEFAULT_A,
    species: Sequence[str] = _DEFAULT_SPECIES,
) -> tuple[Structure, Structure]:
    """A cooperative Jahn-Teller perovskite (LaMnO3-like orbital order), optionally with octahedral tilts.

    Each octahedron gets the van Vleck modes ``Q2 = (x1 - x4 - y2 + y5)/sqrt2`` and
    ``Q3 = (2 z3 - 2 z6 - x1 + x4 - y2 + y5)/sqrt6`` (no breathing mode), i.e. its X sites move outward along
    the bonds by ``delta_x = Q2/(2 sqrt2) - Q3/(2 sqrt6)``, ``delta_y = -Q2/(2 sqrt2) - Q3/(2 sqrt6)``,
    ``delta_z = Q3/sqrt6`` (Angstrom). The sign of (Q2, Q3) alternates in a checkerboard in the xy plane and
    is stacked along z in phase (``pattern="+"``, ``(-1)^(n_x+n_y)``) or in anti-phase (``"-"``,
    ``(-1)^(n_x+n_y+n_z)``). A shared X sits at the mean of the positions its two octahedra give it, so bonds
    along which neighbouring octahedra want the same elongation (z for ``"+"``) do not change: there is no
    strain. With ``glazer``, each distorted octahedron is then rotated rigidly as in :func:`tilted_perovskite`
    (``glazer="a-a-c+"`` with ``pattern="+"`` is the LaMnO3 Pnma structure).

    Args:
        q2: Q2 amplitude in Angstrom.
        q3: Q3 amplitude in Angstrom.
        pattern: ``"+"`` (in-phase stacking along z) or ``"-"`` (anti-phase).
        glazer: Optional Glazer tilt symbol (see :func:`tilted_perovskite`).
        angles_deg: Tilt angles for ``glazer``.
        supercell: Integer 3x3 matrix; default: the sqrt2 x sqrt2 x 1 cell (10 atoms) for ``"+"`` without
            tilts, otherwise the default cell of the tilt pattern if commensurate with the Jahn-Teller order,
            else the sqrt2 x sqrt2 x 2 cell, else 2x2x2.
        a: Cubic lattice parameter in Angstrom.
        species: Element symbols (A, B, X).

    Returns:
        ``(parent, target)``: cubic parent on the supercell and the distorted structure, same site order.

    Raises:
        StructureError: bad pattern, glazer or angles, or a supercell not commensurate with the patterns.
    """
    if pattern not in ("+", "-"):
        raise StructureError(f"pattern must be '+' (in-phase along z) or '-' (anti-phase), got {pattern!r}")
    if not (np.isfinite(q2) and np.isfinite(q3)):
        raise StructureError(f"q2 and q3 must be finite, got q2={q2!r}, q3={q3!r}")
    a = _check_a(a)
    species = _check_species(species)
    jt_phases = (
        "0",
        "0",
        pattern,
    )  # the JT sign pattern behaves like a pseudovector z-component with this phase
    if glazer is not None:
        tilt_phases, angles = _tilt_angles(glazer, angles_deg)
    else:
        tilt_phases, angles = ("0", "0", "0"), np.zeros(3)
    if supercell is not None:
        cell = _check_supercell(supercell)
    else:
        candidates = []
        if glazer is None and pattern == "+":
            candidates.append(np.array(((1, 1, 0), (-1, 1, 0), (0, 0, 1)), dtype=np.int64))
        if glazer is not None:
            candidates.append(_default_supercell(tilt_phases))
        candidates += [np.array(_LONG_AXIS_CELL[2], dtype=np.int64), 2 * np.eye(3, dtype=np.int64)]
        for cell in candidates:
            try:
                _check_commensurate(cell, jt_phases, "")
                _check_commensurate(cell, tilt_phases, "")
            except StructureError:
                continue
            break
    _check_commensurate(cell, jt_phases, f"Jahn-Teller pattern {pattern!r} (stacking along z)")
    _check_commensurate(cell, tilt_phases, f"tilt pattern {glazer!r}")
    cells = perovskite_cells(cell)
    sign = _phase_sign(pattern, 2, cells)  # [n_cells]
    s2, s6 = np.sqrt(2.0), np.sqrt(6.0)
    local = np.array([q2 / (2 * s2) - q3 / (2 * s6), -q2 / (2 * s2) - q3 / (2 * s6), q3 / s6])  # [3]
    bond_delta = sign[:, None] * local[None, :]  # [n_cells, 3]
    omega = np.stack([angles[k] * _phase_sign(tilt_phases[k], k, cells) for k in range(3)], axis=1)
    parent = _build_perovskite(cell, a, species)
    target = _build_perovskite(cell, a, species, omega=omega, bond_delta=bond_delta)
    return parent, target


# ------------------------------------------------------------------------------------------------------------
# finite point clouds
# ------------------------------------------------------------------------------------------------------------

_CLOUD_SPECIES = "H"
_CORNER_SIGNS = np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])  # counter-clockwise from (+, +)


def rectangle(a: float, b: float) -> Molecule:
    """Four points at the vertices of an a x b rectangle in the xy plane, centred on the origin.

    Args:
        a: Side along x (Angstrom).
        b: Side along y (Angstrom).

    Returns:
        Molecule of four ``H`` atoms at ``(+a/2, +b/2, 0)``, ``(-a/2, +b/2, 0)``, ``(-a/2, -b/2, 0)``,
        ``(+a/2, -b/2, 0)`` (counter-clockwise).

    Raises:
        StructureError: a side is not positive and finite.
    """
    for name, v in (("a", a), ("b", b)):
        if not np.isfinite(v) or v <= 0:
            raise StructureError(f"rectangle side {name} must be a positive finite length, got {v!r}")
    xy = _CORNER_SIGNS * np.array([a / 2.0, b / 2.0])
    coords = np.concatenate([xy, np.zeros((4, 1))], axis=1)  # [4, 3]
    return Molecule([_CLOUD_SPECIES] * 4, coords)


def square(side: float = 2.0) -> Molecule:
    """Four points at the vertices of a square in the xy plane (default: ``(+-1, +-1, 0)``).

    Args:
        side: Side length in Angstrom.

    Returns:
        Molecule of four ``H`` atoms, vertex order as in :func:`rectangle`.
    """
    return rectangle(side, side)


def square_rectangle(elongation: float = 0.2, side: float = 2.0) -> tuple[Molecule, Molecule]:
    """The paper's square -> rectangle pair.

    Args:
        elongation: Relative elongation of the rectangle along x: its x side is ``side * (1 + elongation)``.
        side: Side of the square (and y side of the rectangle), Angstrom.

    Returns:
        ``(square, rectangle)`` with the same vertex order.

    Raises:
        StructureError: the rectangle side would not be positive.
    """
    if not np.isfinite(elongation) or side * (1.0 + elongation) <= 0:
        raise StructureError(f"elongation must be finite and > -1, got {elongation!r}")
    return square(side), rectangle(side * (1.0 + elongation), side)


def antiphase_perovskite(repeat: Sequence[int], glazer: str = "a+b-b-", angles_deg: float = 8.0):
    """Parent and antiphase-domain target on ``repeat`` x the tilted cell of ``tilted_perovskite(glazer, ...)``.

    Every displacement is reversed where the first cell index is >= ``repeat[0] // 2``: two domains of opposite
    order parameter, so the distortion has no period shorter than the whole cell along the first axis. Each
    supercell site takes the displacement of the small-cell site it repeats (minimal image), so parent and target
    list the same sites in the same order.

    Returns:
        ``(parent, target)`` on the supercell.
    """
    repeat = tuple(int(n) for n in repeat)
    parent, target = tilted_perovskite(glazer, angles_deg)
    p = parent.make_supercell(repeat, in_place=False)
    first = np.floor(p.frac_coords[:, 0] * repeat[0] + 1e-9)
    sign = np.where(first >= repeat[0] // 2, -1.0, 1.0)
    d_small = target.frac_coords - parent.frac_coords
    d_small = (d_small - np.round(d_small)) @ parent.lattice.matrix
    f = p.cart_coords @ np.linalg.inv(parent.lattice.matrix)
    d = f[:, None, :] - parent.frac_coords[None, :, :]
    d -= np.round(d)
    disp = d_small[np.argmin(np.linalg.norm(d @ parent.lattice.matrix, axis=2), axis=1)]
    anti = Structure(p.lattice, p.species, p.cart_coords + sign[:, None] * disp, coords_are_cartesian=True)
    return p, anti

"""Put a parent and a distorted target on one cell: supercell, origin, site mapping, displacements, strain.

Users give the parent (e.g. the 5-atom cubic perovskite, or a 12-atom conventional fluorite cell) and the target
(e.g. a 20-atom Pnma structure in the Pbnm setting, with its own origin, a strained lattice and any site order; or
baddeleyite ZrO2 with β = 99.2 degrees). :func:`register` finds

1. the supercell matrix ``M`` (integer, ``det M = n_target / n_parent``): the rows of ``M @ parent_lattice``
   are the target's lattice vectors before strain and rotation. Every ``M`` whose stretch has principal strains
   within ``ltol`` and changes no angle by more than ``angle_tol`` is enumerated (exact windows on the lengths
   and angles of the candidate rows, :mod:`matsym._supercells`), and the candidates are tried in order of
   increasing deviatoric strain; candidates of equal strain (related by the parent's point group) are tried
   smallest rotation first. A target given in the parent's orientation without strain (a supercell built with
   ``make_supercell``) has its exact ``M`` tried first, with no enumeration;
2. the deformation gradient ``F`` with ``target_lattice = (M @ parent_lattice) @ F.T`` (Cartesian
   ``x_target = F @ x_parent``), split by polar decomposition ``F = R U`` into a rotation ``R`` and a
   symmetric stretch ``U``;
3. the origin shift and the site mapping: the target's fractional coordinates (in the basis of its own
   lattice, which is the basis of the parent supercell) are shifted so that a target atom of a rarest species
   sits on a parent site of that species (a few such anchors, one parent site per orbit of the parent's pure
   translations); sites are assigned by nearest periodic image on a k-d tree (:mod:`matsym._site_matching`;
   a Hungarian assignment only where nearest sites collide), and the shift is refined to remove the mean
   displacement until the assignment no longer changes. The first candidate whose largest displacement is
   within the limit and whose mapping is unambiguous wins;
4. the displacements, measured in the parent's unstrained, unrotated frame, mean removed.

When the target is not a supercell of the parent as given (6 sites on a 12-site conventional cell, or a lattice
that only the primitive cell divides), the parent is reduced to its primitive cell by pure translation tests (no
symmetry tables) and registered again; ``Registration.parent_reduction`` records it. ``Registration.timings``
records the cost (seconds, candidate matrices, assignments).

The result is a :class:`Registration`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from matsym._site_matching import Match as _Match
from matsym._site_matching import Matcher as _Matcher
from matsym._site_matching import supercell_frac as _supercell_frac
from matsym._supercells import (
    candidate_matrices,
    deformation,
    direct_candidate,
    polar,
    primitive_basis,
    pure_translations,
    strain_measures,
)
from matsym.errors import MatsymError, RegistrationError

if TYPE_CHECKING:
    from pymatgen.core import Structure

__all__ = ["DEFAULT_ANGLE_TOL", "DEFAULT_LTOL", "Registration", "register"]

_SAME_LATTICE_TOL = 1e-6  # Å, lattices equal within this are "the same" (fast path)
_STRAIN_GROUP_TOL = 1e-6  # candidates whose strain norms differ by less are symmetry-equivalent
_TIE_TOL = 1e-6  # Å, atomic matches whose max displacements differ by less are equally good
_N_ANCHORS = 4  # target atoms of each rarest species tried as origin anchors
_BANDS = ((0.03, 4.0), (0.1, 12.0))  # (principal strain on the volume-scaled parent, angle change) bands
_FULL_REPORT_SITES = 500  # up to this size a refusal reports the best full assignment of all trial origins
_TRANSLATION_TOL = 1e-2  # Å, a pure translation of the parent maps every site within this (CIF rounding: 1e-4)

DEFAULT_LTOL = 0.2  # largest principal strain
DEFAULT_ANGLE_TOL = 20.0  # degrees, largest change of the angle between two directions


# ------------------------------------------------------------------------------------------------------------
# result
# ------------------------------------------------------------------------------------------------------------


def _frozen(a: Any, dtype: Any) -> np.ndarray:
    arr = np.array(a, dtype=dtype)
    arr.setflags(write=False)
    return arr


@dataclasses.dataclass(frozen=True, eq=False)
class Registration:
    """Parent and target on one cell, with a one-to-one site mapping.

    Frames and conventions: ``parent.lattice`` is ``supercell_matrix @ parent_lattice`` of the parent as given
    (unstrained, unrotated); ``target`` is the target exactly as given. Fractional coordinates of both refer
    to corresponding lattice vectors, so for every site ``j``, up to a whole lattice vector (a minimal
    image)::

        displacements[j] == (target.frac_coords[j] - parent.frac_coords[j]) @ parent.lattice.matrix

    ``parent`` is placed at the target's origin, so the comparison needs no shift.

    Attributes:
        parent: The parent on the target's supercell: same number of sites and the same site order (and
            species) as ``target``; unstrained lattice; placed at the target's origin.
        target: The target as given (a copy), in the user's site order.
        supercell_matrix: Integer [3, 3]; rows are the target's lattice vectors in the parent's lattice basis
            (parent cell -> supercell, pymatgen's ``make_supercell`` convention).
        origin_shift: [3] fractional (supercell basis): adding it to the target's fractional coordinates
            brings the target onto the origin of the parent supercell built from the parent as given (see
            :meth:`parent_supercell`): ``parent_supercell()[site_map[j]] == parent[j] + origin_shift``.
        site_map: [n] int: target site ``j`` corresponds to site ``site_map[j]`` of :meth:`parent_supercell`.
        parent_index: [n] int: target site ``j`` derives from site ``parent_index[j]`` of the parent as given.
        displacements: [n, 3] Å, target minus parent, minimal image, in the parent's (unstrained, unrotated)
            Cartesian frame, with the mean (a rigid translation) removed. In the target's frame they are
            ``displacements @ deformation_gradient.T``.
        deformation_gradient: [3, 3] ``F`` with ``target.lattice.matrix = parent.lattice.matrix @ F.T``.
        rotation: [3, 3] proper rotation ``R`` of the polar decomposition ``F = R U``; identity if the target
            is not rotated.
        strain: [3, 3] symmetric Biot strain ``U - I`` (rotation-free; a lattice stretched by 2 % along x has
            ``strain[0, 0] = 0.02``).
        green_lagrange_strain: [3, 3] ``E = (F.T F - I) / 2``.
        rms_displacement: Root mean square of ``|displacements|`` (Å).
        max_displacement: Largest ``|displacements|`` (Å).
        parent_input: The parent the supercell is built from (a copy): the parent as given, or its primitive cell
            when it was reduced (see ``parent_reduction``); :meth:`parent_supercell` repeats it.
        parent_reduction: Empty when the parent was used as given; otherwise ``reduced``, the site counts, the
            number of pure translations, ``primitive_basis`` (rows: the primitive lattice vectors in the given
            parent's fractional basis) and a ``note``.
        timings: Cost of the registration: ``seconds`` (wall), ``candidate_matrices`` (supercell matrices within
            the tolerances), ``matrices_matched`` and ``assignments`` (site assignments computed).
    """

    parent: Structure
    target: Structure
    supercell_matrix: np.ndarray
    origin_shift: np.ndarray
    site_map: np.ndarray
    parent_index: np.ndarray
    displacements: np.ndarray
    deformation_gradient: np.ndarray
    rotation: np.ndarray
    strain: np.ndarray
    green_lagrange_strain: np.ndarray
    rms_displacement: float
    max_displacement: float
    parent_input: Structure
    parent_reduction: dict = dataclasses.field(default_factory=dict)
    timings: dict = dataclasses.field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"Registration({self.target.composition.reduced_formula}, {len(self.target)} sites, "
            f"supercell_matrix={self.supercell_matrix.tolist()}, "
            f"max_displacement={self.max_displacement:.4f} Å, "
            f"rms_displacement={self.rms_displacement:.4f} Å, "
            f"max |strain|={np.abs(self.strain).max():.4g}, "
            f"rotation={np.degrees(_rotation_angle(self.rotation)):.3g} deg)"
        )

    def parent_supercell(self) -> Structure:
        """The parent as given, repeated on ``supercell_matrix`` at its own origin, in the canonical order.

        The order is site-major: index ``i * N + k`` is parent site ``i`` translated to the ``k``-th lattice
        point of the supercell (points sorted lexicographically by their integer coordinates), ``N = det M``.
        """
        from pymatgen.core import Lattice, Structure

        m = self.supercell_matrix
        frac = _supercell_frac(np.asarray(self.parent_input.frac_coords), m)
        species = [site.species for site in self.parent_input for _ in range(len(frac) // len(self.parent_input))]
        lattice = Lattice(m @ self.parent_input.lattice.matrix)
        return Structure(lattice, species, frac)

    def displaced_parent(self, amplitude: float = 1.0) -> Structure:
        """The parent moved by ``amplitude`` times the displacements (same lattice, same site order).

        At ``amplitude=1`` this is the target without its strain and rotation (and without the rigid
        translation).
        """
        cart = self.parent.cart_coords + float(amplitude) * self.displacements
        return self.parent.__class__(
            self.parent.lattice, [site.species for site in self.parent], cart, coords_are_cartesian=True
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary (pymatgen MSON style)."""
        out: dict[str, Any] = {"@module": type(self).__module__, "@class": type(self).__name__}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if hasattr(value, "as_dict"):
                out[field.name] = value.as_dict()
            elif isinstance(value, np.ndarray):
                out[field.name] = value.tolist()
            else:
                out[field.name] = value
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Registration:
        """Inverse of :meth:`as_dict`; structures are rebuilt without importing anything the record names.

        Raises:
            RegistrationError: a field is missing.
        """
        from matsym.safejson import structure_from_dict

        optional = {"parent_reduction", "timings"}  # added later: older records lack them
        names = [f.name for f in dataclasses.fields(cls) if f.name in d or f.name not in optional]
        missing = [n for n in names if n not in d]
        if missing:
            raise RegistrationError(f"Registration dictionary lacks field(s) {missing}; expected {names}")
        ints = {"supercell_matrix", "site_map", "parent_index"}
        kwargs: dict[str, Any] = {}
        for name in names:
            value = d[name]
            if name in ("parent", "target", "parent_input"):
                kwargs[name] = structure_from_dict(value, where=f"registration {name}")
            elif name in ("rms_displacement", "max_displacement"):
                kwargs[name] = float(value)
            elif name in optional:
                kwargs[name] = dict(value)
            else:
                kwargs[name] = _frozen(value, np.int64 if name in ints else np.float64)
        return cls(**kwargs)


# ------------------------------------------------------------------------------------------------------------
# geometry helpers
# ------------------------------------------------------------------------------------------------------------


def _wrap(f: np.ndarray) -> np.ndarray:
    return f - np.floor(f + 0.5)


def _rotation_angle(r: np.ndarray) -> np.ndarray:
    return np.arccos(np.clip((np.trace(r, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0))


def _describe_lattice(lat: np.ndarray) -> str:
    lengths = np.linalg.norm(lat, axis=1)
    angles = [
        np.degrees(np.arccos(np.dot(lat[j], lat[k]) / lengths[j] / lengths[k])) for j, k in ((1, 2), (0, 2), (0, 1))
    ]
    abc = ", ".join(f"{x:.4f}" for x in lengths)
    return f"a,b,c = {abc} Å, angles = {', '.join(f'{x:.2f}' for x in angles)} deg"


def _describe_strain(m: np.ndarray, principal: float, shear: float) -> str:
    return f"supercell {m.tolist()} with a principal strain of {principal:.3g} and an angle change of {shear:.3g} deg"


# ------------------------------------------------------------------------------------------------------------
# public entry point
# ------------------------------------------------------------------------------------------------------------


def _load(obj: Any, name: str) -> Structure:
    from pymatgen.core import IStructure, Structure

    from matsym.io import load_structure

    try:
        s = load_structure(obj, min_distance=0.0)
    except MatsymError as exc:
        raise type(exc)(f"{name}: {exc}") from exc
    if not isinstance(s, IStructure):
        raise RegistrationError(
            f"{name}: registration needs a periodic structure (pymatgen Structure, periodic ASE Atoms or a "
            f"crystal file), got a finite point cloud from {type(obj).__name__}"
        )
    return s if isinstance(s, Structure) else Structure.from_sites(s.sites)


def _symbols(s: Structure) -> list[str]:
    return [site.specie.symbol for site in s]


def _check_positive(name: str, value: float | None, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not np.isfinite(value) or value < 0:
        raise RegistrationError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclasses.dataclass
class _Settings:
    ltol: float
    angle_tol: float
    rms_limit_factor: float  # stol
    limit: float
    ambiguity_tol: float
    max_candidates: int
    max_displacement: float | None


@dataclasses.dataclass
class _Counters:
    candidates: int = 0
    matrices_tried: int = 0
    assignments: int = 0


def register(
    parent: Structure | Any,
    target: Structure | Any,
    *,
    ltol: float = DEFAULT_LTOL,
    stol: float = 0.3,
    angle_tol: float = DEFAULT_ANGLE_TOL,
    max_displacement: float | None = 1.0,
    ambiguity_tol: float = 1e-2,
    max_candidates: int = 96,
    reduce_parent: bool = True,
) -> Registration:
    """Put a parent and a target on one cell and map their sites one to one.

    Args:
        parent: The high-symmetry structure (pymatgen Structure, ASE Atoms, or a file path).
        target: The distorted structure, in any supercell of the parent, any setting, origin, site order; it
            may be strained and rigidly rotated.
        ltol: Largest principal strain ``|λ - 1|`` of the stretch that takes the parent supercell onto the
            target lattice (0.2: 20 %); also bounds the volume change per site to ``(1 ± ltol)**3``.
        stol: Largest allowed root-mean-square displacement, as a fraction of the parent's
            ``(V / n_sites)**(1/3)`` (0.3 is about 0.68 Å for SrTiO3).
        angle_tol: Largest change of the angle between two directions that the stretch may cause, degrees (the
            shear angle; 9.2 degrees for baddeleyite ZrO2 on its fluorite parent is about 12 degrees of it).
        max_displacement: Largest allowed displacement of any site in Å (None: no limit).
        ambiguity_tol: A target site whose two nearest parent sites of its species are equally close within
            this (Å) makes the mapping ambiguous.
        max_candidates: Largest number of supercell matrices whose atoms are matched (in order of increasing
            strain).
        reduce_parent: When the target is not a supercell of the parent as given (site count or lattice), and
            the parent has pure translations (a centred conventional cell), register on its primitive cell; the
            result's ``parent_reduction`` says so.

    Returns:
        The :class:`Registration`; ``timings`` holds its cost.

    Raises:
        RegistrationError: different compositions; a target that is not a whole multiple of the parent; no
            supercell relation within the tolerances (the message gives the smallest strain found); an ambiguous
            mapping; displacements over the limit.
        DisorderError: a structure has partially occupied or mixed sites.
        StructureError: a structure is unusable (empty, singular lattice, ...).

    Example:
        >>> from matsym.structures import cubic_perovskite, tilted_perovskite
        >>> _, target = tilted_perovskite("a+b-b-", 8.0)
        >>> reg = register(cubic_perovskite(), target)
        >>> reg.supercell_matrix.shape, len(reg.parent) == len(target)
        ((3, 3), True)
    """
    start = time.perf_counter()
    for name, value in (
        ("ltol", ltol),
        ("stol", stol),
        ("angle_tol", angle_tol),
        ("ambiguity_tol", ambiguity_tol),
    ):
        _check_positive(name, value)
    if ltol >= 1.0:
        raise RegistrationError(f"ltol must be below 1 (a principal strain of -100 % is no crystal), got {ltol!r}")
    if angle_tol >= 90.0:
        raise RegistrationError(f"angle_tol must be below 90 degrees, got {angle_tol!r}")
    _check_positive("max_displacement", max_displacement, allow_none=True)
    if isinstance(max_candidates, bool) or not isinstance(max_candidates, int | np.integer) or max_candidates < 1:
        raise RegistrationError(f"max_candidates must be a positive integer, got {max_candidates!r}")
    p = _load(parent, "parent")
    t = _load(target, "target")

    comp_p = p.composition.element_composition.reduced_composition
    comp_t = t.composition.element_composition.reduced_composition
    if not comp_p.almost_equals(comp_t):
        raise RegistrationError(
            f"parent and target have different compositions: parent {comp_p.reduced_formula} "
            f"({len(p)} sites), target {comp_t.reduced_formula} ({len(t)} sites)"
        )
    settings = _Settings(
        ltol=float(ltol),
        angle_tol=float(angle_tol),
        rms_limit_factor=float(stol),
        limit=np.inf if max_displacement is None else float(max_displacement),
        ambiguity_tol=float(ambiguity_tol),
        max_candidates=int(max_candidates),
        max_displacement=max_displacement,
    )
    counters = _Counters()
    t_frac = np.asarray(t.frac_coords, dtype=np.float64)
    t_species = np.array(_symbols(t))

    first: RegistrationError | None = None
    if len(t) % len(p) == 0:
        try:
            match, used = _register_on(p, t, t_frac, t_species, settings, counters, lattice_only_error=True)
            return _result(used, t, match, {}, counters, start)
        except _NoLattice as exc:
            first = RegistrationError(str(exc))
    else:
        first = RegistrationError(
            f"target has {len(t)} sites, not a whole multiple of the parent's {len(p)}: the target cell must "
            f"be a supercell of the parent cell"
        )
    primitive, reduction = _primitive(p) if reduce_parent else (None, {})
    if primitive is None:
        hint = " (give the parent's primitive cell)" if "whole multiple" in str(first) else ""
        raise RegistrationError(f"{first}{hint}")
    if len(t) % len(primitive):
        raise RegistrationError(f"{first}; its primitive cell of {len(primitive)} sites does not divide it either")
    try:
        match, used = _register_on(primitive, t, t_frac, t_species, settings, counters, lattice_only_error=False)
    except RegistrationError as exc:
        raise RegistrationError(f"{first}; on the parent's primitive cell ({len(primitive)} sites): {exc}") from None
    return _result(used, t, match, reduction, counters, start)


class _Matchers:
    """Site matchers of one parent, built once per supercell matrix (the k-d trees are the costly part)."""

    def __init__(self) -> None:
        self._cache: dict[bytes, _Matcher] = {}

    def get(self, p_frac: np.ndarray, p_species: list[str], p_lat: np.ndarray, m: np.ndarray) -> _Matcher:
        key = np.asarray(m, dtype=np.int64).tobytes()
        if key not in self._cache:
            self._cache[key] = _Matcher(p_frac, p_species, p_lat, np.asarray(m, dtype=np.int64))
        return self._cache[key]


class _NoLattice(RegistrationError):
    """No supercell matrix within the tolerances (the parent's primitive cell may still fit)."""


def _primitive(p: Structure) -> tuple[Structure | None, dict[str, Any]]:
    """The parent's primitive cell by pure translation tests, or None if the parent is primitive already."""
    from pymatgen.core import Lattice, Structure

    p_lat = np.asarray(p.lattice.matrix, dtype=np.float64)
    p_frac = np.asarray(p.frac_coords, dtype=np.float64)
    species = np.array(_symbols(p))
    translations = pure_translations(p_frac, species, p_lat, _TRANSLATION_TOL)
    if len(translations) == 1:
        return None, {}
    basis = primitive_basis(translations, p_lat)  # rows: primitive vectors in the parent's fractional basis
    lat = basis @ p_lat
    frac = p_frac @ np.linalg.inv(basis)
    frac -= np.floor(frac)
    frac[frac > 1 - 1e-9] = 0.0
    # one representative per site orbit under the translations: keep the first of each equal position
    keep: list[int] = []
    for i in range(len(p)):
        if not any(
            species[i] == species[j] and np.linalg.norm(_wrap(frac[i] - frac[j]) @ lat) < _TRANSLATION_TOL for j in keep
        ):
            keep.append(i)
    prim = Structure(Lattice(lat), [p[i].species for i in keep], frac[keep])
    reduction = {
        "reduced": True,
        "parent_sites": len(p),
        "primitive_sites": len(prim),
        "pure_translations": len(translations),
        "primitive_basis": np.round(basis, 12).tolist(),
        "note": (
            f"the parent's {len(p)}-site cell has {len(translations)} pure translations; registered on its "
            f"{len(prim)}-site primitive cell"
        ),
    }
    return prim, reduction


def _register_on(
    p: Structure,
    t: Structure,
    t_frac: np.ndarray,
    t_species: np.ndarray,
    settings: _Settings,
    counters: _Counters,
    *,
    lattice_only_error: bool,
) -> tuple[_Match, Structure]:
    """Register the target on supercells of ``p``; returns the accepted match and ``p``."""
    n_cells = len(t) // len(p)
    p_lat = np.asarray(p.lattice.matrix, dtype=np.float64)
    t_lat = np.asarray(t.lattice.matrix, dtype=np.float64)
    p_frac = np.asarray(p.frac_coords, dtype=np.float64)
    p_species = _symbols(p)
    rms_limit = settings.rms_limit_factor * (abs(p.volume) / len(p)) ** (1 / 3)
    limit = settings.limit
    ltol, angle_tol = settings.ltol, settings.angle_tol
    give_up = None if not np.isfinite(limit) else limit
    matchers = _Matchers()

    def within(g: _Match) -> bool:
        return g.max_disp <= limit and g.rms <= rms_limit

    # fast path: same cell, any site order, small displacements, no rigid shift
    if len(p) == len(t) and np.allclose(p_lat, t_lat, rtol=0, atol=_SAME_LATTICE_TOL):
        eye = np.eye(3, dtype=np.int64)
        matcher = matchers.get(p_frac, p_species, p_lat, eye)
        counters.assignments += 1
        match = matcher.match(t_frac, t_species, np.zeros(3), give_up=give_up)
        # any one-to-one assignment is accepted here (supercells made from a parent and a displaced target can
        # list their images in different orders), provided the target is not rigidly shifted: a shift would need
        # the origin search below
        if match is not None and within(match) and match.margin >= settings.ambiguity_tol:
            raw = np.asarray(t.cart_coords) - np.asarray(p.cart_coords)[match.assign] - match.disp
            rigid = float(np.linalg.norm(np.mean(raw - np.round(raw @ np.linalg.inv(p_lat)) @ p_lat, axis=0)))
            if rigid < 0.1:
                return match, p

    error = _NoLattice if lattice_only_error else RegistrationError
    ratio = abs(t.volume) / (n_cells * abs(p.volume))
    if not (1 - ltol) ** 3 <= ratio <= (1 + ltol) ** 3:
        raise error(
            f"no supercell relation: the target's volume per site is {ratio:.4g} times the parent's (allowed "
            f"{(1 - ltol) ** 3:.3g}-{(1 + ltol) ** 3:.3g} with ltol={ltol}); parent lattice "
            f"{_describe_lattice(p_lat)}, target lattice {_describe_lattice(t_lat)}"
        )
    anchors = _anchors(p_frac, p_species, p_lat, t_species)
    args = (
        p_lat,
        t_lat,
        p_frac,
        p_species,
        t_frac,
        t_species,
        settings,
        counters,
        rms_limit,
        give_up,
        anchors,
        matchers,
    )
    direct = direct_candidate(p_lat, t_lat, n_cells)
    direct_failure: RegistrationError | None = None
    if direct is not None:
        # the target is an unstrained, unrotated supercell: the exact candidate comes first
        counters.candidates += 1
        try:
            return _match_candidates(direct[None], *args), p
        except RegistrationError as exc:
            direct_failure = exc
    # bands of increasing strain: each band's candidates are tried smallest strain first; the wide last band
    # alone made a strained 1,280-site Pbnm cell on the 5-atom parent enumerate 54,936 matrices (259 s)
    scaled = p_lat * ratio ** (1.0 / 3.0)
    tried = [] if direct is None else [direct]
    failures: list[RegistrationError] = [] if direct_failure is None else [direct_failure]
    any_candidate = direct is not None
    bands = [(e, a) for e, a in _BANDS if e < ltol and a < angle_tol] + [(ltol, angle_tol)]
    for k, (band_ltol, band_angle) in enumerate(bands):
        last = k == len(bands) - 1
        try:
            if last:
                ms = candidate_matrices(p_lat, t_lat, n_cells, ltol, angle_tol)
            else:
                ms = candidate_matrices(scaled, t_lat, n_cells, band_ltol, band_angle)
                _, u = polar(deformation(ms, p_lat, t_lat))
                principal, shear, _ = strain_measures(u)
                ms = ms[(principal <= ltol + 1e-12) & (shear <= angle_tol + 1e-9)]
        except ValueError as exc:
            if failures:
                raise failures[0] from None
            raise RegistrationError(
                f"the target cell is too large to search for supercell relations in a rotated setting ({exc}); "
                f"give the target in the parent's orientation (target lattice = M @ parent lattice, M integer)"
            ) from None
        if tried and len(ms):
            seen = np.array([m.ravel() for m in tried])
            ms = ms[~(ms.reshape(len(ms), 1, 9) == seen[None]).all(axis=2).any(axis=1)]
        if len(ms) == 0:
            continue
        any_candidate = True
        tried.extend(ms)
        counters.candidates += len(ms)
        try:
            return _match_candidates(ms, *args), p
        except RegistrationError as exc:
            failures.append(exc)
    if not any_candidate:
        raise error(_no_lattice_message(p_lat, t_lat, n_cells, settings, ratio))
    # the exact, unstrained relation explains best why the pair fails; otherwise the least strained band
    raise failures[0]


def _no_lattice_message(p_lat: np.ndarray, t_lat: np.ndarray, n: int, settings: _Settings, ratio: float) -> str:
    """What was tried and the smallest strain found, from a wider search."""
    what = (
        f"no supercell relation within ltol={settings.ltol} (principal strain), angle_tol={settings.angle_tol} deg "
        f"(angle change): no integer matrix with determinant {n} maps the parent lattice ({_describe_lattice(p_lat)}) "
        f"onto the target lattice ({_describe_lattice(t_lat)}); volume per site ratio {ratio:.4g}"
    )
    try:
        wide = candidate_matrices(
            p_lat, t_lat, n, min(0.5, 2 * settings.ltol), min(60.0, 2 * settings.angle_tol + 10)
        )
    except ValueError:
        return what
    if len(wide) == 0:
        return what + "; none within 2 x ltol and 2 x angle_tol + 10 deg either"
    r, u = polar(deformation(wide, p_lat, t_lat))
    principal, shear, _ = strain_measures(u)
    k = int(np.lexsort((np.round(_rotation_angle(r), 9), np.round(shear, 9), np.round(principal, 9)))[0])
    return (
        what + f"; the smallest strain found is {_describe_strain(wide[k], float(principal[k]), float(shear[k]))}"
        f" (raise ltol/angle_tol, --ltol/--angle-tol on the command line, to accept it)"
    )


def _anchors(
    p_frac: np.ndarray, p_species: list[str], p_lat: np.ndarray, t_species: np.ndarray
) -> list[tuple[int, int]]:
    """Origin anchors (target site, parent site): a few target sites of each rarest species, each placed on one
    parent site of that species per orbit of the parent's pure translations (equivalent origins otherwise)."""
    from scipy.spatial import cKDTree

    species = np.array(p_species)
    symbols, counts = np.unique(species, return_counts=True)
    translations = pure_translations(p_frac, species, p_lat, _TRANSLATION_TOL) if len(p_frac) > 1 else np.zeros((1, 3))
    anchors: list[tuple[int, int]] = []
    for sp in symbols[counts == counts.min()]:
        sites = np.nonzero(species == sp)[0]
        tree = cKDTree(np.mod(p_frac[sites], 1.0) % 1.0, boxsize=1.0)
        free = np.ones(len(sites), dtype=bool)
        reps: list[int] = []
        for k in range(len(sites)):
            if not free[k]:
                continue
            reps.append(int(sites[k]))
            _, hit = tree.query(np.mod(p_frac[sites[k]] + translations, 1.0) % 1.0)
            free[hit] = False
        t_sites = np.nonzero(t_species == sp)[0]
        picks = t_sites[np.unique(np.linspace(0, len(t_sites) - 1, min(_N_ANCHORS, len(t_sites))).astype(int))]
        anchors += [(int(j), i) for j in picks for i in reps]
    return anchors


def _match_candidates(
    ms: np.ndarray,
    p_lat: np.ndarray,
    t_lat: np.ndarray,
    p_frac: np.ndarray,
    p_species: list[str],
    t_frac: np.ndarray,
    t_species: np.ndarray,
    settings: _Settings,
    counters: _Counters,
    rms_limit: float,
    give_up: float | None,
    anchors: list[tuple[int, int]],
    matchers: _Matchers,
) -> _Match:
    """Try candidate matrices in order of increasing strain; the first acceptable atomic match wins."""
    limit = settings.limit
    r, u = polar(deformation(ms, p_lat, t_lat))
    _, _, strain_norm = strain_measures(u)
    angle = _rotation_angle(r)
    order = np.argsort(strain_norm, kind="stable")

    def within(g: _Match) -> bool:
        return g.max_disp <= limit and g.rms <= rms_limit

    abandoned: list[str] = []

    def evaluate(idx: int) -> list[_Match]:
        counters.matrices_tried += 1
        matcher = matchers.get(p_frac, p_species, p_lat, ms[idx])
        out = []
        for j, i in anchors:
            counters.assignments += 1
            match = matcher.match(t_frac, t_species, matcher.frac[i * matcher.n_cells] - t_frac[j], give_up=give_up)
            if match is None:
                abandoned.append(matcher.abandoned)
                continue
            match.strain_norm, match.rot_angle = float(strain_norm[idx]), float(angle[idx])
            out.append(match)
            if within(match) and match.margin >= settings.ambiguity_tol and match.max_disp < 0.5 * limit:
                break  # clearly right: the other anchors find the same origin
        return out

    def acceptable(matches: list[_Match]) -> list[_Match]:
        return [g for g in matches if within(g) and g.margin >= settings.ambiguity_tol]

    groups: list[list[int]] = []  # candidates of equal strain: normally related by the parent's point group
    for idx in order.tolist():
        if groups and strain_norm[idx] - strain_norm[groups[-1][0]] <= _STRAIN_GROUP_TOL:
            groups[-1].append(idx)
        else:
            groups.append([idx])
    # within a group: smallest rotation first, then a fixed order of the matrices
    groups = [sorted(g, key=lambda k: (round(float(angle[k]), 9), ms[k].ravel().tolist())) for g in groups]
    best_fail: _Match | None = None
    tried = 0
    for group in groups:
        if tried >= settings.max_candidates:
            break
        # the first candidate has the smallest rotation; equivalent ones cannot fit better
        matches = evaluate(group[0])
        tried += 1
        if not acceptable(matches):
            for idx in group[1:]:
                if tried >= settings.max_candidates:
                    break
                matches += evaluate(idx)
                tried += 1
        if acceptable(matches):
            return _best(acceptable(matches))
        if matches:
            candidate = _best(matches)
            if best_fail is None or candidate.max_disp < best_fail.max_disp - _TIE_TOL:
                best_fail = candidate

    if best_fail is not None and within(best_fail):
        j, i, i2, d1, d2 = best_fail.margin_site
        raise RegistrationError(
            f"ambiguous mapping: target site {j} ({t_species[j]}) is as close to parent-supercell site {i2} "
            f"({d2:.4f} Å) as to its assigned site {i} ({d1:.4f} Å) (ambiguity_tol={settings.ambiguity_tol} Å)"
        )
    what = (
        f"{tried} of {len(ms)} supercell matrices within ltol={settings.ltol}, angle_tol={settings.angle_tol} deg "
        f"tried (smallest strain first; deviatoric strain {strain_norm[order[0]]:.3g} to "
        f"{strain_norm[order[min(tried, len(order)) - 1]]:.3g}), {len(anchors)} origins each"
    )
    if best_fail is None and len(t_frac) > _FULL_REPORT_SITES:
        raise RegistrationError(
            f"no registration with displacements within the limits (largest {limit:.4g} Å from max_displacement="
            f"{settings.max_displacement}): every trial origin was abandoned at its first assignment (the first: "
            f"{abandoned[0]}); {what}"
        )
    if best_fail is None:
        # every trial origin was abandoned early: full assignments on the least strained candidate, for the
        # figures of the message (small cells only: a full assignment of many colliding sites is costly)
        matcher = _Matcher(p_frac, p_species, p_lat, ms[groups[0][0]])
        full = []
        for j0, i0 in anchors:
            counters.assignments += 1
            full.append(matcher.match(t_frac, t_species, matcher.frac[i0 * matcher.n_cells] - t_frac[j0]))
        best_fail = _best(full)
    j = int(np.argmax(np.linalg.norm(best_fail.disp, axis=1)))
    raise RegistrationError(
        f"no registration with displacements within the limits (largest {limit:.4g} Å from "
        f"max_displacement={settings.max_displacement}, rms {rms_limit:.4g} Å from stol={settings.rms_limit_factor}): "
        f"the best mapping (supercell {best_fail.m.tolist()}) moves target site {j} ({t_species[j]}) by "
        f"{best_fail.max_disp:.4g} Å, rms {best_fail.rms:.4g} Å; {what}"
    )


def _best(matches: Sequence[_Match]) -> _Match:
    """Smallest max displacement; ties broken by rotation, strain, then the candidate order."""
    low = min(g.max_disp for g in matches)
    tied = [g for g in matches if g.max_disp <= low + _TIE_TOL]
    return min(tied, key=lambda g: (round(g.rot_angle, 9), round(g.strain_norm, 9), g.rms))


def _result(
    p: Structure, t: Structure, match: _Match, reduction: dict[str, Any], counters: _Counters, start: float
) -> Registration:
    from pymatgen.core import Lattice, Structure

    m = match.m
    m_float = m.astype(np.float64)
    n_cells = round(abs(np.linalg.det(m_float)))
    lat = m_float @ np.asarray(p.lattice.matrix, dtype=np.float64)
    t_lat = np.asarray(t.lattice.matrix, dtype=np.float64)
    # origin shift: the representative modulo parent lattice translations closest to zero; the site map
    # follows
    shift_parent = match.shift @ m_float  # parent fractional basis
    whole = np.floor(shift_parent + 0.5)
    shift = (shift_parent - whole) @ np.linalg.inv(m_float)
    canonical = _supercell_frac(np.asarray(p.frac_coords), m)
    parent_index = match.assign // n_cells
    moved = canonical[match.assign] - whole @ np.linalg.inv(m_float)
    site_map = np.empty(len(t), dtype=np.int64)
    for i_p in np.unique(parent_index):
        rows = np.nonzero(parent_index == i_p)[0]
        block = canonical[i_p * n_cells : (i_p + 1) * n_cells]  # [N, 3]
        if n_cells == 1:
            site_map[rows] = i_p
            continue
        from scipy.spatial import cKDTree

        # nearest block site, periodic in the supercell's fractional basis
        tree = cKDTree(block % 1.0, boxsize=1.0)
        _, k = tree.query(moved[rows] % 1.0)
        site_map[rows] = i_p * n_cells + k
    parent_frac = canonical[site_map] - shift
    parent_frac -= np.floor(parent_frac)
    parent_frac[parent_frac > 1 - 1e-12] = 0.0
    parent_on_target = Structure(Lattice(lat), [p[int(i)].species for i in parent_index], parent_frac)

    f = (np.linalg.inv(lat) @ t_lat).T
    r, u = polar(f)
    norms = np.linalg.norm(match.disp, axis=1)
    timings = {
        "seconds": time.perf_counter() - start,
        "candidate_matrices": counters.candidates,
        "matrices_matched": counters.matrices_tried,
        "assignments": counters.assignments,
    }
    return Registration(
        parent=parent_on_target,
        target=t.copy(),
        supercell_matrix=_frozen(m, np.int64),
        origin_shift=_frozen(shift, np.float64),
        site_map=_frozen(site_map, np.int64),
        parent_index=_frozen(parent_index, np.int64),
        displacements=_frozen(match.disp, np.float64),
        deformation_gradient=_frozen(f, np.float64),
        rotation=_frozen(r, np.float64),
        strain=_frozen(u - np.eye(3), np.float64),
        green_lagrange_strain=_frozen(0.5 * (f.T @ f - np.eye(3)), np.float64),
        rms_displacement=float(np.sqrt(np.mean(norms**2))),
        max_displacement=float(norms.max()),
        parent_input=p.copy(),
        parent_reduction=dict(reduction),
        timings=timings,
    )

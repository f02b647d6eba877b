"""Put a parent and a distorted target on one cell: supercell, origin, site mapping, displacements, strain.

Users give the parent (e.g. the 5-atom cubic perovskite) and the target (e.g. a 20-atom Pnma structure in the
Pbnm setting, with its own origin, a strained lattice and any site order). :func:`register` finds

1. the supercell matrix ``M`` (integer, ``det M = n_target / n_parent``): the rows of ``M @ parent_lattice``
   are the target's lattice vectors before strain and rotation. Candidates match every target lattice vector
   to a parent lattice vector of similar length (``ltol``, after scaling the parent to the target's volume per
   site) and the angles between them (``angle_tol``); candidates whose principal strains exceed ``ltol`` are
   dropped. They are tried in order of increasing strain; candidates of equal strain (related by the parent's
   point group) are tried smallest rotation first;
2. the deformation gradient ``F`` with ``target_lattice = (M @ parent_lattice) @ F.T`` (Cartesian
   ``x_target = F @ x_parent``), split by polar decomposition ``F = R U`` into a rotation ``R`` and a
   symmetric stretch ``U``;
3. the origin shift and the site mapping: the target's fractional coordinates (in the basis of its own
   lattice, which is the basis of the parent supercell) are shifted so that a target atom of a rarest species
   sits on a parent site of that species (a few such anchors are tried); sites are assigned species by species
   with the Hungarian algorithm on minimal-image distances, and the shift is refined to remove the mean
   displacement until the assignment no longer changes. The first candidate whose largest displacement is
   within the limit and whose mapping is unambiguous wins;
4. the displacements, measured in the parent's unstrained, unrotated frame, mean removed.

The result is a :class:`Registration`.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from matsym.errors import MatsymError, RegistrationError

if TYPE_CHECKING:
    from pymatgen.core import Structure

__all__ = ["Registration", "register"]

_SAME_LATTICE_TOL = 1e-6  # Å, lattices equal within this are "the same" (fast path)
_STRAIN_GROUP_TOL = 1e-6  # candidates whose strain norms differ by less are symmetry-equivalent
_TIE_TOL = 1e-6  # Å, atomic matches whose max displacements differ by less are equally good
_MAX_REFINE = 8
_N_ANCHORS = 4  # target atoms of each rarest species tried as origin anchors


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
        parent_input: The parent as given (a copy), to rebuild :meth:`parent_supercell`.
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
        """Inverse of :meth:`as_dict`.

        Raises:
            RegistrationError: a field is missing.
        """
        from pymatgen.core import Structure

        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in d]
        if missing:
            raise RegistrationError(f"Registration dictionary lacks field(s) {missing}; expected {names}")
        ints = {"supercell_matrix", "site_map", "parent_index"}
        kwargs: dict[str, Any] = {}
        for name in names:
            value = d[name]
            if name in ("parent", "target", "parent_input"):
                kwargs[name] = Structure.from_dict(value)
            elif name in ("rms_displacement", "max_displacement"):
                kwargs[name] = float(value)
            else:
                kwargs[name] = _frozen(value, np.int64 if name in ints else np.float64)
        return cls(**kwargs)


# ------------------------------------------------------------------------------------------------------------
# geometry helpers
# ------------------------------------------------------------------------------------------------------------


def _lattice_points(m: np.ndarray) -> np.ndarray:
    """Integer points ``n`` (parent basis) with ``n @ inv(M)`` in [0, 1)^3, sorted; [det M, 3]."""
    inv = np.linalg.inv(m.astype(np.float64))
    corners = np.array(list(itertools.product((0, 1), repeat=3))) @ m  # [8, 3]
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    axes = [np.arange(lo[i], hi[i] + 1) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)  # [n_grid, 3]
    frac = grid @ inv
    keep = np.all((frac > -1e-9) & (frac < 1 - 1e-9), axis=1)
    return grid[keep]


def _supercell_frac(parent_frac: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Fractional coordinates (supercell basis) of the parent repeated on M, site-major; [n_p * N, 3]."""
    points = _lattice_points(m)  # [N, 3]
    inv = np.linalg.inv(m.astype(np.float64))
    frac = ((parent_frac[:, None, :] + points[None, :, :]) @ inv).reshape(-1, 3)
    frac -= np.floor(frac)
    frac[frac > 1 - 1e-12] = 0.0
    return frac


def _wrap(f: np.ndarray) -> np.ndarray:
    return f - np.floor(f + 0.5)


def _polar(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right polar decomposition F = R U of a batch [..., 3, 3]; returns (R, U)."""
    c = np.swapaxes(f, -1, -2) @ f
    w, v = np.linalg.eigh(c)
    u = (v * np.sqrt(np.clip(w, 0.0, None))[..., None, :]) @ np.swapaxes(v, -1, -2)
    r = f @ np.linalg.inv(u)
    return r, u


def _rotation_angle(r: np.ndarray) -> np.ndarray:
    return np.arccos(np.clip((np.trace(r, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0))


def _describe_lattice(lat: np.ndarray) -> str:
    lengths = np.linalg.norm(lat, axis=1)
    angles = [
        np.degrees(np.arccos(np.dot(lat[j], lat[k]) / lengths[j] / lengths[k])) for j, k in ((1, 2), (0, 2), (0, 1))
    ]
    abc = ", ".join(f"{x:.4f}" for x in lengths)
    return f"a,b,c = {abc} Å, angles = {', '.join(f'{x:.2f}' for x in angles)} deg"


def _candidate_matrices(
    parent_lat: np.ndarray, target_lat: np.ndarray, n: int, ltol: float, angle_tol: float
) -> np.ndarray:
    """Integer M with det(M) = +-n (sign such that det F > 0) matching lengths and angles; [n_cand, 3, 3]."""
    inv = np.linalg.inv(parent_lat)
    t_len = np.linalg.norm(target_lat, axis=1)
    cands: list[np.ndarray] = []
    for i in range(3):
        bound = np.floor((1 + ltol) * t_len[i] * np.linalg.norm(inv, axis=0) + 1e-9).astype(int)
        axes = [np.arange(-b, b + 1) for b in bound]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        lengths = np.linalg.norm(grid @ parent_lat, axis=1)
        cands.append(grid[np.abs(lengths - t_len[i]) <= ltol * t_len[i]])
    if any(len(c) == 0 for c in cands):
        return np.zeros((0, 3, 3), dtype=np.int64)
    vecs = [c @ parent_lat for c in cands]
    units = [v / np.linalg.norm(v, axis=1, keepdims=True) for v in vecs]
    t_unit = target_lat / t_len[:, None]

    def angle_ok(a: int, b: int) -> np.ndarray:
        target_angle = np.degrees(np.arccos(np.clip(t_unit[a] @ t_unit[b], -1, 1)))
        ang = np.degrees(np.arccos(np.clip(units[a] @ units[b].T, -1, 1)))
        return np.abs(ang - target_angle) <= angle_tol

    ok01, ok02, ok12 = angle_ok(0, 1), angle_ok(0, 2), angle_ok(1, 2)
    sign = 1 if np.linalg.det(target_lat) * np.linalg.det(parent_lat) > 0 else -1
    found: list[np.ndarray] = []
    for i0, i1 in zip(*np.nonzero(ok01), strict=True):
        k = np.nonzero(ok02[i0] & ok12[i1])[0]
        if len(k) == 0:
            continue
        ms = np.empty((len(k), 3, 3), dtype=np.int64)
        ms[:, 0] = cands[0][i0]
        ms[:, 1] = cands[1][i1]
        ms[:, 2] = cands[2][k]
        det = np.round(np.linalg.det(ms.astype(np.float64))).astype(np.int64)
        found.append(ms[det == sign * n])
    if not found:
        return np.zeros((0, 3, 3), dtype=np.int64)
    return np.concatenate(found)


# ------------------------------------------------------------------------------------------------------------
# atomic matching
# ------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Match:
    m: np.ndarray
    shift: np.ndarray  # [3] fractional, supercell basis
    assign: np.ndarray  # [n] target j -> canonical parent-supercell index
    disp: np.ndarray  # [n, 3] Cartesian, mean removed
    max_disp: float
    rms: float
    margin: float
    margin_site: tuple[int, int, int, float, float]  # (target j, parent i, other i', d_assigned, d_other)
    strain_norm: float = 0.0
    rot_angle: float = 0.0


class _Matcher:
    """Site assignment of a target on one candidate supercell of the parent."""

    def __init__(self, parent_frac: np.ndarray, parent_species: list[str], parent_lat: np.ndarray, m: np.ndarray):
        self.m = m
        self.n_cells = round(abs(np.linalg.det(m)))
        self.lat = m @ parent_lat  # [3, 3]
        self.inv_lat = np.linalg.inv(self.lat)
        self.frac = _supercell_frac(parent_frac, m)  # [n, 3]
        self.species = np.repeat(np.array(parent_species), self.n_cells)
        from pymatgen.core import Lattice

        lll = Lattice(self.lat).lll_matrix
        self.to_lll = self.lat @ np.linalg.inv(lll)  # frac_lll = frac @ to_lll
        self.lll = lll
        self.images = np.array(list(itertools.product((-1, 0, 1), repeat=3)), dtype=np.float64) @ lll  # [27, 3]

    def _cart_diff(self, df: np.ndarray) -> np.ndarray:
        """Minimal-image Cartesian vectors of fractional differences [..., 3] (supercell basis)."""
        g = _wrap(df @ self.to_lll)
        return g @ self.lll

    def match(self, t_frac: np.ndarray, t_species: np.ndarray, shift: np.ndarray) -> _Match:
        """Assign target sites to parent-supercell sites starting from an origin shift (fractional)."""
        from scipy.optimize import linear_sum_assignment

        n = len(t_frac)
        assign = -np.ones(n, dtype=np.int64)
        for _ in range(_MAX_REFINE):
            new = np.empty(n, dtype=np.int64)
            for sp in np.unique(t_species):
                tj = np.nonzero(t_species == sp)[0]
                pi = np.nonzero(self.species == sp)[0]
                vec = self._cart_diff(t_frac[tj, None, :] + shift - self.frac[None, pi, :])  # [nt, np, 3]
                rows, cols = linear_sum_assignment(np.einsum("ijk,ijk->ij", vec, vec))
                new[tj[rows]] = pi[cols]
            disp = self._cart_diff(t_frac + shift - self.frac[new])  # [n, 3]
            shift = shift - disp.mean(axis=0) @ self.inv_lat
            if np.array_equal(new, assign):
                break
            assign = new
        raw = self._cart_diff(t_frac + shift - self.frac[assign])  # [n, 3]
        mean = raw.mean(axis=0)
        shift = shift - mean @ self.inv_lat
        disp = raw - mean
        norms = np.linalg.norm(disp, axis=1)
        margin, where = self._margin(t_frac, t_species, shift, assign, norms)
        return _Match(
            m=self.m,
            shift=shift,
            assign=assign,
            disp=disp,
            max_disp=float(norms.max()),
            rms=float(np.sqrt(np.mean(norms**2))),
            margin=margin,
            margin_site=where,
        )

    def _margin(
        self,
        t_frac: np.ndarray,
        t_species: np.ndarray,
        shift: np.ndarray,
        assign: np.ndarray,
        norms: np.ndarray,
    ) -> tuple[float, tuple[int, int, int, float, float]]:
        """Smallest gap between a target site's distance to its parent site and to the next-closest one.

        The next-closest candidate is any other parent site of the species (minimal image) or another periodic
        image of the assigned site.
        """
        best: tuple[float, tuple[int, int, int, float, float]] = (np.inf, (-1, -1, -1, 0.0, 0.0))
        for sp in np.unique(t_species):
            tj = np.nonzero(t_species == sp)[0]
            pi = np.nonzero(self.species == sp)[0]
            vec = self._cart_diff(t_frac[tj, None, :] + shift - self.frac[None, pi, :])  # [nt, np, 3]
            dist = np.linalg.norm(vec, axis=-1)  # [nt, np]
            own = np.searchsorted(pi, assign[tj])  # [nt]
            rows = np.arange(len(tj))
            own_vec = vec[rows, own]  # [nt, 3]
            dist[rows, own] = np.inf
            images = np.sort(np.linalg.norm(own_vec[:, None, :] - self.images[None], axis=-1), axis=1)  # [nt, 27]
            other = np.argmin(dist, axis=1)
            d_other = np.minimum(dist[rows, other], images[:, 1])
            other_site = np.where(dist[rows, other] <= images[:, 1], pi[other], assign[tj])
            gap = d_other - norms[tj]
            k = int(np.argmin(gap))
            if gap[k] < best[0]:
                best = (
                    float(gap[k]),
                    (
                        int(tj[k]),
                        int(assign[tj[k]]),
                        int(other_site[k]),
                        float(norms[tj[k]]),
                        float(d_other[k]),
                    ),
                )
        return best


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
    if not isinstance(value, int | float | np.number) or not np.isfinite(value) or value < 0:
        raise RegistrationError(f"{name} must be a finite number >= 0, got {value!r}")


def register(
    parent: Structure | Any,
    target: Structure | Any,
    *,
    ltol: float = 0.2,
    stol: float = 0.3,
    angle_tol: float = 5.0,
    max_displacement: float | None = 1.0,
    ambiguity_tol: float = 1e-2,
    max_candidates: int = 2000,
) -> Registration:
    """Put a parent and a target on one cell and map their sites one to one.

    Args:
        parent: The high-symmetry structure (pymatgen Structure, ASE Atoms, or a file path).
        target: The distorted structure, in any supercell of the parent, any setting, origin, site order; it
            may be strained and rigidly rotated.
        ltol: Fractional tolerance on lattice-vector lengths (after scaling the parent to the target's volume
            per site); also bounds the volume change: the volume per site may differ by a factor of at most
            ``(1 + ltol)**3``.
        stol: Largest allowed root-mean-square displacement, as a fraction of the parent's
            ``(V / n_sites)**(1/3)`` (0.3 is about 0.68 Å for SrTiO3).
        angle_tol: Tolerance on the angles between lattice vectors, degrees.
        max_displacement: Largest allowed displacement of any site in Å (None: no limit).
        ambiguity_tol: A target site whose two nearest parent sites of its species are equally close within
            this (Å) makes the mapping ambiguous.
        max_candidates: Largest number of supercell matrices to try.

    Returns:
        The :class:`Registration`.

    Raises:
        RegistrationError: different compositions; a target that is not a whole multiple of the parent; no
            supercell relation within the tolerances; an ambiguous mapping; displacements over the limit.
        DisorderError: a structure has partially occupied or mixed sites.
        StructureError: a structure is unusable (empty, singular lattice, ...).

    Example:
        >>> from matsym.structures import cubic_perovskite, tilted_perovskite
        >>> _, target = tilted_perovskite("a+b-b-", 8.0)
        >>> reg = register(cubic_perovskite(), target)
        >>> reg.supercell_matrix.shape, len(reg.parent) == len(target)
        ((3, 3), True)
    """
    for name, value in (
        ("ltol", ltol),
        ("stol", stol),
        ("angle_tol", angle_tol),
        ("ambiguity_tol", ambiguity_tol),
    ):
        _check_positive(name, value)
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
    if len(t) % len(p):
        raise RegistrationError(
            f"target has {len(t)} sites, not a whole multiple of the parent's {len(p)}: the target cell must "
            f"be a supercell of the parent cell (give the parent's primitive cell)"
        )
    n_cells = len(t) // len(p)
    p_lat = np.asarray(p.lattice.matrix, dtype=np.float64)
    t_lat = np.asarray(t.lattice.matrix, dtype=np.float64)
    p_frac = np.asarray(p.frac_coords, dtype=np.float64)
    t_frac = np.asarray(t.frac_coords, dtype=np.float64)
    p_species, t_species = _symbols(p), np.array(_symbols(t))
    rms_limit = stol * (abs(p.volume) / len(p)) ** (1 / 3)
    limit = np.inf if max_displacement is None else float(max_displacement)

    def within(g: _Match) -> bool:
        return g.max_disp <= limit and g.rms <= rms_limit

    # fast path: same cell, same species order, small displacements
    if (
        len(p) == len(t)
        and np.allclose(p_lat, t_lat, rtol=0, atol=_SAME_LATTICE_TOL)
        and (p_species == list(t_species))
    ):
        eye = np.eye(3, dtype=np.int64)
        matcher = _Matcher(p_frac, p_species, p_lat, eye)
        match = matcher.match(t_frac, t_species, np.zeros(3))
        # any one-to-one assignment is accepted here (supercells made from a parent and a displaced target can
        # list their images in different orders), provided the target is not rigidly shifted: a shift would need
        # the origin search below
        if within(match) and match.margin >= ambiguity_tol:
            raw = np.asarray(t.cart_coords) - np.asarray(p.cart_coords)[match.assign] - match.disp
            rigid = float(np.linalg.norm(np.mean(raw - np.round(raw @ np.linalg.inv(p_lat)) @ p_lat, axis=0)))
            if rigid < 0.1:
                return _result(p, t, match, p_lat)

    ratio = abs(t.volume) / (n_cells * abs(p.volume))
    if not (1 + ltol) ** -3 <= ratio <= (1 + ltol) ** 3:
        raise RegistrationError(
            f"no supercell relation: the target's volume per site is {ratio:.4g} times the parent's (allowed "
            f"{(1 + ltol) ** -3:.3g}-{(1 + ltol) ** 3:.3g} with ltol={ltol}); parent lattice "
            f"{_describe_lattice(p_lat)}, target lattice {_describe_lattice(t_lat)}"
        )
    scaled = p_lat * ratio ** (1 / 3)
    ms = _candidate_matrices(scaled, t_lat, n_cells, ltol, angle_tol)
    if len(ms) == 0:
        raise RegistrationError(
            f"no supercell relation within ltol={ltol}, angle_tol={angle_tol} deg: no integer matrix with "
            f"determinant {n_cells} maps the parent lattice ({_describe_lattice(p_lat)}) onto the target "
            f"lattice ({_describe_lattice(t_lat)}); volume per site ratio {ratio:.4g}"
        )
    f = np.swapaxes(np.linalg.solve(ms.astype(np.float64) @ p_lat, t_lat[None]), -1, -2)  # [n_cand, 3, 3]
    r, u = _polar(f)
    stretch = np.abs(np.linalg.eigvalsh(u) - 1.0).max(axis=-1)  # largest principal strain, [n_cand]
    keep = stretch <= ltol
    if not keep.any():
        k = int(np.argmin(stretch))
        raise RegistrationError(
            f"no supercell relation within ltol={ltol}: the closest supercell {ms[k].tolist()} of the parent "
            f"({_describe_lattice(p_lat)}) needs a principal strain of {stretch[k]:.3g} to reach the target "
            f"lattice ({_describe_lattice(t_lat)}); volume per site ratio {ratio:.4g}"
        )
    ms, r, u = ms[keep], r[keep], u[keep]
    strain_norm = np.linalg.norm(u - np.eye(3), axis=(-2, -1))
    angle = _rotation_angle(r)
    order = np.argsort(strain_norm, kind="stable")[:max_candidates]

    # candidate origins: a target atom of a rarest species placed on each parent site of that species
    symbols, counts = np.unique(p_species, return_counts=True)
    anchors: list[tuple[int, int]] = []  # (target site, parent site)
    for sp in symbols[counts == counts.min()]:
        t_sites = np.nonzero(t_species == sp)[0]
        picks = t_sites[np.unique(np.linspace(0, len(t_sites) - 1, min(_N_ANCHORS, len(t_sites))).astype(int))]
        anchors += [(int(j), i) for j in picks for i, s in enumerate(p_species) if s == sp]

    def evaluate(idx: int) -> list[_Match]:
        matcher = _Matcher(p_frac, p_species, p_lat, ms[idx])
        out = []
        for j, i in anchors:
            match = matcher.match(t_frac, t_species, matcher.frac[i * matcher.n_cells] - t_frac[j])
            match.strain_norm, match.rot_angle = float(strain_norm[idx]), float(angle[idx])
            out.append(match)
        return out

    def acceptable(matches: list[_Match]) -> list[_Match]:
        return [g for g in matches if within(g) and g.margin >= ambiguity_tol]

    groups: list[list[int]] = []  # candidates of equal strain: normally related by the parent's point group
    for idx in order.tolist():
        if groups and strain_norm[idx] - strain_norm[groups[-1][0]] <= _STRAIN_GROUP_TOL:
            groups[-1].append(idx)
        else:
            groups.append([idx])
    # within a group: smallest rotation first, then a fixed order of the matrices
    groups = [sorted(g, key=lambda k: (round(float(angle[k]), 9), ms[k].ravel().tolist())) for g in groups]
    best_fail: _Match | None = None
    for group in groups:
        # the first candidate has the smallest rotation; equivalent ones cannot fit better
        matches = evaluate(group[0])
        if not acceptable(matches):
            for idx in group[1:]:
                matches += evaluate(idx)
        if acceptable(matches):
            return _result(p, t, _best(acceptable(matches)), p_lat)
        candidate = _best(matches)
        if best_fail is None or candidate.max_disp < best_fail.max_disp - _TIE_TOL:
            best_fail = candidate

    if best_fail is not None and within(best_fail):
        j, i, i2, d1, d2 = best_fail.margin_site
        raise RegistrationError(
            f"ambiguous mapping: target site {j} ({t_species[j]}) is as close to parent-supercell site {i2} "
            f"({d2:.4f} Å) as to its assigned site {i} ({d1:.4f} Å) (ambiguity_tol={ambiguity_tol} Å)"
        )
    if best_fail is None:  # pragma: no cover - candidates were checked above
        raise RegistrationError("no candidate supercell could be evaluated")
    j = int(np.argmax(np.linalg.norm(best_fail.disp, axis=1)))
    raise RegistrationError(
        f"no registration with displacements within the limits (largest {limit:.4g} Å from "
        f"max_displacement={max_displacement}, rms {rms_limit:.4g} Å from stol={stol}): the best mapping "
        f"(supercell {best_fail.m.tolist()}) moves target site {j} ({t_species[j]}) by "
        f"{best_fail.max_disp:.4g} Å, rms {best_fail.rms:.4g} Å"
    )


def _best(matches: Sequence[_Match]) -> _Match:
    """Smallest max displacement; ties broken by rotation, strain, then the candidate order."""
    low = min(g.max_disp for g in matches)
    tied = [g for g in matches if g.max_disp <= low + _TIE_TOL]
    return min(tied, key=lambda g: (round(g.rot_angle, 9), round(g.strain_norm, 9), g.rms))


def _result(p: Structure, t: Structure, match: _Match, p_lat: np.ndarray) -> Registration:
    from pymatgen.core import Lattice, Structure

    m = match.m
    m_float = m.astype(np.float64)
    n_cells = round(abs(np.linalg.det(m_float)))
    lat = m_float @ p_lat
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
    for j, (i_p, f) in enumerate(zip(parent_index, moved, strict=True)):
        block = canonical[i_p * n_cells : (i_p + 1) * n_cells]
        site_map[j] = i_p * n_cells + int(np.argmin(np.linalg.norm(_wrap(block - f), axis=1)))
    parent_frac = canonical[site_map] - shift
    parent_frac -= np.floor(parent_frac)
    parent_frac[parent_frac > 1 - 1e-12] = 0.0
    parent_on_target = Structure(Lattice(lat), [p[int(i)].species for i in parent_index], parent_frac)

    f = (np.linalg.inv(lat) @ t_lat).T
    r, u = _polar(f)
    norms = np.linalg.norm(match.disp, axis=1)
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
    )

"""Supercell relations between two lattices, ranked by the strain they imply; pure translations of a structure.

A target lattice ``T`` (rows are lattice vectors) is a strained, rotated supercell of a parent lattice ``P`` when
``T = (M @ P) @ F.T`` for an integer matrix ``M`` with ``|det M| = n`` (the number of parent cells in the target
cell) and a deformation gradient ``F = R U`` (rotation ``R``, symmetric stretch ``U``). Many ``M`` fit; the
physical one is the one whose stretch is smallest. The principal stretches ``λ`` of ``U`` bound everything the
search needs, independently of the basis in which either lattice is written:

- every lattice vector changes length by a factor in ``[λ_min, λ_max]``, so a candidate row of ``M`` for target
  vector ``t`` has a length in ``[|t| / λ_max, |t| / λ_min]``;
- the angle between any two directions changes by at most ``2 (atan(sqrt(λ_max/λ_min)) - atan(sqrt(λ_min/λ_max)))``
  (the largest change of ``φ - atan(r tan φ)``, ``r = λ_min / λ_max``, over ``φ``), so the angle between two rows
  of ``M @ P`` differs from the angle between the corresponding target vectors by at most that much.

``ltol`` bounds the principal strains ``|λ - 1|`` and ``angle_tol`` bounds that largest angle change (the shear
angle); both windows above are then exact supersets, and every candidate in them is ranked by the deviatoric
strain it implies. The old per-vector windows (lengths within ``ltol``, angles between the target's own vectors
within 5 degrees) refused baddeleyite ZrO2 on a fluorite parent: its β = 99.2 degrees is a 9.2 degree change of
one cell angle.

A target given in the parent's orientation (a supercell built by ``make_supercell``) has ``M = round(T P⁻¹)``
with no strain: that candidate is exact, needs no enumeration, and is the only one tried for the large
supercells of issue 14 (the enumeration's cost grows with the number of lattice vectors in a shell of the
target's size, ``n`` per target vector).

Pure translations: a structure whose sites are mapped onto sites of the same species by a vector that is not a
lattice vector is a supercell of a smaller cell (a conventional centred cell, or a repeated cell). They are found
by testing the vectors from one site of the rarest species to the others (nearest-image look-ups in a k-d tree),
with no symmetry tables.
"""

from __future__ import annotations

import itertools

import numpy as np

__all__: list[str] = []

_EXACT_STRAIN = 1e-6  # deviatoric principal strain below which the direct candidate is exact
_MAX_WINDOW = 60_000  # lattice vectors per target vector above which the enumeration is refused as too costly


def polar(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right polar decomposition ``F = R U`` of a batch [..., 3, 3]; returns (R, U)."""
    c = np.swapaxes(f, -1, -2) @ f
    w, v = np.linalg.eigh(c)
    u = (v * np.sqrt(np.clip(w, 0.0, None))[..., None, :]) @ np.swapaxes(v, -1, -2)
    r = f @ np.linalg.inv(u)
    return r, u


def strain_measures(u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Largest principal strain, largest angle change (degrees) and deviatoric strain norm of stretches [..., 3, 3]."""
    lam = np.linalg.eigvalsh(u)  # ascending, [..., 3]
    principal = np.abs(lam - 1.0).max(axis=-1)
    ratio = np.sqrt(lam[..., -1] / lam[..., 0])
    shear = np.degrees(2.0 * (np.arctan(ratio) - np.arctan(1.0 / ratio)))
    dev = lam / np.cbrt(np.prod(lam, axis=-1))[..., None]  # volume removed
    deviatoric = np.linalg.norm(dev - 1.0, axis=-1)
    return principal, shear, deviatoric


def deformation(ms: np.ndarray, parent_lat: np.ndarray, target_lat: np.ndarray) -> np.ndarray:
    """Deformation gradients ``F`` with ``target_lat = (M @ parent_lat) @ F.T``; [n_cand, 3, 3]."""
    return np.swapaxes(np.linalg.solve(ms.astype(np.float64) @ parent_lat, target_lat[None]), -1, -2)


def _window(parent_lat: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Integer vectors ``v`` with ``lo <= |v @ parent_lat| <= hi``; [k, 3]."""
    inv = np.linalg.inv(parent_lat)
    bound = np.floor(hi * np.linalg.norm(inv, axis=0) + 1e-9).astype(int)
    count = int(np.prod(2 * bound + 1))
    if count > 40 * _MAX_WINDOW:
        raise ValueError(f"{count} lattice points to scan")
    axes = [np.arange(-b, b + 1) for b in bound]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    lengths = np.linalg.norm(grid @ parent_lat, axis=1)
    keep = (lengths >= lo) & (lengths <= hi)
    if keep.sum() > _MAX_WINDOW:
        raise ValueError(f"{int(keep.sum())} lattice vectors in one length window")
    return grid[keep]


def candidate_matrices(
    parent_lat: np.ndarray, target_lat: np.ndarray, n: int, ltol: float, angle_tol: float
) -> np.ndarray:
    """Integer ``M`` with ``det M = ±n`` (``det F > 0``) whose stretch is within ``ltol`` and ``angle_tol``.

    Args:
        parent_lat: [3, 3] parent lattice (rows).
        target_lat: [3, 3] target lattice (rows).
        n: number of parent cells in the target cell.
        ltol: largest principal strain ``|λ - 1|``.
        angle_tol: largest change of the angle between two directions, degrees.

    Returns:
        [n_cand, 3, 3] int64, unordered.

    Raises:
        ValueError: the windows hold too many lattice vectors to enumerate (very large cells in a rotated
            setting); the message says how many.
    """
    lam_lo, lam_hi = max(1.0 - ltol, 1e-3), 1.0 + ltol
    t_len = np.linalg.norm(target_lat, axis=1)
    cands = [_window(parent_lat, t_len[i] / lam_hi, t_len[i] / lam_lo) for i in range(3)]
    if any(len(c) == 0 for c in cands):
        return np.zeros((0, 3, 3), dtype=np.int64)
    units = []
    for c in cands:
        v = c @ parent_lat
        units.append(v / np.linalg.norm(v, axis=1, keepdims=True))
    t_unit = target_lat / t_len[:, None]
    tol = np.radians(angle_tol) + 1e-9

    def angle_ok(a: int, b: int) -> np.ndarray:
        target_angle = np.arccos(np.clip(t_unit[a] @ t_unit[b], -1, 1))
        return np.abs(np.arccos(np.clip(units[a] @ units[b].T, -1, 1)) - target_angle) <= tol

    ok01, ok02, ok12 = angle_ok(0, 1), angle_ok(0, 2), angle_ok(1, 2)
    sign = 1 if np.linalg.det(target_lat) * np.linalg.det(parent_lat) > 0 else -1
    i0s, i1s = np.nonzero(ok01)
    found: list[np.ndarray] = []
    chunk = max(1, 4_000_000 // max(len(cands[2]), 1))
    for start in range(0, len(i0s), chunk):
        a, b = i0s[start : start + chunk], i1s[start : start + chunk]
        pair, k = np.nonzero(ok02[a] & ok12[b])
        if len(k) == 0:
            continue
        r0, r1, r2 = cands[0][a[pair]], cands[1][b[pair]], cands[2][k]  # [m, 3] each
        det = np.einsum("ij,ij->i", r0, np.cross(r1, r2))  # exact in integers
        keep = det == sign * n
        found.append(np.stack([r0[keep], r1[keep], r2[keep]], axis=1))  # [m', 3, 3]
    if not found:
        return np.zeros((0, 3, 3), dtype=np.int64)
    ms = np.concatenate(found)
    if len(ms) == 0:
        return ms
    _, u = polar(deformation(ms, parent_lat, target_lat))
    principal, shear, _ = strain_measures(u)
    return ms[(principal <= ltol + 1e-12) & (shear <= angle_tol + 1e-9)]


def direct_candidate(parent_lat: np.ndarray, target_lat: np.ndarray, n: int) -> np.ndarray | None:
    """``M = round(T P⁻¹)`` when it has determinant ±n of the right sign and no deviatoric strain or rotation."""
    m = np.round(target_lat @ np.linalg.inv(parent_lat)).astype(np.int64)
    sign = 1 if np.linalg.det(target_lat) * np.linalg.det(parent_lat) > 0 else -1
    if round(np.linalg.det(m.astype(np.float64))) != sign * n:
        return None
    r, u = polar(deformation(m[None], parent_lat, target_lat))
    _, _, dev = strain_measures(u)
    angle = np.arccos(np.clip((np.trace(r[0]) - 1.0) / 2.0, -1.0, 1.0))
    if dev[0] <= _EXACT_STRAIN and angle <= _EXACT_STRAIN:
        return m
    return None


# ------------------------------------------------------------------------------------------------------------
# pure translations
# ------------------------------------------------------------------------------------------------------------


def _wrapped_tree(frac: np.ndarray, lat: np.ndarray):
    """k-d tree of Cartesian sites and their 26 neighbouring images (cell LLL-reduced); (tree, site index)."""
    from pymatgen.core import Lattice
    from scipy.spatial import cKDTree

    lll = np.asarray(Lattice(lat).lll_matrix)
    to_lll = lat @ np.linalg.inv(lll)
    f = frac @ to_lll
    f -= np.floor(f)
    images = np.array(list(itertools.product((-1, 0, 1), repeat=3)), dtype=np.float64)  # [27, 3]
    pts = ((f[None, :, :] + images[:, None, :]) @ lll).reshape(-1, 3)
    return cKDTree(pts), np.tile(np.arange(len(frac)), 27), to_lll, lll


def pure_translations(frac: np.ndarray, species: np.ndarray, lat: np.ndarray, tol: float) -> np.ndarray:
    """Fractional translations (in [0, 1)) that map every site onto a site of its species within ``tol`` Å.

    Always contains the zero vector first. The candidates are the vectors from the first site of the rarest
    species to every site of that species; a structure with ``k`` such translations is ``k`` copies of a cell
    ``k`` times smaller. The translations form a group: each verified one adds its multiples and sums with the
    ones found so far without a check, so a supercell of ``k`` cells needs a few full checks (one per
    generator) instead of ``k`` (which made the search quadratic in the atom count: 0.68 s at 1,280 atoms).

    Returns:
        [k, 3] fractional translations.
    """
    species = np.asarray(species)
    kinds, counts = np.unique(species, return_counts=True)
    rare = kinds[np.argmin(counts)]
    sites = np.nonzero(species == rare)[0]
    if len(sites) == 1:
        return np.zeros((1, 3))
    trees = {}
    for sp in kinds:
        idx = np.nonzero(species == sp)[0]
        trees[sp] = (idx, *_wrapped_tree(frac[idx], lat))
    # cheap rejection first: the rarest species' sites, then every site
    order = [rare] + [sp for sp in kinds if sp != rare]

    def is_translation(shift: np.ndarray) -> bool:
        for sp in order:
            idx, tree, _, to_lll, lll = trees[sp]
            moved = (frac[idx] + shift) @ to_lll
            moved -= np.floor(moved)
            dist, _ = tree.query(moved @ lll, distance_upper_bound=tol)
            if not np.all(np.isfinite(dist)):
                return False
        return True

    def key(v: np.ndarray) -> np.ndarray:
        return np.round((v - np.floor(v + 1e-7)) * 1e6).astype(np.int64) % 1_000_000

    group = np.zeros((1, 3))
    known = {tuple(key(group[0]))}
    shifts = frac[sites[1:]] - frac[sites[0]]
    lengths = np.linalg.norm(_wrap_frac(shifts) @ lat, axis=1)
    for shift in shifts[np.argsort(lengths, kind="stable")]:
        if tuple(key(shift)) in known or not is_translation(shift):
            continue
        # closure: add g + m * shift for every element g and multiple m until it returns to the group
        new = [group]
        for m in range(1, len(sites) + 1):
            step = m * shift
            if tuple(key(step)) in known:
                break
            new.append(group + step)
        group = np.concatenate(new)
        group -= np.floor(group + 1e-7)
        group[np.abs(group) < 1e-9] = 0.0
        known = {tuple(k) for k in key(group)}
        _, first = np.unique(key(group), axis=0, return_index=True)
        group = group[np.sort(first)]
    return group


def _wrap_frac(f: np.ndarray) -> np.ndarray:
    return f - np.floor(f + 0.5)


def integer_row_basis(vectors: np.ndarray) -> np.ndarray:
    """Three integer rows spanning the same Z-lattice as the integer ``vectors`` (full rank); [3, 3]."""
    rows = [list(map(int, v)) for v in vectors]
    basis = []
    for col in range(3):
        while True:
            nonzero = [r for r in rows if r[col] != 0]
            if len(nonzero) <= 1:
                break
            pivot = min(nonzero, key=lambda r: abs(r[col]))
            new_rows = [pivot]
            for r in rows:
                if r is pivot:
                    continue
                q = r[col] // pivot[col]
                new_rows.append([a - q * b for a, b in zip(r, pivot, strict=True)])
            rows = new_rows
        pivot = next((r for r in rows if r[col] != 0), None)
        if pivot is None:
            raise ValueError("translations do not span three dimensions")
        basis.append(pivot)
        rows = [r for r in rows if r is not pivot and any(r)]
    return np.array(basis, dtype=np.int64)


def primitive_basis(translations: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Basis of the lattice spanned by the cell's lattice vectors and its pure ``translations``.

    Returns:
        [3, 3] fractional rows (in the cell's basis), determinant ``1 / len(translations)``, right-handed,
        LLL-reduced.
    """
    from pymatgen.core import Lattice

    k = len(translations)
    t = translations - np.floor(translations + 1e-9)
    scaled = np.round(np.concatenate([np.eye(3), t]) * k).astype(np.int64)
    if not np.allclose(scaled, np.concatenate([np.eye(3), t]) * k, atol=1e-3 * k):
        raise ValueError("translations are not multiples of 1/k")
    basis = integer_row_basis(scaled) / k
    if abs(abs(np.linalg.det(basis)) - 1.0 / k) > 1e-9:
        raise ValueError(f"translations do not form a group of order {k}")
    if np.linalg.det(basis) < 0:
        basis = -basis
    reduced = np.asarray(Lattice(basis @ lat).lll_matrix)
    out = reduced @ np.linalg.inv(lat)
    if np.linalg.det(out) < 0:
        out = -out
    return out

"""The smallest repeating cell of a crystal, found by pure translation tests.

A structure given in a supercell (a 10 x 10 x 10 perovskite whose Ti atoms all move along z, a 4 x 4 x 4 stack of
Pnma cells) repeats with a smaller period than its cell. Its translation group is found without symmetry tables:

1. **Candidates.** A lattice translation ``t`` of the structure maps one atom of the rarest species onto an atom
   of the same species, so ``t`` is one of the vectors from that atom to the others of its species (at most
   ``n_rarest - 1`` candidates). The translations modulo the cell form a group whose order divides
   ``n_rarest``, so ``n_rarest * t`` is a whole lattice vector: candidates that fail this are dropped at once.
2. **Tests.** Each remaining candidate is tried on a few atoms spread over the cell (one vectorised nearest-
   neighbour query for all candidates), then, shortest first, on every atom; candidates already in the lattice
   generated so far are skipped, so only a handful of full tests run. A translation is kept if it maps every
   atom onto an atom of the same species within ``tol`` (Å, Cartesian).
3. **Lattice.** The kept translations and the cell's vectors generate a lattice (integer Hermite reduction in
   units of ``1 / n_rarest`` of the cell), LLL-reduced and made right-handed. Its sites are the orbits of the
   structure under the translations; the first site of each orbit (in the input's order) represents it.

Cost: the candidate screen is ``n_rarest x 16`` neighbour queries, each full test ``n`` queries on a k-d tree,
and the orbit assignment one ball query per site of the small cell: 10,240 atoms take well under a second. The
tolerance is Cartesian and small (default 1e-3 Å): a distortion that breaks a translation by more than that
keeps the translation out, and the largest deviation of any atom from its image in the small cell is reported
(``max_residual``), so nothing is hidden by the reduction.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from matsym._supercells import integer_row_basis

if TYPE_CHECKING:
    from pymatgen.core import Structure

__all__ = ["RepeatingCell", "repeating_cell_on", "smallest_repeating_cell"]

_SAMPLE = 16  # atoms each candidate translation is first tried on


@dataclasses.dataclass(frozen=True)
class RepeatingCell:
    """A structure's smallest repeating cell and how every input site maps onto it.

    For every input site ``j``, up to ``max_residual`` (Å)::

        structure.cart_coords[j] == cell.cart_coords[index[j]] + translations[j] @ cell.lattice.matrix

    Attributes:
        cell: the smallest repeating cell (pymatgen ``Structure``); its sites are the first site of each orbit,
            in the input's order, wrapped into the cell.
        index: [n] int, the site of ``cell`` that input site ``j`` repeats.
        translations: [n, 3] int, lattice vector of ``cell`` (its basis) from ``cell`` site ``index[j]`` to ``j``.
        supercell_matrix: [3, 3] int ``N`` with ``input lattice == N @ cell lattice`` (rows are vectors).
        max_residual: largest distance (Å) of an input site from its image of the small cell.
    """

    cell: Structure
    index: np.ndarray
    translations: np.ndarray
    supercell_matrix: np.ndarray
    max_residual: float

    @property
    def n_images(self) -> int:
        """Number of copies of the small cell in the input cell."""
        return len(self.index) // len(self.cell)


def smallest_repeating_cell(structure: Structure, tol: float = 1e-3) -> RepeatingCell:
    """Find the smallest cell that ``structure`` repeats, by translation tests only (no symmetry tables).

    Args:
        structure: a periodic pymatgen ``Structure`` (ordered sites).
        tol: largest Cartesian distance (Å) between an atom moved by a translation and the atom it lands on.

    Returns:
        The :class:`RepeatingCell`; ``n_images == 1`` (the input cell itself) when no smaller period exists.
    """
    lat = np.asarray(structure.lattice.matrix, dtype=np.float64)
    species = np.array([site.species_string for site in structure])
    frac = np.asarray(structure.frac_coords, dtype=np.float64)
    kinds, counts = np.unique(species, return_counts=True)
    rare = np.flatnonzero(species == kinds[np.argmin(counts)])
    c = len(rare)
    if c > 1:
        basis = _translation_lattice(frac, species, lat, rare, tol)  # integer rows, units of 1/c
        if abs(round(np.linalg.det(basis.astype(np.float64)))) != c**3:
            reduced = _reduce(structure, lat, basis / c, tol)
            if reduced is not None:
                return reduced
    return _identity(structure)


# ---------------------------------------------------------------------------------------------------- helpers
def _identity(structure: Structure) -> RepeatingCell:
    n = len(structure)
    return RepeatingCell(
        cell=structure.copy(),
        index=np.arange(n),
        translations=np.zeros((n, 3), dtype=np.int64),
        supercell_matrix=np.eye(3, dtype=np.int64),
        max_residual=0.0,
    )


def _wrapped(f: np.ndarray) -> np.ndarray:
    f = f - np.floor(f)
    f[f >= 1.0] = 0.0
    return f


def _translation_lattice(frac, species, lat, rare, tol) -> np.ndarray:
    """Integer basis (rows, units of ``1 / len(rare)`` of the cell) of the structure's translation lattice."""
    from scipy.spatial import cKDTree

    c = len(rare)
    tree = cKDTree(_wrapped(frac), boxsize=1.0)
    cand = frac[rare[1:]] - frac[rare[0]]
    cand -= np.round(cand)  # [c - 1, 3]
    scaled = np.round(cand * c)
    off = np.linalg.norm((cand - scaled / c) @ lat, axis=1)
    keep = off <= tol
    cand, scaled = cand[keep], scaled[keep].astype(np.int64)

    def maps(ts: np.ndarray, sites: np.ndarray) -> np.ndarray:
        """Which translations ``ts`` [k, 3] map every atom in ``sites`` onto an atom of its species."""
        moved = _wrapped((frac[sites][None, :, :] + ts[:, None, :]).reshape(-1, 3))
        _, hit = tree.query(moved)
        d = moved - frac[hit]
        d -= np.round(d)
        ok = (np.linalg.norm(d @ lat, axis=1) <= tol) & (species[hit] == np.tile(species[sites], len(ts)))
        return ok.reshape(len(ts), len(sites)).all(axis=1)

    sample = np.unique(np.linspace(0, len(frac) - 1, min(_SAMPLE, len(frac))).astype(np.int64))
    if len(cand):
        survive = maps(cand, sample)
        cand, scaled = cand[survive], scaled[survive]
    order = np.argsort(np.linalg.norm(cand @ lat, axis=1), kind="stable")
    basis = c * np.eye(3, dtype=np.int64)
    everything = np.arange(len(frac))
    for k in order:
        if _in_lattice(scaled[k], basis):
            continue
        if maps(cand[k : k + 1], everything)[0]:
            basis = integer_row_basis(np.vstack([basis, scaled[k]]))
            if abs(round(np.linalg.det(basis.astype(np.float64)))) == c**2:  # c translations: cannot shrink more
                break
    return basis


def _in_lattice(v: np.ndarray, basis: np.ndarray) -> bool:
    coef = np.linalg.solve(basis.T.astype(np.float64), v.astype(np.float64))
    return bool(np.allclose(coef, np.round(coef), atol=1e-6))


def repeating_cell_on(structure: Structure, small_lattice: np.ndarray, tol: float = 1e-3) -> RepeatingCell | None:
    """``structure`` folded onto a given smaller lattice (rows, Cartesian), or None if it does not repeat it.

    Used to put a same-cell parent on its target's smallest repeating cell, so that the two share one lattice.
    """
    lat = np.asarray(structure.lattice.matrix, dtype=np.float64)
    return _orbits(structure, lat, np.asarray(small_lattice, dtype=np.float64), tol)


def _reduce(structure: Structure, lat: np.ndarray, basis_frac: np.ndarray, tol: float) -> RepeatingCell | None:
    """The small cell spanned by ``basis_frac`` (fractional rows of the input cell), its orbits and images."""
    from pymatgen.core import Lattice

    small = Lattice(basis_frac @ lat).get_lll_reduced_lattice().matrix
    if np.linalg.det(small) < 0:
        small = small * np.array([[1.0], [1.0], [-1.0]])
    n_mat = np.round(lat @ np.linalg.inv(small)).astype(np.int64)
    flip = np.where(n_mat.sum(axis=0) < 0, -1, 1)  # keep the input's orientation where the sign allows
    if np.prod(flip) < 0:
        flip[np.flatnonzero(flip < 0)[-1]] = 1
    return _orbits(structure, lat, small * flip[:, None], tol)


def _orbits(structure: Structure, lat: np.ndarray, small: np.ndarray, tol: float) -> RepeatingCell | None:
    """Orbits of the sites under the translations of the lattice ``small`` (rows, Cartesian)."""
    from pymatgen.core import Lattice, Structure
    from scipy.spatial import cKDTree

    n_mat = np.round(lat @ np.linalg.inv(small)).astype(np.int64)
    if not np.allclose(n_mat @ small, lat, atol=1e-6 * max(1.0, np.abs(lat).max())):
        return None
    n_images = abs(round(np.linalg.det(n_mat.astype(np.float64))))
    n = len(structure)
    if n_images <= 1 or n % n_images:
        return None
    cart = np.asarray(structure.cart_coords, dtype=np.float64)
    g = cart @ np.linalg.inv(small)  # coordinates in the small cell's basis, unwrapped
    tree = cKDTree(_wrapped(g), boxsize=1.0)
    radius = 2.0 * tol * np.linalg.norm(np.linalg.inv(small), 2) + 1e-9
    index = np.full(n, -1, dtype=np.int64)
    reps: list[int] = []
    gw = _wrapped(g)
    for j in range(n):
        if index[j] >= 0:
            continue
        orbit = np.asarray(tree.query_ball_point(gw[j], radius), dtype=np.int64)
        if len(orbit) != n_images or (index[orbit] >= 0).any():
            return None
        index[orbit] = len(reps)
        reps.append(j)
    reps_arr = np.asarray(reps)
    species = [structure[int(j)].species for j in reps_arr]
    if any(structure[int(j)].species_string != structure[int(reps_arr[index[j]])].species_string for j in range(n)):
        return None
    start = np.floor(g[reps_arr])  # wrap the representatives into the small cell
    rep_g = g[reps_arr] - start
    delta = g - rep_g[index]
    translations = np.round(delta).astype(np.int64)
    residual = np.linalg.norm((delta - translations) @ small, axis=1)
    if residual.max(initial=0.0) > 2 * tol:
        return None
    cell = Structure(Lattice(small, pbc=structure.lattice.pbc), species, rep_g)
    return RepeatingCell(
        cell=cell,
        index=index,
        translations=translations,
        supercell_matrix=n_mat,
        max_residual=float(residual.max(initial=0.0)),
    )

"""Translation (Fourier) analysis of per-site fields over the parent lattice translations of a search cell.

The search cell is a supercell of the parent: ``lattice == M @ parent lattice`` (rows are vectors, ``M`` integer).
The parent's ``N = |det M|`` lattice translations modulo the
cell act on the sites as permutations without fixed points, so the sites fall into orbits of exactly ``N`` sites.
Their irreducible representations are one-dimensional, labelled by the ``N`` wave vectors ``k`` commensurate with
the cell (``M k`` integer, ``k`` in units of the parent's reciprocal basis, modulo 1). Any per-site field (an
order parameter, displacements) splits uniquely and orthogonally into its Bloch components

    ``f_k(j) = (1/N) sum_t exp(-2 pi i k.t) f(j + t)``,

and the squared norms of the components add up to the field's (Parseval). A real field has equal content at
``k`` and ``-k``, so both count as one pair. This is translation algebra only: no point-group operation and no
symmetry table enters. A pattern that repeats with one k (in-phase tilts at M, anti-phase at R) has share 1 there;
translating a field permutes its sites within orbits and leaves every share unchanged.

Within the search this steers the order parameter to as few k-vectors as the data allow
(``OrderParameterSearch._steer_kvectors``): three distinct pairs with ``k1 + k2 + k3 = 0`` (signs free) are coupled by
products of their fields, which an equivariant network forms from its inputs at every layer (translation
invariance alone allows them, whatever the point symmetry). The weakest of such a triple is therefore a candidate
for removal: the network can make the other two's product from its input. In the tilted perovskites the order
parameters at M (in-phase) and R (anti-phase) induce the X-point content ``k_M + k_R``, which the unsteered search
had left in its input (X5- 0.20 of the squared norm for a+b-b-).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

__all__ = ["CellTranslations", "cell_translations", "commensurate_k", "coupled_weakest", "k_key", "reduce_k"]


@dataclasses.dataclass(frozen=True)
class CellTranslations:
    """The parent lattice translations of a cell, as orbits of its sites, and the wave vectors they allow.

    Attributes:
        orbit: [n] int, the orbit (0..n_orbits-1) of each site.
        translations: [n, 3] int, parent lattice vector (parent basis) from the orbit's first site to each site.
        kvectors: [N, 3] the commensurate wave vectors, parent reciprocal basis, in [0, 1).
        pair: [N] int, label of each k's pair {k, -k} (0..n_pairs-1, pair 0 holds Gamma).
        reciprocal: [3, 3] rows, the parent's reciprocal basis (1/Å, without 2 pi): ``k_cart = k @ reciprocal``.
    """

    orbit: np.ndarray
    translations: np.ndarray
    kvectors: np.ndarray
    pair: np.ndarray
    reciprocal: np.ndarray

    @property
    def n_pairs(self) -> int:
        return int(self.pair.max()) + 1

    def pair_kvectors(self) -> np.ndarray:
        """One representative k of each pair (the first in ``kvectors``).  # [n_pairs, 3]"""
        first = [int(np.flatnonzero(self.pair == p)[0]) for p in range(self.n_pairs)]
        return self.kvectors[first]

    def _phases(self) -> np.ndarray:
        """``exp(2 pi i k.t_j) / sqrt(N)`` for every site j and wave vector k.  # [n, N] complex"""
        n_k = len(self.kvectors)
        return np.exp(2j * np.pi * (self.translations @ self.kvectors.T)) / np.sqrt(n_k)

    def shares(self, field: np.ndarray) -> np.ndarray:
        """Share of the squared norm of a per-site field at each pair {k, -k} (sums to 1; zeros for a zero field).

        Args:
            field: [n] or [n, d] real per-site values (zeros where a site carries nothing).
        """
        f = np.asarray(field, dtype=np.float64).reshape(len(self.orbit), -1)
        total = float((f**2).sum())
        out = np.zeros(self.n_pairs)
        if total == 0.0:
            return out
        phases = np.conj(self._phases())
        per_k = np.zeros(len(self.kvectors))
        for o in range(int(self.orbit.max()) + 1):  # one orbit at a time: memory of the field's size
            sites = np.flatnonzero(self.orbit == o)
            per_k += (np.abs(phases[sites].T @ f[sites]) ** 2).sum(axis=1)
        np.add.at(out, self.pair, per_k)
        return out / total

    def projector(self, pairs: Sequence[int]) -> np.ndarray:
        """Real site-space projector onto the Bloch components of the given pairs.  # [n, n]"""
        keep = np.isin(self.pair, np.asarray(list(pairs), dtype=np.int64))
        e = self._phases()[:, keep]
        same = self.orbit[:, None] == self.orbit[None, :]
        return np.where(same, (e @ e.conj().T).real, 0.0)


def cell_translations(structure, tol: float = 1e-3) -> CellTranslations | None:
    """The lattice translations of a periodic parent on a (super)cell, found by translation tests.

    The parent's smallest repeating cell (:func:`matsym.periodicity.smallest_repeating_cell`: translation tests
    only, no symmetry table) gives the orbits and the matrix ``M``. It holds whatever cell the search runs on: the
    registered supercell of the user's parent, or a parent folded onto the target's smallest repeating cell
    (:mod:`matsym.reduction`), whose registration is the identity.

    Args:
        structure: the parent on the search cell (pymatgen ``Structure``; anything else gives None).
        tol: Cartesian tolerance (Å) of the translation tests.

    Returns:
        The :class:`CellTranslations`, or None where there is nothing to analyse: a finite point cloud, or a cell
        with no lattice translation of its own (``|det M| == 1``).
    """
    from matsym.periodicity import smallest_repeating_cell

    if not hasattr(structure, "lattice"):
        return None
    cell = smallest_repeating_cell(structure, tol)
    if cell.n_images <= 1:
        return None
    m = np.asarray(cell.supercell_matrix, dtype=np.int64)
    kvectors = commensurate_k(m)
    key = {k_key(k): i for i, k in enumerate(kvectors)}
    pair = np.full(len(kvectors), -1, dtype=np.int64)
    n_pairs = 0
    for i, k in enumerate(kvectors):  # Gamma comes first, so it is pair 0
        if pair[i] >= 0:
            continue
        j = key[k_key(-k)]
        pair[[i, j]] = n_pairs
        n_pairs += 1
    return CellTranslations(
        orbit=np.asarray(cell.index, dtype=np.int64),
        translations=np.asarray(cell.translations, dtype=np.int64),
        kvectors=kvectors,
        pair=pair,
        reciprocal=np.linalg.inv(np.asarray(cell.cell.lattice.matrix, dtype=np.float64)).T,
    )


def coupled_weakest(shares: np.ndarray, kvectors: np.ndarray, *, ratio: float = 0.05) -> list[int]:
    """Pairs that are the clearly weakest of a coupled triple of present pairs (``±k1 ± k2 ± k3 = 0``).

    Pairs are visited from the strongest down; a pair is returned if it couples two stronger pairs not returned
    already and its share is below ``ratio`` times the smaller of theirs. A coupled (secondary) content is second
    order in the primary amplitudes, so the default margin is narrow: in the target displacements of the tilt
    systems the X content is 0.0004-0.0011 against 0.2-0.6 at M and R (ratios below 0.005), while fluorite ->
    baddeleyite HfO2 and ZrO2 (displacements of 1 Å) carry 0.09-0.12 against 0.38-0.40 (ratios 0.24-0.31): there
    no k-point is clearly secondary, and steering one away (with a margin of 0.5) left HfO2 and ZrO2 P-1 at
    symprec 1e-3 instead of P2_1/c. The margin keeps pairs of equal content
    together (the three M arms of a+a+a+ form a triple of equal shares: none is cut). Gamma never counts
    (``k + (-k) = 0`` couples every pair with Gamma).

    Args:
        shares: [n_pairs] share of each pair (:meth:`CellTranslations.shares`).
        kvectors: [n_pairs, 3] one k of each pair (:meth:`CellTranslations.pair_kvectors`).
        ratio: largest share, relative to the weaker of the two coupled pairs, of a pair that is returned.
    """
    kv = np.asarray(kvectors, dtype=np.float64)
    present = [int(p) for p in np.argsort(-np.asarray(shares), kind="stable") if shares[p] > 0 and kv[p].any()]
    kept: list[int] = []
    weak: list[int] = []
    for p in present:
        coupled = False
        for a in range(len(kept)):
            for b in range(a + 1, len(kept)):
                i, j = kept[a], kept[b]
                if shares[p] >= ratio * min(shares[i], shares[j]):
                    continue
                for s in (kv[i] + kv[j], kv[i] - kv[j]):
                    d = kv[p] - s
                    e = kv[p] + s
                    if np.allclose(d, np.round(d), atol=1e-6) or np.allclose(e, np.round(e), atol=1e-6):
                        coupled = True
        (weak if coupled else kept).append(p)
    return weak


_K_TOL = 1e-8


def reduce_k(k: np.ndarray) -> np.ndarray:
    """``k`` modulo 1, components in [0, 1), rounding noise set to zero."""
    r = k - np.floor(k + _K_TOL)
    r[np.abs(r) < _K_TOL] = 0.0
    return r


def k_key(k: np.ndarray) -> tuple[int, ...]:
    """A hashable key of ``k`` modulo 1 (to 1e-6)."""
    return tuple(round(x * 1e6) % 1_000_000 for x in reduce_k(k))


def commensurate_k(m: np.ndarray) -> np.ndarray:
    """All k (the parent's reciprocal basis, in [0, 1)) with ``M k`` integer; ``|det M|`` of them, Gamma first.

    ``M``: integer matrix whose rows are the supercell's vectors in the parent's basis.
    """
    inv = np.linalg.inv(np.asarray(m, dtype=np.float64))
    gens = [reduce_k(inv[:, i]) for i in range(3)]
    seen = {k_key(np.zeros(3)): np.zeros(3)}
    frontier = [np.zeros(3)]
    while frontier:
        new = []
        for k in frontier:
            for g in gens:
                q = reduce_k(k + g)
                key = k_key(q)
                if key not in seen:
                    seen[key] = q
                    new.append(q)
        frontier = new
    return np.array(sorted(seen.values(), key=lambda v: tuple(np.round(v, 6))))

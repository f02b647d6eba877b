"""One-to-one assignment of target sites to the sites of a parent supercell, by nearest periodic image.

Given the parent repeated on a supercell matrix ``M`` and the target's fractional coordinates in the same basis
(shifted by a trial origin), each target site is assigned a parent site of its species. The assignment that
minimises the sum of squared displacements is the Hungarian one; when every target site's nearest parent site
(over periodic images) is a different site, that nearest assignment *is* the optimum, since every term of the sum
is at its own minimum. The nearest sites come from a k-d tree (``scipy.spatial.cKDTree``) of the parent sites and
their 26 neighbouring images in the LLL-reduced supercell, so one assignment costs ``O(n log n)`` instead of the
``O(n^2)`` memory and ``O(n^3)`` time of a dense Hungarian assignment: the dense path took minutes on a
1,280-atom pair that could not be registered (issue 14). Where nearest sites collide (large displacements), the
colliding species is solved by the Hungarian algorithm on a sparse graph of each site's nearest candidates.

The origin is refined by removing the mean displacement until the assignment no longer changes; the margin
(the smallest gap between a site's assigned distance and its next-nearest candidate, another site or another
image of the same one) tells an unambiguous mapping from an ambiguous one.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

__all__: list[str] = []

_MAX_REFINE = 8
_K_SPARSE = 12  # nearest candidates per site in the sparse assignment
_MAX_COLLISIONS = 0.2  # share of a species' sites whose nearest parent site is taken: the trial origin is abandoned
_DENSE_LIMIT = 1500  # sites of one species up to which a collision is solved by a dense Hungarian assignment


@dataclasses.dataclass
class Match:
    """One assignment of target sites to parent-supercell sites."""

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


def lattice_points(m: np.ndarray) -> np.ndarray:
    """Integer points ``n`` (parent basis) with ``n @ inv(M)`` in [0, 1)^3, sorted; [det M, 3]."""
    inv = np.linalg.inv(m.astype(np.float64))
    corners = np.array(list(itertools.product((0, 1), repeat=3))) @ m  # [8, 3]
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    axes = [np.arange(lo[i], hi[i] + 1) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)  # [n_grid, 3]
    frac = grid @ inv
    keep = np.all((frac > -1e-9) & (frac < 1 - 1e-9), axis=1)
    return grid[keep]


def supercell_frac(parent_frac: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Fractional coordinates (supercell basis) of the parent repeated on M, site-major; [n_p * N, 3]."""
    points = lattice_points(m)  # [N, 3]
    inv = np.linalg.inv(m.astype(np.float64))
    frac = ((parent_frac[:, None, :] + points[None, :, :]) @ inv).reshape(-1, 3)
    frac -= np.floor(frac)
    frac[frac > 1 - 1e-12] = 0.0
    return frac


class Matcher:
    """Site assignment of a target on one candidate supercell of the parent."""

    def __init__(self, parent_frac: np.ndarray, parent_species: list[str], parent_lat: np.ndarray, m: np.ndarray):
        from pymatgen.core import Lattice
        from scipy.spatial import cKDTree

        self.m = m
        self.n_cells = round(abs(np.linalg.det(m)))
        self.lat = m @ parent_lat  # [3, 3]
        self.inv_lat = np.linalg.inv(self.lat)
        self.frac = supercell_frac(parent_frac, m)  # [n, 3]
        self.species = np.repeat(np.array(parent_species), self.n_cells)
        self.lll = np.asarray(Lattice(self.lat).lll_matrix)
        self.to_lll = self.lat @ np.linalg.inv(self.lll)  # frac_lll = frac @ to_lll
        images = np.array(list(itertools.product((-1, 0, 1), repeat=3)), dtype=np.float64)  # [27, 3]
        self.abandoned = ""  # why the last trial origin was abandoned
        self.trees = {}
        for sp in np.unique(self.species):
            idx = np.nonzero(self.species == sp)[0]
            f = self.frac[idx] @ self.to_lll
            f -= np.floor(f)
            pts = ((f[None] + images[:, None]) @ self.lll).reshape(-1, 3)  # [27 * k, 3]
            self.trees[sp] = (idx, cKDTree(pts), len(idx))

    def _cart_in_cell(self, frac: np.ndarray) -> np.ndarray:
        f = frac @ self.to_lll
        f -= np.floor(f)
        return f @ self.lll

    def _cart_diff(self, df: np.ndarray) -> np.ndarray:
        """Minimal-image Cartesian vectors of fractional differences [..., 3] (supercell basis)."""
        g = df @ self.to_lll
        return (g - np.floor(g + 0.5)) @ self.lll

    def _assign(
        self, t_frac: np.ndarray, groups: list[tuple[str, np.ndarray]], shift: np.ndarray, strict: bool = False
    ) -> np.ndarray | None:
        """Nearest-image assignment, collisions resolved by a Hungarian one; None when ``strict`` and more than
        ``_MAX_COLLISIONS`` of a species' sites collide (no small distortion of the parent at this origin)."""
        n = len(t_frac)
        new = np.empty(n, dtype=np.int64)
        for sp, tj in groups:
            idx, tree, k = self.trees[sp]
            pts = self._cart_in_cell(t_frac[tj] + shift)
            _, nearest = tree.query(pts, k=1)
            sites = nearest % k
            distinct = len(np.unique(sites))
            if distinct == len(tj):
                new[tj] = idx[sites]
            elif strict and distinct < (1.0 - _MAX_COLLISIONS) * len(tj):
                self.abandoned = (
                    f"{len(tj) - distinct} of {len(tj)} {sp} sites have their nearest {sp} parent site taken by "
                    f"another site"
                )
                return None
            elif len(tj) <= _DENSE_LIMIT:
                from scipy.optimize import linear_sum_assignment

                vec = self._cart_diff(t_frac[tj, None, :] + shift - self.frac[None, idx, :])  # [nt, np, 3]
                _, cols = linear_sum_assignment(np.einsum("ijk,ijk->ij", vec, vec))
                new[tj] = idx[cols]
            else:
                new[tj] = idx[self._sparse_assign(tree, pts, k)]
        return new

    @staticmethod
    def _sparse_assign(tree, pts: np.ndarray, k: int) -> np.ndarray:
        """Minimum sum of squared distances over each site's nearest candidates (Hungarian on a sparse graph)."""
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import min_weight_full_bipartite_matching

        n = len(pts)
        dist, where = tree.query(pts, k=min(_K_SPARSE, tree.n))
        sites = where % k
        # one entry per (site, candidate), the nearest image: sort so that the nearest is written last
        rows = np.repeat(np.arange(n), dist.shape[1])
        cols, d2 = sites.ravel(), dist.ravel() ** 2
        order = np.lexsort((-d2, cols, rows))
        rows, cols, d2 = rows[order], cols[order], d2[order]
        last = np.ones(len(rows), dtype=bool)
        last[:-1] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        graph = csr_matrix((d2[last] + 1e-12, (rows[last], cols[last])), shape=(n, k))
        try:
            _, matched = min_weight_full_bipartite_matching(graph)
        except ValueError:
            # no perfect matching among near candidates: keep the nearest (the mapping is then not one-to-one
            # and the checks refuse it)
            return sites[:, 0]
        return matched

    def match(
        self, t_frac: np.ndarray, t_species: np.ndarray, shift: np.ndarray, give_up: float | None = None
    ) -> Match | None:
        """Assign target sites to parent-supercell sites starting from an origin shift (fractional).

        ``give_up``: on the first assignment, return None when more than half of the sites are displaced by
        more than this (Å), or when the nearest parent sites of more than a fifth of a species' sites coincide:
        the trial origin is wrong or the pair does not register. A pair of random displacements up to 5.5 Å on
        1,280 sites spent 12 s in dense assignments of such collisions before this check.
        """
        groups = [(sp, np.nonzero(t_species == sp)[0]) for sp in np.unique(t_species)]
        assign = -np.ones(len(t_frac), dtype=np.int64)
        for it in range(_MAX_REFINE):
            new = self._assign(t_frac, groups, shift, strict=it == 0 and give_up is not None)
            if new is None:
                return None
            disp = self._cart_diff(t_frac + shift - self.frac[new])  # [n, 3]
            if it == 0 and give_up is not None:
                far = np.linalg.norm(disp - disp.mean(axis=0), axis=1) > give_up
                if far.mean() > 0.5:
                    self.abandoned = (
                        f"{int(far.sum())} of {len(far)} sites are more than {give_up:.3g} Å from their site"
                    )
                    return None
            shift = shift - disp.mean(axis=0) @ self.inv_lat
            if np.array_equal(new, assign):
                break
            assign = new
        raw = self._cart_diff(t_frac + shift - self.frac[assign])  # [n, 3]
        mean = raw.mean(axis=0)
        shift = shift - mean @ self.inv_lat
        disp = raw - mean
        norms = np.linalg.norm(disp, axis=1)
        if len(np.unique(assign)) != len(assign):
            margin, where = -np.inf, (-1, -1, -1, 0.0, 0.0)
        else:
            margin, where = self._margin(t_frac, groups, shift, assign)
        return Match(
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
        self, t_frac: np.ndarray, groups: list[tuple[str, np.ndarray]], shift: np.ndarray, assign: np.ndarray
    ) -> tuple[float, tuple[int, int, int, float, float]]:
        """Smallest gap between a target site's distance to its parent site and to the next-closest candidate.

        The candidates are the other parent sites of the species and the other periodic images of the assigned
        site (distances before the mean displacement is removed, which shifts every site alike).
        """
        best: tuple[float, tuple[int, int, int, float, float]] = (np.inf, (-1, -1, -1, 0.0, 0.0))
        for sp, tj in groups:
            idx, tree, k = self.trees[sp]
            pts = self._cart_in_cell(t_frac[tj] + shift)
            kk = min(3, tree.n)
            dist, where = tree.query(pts, k=kk)
            dist, where = dist.reshape(len(tj), kk), where.reshape(len(tj), kk)
            own = np.searchsorted(idx, assign[tj])  # position of the assigned site in idx
            d_own = np.linalg.norm(self._cart_diff(t_frac[tj] + shift - self.frac[assign[tj]]), axis=1)
            sites = where % k
            # the first entry that is not the assigned site at its nearest image
            is_own = (sites == own[:, None]) & (np.abs(dist - d_own[:, None]) < 1e-9)
            first_own = np.where(is_own.any(axis=1), np.argmax(is_own, axis=1), -1)
            mask = np.ones_like(dist, dtype=bool)
            rows = np.arange(len(tj))
            mask[rows[first_own >= 0], first_own[first_own >= 0]] = False
            d_masked = np.where(mask, dist, np.inf)
            pick = np.argmin(d_masked, axis=1)
            d_other = d_masked[rows, pick]
            other_site = idx[sites[rows, pick]]
            gap = d_other - d_own
            j = int(np.argmin(gap))
            if gap[j] < best[0]:
                best = (
                    float(gap[j]),
                    (int(tj[j]), int(assign[tj[j]]), int(other_site[j]), float(d_own[j]), float(d_other[j])),
                )
        return best

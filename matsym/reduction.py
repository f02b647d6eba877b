"""Search a parent/target pair on the target's smallest repeating cell, and map the result back.

A target given in a supercell whose distortion repeats with a smaller period (every Ti of a 10 x 10 x 10
perovskite moved along z; a 4 x 4 x 4 stack of Pnma cells) carries no more information than its smallest repeating
cell (:func:`matsym.periodicity.smallest_repeating_cell`, translation tests only). The search runs there: a 5,000-
atom P4mm supercell against the 5-atom parent becomes a 5-atom problem (registration included: the reduced pair is
registered, never the 5,000 atoms), a 1,280-atom Pnma supercell a 20-atom one. The equivariant network sees the
same neighbourhoods either way, so the order parameter, the predictions and the Curie verdict per site are those of
the small cell, repeated; the parent is reduced to its own smallest repeating cell too, so a parent given on the
user's big cell works as well.

:meth:`CellReduction.expand_result` maps every per-site array back to the user's target cell, in the user's site
order, builds the parent, target and prediction on that cell, and composes the registration (supercell matrix,
origin shift and site map of the full cell) so that :class:`matsym.transformations.OrderParameterTransformation`
applies the result to the parent as before. ``result.registration["reduction"]`` records what was reduced, from
what to what, and the largest deviation of any target site from its repeated image (``max_residual``, Å).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from matsym.periodicity import RepeatingCell, smallest_repeating_cell

__all__ = ["CellReduction", "reduce_pair"]


@dataclasses.dataclass(frozen=True)
class CellReduction:
    """A parent/target pair reduced to the target's smallest repeating cell.

    Attributes:
        parent: the parent's smallest repeating cell and its map (:class:`RepeatingCell`).
        target: the target's smallest repeating cell and its map; ``target.index[j]`` is the search-cell site of
            the user's target site ``j``.
        target_input: the user's target, as loaded.
    """

    parent: RepeatingCell
    target: RepeatingCell
    target_input: Any

    def describe(self) -> dict:
        """What was reduced, from what to what (JSON-friendly)."""
        return {
            "target_sites": len(self.target.index),
            "search_sites": len(self.target.cell),
            "parent_sites": len(self.parent.index),
            "parent_search_sites": len(self.parent.cell),
            "target_supercell_matrix": self.target.supercell_matrix.tolist(),
            "max_residual": self.target.max_residual,
            "note": (
                f"the target repeats a {len(self.target.cell)}-site cell {self.target.n_images} times: searched on "
                f"that cell, results mapped back to its {len(self.target.index)} sites"
            ),
        }

    def expand_sites(self, per_site: np.ndarray) -> np.ndarray:
        """A per-site array of the search cell, on the user's target sites (first axis)."""
        return np.asarray(per_site)[self.target.index]

    def expand_curie(self, report):
        """A :class:`matsym.result.CurieReport` with degenerate sites given as the user's target sites."""
        degenerate = np.zeros(len(self.target.cell), dtype=bool)
        degenerate[list(report.degenerate_sites)] = True
        sites = tuple(int(j) for j in np.flatnonzero(self.expand_sites(degenerate)))
        return dataclasses.replace(report, degenerate_sites=sites)

    def expand_result(self, result):
        """The search-cell :class:`matsym.result.OrderParameterResult` on the user's target cell and site order."""
        from pymatgen.core import Lattice, Structure

        idx = self.target.index
        small = result.parent
        lat_r = np.asarray(small.lattice.matrix)
        lat_full = self.target.supercell_matrix @ lat_r
        parent_cart = np.asarray(small.cart_coords)[idx] + self.target.translations @ lat_r
        species = [small[int(k)].species for k in idx]
        lattice = Lattice(lat_full, pbc=small.lattice.pbc)
        parent = Structure(lattice, species, parent_cart, coords_are_cartesian=True, to_unit_cell=True)
        parent_cart = np.asarray(parent.cart_coords)

        def moved(disp: np.ndarray, wrap: bool):
            return Structure(lattice, species, parent_cart + disp, coords_are_cartesian=True, to_unit_cell=wrap)

        target_disp = self.expand_sites(result.target_displacements)
        predicted_disp = self.expand_sites(result.predicted_displacements)
        op_sites = np.asarray(result.sites, dtype=np.int64)
        group_of = np.full(len(small), -1, dtype=np.int64)
        group_of[op_sites] = np.asarray(result.groups, dtype=np.int64)
        sites = np.flatnonzero(np.isin(idx, op_sites))
        registration = dict(result.registration)
        if registration:
            registration = self._registration(registration, parent, target_disp)
        registration["reduction"] = self.describe()
        predicted = moved(predicted_disp, True)
        if result.predicted_strain is not None:  # the written structure carries the learned strain
            from matsym.strain import strained

            predicted = strained(predicted, result.predicted_strain)
        metrics = {**result.metrics, "search_sites": len(small), "num_sites": len(idx)}
        return dataclasses.replace(
            result,
            parent=parent,
            target=None if result.target is None else moved(target_disp, False),
            predicted_structure=predicted,
            sites=sites,
            groups=group_of[idx[sites]],
            order_parameter=self.expand_sites(result.order_parameter),
            irrep_weights=self.expand_sites(result.irrep_weights),
            predicted_displacements=predicted_disp,
            target_displacements=target_disp,
            degenerate=self.expand_sites(result.degenerate),
            metrics=metrics,
            curie=None if result.curie is None else self.expand_curie(result.curie),
            registration=registration,
        )

    def _registration(self, record: dict, parent, disp: np.ndarray) -> dict:
        """The search cell's registration composed with the repetition: the user's target cell."""
        from scipy.spatial import cKDTree

        from matsym.registration import Registration, _supercell_frac

        small = Registration.from_dict(record)
        n_mat = self.target.supercell_matrix
        m_full = n_mat @ np.asarray(small.supercell_matrix)
        n_cells = round(abs(np.linalg.det(m_full.astype(np.float64))))
        parent_index = np.asarray(small.parent_index)[self.target.index]
        shift = np.asarray(small.origin_shift) @ np.linalg.inv(n_mat.astype(np.float64))
        canonical = _supercell_frac(np.asarray(small.parent_input.frac_coords), m_full)
        moved = np.asarray(parent.frac_coords) + shift
        moved -= np.floor(moved)
        moved[moved >= 1.0] = 0.0
        site_map = np.empty(len(parent), dtype=np.int64)
        for i in np.unique(parent_index):
            block = canonical[i * n_cells : (i + 1) * n_cells]
            js = np.flatnonzero(parent_index == i)
            _, hit = cKDTree(block, boxsize=1.0).query(moved[js])
            site_map[js] = i * n_cells + hit
        norms = np.linalg.norm(disp, axis=1)
        full = dataclasses.replace(
            small,
            parent=parent,
            target=self.target_input.copy(),
            supercell_matrix=m_full,
            origin_shift=shift,
            site_map=site_map,
            parent_index=parent_index,
            displacements=disp,
            rms_displacement=float(np.sqrt(np.mean(norms**2))),
            max_displacement=float(norms.max(initial=0.0)),
        )
        return full.as_dict()


def reduce_pair(parent, target, *, tol: float = 1e-3) -> CellReduction | None:
    """Reduce a periodic pair to the target's smallest repeating cell, or None where there is nothing to gain.

    Args:
        parent: the parent (anything :func:`matsym.io.load_structure` reads).
        target: the target, likewise.
        tol: translation tolerance (Å) of :func:`matsym.periodicity.smallest_repeating_cell`.

    Returns:
        The :class:`CellReduction`, or None: finite point clouds, a target without a smaller period, or a
        parent whose smallest repeating cell does not divide the target's (registration decides those).
    """
    from pymatgen.core import Molecule

    from matsym.io import load_structure

    p, t = load_structure(parent), load_structure(target)
    if isinstance(p, Molecule) or isinstance(t, Molecule):
        return None
    rt = smallest_repeating_cell(t, tol)
    if rt.n_images == 1:
        return None
    rp = _same_cell_parent(p, t, rt, tol) or smallest_repeating_cell(p, tol)
    if len(rt.cell) % len(rp.cell):
        return None
    return CellReduction(parent=rp, target=rt, target_input=t)


def _assignment(cost: np.ndarray) -> np.ndarray:
    """Columns of a minimum-cost one-to-one assignment of the rows of a square ``cost``: each row's nearest column
    where those are all different (then no assignment costs less), otherwise the Hungarian one (scipy.optimize,
    imported only then: 0.1 s of a search's start-up)."""
    nearest = np.argmin(cost, axis=1)
    if len(np.unique(nearest)) == len(nearest):
        return nearest
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment(cost)[1]


def _same_cell_parent(p, t, rt: RepeatingCell, tol: float) -> RepeatingCell | None:
    """A parent given on the target's own cell, folded onto the target's small cell in the small target's species
    order: the reduced pair then shares one lattice, and registration takes its same-cell path (a 5-atom parent
    against a 320-atom small target would need the general supercell search instead)."""
    from pymatgen.core import Structure

    from matsym.periodicity import repeating_cell_on

    if len(p) != len(t) or not np.allclose(p.lattice.matrix, t.lattice.matrix, rtol=0, atol=1e-6):
        return None
    rp = repeating_cell_on(p, rt.cell.lattice.matrix, tol)
    if rp is None or len(rp.cell) != len(rt.cell):
        return None
    small_t, small_p = rt.cell, rp.cell
    order = np.empty(len(small_t), dtype=np.int64)
    for sp in {s.species_string for s in small_t}:
        it = np.array([k for k, s in enumerate(small_t) if s.species_string == sp])
        ip = np.array([k for k, s in enumerate(small_p) if s.species_string == sp])
        if len(it) != len(ip):
            return None
        d = small_t.frac_coords[it][:, None, :] - small_p.frac_coords[ip][None, :, :]
        d -= np.round(d)
        cost = np.linalg.norm(d @ small_t.lattice.matrix, axis=2)
        order[it] = ip[_assignment(cost)]
    cell = Structure(small_p.lattice, [small_p[int(k)].species for k in order], small_p.frac_coords[order])
    new_index = np.empty(len(order), dtype=np.int64)
    new_index[order] = np.arange(len(order))
    return dataclasses.replace(rp, cell=cell, index=new_index[rp.index])

"""Smallest repeating cells by translation tests (matsym.periodicity).

Structures: the cubic perovskite (Pm-3m, SrTiO3-like, a = 3.9 Å), its P4mm polar distortion (every B site moved
along z, as in tetragonal BaTiO3) and the Pnma a+b-b- tilt pattern (Glazer, Acta Cryst. B28, 3384 (1972)), built by
:mod:`matsym.structures`; supercells and site shuffles made here.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Structure

from matsym.periodicity import smallest_repeating_cell
from matsym.structures import antiphase_perovskite, polar_perovskite, tilted_perovskite


def _shuffled(s: Structure, rng: np.random.Generator) -> Structure:
    order = rng.permutation(len(s))
    return Structure(s.lattice, [s[int(i)].species for i in order], s.frac_coords[order])


def _assert_rebuilds(s: Structure, r) -> None:
    """Every input site is its small-cell site plus its lattice translation (minimal image of the input cell)."""
    small = r.cell.lattice.matrix
    rebuilt = r.cell.cart_coords[r.index] + r.translations @ small
    d = (rebuilt - s.cart_coords) @ np.linalg.inv(s.lattice.matrix)
    d -= np.round(d)
    assert np.abs(d @ s.lattice.matrix).max() < 1e-8
    assert [r.cell[int(k)].species_string for k in r.index] == [site.species_string for site in s]
    np.testing.assert_allclose(r.supercell_matrix @ small, s.lattice.matrix, atol=1e-8)


@pytest.mark.parametrize(
    ("name", "repeat", "small_sites"),
    [("p4mm", (3, 3, 3), 5), ("pnma", (2, 1, 2), 20)],
)
def test_supercell_reduces_to_the_distortions_cell(name, repeat, small_sites, rng):
    base = polar_perovskite(amplitude=0.05)[1] if name == "p4mm" else tilted_perovskite("a+b-b-", 8.0)[1]
    big = _shuffled(base.make_supercell(repeat, in_place=False), rng)
    r = smallest_repeating_cell(big)
    n_images = int(np.prod(repeat))
    assert len(r.cell) == small_sites and r.n_images == n_images
    assert abs(round(np.linalg.det(r.supercell_matrix))) == n_images
    assert np.bincount(r.index).tolist() == [n_images] * small_sites  # every orbit complete
    assert r.max_residual < 1e-8
    _assert_rebuilds(big, r)
    # the small cell is the distortion's own cell: same volume per site and the same species count
    assert r.cell.volume == pytest.approx(base.volume * small_sites / len(base), rel=1e-9)


def test_broken_translation_is_kept(rng):
    """One atom moved by 0.01 Å (10 x the tolerance) breaks every translation: no reduction."""
    big = polar_perovskite(amplitude=0.05)[1].make_supercell((2, 2, 2), in_place=False)
    big.translate_sites([7], [0.01, 0.0, 0.0], frac_coords=False)
    r = smallest_repeating_cell(big, tol=1e-3)
    assert r.n_images == 1 and len(r.cell) == len(big)
    np.testing.assert_array_equal(r.index, np.arange(len(big)))


def test_antiphase_pair_keeps_only_its_true_period():
    """Tilts reversed in one half along x of a 4 x 2 x 2 Pnma stack: the period along x is the whole cell, while
    the repeats along y and z are true translations (the 20-atom cell's)."""
    _, anti = antiphase_perovskite((4, 2, 2))
    r = smallest_repeating_cell(anti)
    assert len(r.cell) == 80 and r.n_images == 4
    _assert_rebuilds(anti, r)

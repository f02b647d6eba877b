"""Searches on the smallest repeating cell (matsym.reduction), mapped back to the user's cell and site order.

Structures: the cubic perovskite parent (Pm-3m), its P4mm polar distortion (every B site 0.05 Å along z, as in
tetragonal BaTiO3) and the Pnma a+b-b- tilt pattern (Glazer, Acta Cryst. B28, 3384 (1972)), from
:mod:`matsym.structures`; supercells and site shuffles are made here. Space groups are checked with spglib.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Structure

from matsym.search import OrderParameterSearch, curie_check
from matsym.structures import cubic_perovskite, polar_perovskite, tilted_perovskite
from matsym.symmetry import space_group
from matsym.transformations import OrderParameterTransformation


def _shuffled(s: Structure, seed: int) -> tuple[Structure, np.ndarray]:
    order = np.random.default_rng(seed).permutation(len(s))
    return Structure(s.lattice, [s[int(i)].species for i in order], s.frac_coords[order]), order


def _small_site(big: Structure, small: Structure) -> np.ndarray:
    """Site of ``small`` (same frame) that each site of ``big`` repeats."""
    f = big.cart_coords @ np.linalg.inv(small.lattice.matrix)
    d = f[:, None, :] - small.frac_coords[None, :, :]
    d -= np.round(d)
    dist = np.linalg.norm(d @ small.lattice.matrix, axis=2)
    return np.argmin(dist, axis=1)


@pytest.fixture(scope="module")
def pnma_runs():
    """The 20-atom Pnma target and a shuffled 2 x 1 x 2 stack of it (80 sites), each against the 5-atom parent."""
    _, target = tilted_perovskite("a+b-b-", 8.0)
    big, _ = _shuffled(target.make_supercell((2, 1, 2), in_place=False), 3)
    small = OrderParameterSearch(cubic_perovskite(), target, sites="Ti", irreps="1e+1o").run()
    reduced = OrderParameterSearch(cubic_perovskite(), big, sites="Ti", irreps="1e+1o").run()
    return target, big, small, reduced


def test_pnma_supercell_gives_the_small_cells_answer(pnma_runs):
    target, big, small, reduced = pnma_runs
    info = reduced.registration["reduction"]
    assert (info["target_sites"], info["search_sites"]) == (80, 20)
    assert len(reduced.parent) == len(reduced.predicted_structure) == 80
    # user's site order: species and per-site arrays follow the shuffled cell
    assert [s.species_string for s in reduced.parent] == [s.species_string for s in big]
    assert sorted(reduced.sites.tolist()) == [j for j, s in enumerate(big) if s.species_string == "Ti"]
    # per site, the same answer as the 20-atom search, mapped back (displacements 0.1-0.3 Å; 5 mÅ tolerance)
    k = _small_site(big, target)
    np.testing.assert_allclose(reduced.target_displacements, small.target_displacements[k], atol=1e-9)
    np.testing.assert_allclose(reduced.predicted_displacements, small.predicted_displacements[k], atol=5e-3)
    assert reduced.irrep_fractions()["1e"] > 0.99 and small.irrep_fractions()["1e"] > 0.99
    assert reduced.metrics["displacement_error_ratio"] < 0.05
    assert space_group(reduced.predicted_structure, 1e-3)[1] == "Pnma"
    # the order parameter of every Ti is that of the Ti it repeats (up to the sign a search may choose)
    norms_big = np.linalg.norm(reduced.order_parameter[reduced.sites], axis=1)
    norms_small = np.linalg.norm(small.order_parameter[k[reduced.sites]], axis=1)
    np.testing.assert_allclose(norms_big / norms_big.max(), norms_small / norms_small.max(), atol=1e-2)


def test_reduced_result_applies_to_the_parent_and_round_trips(pnma_runs, tmp_path):
    *_, reduced = pnma_runs
    distorted = OrderParameterTransformation(reduced, amplitude=1.0).apply_transformation(cubic_perovskite())
    assert len(distorted) == 80
    assert space_group(distorted, 1e-3)[1] == "Pnma"
    path = reduced.to_json(tmp_path / "r.json")
    back = type(reduced).from_json(path)
    np.testing.assert_allclose(back.predicted_displacements, reduced.predicted_displacements)
    assert back.registration["reduction"]["search_sites"] == 20


def test_p4mm_supercell_in_shuffled_order():
    """A shuffled 2 x 2 x 2 P4mm supercell: every Ti moves +0.05 Å along z, in the user's order."""
    parent, target = polar_perovskite(amplitude=0.05)
    big, _ = _shuffled(target.make_supercell((2, 2, 2), in_place=False), 5)
    result = OrderParameterSearch(parent, big, sites="Ti", irreps="1o").run()
    assert result.registration["reduction"]["search_sites"] == 5
    ti = [j for j, s in enumerate(big) if s.species_string == "Ti"]
    assert result.sites.tolist() == ti
    # mean removed: Ti moves 0.05 * (1 - 1/5) = 0.04 Å, the others -0.01 Å, along z
    expected = np.where(np.isin(np.arange(40), ti), 0.04, -0.01)
    np.testing.assert_allclose(result.target_displacements[:, 2], expected, atol=1e-9)
    np.testing.assert_allclose(result.predicted_displacements[:, 2], expected, atol=2e-3)
    assert space_group(result.predicted_structure, 1e-3)[1] == "P4mm"


def test_no_reduction_where_settings_name_sites_or_a_translation():
    parent, target = polar_perovskite(amplitude=0.05)
    big = target.make_supercell((2, 1, 1), in_place=False)
    by_index = OrderParameterSearch(parent, big, sites=[1, 6], irreps="1o", max_steps=5, fit_steps=5)
    assert by_index.reduction is None and len(by_index.problem.parent) == 10
    off = OrderParameterSearch(parent, big, sites="Ti", irreps="1o", reduce_cell=False, fit_steps=5)
    assert off.reduction is None and len(off.problem.parent) == 10


def test_curie_check_on_a_reduced_cell_reports_the_users_sites():
    parent, target = tilted_perovskite("a+b-b-", 8.0)
    big = target.make_supercell((1, 2, 1), in_place=False)
    report = curie_check(parent, big, irreps="0e", fit_steps=60)
    assert not report.compatible
    assert report.degenerate_sites and max(report.degenerate_sites) < 40

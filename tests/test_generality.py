"""Cases the paper does not show: other tilt systems, polar and Jahn-Teller distortions, other cells and settings.

Every target is built from its physical description (:mod:`matsym.structures`); space groups are checked with spglib
through :mod:`matsym.symmetry`. Beyond the group of the predicted structure, the learned order-parameter field itself
is checked against the target's symmetry: every space-group operation of the target must map the field onto itself
(vectors as ``R v``, pseudovectors as ``det(R) R v``), so the order parameter is no less symmetric than the target.

Each search uses the default settings and takes a few seconds on one core.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from matsym.search import OrderParameterSearch
from matsym.structures import (
    cubic_perovskite,
    jahn_teller_perovskite,
    polar_perovskite,
    rotation_matrix,
    tilted_perovskite,
)
from matsym.symmetry import space_group

SYMPRECS = (1e-3, 1e-2)
FIT = 0.10  # largest RMS error of the decoded displacements, as a fraction of the RMS target displacement


# ------------------------------------------------------------------------------------------------- helpers
def _groups(structure) -> list[int]:
    return [space_group(structure, p)[0] for p in SYMPRECS]


def _l1_vectors(result, irrep: str) -> np.ndarray:
    """Cartesian (x, y, z) part of every site's order parameter in an L=1 irrep (standard m=-1,0,1 = y,z,x)."""
    start = list(result.components).index(f"{irrep} m=-1 y")
    y, z, x = (result.order_parameter[:, start + k] for k in range(3))
    return np.stack([x, y, z], axis=1)  # [n, 3]


def _operations(structure, symprec: float = 1e-3):
    """Space-group operations (fractional rotations, translations) of a structure, from spglib."""
    from matsym.symmetry import symmetry_operations

    return symmetry_operations(structure, symprec)


def _field_symmetry_error(result, irrep: str) -> float:
    """Largest change of an L=1 order-parameter field under the operations of the target, relative to its size.

    ``result.target`` is the target on the search cell (same sites and order as ``result.parent``), so its
    operations act on the order-parameter sites directly.
    """
    vectors = _l1_vectors(result, irrep)  # [n, 3]
    scale = float(np.abs(vectors).max())
    assert scale > 0, f"the {irrep} order parameter is zero"
    frac = np.asarray(result.parent.frac_coords)
    lattice = np.asarray(result.parent.lattice.matrix)  # rows are lattice vectors
    pseudo = irrep.endswith("e")
    worst = 0.0
    for rot, trans in zip(*_operations(result.target), strict=True):
        rot_cart = lattice.T @ rot @ np.linalg.inv(lattice.T)  # [3, 3]
        sign = np.linalg.det(rot_cart) if pseudo else 1.0
        for i in result.sites:
            image = rot @ frac[i] + trans
            diff = (frac - image + 0.5) % 1.0 - 0.5  # [n, 3]
            j = int(np.argmin(np.linalg.norm(diff @ lattice, axis=1)))
            assert np.linalg.norm(diff[j] @ lattice) < 1e-2, f"site {i} has no image under the operation"
            worst = max(worst, float(np.abs(sign * rot_cart @ vectors[i] - vectors[j]).max()))
    return worst / scale


def _site_fractions(result, irrep: str) -> list[float]:
    return [result.irrep_fractions(int(site)).get(irrep, 0.0) for site in result.sites]


def _reexpress(target: Structure, *, rotate: bool, seed: int = 0) -> Structure:
    """The same crystal in another setting: cyclically permuted axes, shifted origin, shuffled sites, optionally
    rigidly rotated."""
    perm = [2, 0, 1]  # a' = c, b' = a, c' = b: a cyclic permutation keeps the cell right-handed
    lattice = np.asarray(target.lattice.matrix)[perm]
    frac = np.asarray(target.frac_coords)[:, perm] + np.array([0.13, 0.37, 0.21])
    if rotate:
        lattice = lattice @ rotation_matrix(np.deg2rad(23.0) * np.array([1.0, 2.0, -1.0]) / np.sqrt(6.0)).T
    order = np.random.default_rng(seed).permutation(len(target))
    return Structure(Lattice(lattice), [target[int(i)].species_string for i in order], frac[order] % 1.0)


# ------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tilt_minus():
    parent, target = tilted_perovskite("a0a0c-", 8.0)
    return target, OrderParameterSearch(parent, target, sites="Ti", irreps="1e+1o").run()


@pytest.fixture(scope="module")
def tilt_plus():
    parent, target = tilted_perovskite("a0a0c+", 8.0)
    return target, OrderParameterSearch(parent, target, sites="Ti", irreps="1e+1o").run()


@pytest.fixture(scope="module")
def polar():
    parent, target = polar_perovskite((0, 0, 1), 0.1)
    return target, OrderParameterSearch(parent, target, sites="Ti", irreps="1o+1e").run()


@pytest.fixture(scope="module")
def jahn_teller():
    parent, target = jahn_teller_perovskite(q2=0.1)
    return target, OrderParameterSearch(parent, target, sites="Ti", irreps="0e+1e+2e").run()


@pytest.fixture(scope="module")
def pnma_direct():
    parent, target = tilted_perovskite("a+b-b-", 8.0)
    return target, OrderParameterSearch(parent, target, sites="Ti", irreps="1e").run()


# ------------------------------------------------------------------------------------------------- tilts
def test_a0a0c_minus_gives_pseudovectors_and_i4_mcm(tilt_minus):
    target, result = tilt_minus
    assert _groups(target) == [140, 140]  # the builder's target itself
    assert min(_site_fractions(result, "1e")) >= 0.90, result.summary()
    mags = np.linalg.norm(_l1_vectors(result, "1e")[result.sites], axis=1)
    assert np.ptp(mags) <= 0.05 * mags.mean()
    assert _groups(result.predicted_structure) == [140, 140]
    assert _field_symmetry_error(result, "1e") <= 1e-3
    assert result.metrics["displacement_error_ratio"] <= FIT


def test_field_symmetry_check_catches_a_field_less_symmetric_than_the_target(tilt_minus):
    _, result = tilt_minus
    op = result.order_parameter.copy()
    op[result.sites[0]] *= -1.0  # one octahedron tilted the wrong way
    assert _field_symmetry_error(dataclasses.replace(result, order_parameter=op), "1e") >= 0.5


def test_a0a0c_plus_gives_pseudovectors_and_p4_mbm(tilt_plus):
    target, result = tilt_plus
    assert _groups(target) == [127, 127]
    assert min(_site_fractions(result, "1e")) >= 0.90, result.summary()
    assert _groups(result.predicted_structure) == [127, 127]
    assert _field_symmetry_error(result, "1e") <= 1e-3


def test_a0a0c_plus_fits_the_displacements(tilt_plus):
    # No linear scalar or pseudoscalar invariant of an in-phase tilt field survives the parent's symmetry, so the
    # parts of the O-site signals that are even in the order parameter (L=0, 2) need a quadratic path in the network
    # (a network affine in the order parameter stalled at 28.1% RMS error, loss ratio 0.281 = 9/32).
    _, result = tilt_plus
    assert result.metrics["displacement_error_ratio"] <= FIT


# ------------------------------------------------------------------------------------------------- polar
def test_polar_001_gives_a_vector_and_p4mm(polar):
    target, result = polar
    assert _groups(target) == [99, 99]
    assert result.irrep_fractions()["1o"] >= 0.90, result.summary()
    assert min(_site_fractions(result, "1o")) >= 0.90
    direction = _l1_vectors(result, "1o")[result.sites[0]]
    assert abs(direction[2]) >= 0.99 * np.linalg.norm(direction)  # along [001]
    assert _groups(result.predicted_structure) == [99, 99]
    assert _field_symmetry_error(result, "1o") <= 1e-3


def test_polar_001_fits_the_displacements(polar):
    # Every site of the cubic parent is an inversion centre: the L=2 parts of the signals are even in a 1o order
    # parameter and need a quadratic path in the network (a network affine in the order parameter stalled at
    # 40.5% RMS error, loss ratio 0.361 = 13/36, all of the L=2 part missing).
    _, result = polar
    assert result.metrics["displacement_error_ratio"] <= FIT


# ------------------------------------------------------------------------------------------------- Jahn-Teller
def test_jahn_teller_q2_gives_a_rank_two_tensor_and_the_builders_group(jahn_teller):
    target, result = jahn_teller
    expected = _groups(target)
    assert expected[0] == expected[1] and expected[0] != 221, expected
    assert result.irrep_fractions()["2e"] >= 0.90, result.summary()
    assert min(_site_fractions(result, "2e")) >= 0.90
    assert _groups(result.predicted_structure) == expected
    assert result.metrics["displacement_error_ratio"] <= FIT


# ------------------------------------------------------------------------------------------------- settings
@pytest.mark.parametrize("rotate", [False, True], ids=["permuted-shifted", "permuted-shifted-rotated"])
def test_pnma_target_in_another_setting_gives_the_same_answer(pnma_direct, rotate):
    target, direct = pnma_direct
    other = _reexpress(target, rotate=rotate)
    assert space_group(other, 1e-3)[0] == 62
    result = OrderParameterSearch(cubic_perovskite(), other, sites="Ti", irreps="1e").run()

    assert len(result.sites) == 4 and {result.parent[int(i)].species_string for i in result.sites} == {"Ti"}
    assert round(abs(np.linalg.det(np.asarray(result.registration["supercell_matrix"])))) == 4
    assert min(_site_fractions(result, "1e")) >= 0.90, result.summary()
    vectors = _l1_vectors(result, "1e")[result.sites]
    mags = np.linalg.norm(vectors, axis=1)
    assert np.ptp(mags) <= 0.05 * mags.mean()
    assert _groups(result.predicted_structure) == [62, 62]
    assert result.metrics["displacement_error_ratio"] <= FIT
    # the order-parameter field has the target's symmetry, whatever cell it was found on ...
    assert _field_symmetry_error(result, "1e") <= 1e-3
    assert _field_symmetry_error(direct, "1e") <= 1e-3
    # ... and is the same field as the direct run's, in the parent's Cartesian frame, up to a lattice translation
    # (which may flip the sign of each wave vector's part): compare the sorted |x|, |y|, |z| of the B-site vectors
    reference = np.abs(_l1_vectors(direct, "1e")[direct.sites])
    norm = float(np.linalg.norm(reference, axis=1).mean())
    for axis in range(3):
        np.testing.assert_allclose(
            np.sort(np.abs(vectors[:, axis])), np.sort(reference[:, axis]), atol=0.05 * norm, err_msg=f"axis {axis}"
        )


def _symmetrised_a_site_displacements(target, scale: float, seed: int) -> np.ndarray:
    """Random A-site displacements averaged over the target's space group (test data: real Pnma perovskites
    also move their A cations). spglib only builds the data here; the search never sees it."""
    from matsym.symmetry import symmetry_operations

    rots, trans = symmetry_operations(target, 1e-3)
    frac, lat = target.frac_coords, target.lattice.matrix
    d = np.zeros_like(frac)
    a_sites = [i for i, s in enumerate(target) if s.species_string == "Sr"]
    d[a_sites] = np.random.default_rng(seed).normal(scale=scale, size=(len(a_sites), 3))
    out = np.zeros_like(d)
    for rot, tau in zip(rots, trans, strict=True):
        rc = lat.T @ rot @ np.linalg.inv(lat.T)  # the operation's rotation in Cartesian coordinates
        moved = frac @ rot.T + tau
        for i in range(len(target)):
            diff = frac - moved[i]
            diff -= np.round(diff)
            out[int(np.argmin(np.linalg.norm(diff @ lat, axis=1)))] += rc @ d[i]
    return out / len(rots)


def test_pnma_with_a_site_displacements_and_strain_from_the_5_atom_parent():
    """A target closer to a published Pnma structure: strained orthorhombic cell, A cations displaced."""
    from matsym.structures import cubic_perovskite

    _, target = tilted_perovskite("a+b-b-", 8.0)
    shift = _symmetrised_a_site_displacements(target, 0.15, seed=0)
    assert np.abs(shift).max() > 0.02
    lattice = Lattice(np.diag([1.02, 0.99, 1.015]) @ target.lattice.matrix)  # strain along the cell axes
    frac = (target.cart_coords + shift) @ np.linalg.inv(target.lattice.matrix)
    real = Structure(lattice, target.species, frac)
    assert space_group(real, 1e-3)[0] == 62
    result = OrderParameterSearch(cubic_perovskite(), real, sites="Ti", irreps="0e+0o+1e+1o+2e+2o").run()
    for symprec in (1e-3, 1e-2):
        assert space_group(result.predicted_structure, symprec)[0] == 62
    for site in result.sites:
        assert result.irrep_fractions(site)["1e"] >= 0.90
    assert result.metrics["displacement_error_ratio"] <= 0.10


@pytest.mark.parametrize(("glazer", "group"), [("a+b+c-", 59), ("a+b+c+", 71)])
def test_three_unequal_tilts_with_default_settings_keep_the_target_group_in_float32(glazer, group):
    """Three different tilt angles (5, 6, 7 degrees; tilt systems the paper does not treat), order parameters on
    every site with the default candidates, default float32: the predicted structure has the target's group
    (Pmmn, Immm) at both tolerances. Before the growth stages recorded their gradient span in float64, float32
    rounding entered the locked span and both came out in lower groups at 1e-3 (a+b+c-: P1)."""
    parent, target = tilted_perovskite(glazer, [5.0, 6.0, 7.0])
    assert _groups(target) == [group, group]
    result = OrderParameterSearch(parent, target).run()
    assert _groups(result.predicted_structure) == [group, group], result.summary()
    assert result.metrics["displacement_error_ratio"] <= FIT

"""Registration tests on structures whose displacements and strain are known by construction."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from matsym.errors import DisorderError, RegistrationError
from matsym.registration import Registration, register
from matsym.structures import cubic_perovskite, polar_perovskite, rotation_matrix, tilted_perovskite
from matsym.symmetry import verify_space_group

STRAIN = (1.02, 0.99, 1.015)  # applied to the three lattice vectors of the permuted cell
SHIFT = (0.13, 0.27, 0.41)  # fractional origin shift, not a lattice vector


def _known_displacements(parent: Structure, target: Structure) -> np.ndarray:
    """target - parent per site (same lattice and order), minimal image, mean removed; [n, 3] Å."""
    d = target.frac_coords - parent.frac_coords
    d -= np.round(d)
    d = d @ parent.lattice.matrix
    return d - d.mean(axis=0)


def _disguise(t: Structure, *, rotation: np.ndarray | None = None, seed: int = 0) -> tuple[Structure, np.ndarray]:
    """Pbnm-like setting: cyclic permutation of the axes, origin shift, strain, optional rotation, shuffled
    sites.

    Returns the new structure and ``order``: its site ``j`` is site ``order[j]`` of ``t``.
    """
    perm = [2, 0, 1]  # cyclic: keeps the handedness of the cell
    lattice = t.lattice.matrix[perm] * np.array(STRAIN)[:, None]
    if rotation is not None:
        lattice = lattice @ rotation.T
    frac = t.frac_coords[:, perm] + SHIFT
    order = np.random.default_rng(seed).permutation(len(t))
    return Structure(Lattice(lattice), [t[int(i)].species for i in order], frac[order]), order


def _applied_strain(t: Structure) -> np.ndarray:
    """Biot strain of scaling the (orthogonal) rows of t's permuted lattice by STRAIN, in Cartesian axes."""
    rows = t.lattice.matrix[[2, 0, 1]]
    units = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return sum((s - 1.0) * np.outer(n, n) for s, n in zip(STRAIN, units, strict=True))


@pytest.fixture(scope="module")
def pnma():
    p20, t20 = tilted_perovskite("a+b-b-", 8.0)
    return cubic_perovskite(), p20, t20


def test_pbnm_setting_shifted_strained_shuffled(pnma):
    parent, p20, t20 = pnma
    target, order = _disguise(t20)
    reg = register(parent, target)

    assert len(reg.parent) == len(target) == 20
    assert [s.specie for s in reg.parent] == [s.specie for s in target]
    assert round(abs(np.linalg.det(reg.supercell_matrix))) == 4
    np.testing.assert_allclose(reg.parent.lattice.matrix, reg.supercell_matrix @ parent.lattice.matrix, atol=1e-12)
    # the tilt displacements, per target site, to 1e-6 Å
    np.testing.assert_allclose(reg.displacements, _known_displacements(p20, t20)[order], atol=1e-6)
    assert reg.max_displacement == pytest.approx(np.linalg.norm(reg.displacements, axis=1).max())
    # the applied strain, no rotation
    np.testing.assert_allclose(reg.strain, _applied_strain(t20), atol=1e-6)
    np.testing.assert_allclose(reg.rotation, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(
        reg.target.lattice.matrix, reg.parent.lattice.matrix @ reg.deformation_gradient.T, atol=1e-9
    )
    f = reg.deformation_gradient
    np.testing.assert_allclose(reg.green_lagrange_strain, 0.5 * (f.T @ f - np.eye(3)), atol=1e-12)
    # the undistorted parent with the displacements is Pnma again
    verify_space_group(reg.displaced_parent(), symprecs=(1e-5, 1e-4, 1e-3, 1e-2), expect="Pnma")
    verify_space_group(reg.parent, symprecs=(1e-5, 1e-3), expect=221)


def test_registration_frames_are_consistent(pnma):
    parent, p20, t20 = pnma
    target, order = _disguise(t20, seed=3)
    reg = register(parent, target)
    lat = reg.parent.lattice.matrix
    # displacements are target - parent in the shared fractional basis, up to whole lattice vectors
    diff = reg.target.frac_coords - reg.parent.frac_coords - reg.displacements @ np.linalg.inv(lat)
    np.testing.assert_allclose(diff, np.round(diff), atol=1e-9)
    # the site map: parent supercell (parent origin) = parent on the target's origin + origin_shift
    canonical = reg.parent_supercell()
    assert len(set(reg.site_map.tolist())) == len(target)
    for j, site in enumerate(reg.parent):
        assert canonical[int(reg.site_map[j])].specie == site.specie == parent[int(reg.parent_index[j])].specie
        d = canonical[int(reg.site_map[j])].frac_coords - site.frac_coords - reg.origin_shift
        np.testing.assert_allclose(d, np.round(d), atol=1e-9)
    # the parent is p20 (same physical cell, permuted axes) up to one global translation
    p20_cart = p20.cart_coords[order]
    delta = reg.parent.cart_coords - p20_cart
    dfrac = (delta - delta[0]) @ np.linalg.inv(lat)
    np.testing.assert_allclose(dfrac, np.round(dfrac), atol=1e-9)


def test_rotated_target(pnma):
    parent, p20, t20 = pnma
    r0 = rotation_matrix([0.1, -0.2, 0.15])  # ~15 degrees
    target, order = _disguise(t20, rotation=r0, seed=1)
    reg = register(parent, target)
    np.testing.assert_allclose(reg.rotation, r0, atol=1e-9)
    np.testing.assert_allclose(reg.strain, _applied_strain(t20), atol=1e-6)
    # displacements are reported in the parent's (unrotated) frame
    np.testing.assert_allclose(reg.displacements, _known_displacements(p20, t20)[order], atol=1e-6)


def test_identical_structures_give_zero_displacements():
    parent = cubic_perovskite()
    reg = register(parent, parent.copy())
    np.testing.assert_array_equal(reg.supercell_matrix, np.eye(3, dtype=int))
    np.testing.assert_allclose(reg.origin_shift, 0.0, atol=1e-12)
    np.testing.assert_allclose(reg.displacements, 0.0, atol=1e-12)
    np.testing.assert_allclose(reg.deformation_gradient, np.eye(3), atol=1e-12)
    np.testing.assert_array_equal(reg.site_map, np.arange(5))
    assert reg.max_displacement == pytest.approx(0.0, abs=1e-12)


def test_same_cell_polar_displacements():
    parent, target = polar_perovskite((0, 0, 1), 0.1)
    reg = register(parent, target)
    np.testing.assert_array_equal(reg.supercell_matrix, np.eye(3, dtype=int))
    expected = np.zeros((5, 3))
    expected[1, 2] = 0.1
    np.testing.assert_allclose(reg.displacements, expected - expected.mean(axis=0), atol=1e-12)


@pytest.mark.parametrize(
    ("glazer", "supercell"),
    [
        ("a-a-a-", [[0, 1, 1], [1, 0, 1], [1, 1, 0]]),  # 10 atoms, fcc-type cell
        ("a+a+a+", None),  # 2x2x2
        ("a0a0c-", [[0, 2, 0], [-1, 1, 0], [0, 2, 2]]),  # a skewed basis of the 20-atom cell
    ],
)
def test_other_supercells(glazer, supercell):
    parent = cubic_perovskite()
    p, t = tilted_perovskite(glazer, 9.0, supercell=supercell)
    target = Structure.from_sites(list(reversed(t.sites)))
    reg = register(parent, target)
    np.testing.assert_allclose(reg.strain, 0.0, atol=1e-9)
    np.testing.assert_allclose(reg.displacements, _known_displacements(p, t)[::-1], atol=1e-6)


def test_atoms_input_and_dict_round_trip(pnma):
    parent, _, t20 = pnma
    reg = register(AseAtomsAdaptor.get_atoms(parent), AseAtomsAdaptor.get_atoms(t20))
    assert isinstance(reg, Registration)
    assert reg.max_displacement > 0.2
    d = json.loads(json.dumps(reg.as_dict()))
    back = Registration.from_dict(d)
    np.testing.assert_allclose(back.displacements, reg.displacements)
    np.testing.assert_array_equal(back.site_map, reg.site_map)
    assert back.parent == reg.parent and back.target == reg.target
    with pytest.raises(RegistrationError, match="lacks field"):
        Registration.from_dict({"parent": d["parent"]})
    with pytest.raises(ValueError, match="read-only"):
        reg.displacements[0, 0] = 1.0


def test_different_compositions():
    with pytest.raises(RegistrationError, match=r"different compositions: parent SrTiO3.*target BaTiO3"):
        register(cubic_perovskite(), cubic_perovskite(species=("Ba", "Ti", "O")))
    _, t20 = tilted_perovskite("a0a0c+", 5.0)
    with pytest.raises(RegistrationError, match="not a whole multiple"):
        register(t20, cubic_perovskite())


def test_incommensurate_lattices():
    parent = cubic_perovskite()
    big = parent.copy()
    big.scale_lattice(parent.volume * 1.37**3)  # every lattice vector 1.37 x
    with pytest.raises(RegistrationError, match=r"no supercell relation: the target's volume per site is 2.57"):
        register(parent, big)
    stretched = Structure(Lattice(parent.lattice.matrix * [[1.37], [1], [1]]), parent.species, parent.frac_coords)
    with pytest.raises(RegistrationError, match=r"no supercell relation within ltol=0.2.*principal strain of 0.37"):
        register(parent, stretched)


def test_disordered_site():
    parent = cubic_perovskite()
    target = parent.copy()
    target.replace(0, {"Sr": 0.5, "Ca": 0.5})
    with pytest.raises(DisorderError, match="target: site 0 is disordered"):
        register(parent, target)


def test_ambiguous_and_too_large_displacements():
    """A Cl atom exactly halfway between two Cl sites of a CsCl parent (the mean displacement is zero)."""
    parent = Structure(Lattice.cubic(4.0), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    cs = [[0, 0, 0], [4, 0, 0], [0, 4, 0], [4, 4, 0]]
    cl = [[4, 2, 2], [4, 6, 2], [6, 2, 2], [2, 6, 2]]  # the first two sit between two Cl sites
    target = Structure(Lattice(np.diag([8.0, 8.0, 4.0])), ["Cs"] * 4 + ["Cl"] * 4, cs + cl, coords_are_cartesian=True)
    with pytest.raises(RegistrationError, match=r"ambiguous mapping: target site [45] \(Cl\)"):
        register(parent, target, max_displacement=None, stol=1.0)
    with pytest.raises(RegistrationError, match=r"largest 1 Å from max_displacement=1.0.*by 2 Å"):
        register(parent, target)
    with pytest.raises(RegistrationError, match=r"rms 0.3175 Å from stol=0.1.*rms 1 Å"):
        register(parent, target, max_displacement=None, stol=0.1)  # 0.1 * (64 Å^3 / 2)^(1/3); rms = sqrt(2 * 4 / 8)


def test_large_tilts_pass_default_limits():
    """15 degree a+b-b- tilts (CaTiO3-like) move O by ~0.7 Å: within the defaults."""
    p, t = tilted_perovskite("a+b-b-", 15.0)
    reg = register(cubic_perovskite(), t)
    assert 0.6 < reg.max_displacement < 1.0
    np.testing.assert_allclose(reg.displacements, _known_displacements(p, t), atol=1e-6)


def test_registration_record_is_read_without_importing_what_it_names(tmp_path, monkeypatch):
    """A stored registration whose site carries a monty-tagged property must not import the module it names."""
    import sys

    planted = "matsym_planted_registration_module"
    (tmp_path / f"{planted}.py").write_text("raise SystemExit('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    d = register(cubic_perovskite(), cubic_perovskite()).as_dict()
    d = json.loads(json.dumps(d))
    d["parent"]["sites"][0]["properties"] = {"evil": {"@module": planted, "@class": "X"}}
    with pytest.warns(UserWarning):
        rebuilt = Registration.from_dict(d)
    assert planted not in sys.modules
    assert "evil" not in rebuilt.parent.site_properties

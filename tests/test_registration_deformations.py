"""Registration of large shears, conventional-cell parents and large cells.

Structures are built from published coordinates (:mod:`matsym.published` cites each source): baddeleyite ZrO2
(Howard, Hill & Reichert, Acta Cryst. B44, 116 (1988)), monoclinic HfO2 (Hann, Suitch & Pentecost, J. Am. Ceram.
Soc. 68, C285 (1985)), tetragonal ZrO2 (Teufer, Acta Cryst. 15, 1187 (1962)), each against an ideal fluorite parent
whose lattice parameter comes from the target's volume per formula unit. Space groups come from spglib.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from matsym._supercells import candidate_matrices, deformation, polar, strain_measures
from matsym.errors import RegistrationError
from matsym.published import (
    baddeleyite_hfo2,
    baddeleyite_zro2,
    fluorite_conventional,
    fluorite_primitive,
    tetragonal_zro2,
)
from matsym.registration import register
from matsym.structures import rotation_matrix, tilted_perovskite
from matsym.symmetry import space_group

SYMPRECS = (1e-5, 1e-3, 1e-2, 1e-1)


def _shuffled(s: Structure, seed: int) -> tuple[Structure, np.ndarray]:
    order = np.random.default_rng(seed).permutation(len(s))
    return Structure(s.lattice, [s[int(i)].species for i in order], s.frac_coords[order]), order


@pytest.mark.parametrize("make", [baddeleyite_zro2, baddeleyite_hfo2])
def test_monoclinic_shear_registers_with_defaults(make):
    target = make()
    assert {space_group(target, p)[0] for p in SYMPRECS} == {14}  # P2_1/c as published
    metal = target[0].specie.symbol
    parent = fluorite_primitive(metal, target.volume / 4)
    target, _ = _shuffled(target, seed=2)
    reg = register(parent, target)

    assert round(abs(np.linalg.det(reg.supercell_matrix))) == 4
    assert [s.specie for s in reg.parent] == [s.specie for s in target]  # the user's site order
    np.testing.assert_allclose(reg.target.lattice.matrix, reg.parent.lattice.matrix @ reg.deformation_gradient.T)
    # a large shear: the 9.2 degree change of beta is split into strain and a rotation
    principal, shear, deviatoric = strain_measures(np.eye(3) + reg.strain)
    assert 0.05 < principal < 0.2 and 8.0 < shear < 20.0
    # the strain found is the smallest of every supercell relation within the default windows
    ms = candidate_matrices(
        np.asarray(parent.lattice.matrix), np.asarray(target.lattice.matrix), 4, ltol=0.2, angle_tol=20.0
    )
    _, u = polar(deformation(ms, np.asarray(parent.lattice.matrix), np.asarray(target.lattice.matrix)))
    assert deviatoric == pytest.approx(strain_measures(u)[2].min(), abs=1e-9)
    # the target without its strain and rotation keeps P2_1/c at every tolerance: registration adds no error
    assert {space_group(reg.displaced_parent(), p)[0] for p in SYMPRECS} == {14}
    assert reg.max_displacement < 1.0
    assert reg.timings["seconds"] > 0 and reg.timings["assignments"] >= 1


def test_tolerances_tighten_and_widen_with_a_clear_refusal():
    target = baddeleyite_zro2()
    parent = fluorite_primitive("Zr", target.volume / 4)
    with pytest.raises(
        RegistrationError,
        match=r"angle_tol=5.0 deg.*smallest strain found is supercell .* principal strain of 0.08\d+ and an "
        r"angle change of 9.4\d deg",
    ):
        register(parent, target, angle_tol=5.0)
    with pytest.raises(RegistrationError, match=r"within ltol=0.05 .*principal strain of 0.08"):
        register(parent, target, ltol=0.05)
    assert register(parent, target, ltol=0.1, angle_tol=10.0).supercell_matrix.shape == (3, 3)


def test_search_on_baddeleyite_gives_p21c():
    """``matsym find`` path with default settings: the predicted structure is P2_1/c at 1e-3 and 1e-2."""
    from matsym.search import OrderParameterSearch

    target = baddeleyite_zro2()
    result = OrderParameterSearch(fluorite_primitive("Zr", target.volume / 4), target, seed=0).run()
    assert [space_group(result.predicted_structure, p)[0] for p in (1e-3, 1e-2)] == [14, 14]
    # the registration's cost is in the result
    timings = result.registration["timings"]
    assert timings["assignments"] >= 1 and timings["candidate_matrices"] >= 1
    assert result.metrics["registration_seconds"] == pytest.approx(timings["seconds"]) and timings["seconds"] > 0


def test_conventional_parent_is_reduced_when_the_target_needs_it():
    target = tetragonal_zro2()
    assert {space_group(target, p)[0] for p in SYMPRECS} == {137}  # P4_2/nmc
    target, _ = _shuffled(target, seed=5)
    parent = fluorite_conventional("Zr", target.volume / 2)
    assert len(parent) == 12 and len(target) == 6
    reg = register(parent, target)
    assert reg.parent_reduction["reduced"] and reg.parent_reduction["primitive_sites"] == 3
    assert reg.parent_reduction["pure_translations"] == 4
    assert "12-site cell" in reg.parent_reduction["note"]
    # the primitive basis spans a quarter of the conventional cell and is a lattice of it
    basis = np.asarray(reg.parent_reduction["primitive_basis"])
    assert abs(np.linalg.det(basis)) == pytest.approx(0.25)
    np.testing.assert_allclose(np.linalg.inv(basis) @ np.eye(3), np.round(np.linalg.inv(basis)), atol=1e-9)
    # per-site outputs in the user's order, and the displaced parent is the target's group at every tolerance
    assert [s.specie for s in reg.parent] == [s.specie for s in target]
    assert len(reg.parent) == len(reg.displacements) == len(target)
    assert {space_group(reg.displaced_parent(), p)[0] for p in SYMPRECS} == {137}
    # the same parent already primitive is not reduced
    assert register(fluorite_primitive("Zr", target.volume / 2), target).parent_reduction == {}
    with pytest.raises(RegistrationError, match="not a whole multiple of the parent's 12"):
        register(parent, target, reduce_parent=False)


def test_same_cell_any_order_and_origin():
    """A 160-site same-cell pair, shuffled and rigidly shifted: the known displacements per site."""
    p20, t20 = tilted_perovskite("a+b-b-", 8.0)
    d20 = t20.frac_coords - p20.frac_coords
    d20 = (d20 - np.round(d20)) @ p20.lattice.matrix  # [20, 3] minimal image in the 20-site cell
    parent = p20 * (2, 2, 2)
    # each supercell site is one of the 20 sites translated: give it that site's displacement
    origin = np.mod(parent.frac_coords * 2.0, 1.0)  # [160, 3] in the 20-site cell's basis
    diff = origin[:, None, :] - p20.frac_coords[None, :, :]
    source = np.argmin(np.linalg.norm(diff - np.round(diff), axis=-1), axis=1)
    known = d20[source]
    target = Structure(parent.lattice, parent.species, parent.cart_coords + known, coords_are_cartesian=True)
    shuffled, order = _shuffled(target, seed=7)
    shifted = Structure(shuffled.lattice, shuffled.species, shuffled.frac_coords + np.array([0.31, 0.17, 0.05]))
    reg = register(parent, shifted)
    np.testing.assert_allclose(reg.displacements, (known - known.mean(axis=0))[order], atol=1e-6)


def test_rotated_supercell_of_small_parent():
    """An 80-site supercell of the Pnma target rotated by 20 degrees about z against the 5-atom parent (16 cells)."""
    from matsym.structures import cubic_perovskite

    _, t20 = tilted_perovskite("a+b-b-", 8.0)
    big = t20 * (2, 2, 1)
    lattice = big.lattice.matrix @ rotation_matrix([0.0, 0.0, np.radians(20.0)]).T
    target = Structure(Lattice(lattice), big.species, big.frac_coords)
    reg = register(cubic_perovskite(), target)
    assert round(abs(np.linalg.det(reg.supercell_matrix))) == 16
    assert np.degrees(np.arccos((np.trace(reg.rotation) - 1) / 2)) == pytest.approx(20.0, abs=1e-6)
    np.testing.assert_allclose(reg.strain, 0.0, atol=1e-9)


def test_unregisterable_pair_is_refused():
    """Every site moved by up to 5.5 Å (random directions) on a 640-site cell: refused, with the reason."""
    p20, _ = tilted_perovskite("a+b-b-", 8.0)
    parent = p20 * (4, 4, 2)
    rng = np.random.default_rng(1)
    v = rng.normal(size=(len(parent), 3))
    v *= (rng.uniform(0.0, 5.5, len(parent)) / np.linalg.norm(v, axis=1))[:, None]
    target = Structure(parent.lattice, parent.species, parent.cart_coords + v, coords_are_cartesian=True)
    with pytest.raises(RegistrationError, match=r"abandoned at its first assignment .*nearest O parent site taken"):
        register(parent, target)


def test_command_line_tolerances(tmp_path, capsys, monkeypatch):
    """``--ltol`` / ``--angle-tol`` reach registration in ``find`` and ``check``: a refusal names them (exit 1)."""
    from matsym.cli import main
    from matsym.io import write_structure

    target = baddeleyite_zro2()
    write_structure(fluorite_primitive("Zr", target.volume / 4), tmp_path / "parent.cif")
    write_structure(target, tmp_path / "target.cif")
    monkeypatch.chdir(tmp_path)
    for command in (["find", "--out", "run"], ["check"]):
        status = main([*command, "parent.cif", "target.cif", "--angle-tol", "5", "--ltol", "0.3"])
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert status == 1 and len(lines) == 1 and lines[0].startswith("matsym: error:"), err
        assert "ltol=0.3 (principal strain), angle_tol=5.0 deg" in lines[0]
        assert "smallest strain found" in lines[0]
        assert not (tmp_path / "run").exists()

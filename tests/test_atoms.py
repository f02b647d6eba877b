"""ASE helpers: results as Atoms (arrays and info), extxyz round trips, find_order_parameter."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from ase import Atoms

from matsym.atoms import find_order_parameter, result_to_atoms
from matsym.errors import InputError, RegistrationError
from matsym.io import to_ase
from matsym.structures import cubic_perovskite, tilted_perovskite
from matsym.transformations import OrderParameterTransformation

BUDGET = {"max_steps": 200, "fit_steps": 100, "polish_steps": 50}  # a short search suffices here


@pytest.fixture(scope="module")
def found():
    """find_order_parameter on Atoms: the 5-atom cubic parent and the 20-atom Pnma target."""
    _, target = tilted_perovskite("a+b-b-", 8.0)
    parent_atoms, target_atoms = to_ase(cubic_perovskite()), to_ase(target)
    atoms, result = find_order_parameter(
        parent_atoms, target_atoms, sites="Ti", irreps="1e", return_result=True, **BUDGET
    )
    return parent_atoms, atoms, result


def test_find_order_parameter_returns_atoms(found):
    _, atoms, result = found
    assert isinstance(atoms, Atoms)
    assert len(atoms) == 20 and all(atoms.pbc)
    np.testing.assert_allclose(atoms.get_positions(), result.predicted_structure.cart_coords, atol=1e-10)
    np.testing.assert_allclose(atoms.cell.array, result.predicted_structure.lattice.matrix, atol=1e-12)
    assert atoms.get_chemical_symbols() == [s.specie.symbol for s in result.predicted_structure]

    assert atoms.arrays["order_parameter"].shape == (20, 3)
    np.testing.assert_array_equal(atoms.arrays["order_parameter"], result.order_parameter)
    np.testing.assert_array_equal(atoms.arrays["predicted_displacements"], result.predicted_displacements)
    np.testing.assert_array_equal(atoms.arrays["target_displacements"], result.target_displacements)
    ti = np.array(atoms.get_chemical_symbols()) == "Ti"
    assert np.all(np.linalg.norm(atoms.arrays["order_parameter"][ti], axis=1) > 0)
    assert np.all(atoms.arrays["order_parameter"][~ti] == 0)

    info = atoms.info
    assert info["matsym_structure"] == "predicted"
    assert info["components"].split(";") == list(result.components)
    assert len(info["components"].split(";")) == 3
    assert info["irrep_fraction_1e"] == pytest.approx(1.0)
    assert info["order_parameter_sites"] == np.flatnonzero(ti).tolist()
    assert info["space_group_1e-3"] == "Pnma" and info["space_group_number_1e-2"] == 62
    assert info["curie_compatible"] is False
    assert info["loss_ratio"] == result.metrics["loss_ratio"]


def test_extxyz_round_trip(found, tmp_path):
    _, atoms, _ = found
    path = tmp_path / "predicted.extxyz"
    ase.io.write(path, atoms, format="extxyz")
    back = ase.io.read(path, format="extxyz")
    np.testing.assert_allclose(back.get_positions(), atoms.get_positions(), atol=1e-6)
    for name in ("order_parameter", "predicted_displacements", "target_displacements"):
        assert back.arrays[name].shape == atoms.arrays[name].shape == (20, 3), name
        np.testing.assert_allclose(back.arrays[name], atoms.arrays[name], rtol=1e-6, atol=1e-8)
    # extxyz writes a one-column array as a plain column: one irrep block comes back as shape [n]
    assert atoms.arrays["irrep_weights"].shape == (20, 1)
    np.testing.assert_allclose(back.arrays["irrep_weights"].reshape(20, -1), atoms.arrays["irrep_weights"], rtol=1e-6)
    np.testing.assert_array_equal(back.arrays["degenerate"], atoms.arrays["degenerate"])
    assert set(back.info) == set(atoms.info)
    for key, value in atoms.info.items():
        if isinstance(value, float):
            assert back.info[key] == pytest.approx(value, rel=1e-6), key
        elif isinstance(value, list):
            assert list(np.atleast_1d(back.info[key])) == value, key
        else:
            assert back.info[key] == value, key


def test_result_to_atoms_parent_and_target(found):
    _, _, result = found
    parent = result_to_atoms(result, "parent")
    target = result_to_atoms(result, "target", symmetry=False)
    np.testing.assert_allclose(parent.get_positions(), result.parent.cart_coords, atol=1e-10)
    np.testing.assert_allclose(target.get_positions(), result.target.cart_coords, atol=1e-10)
    assert parent.info["space_group_1e-3"] == "Pm-3m"
    assert "space_group_1e-3" not in target.info
    # target - parent, minimal image, is the stored target displacement
    d = target.get_scaled_positions(wrap=False) - parent.get_scaled_positions(wrap=False)
    d -= np.round(d)
    np.testing.assert_allclose(d @ parent.cell.array, target.arrays["target_displacements"], atol=1e-8)
    with pytest.raises(InputError, match="which"):
        result_to_atoms(result, "distorted")


def test_transformation_on_atoms(found):
    parent_atoms, atoms, result = found
    out = OrderParameterTransformation(result, 1.0).apply_transformation(parent_atoms)
    assert isinstance(out, Atoms)
    d = out.get_scaled_positions(wrap=False) - atoms.get_scaled_positions(wrap=False)
    assert np.abs((d - np.round(d)) @ atoms.cell.array).max() < 1e-8
    wrong = to_ase(cubic_perovskite(species=("Ba", "Ti", "O")))
    with pytest.raises(RegistrationError, match="different compositions"):
        OrderParameterTransformation(result).apply_transformation(wrong)

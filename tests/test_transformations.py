"""OrderParameterTransformation and OrderParameterSearchTransformation: pymatgen's Transformation contract."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from ase import Atoms
from monty.json import MontyDecoder, MontyEncoder
from pymatgen.alchemy.materials import TransformedStructure
from pymatgen.core import Lattice, Structure
from pymatgen.transformations.transformation_abc import AbstractTransformation

from matsym.errors import InputError, RegistrationError, ResultError
from matsym.io import to_ase
from matsym.result import OrderParameterResult
from matsym.structures import cubic_perovskite, rotation_matrix, square_rectangle, tilted_perovskite
from matsym.symmetry import verify_space_group
from matsym.transformations import OrderParameterSearchTransformation, OrderParameterTransformation

STRAIN = (1.02, 0.985, 1.015)  # scale factors of the target's three orthogonal lattice vectors
SYMPRECS = (1e-3, 1e-2)
BUDGET = {"max_steps": 200, "fit_steps": 100, "polish_steps": 50}  # a short search suffices here


def frac_displacements(s: Structure, ref: Structure) -> np.ndarray:
    """s - ref per site (same lattice and order), minimal image, in ref's Cartesian frame; [n, 3] Å."""
    d = np.asarray(s.frac_coords) - np.asarray(ref.frac_coords)
    d -= np.round(d)
    return d @ ref.lattice.matrix


@pytest.fixture(scope="module")
def searched():
    """One search, run inside the search transformation on an ASE parent (the 5-atom cubic cell).

    The target is strained (orthogonal axes scaled by STRAIN) so that the result carries a strain.
    """
    _, target = tilted_perovskite("a+b-b-", 8.0)
    strained = Structure(Lattice(target.lattice.matrix * np.array(STRAIN)[:, None]), target.species, target.frac_coords)
    parent = cubic_perovskite()
    transformation = OrderParameterSearchTransformation(strained, sites="Ti", irreps="1e", search_kwargs=BUDGET)
    out = transformation.apply_transformation(to_ase(parent))
    return parent, strained, transformation, out


@pytest.fixture(scope="module")
def result(searched) -> OrderParameterResult:
    return searched[2].result


def test_search_transformation(searched, result):
    _, strained, transformation, out = searched
    assert isinstance(transformation, AbstractTransformation)
    assert isinstance(out, Atoms)  # Atoms in, Atoms out
    assert len(out) == len(result.parent) == 20
    verify_space_group(out, symprecs=SYMPRECS, expect="Pnma")
    params = transformation.output_parameters
    assert params["space_groups"] == {"0.001": [62, "Pnma"], "0.01": [62, "Pnma"]}
    assert params["matched_as"] == "original parent"
    assert params["order_parameter"]["dominant_irreps"] == ["1e"]
    assert params["search"]["verdict"].startswith("incompatible")

    d = transformation.as_dict()
    text = json.dumps(d)
    again = OrderParameterSearchTransformation.from_dict(json.loads(text))
    assert again.as_dict() == d
    assert again.target == strained
    np.testing.assert_array_equal(again.result.order_parameter, result.order_parameter)
    assert (again.sites, again.irreps, again.search_kwargs) == ("Ti", "1e", BUDGET)


def test_amplitude_zero_is_the_parent(result):
    parent = cubic_perovskite()
    for given in (result.parent, parent):
        out = OrderParameterTransformation(result, 0.0).apply_transformation(given)
        np.testing.assert_allclose(out.lattice.matrix, result.parent.lattice.matrix, atol=1e-12)
        assert [s.specie for s in out] == [s.specie for s in result.parent]
        assert np.abs(frac_displacements(out, result.parent)).max() < 1e-8
    # the search cell as given comes back with its own coordinates, unchanged
    out = OrderParameterTransformation(result, 0.0).apply_transformation(result.parent)
    np.testing.assert_allclose(out.cart_coords, result.parent.cart_coords, atol=1e-8)


def test_half_amplitude_same_group_half_displacements(result):
    full = OrderParameterTransformation(result, 1.0).apply_transformation(result.parent)
    half = OrderParameterTransformation(result, 0.5).apply_transformation(result.parent)
    d_full = frac_displacements(full, result.parent)
    d_half = frac_displacements(half, result.parent)
    assert np.abs(d_full).max() > 0.1  # a real distortion (Å)
    np.testing.assert_allclose(d_full, result.predicted_displacements, atol=1e-10)
    np.testing.assert_allclose(d_half, 0.5 * d_full, atol=1e-10)
    assert verify_space_group(half, symprecs=SYMPRECS) == verify_space_group(full, symprecs=SYMPRECS)
    assert verify_space_group(full, symprecs=SYMPRECS)[1e-3] == (62, "Pnma")


def test_negative_and_extrapolated_amplitudes(result):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for the opposite domain
        minus = OrderParameterTransformation(result, -1.0).apply_transformation(result.parent)
    np.testing.assert_allclose(frac_displacements(minus, result.parent), -result.predicted_displacements, atol=1e-10)
    with pytest.warns(UserWarning, match="extrapolat"):
        more = OrderParameterTransformation(result, 1.5).apply_transformation(result.parent)
    np.testing.assert_allclose(
        frac_displacements(more, result.parent), 1.5 * result.predicted_displacements, atol=1e-10
    )
    for bad in (float("nan"), "1", True, None):
        with pytest.raises(InputError, match="amplitude"):
            OrderParameterTransformation(result, bad)


def test_original_parent_and_other_cells_give_the_same_distortion(result):
    expected = OrderParameterTransformation(result, 0.7).apply_transformation(result.parent)
    parent = cubic_perovskite()
    t = OrderParameterTransformation(result, 0.7)
    out = t.apply_transformation(parent)
    assert t.output_parameters["matched_as"] == "original parent"
    assert np.abs(frac_displacements(out, expected)).max() < 1e-8

    # the same parent, sites reversed and origin shifted: registered, same displacement pattern
    shuffled = Structure(
        parent.lattice, parent.species[::-1], (parent.frac_coords[::-1] + np.array([0.2, 0.3, 0.1])) % 1
    )
    t = OrderParameterTransformation(result, 0.7)
    out = t.apply_transformation(shuffled)
    assert t.output_parameters["matched_as"] == "registered"
    assert verify_space_group(out, symprecs=SYMPRECS) == verify_space_group(expected, symprecs=SYMPRECS)
    moved = frac_displacements(out, OrderParameterTransformation(result, 0.0).apply_transformation(shuffled))
    norms = np.linalg.norm(0.7 * result.predicted_displacements, axis=1)
    np.testing.assert_allclose(np.sort(np.linalg.norm(moved, axis=1)), np.sort(norms), atol=1e-8)

    # a rigidly rotated parent: the displacements turn with it
    r = rotation_matrix([0.05, -0.03, 0.08])  # small: no equivalent frame turns less
    rotated = Structure(Lattice(parent.lattice.matrix @ r.T), parent.species, parent.frac_coords)
    t = OrderParameterTransformation(result, 1.0)
    out = t.apply_transformation(rotated)
    assert t.output_parameters["matched_as"] == "registered"
    base = OrderParameterTransformation(result, 0.0).apply_transformation(rotated)
    np.testing.assert_allclose(frac_displacements(out, base), result.predicted_displacements @ r.T, atol=1e-8)


def test_include_strain(result):
    target = result.registration["target"]
    target_abc = Structure.from_dict(target).lattice.abc
    parent_abc = np.array(result.parent.lattice.abc)
    plain = OrderParameterTransformation(result, 0.5).apply_transformation(cubic_perovskite())
    for amplitude in (0.0, 0.5, 1.0):
        out = OrderParameterTransformation(result, amplitude, include_strain=True).apply_transformation(
            cubic_perovskite()
        )
        # the target cell's axes are the strain's principal axes: each length moves linearly
        expected = parent_abc + amplitude * (np.array(target_abc) - parent_abc)
        np.testing.assert_allclose(out.lattice.abc, expected, atol=1e-8)
        np.testing.assert_allclose(out.lattice.angles, 90.0, atol=1e-8)
        if amplitude == 0.5:  # strain moves the lattice, not the fractional coordinates
            d = out.frac_coords - plain.frac_coords
            assert np.abs(d - np.round(d)).max() < 1e-10
            verify_space_group(out, symprecs=SYMPRECS, expect="Pnma")
    assert np.abs(np.array(target_abc) - parent_abc).max() > 0.05  # the strain is real


def test_mismatched_structures_are_clear_errors(result):
    t = OrderParameterTransformation(result)
    with pytest.raises(RegistrationError, match=r"different compositions.*CaTiO3"):
        t.apply_transformation(cubic_perovskite(species=("Ca", "Ti", "O")))
    with pytest.raises(RegistrationError, match="lattice"):
        t.apply_transformation(cubic_perovskite(a=4.0))
    displaced = result.parent.copy()
    displaced.translate_sites([3], [0.05, 0.0, 0.0], frac_coords=False)
    with pytest.raises(RegistrationError, match=r"site 3 \(Sr\) is 0.05 Å"):
        t.apply_transformation(displaced)
    square, _ = square_rectangle()
    with pytest.raises(RegistrationError, match="finite point cloud"):
        t.apply_transformation(square)
    assert not t.output_parameters  # nothing applied


def test_as_dict_round_trip(result, tmp_path):
    path = tmp_path / "result.json"
    result.to_json(path)
    t = OrderParameterTransformation(str(path), 0.25, include_strain=True, tol=1e-4)  # from a JSON path
    assert t.as_dict()["output"] is None
    t.apply_transformation(result.parent)
    d = t.as_dict()
    assert d["@module"] == "matsym.transformations" and d["@class"] == "OrderParameterTransformation"
    assert isinstance(d["result"], dict)  # the result is embedded, not its path
    text = json.dumps(d)
    back = OrderParameterTransformation.from_dict(json.loads(text))
    assert back.as_dict() == d
    assert (back.amplitude, back.include_strain, back.tol) == (0.25, True, 1e-4)
    a = back.apply_transformation(result.parent)
    b = t.apply_transformation(result.parent)
    np.testing.assert_allclose(a.cart_coords, b.cart_coords, atol=1e-12)
    # monty's generic encoder / decoder go through as_dict / from_dict
    decoded = MontyDecoder().decode(json.dumps(t, cls=MontyEncoder))
    assert isinstance(decoded, OrderParameterTransformation)
    assert decoded.amplitude == 0.25
    assert t.inverse is None and t.is_one_to_many is False
    with pytest.raises(ResultError):
        OrderParameterTransformation.from_dict({"@class": "SomethingElse", "result": d["result"]})
    with pytest.raises(InputError, match="result must be"):
        OrderParameterTransformation(42)


def test_transformed_structure_history(result):
    ts = TransformedStructure(cubic_perovskite(), [OrderParameterTransformation(result, 0.5)])
    assert len(ts.final_structure) == 20
    entry = ts.history[-1]
    assert entry["@class"] == "OrderParameterTransformation"
    output = entry["output"]
    assert output["amplitude"] == 0.5
    assert output["space_groups"] == {"0.001": [62, "Pnma"], "0.01": [62, "Pnma"]}
    assert output["order_parameter"]["dominant_irreps"] == ["1e"]
    assert output["order_parameter"]["irrep_fractions"]["1e"] == pytest.approx(1.0)
    assert output["matched_as"] == "original parent"
    round_trip = TransformedStructure.from_dict(json.loads(json.dumps(ts.as_dict())))
    assert round_trip.history[-1]["output"] == output
    # the history entry rebuilds the transformation
    rebuilt = OrderParameterTransformation.from_dict(round_trip.history[-1])
    assert rebuilt.amplitude == 0.5 and rebuilt.output_parameters == output


def test_atoms_in_atoms_out(result):
    t = OrderParameterTransformation(result, 0.5)
    atoms = t.apply_transformation(to_ase(cubic_perovskite()))
    assert isinstance(atoms, Atoms)
    structure = t.apply_transformation(cubic_perovskite())
    assert isinstance(structure, Structure)
    np.testing.assert_allclose(atoms.get_positions(), structure.cart_coords, atol=1e-10)
    np.testing.assert_allclose(atoms.cell.array, structure.lattice.matrix, atol=1e-12)

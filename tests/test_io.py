"""Tests for matsym.io: loading, validation, conversion and atomic writing of structures."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from ase import Atoms
from pymatgen.core import Lattice, Molecule, Structure
from pymatgen.io.cif import CifWriter

from matsym.errors import DisorderError, FileFormatError, StructureError
from matsym.io import (
    atomic_write_text,
    like_input,
    load_structure,
    to_ase,
    to_pymatgen,
    validate_structure,
    write_structure,
)


def perovskite(a: float = 3.905) -> Structure:
    return Structure(
        Lattice.cubic(a),
        ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )


def distorted_triclinic() -> Structure:
    """Low-symmetry cell, species deliberately not grouped (Sr O Ti O O), so site order is tested."""
    lattice = Lattice.from_parameters(3.91, 4.02, 3.87, 88.1, 91.3, 89.4)
    return Structure(
        lattice,
        ["Sr", "O", "Ti", "O", "O"],
        [[0.01, 0.02, 0.99], [0.51, 0.47, 0.03], [0.52, 0.49, 0.51], [0.48, 0.02, 0.53], [0.03, 0.51, 0.46]],
    )


def periodic_distances(a: Structure, b: Structure) -> np.ndarray:
    """Distance in Å between site i of a and site i of b, up to lattice translations of a."""
    d = a.frac_coords - b.frac_coords
    d -= np.round(d)
    return np.linalg.norm(d @ a.lattice.matrix, axis=1)


# ------------------------------------------------------------------------------------------- loading objects


def test_structure_is_copied_and_kept():
    s = perovskite()
    loaded = load_structure(s)
    assert isinstance(loaded, Structure) and loaded is not s
    assert loaded == s
    loaded.translate_sites([0], [0.1, 0, 0])
    assert s[0].frac_coords[0] == 0.0


def test_atoms_with_full_pbc_give_structure():
    atoms = to_ase(distorted_triclinic())
    s = load_structure(atoms)
    assert isinstance(s, Structure)
    assert [site.specie.symbol for site in s] == atoms.get_chemical_symbols()
    np.testing.assert_allclose(s.cart_coords, atoms.positions, rtol=0, atol=1e-12)
    np.testing.assert_allclose(s.lattice.matrix, atoms.cell.array, rtol=0, atol=1e-12)


def test_atoms_without_pbc_give_molecule():
    atoms = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])  # odd electron counts are fine
    m = load_structure(atoms)
    assert isinstance(m, Molecule)
    assert [site.specie.symbol for site in m] == ["O", "H", "H"]
    np.testing.assert_allclose(m.cart_coords, atoms.positions, rtol=0, atol=1e-12)
    assert isinstance(load_structure(Atoms("H", positions=[[0, 0, 0]])), Molecule)


def test_atoms_with_mixed_pbc_give_structure_with_mixed_pbc():
    atoms = to_ase(perovskite())
    atoms.pbc = (True, True, False)
    s = load_structure(atoms)
    assert isinstance(s, Structure)
    assert tuple(s.lattice.pbc) == (True, True, False)


def test_atoms_with_mixed_pbc_and_zero_cell_vector():
    atoms = Atoms("H2", positions=[[0, 0, 0], [0, 0, 1.0]], cell=[3.0, 3.0, 0.0], pbc=(True, True, False))
    with pytest.raises(StructureError, match=r"singular.*volume 0 Å\^3.*vacuum"):
        load_structure(atoms)


@pytest.mark.parametrize("as_list", [False, True])
def test_array_gives_point_cloud_of_dummy_species(as_list):
    coords = np.array([[1.0, 1.0, 0.0], [1.0, -1.0, 0.0], [-1.0, -1.0, 0.0]])
    m = load_structure(coords.tolist() if as_list else coords)
    assert isinstance(m, Molecule)
    assert [site.specie.symbol for site in m] == ["X", "X", "X"]
    np.testing.assert_allclose(m.cart_coords, coords, rtol=0, atol=0)


@pytest.mark.parametrize("shape", [(3,), (4, 2), (2, 3, 1)])
def test_array_of_wrong_shape(shape):
    with pytest.raises(StructureError, match=r"expected an \[n, 3\] array.*got shape"):
        load_structure(np.zeros(shape))


def test_unsupported_type():
    with pytest.raises(StructureError, match=r"expected a pymatgen Structure.*got int"):
        load_structure(42)


def test_dictionary_input():
    s = distorted_triclinic()
    assert load_structure(s.as_dict()) == s
    with pytest.raises(FileFormatError, match=r"expected a pymatgen Structure\.as_dict"):
        load_structure({"foo": 1})


# ------------------------------------------------------------------------------------------------ validation


def test_empty_structure():
    with pytest.raises(StructureError, match="empty"):
        load_structure(Structure(Lattice.cubic(4.0), [], []))
    with pytest.raises(StructureError, match="empty"):
        load_structure(np.zeros((0, 3)))


def test_nan_coordinates():
    s = Structure(Lattice.cubic(4.0), ["Sr", "O"], [[0, 0, 0], [np.nan, 0.5, 0.5]])
    with pytest.raises(StructureError, match=r"non-finite .*coordinates.*site\(s\) 1"):
        load_structure(s)
    with pytest.raises(StructureError, match=r"non-finite .*coordinates.*site\(s\) 0"):
        load_structure(np.array([[np.nan, 0, 0], [1.0, 0, 0]]))
    with pytest.raises(StructureError, match=r"non-finite .*coordinates.*atom\(s\) 1"):
        load_structure(Atoms("H2", positions=[[0, 0, 0], [0, np.inf, 0]]))


def test_inf_lattice():
    atoms = Atoms("Sr", positions=[[0, 0, 0]], cell=np.diag([np.inf, 4.0, 4.0]), pbc=True)
    with pytest.raises(StructureError, match="lattice has non-finite"):
        load_structure(atoms)
    with np.errstate(all="ignore"):  # pymatgen's Lattice itself computes with the inf
        s = Structure(Lattice(np.diag([np.inf, 4.0, 4.0])), ["Sr"], [[0, 0, 0]])
    with pytest.raises(StructureError, match="lattice has non-finite"):
        validate_structure(s)


def test_singular_lattice():
    s = Structure(Lattice([[4.0, 0, 0], [4.0, 0, 0], [0, 0, 4.0]]), ["Sr"], [[0, 0, 0]])
    with pytest.raises(StructureError, match=r"lattice is singular.*volume 0 Å\^3"):
        load_structure(s)
    flat = Structure(Lattice([[4.0, 0, 0], [0, 4.0, 0], [0, 0, 1e-5]]), ["Sr"], [[0, 0, 0]])
    with pytest.raises(StructureError, match=r"lattice is singular.*volume 0.00016 Å\^3"):
        validate_structure(flat, min_distance=0)


def test_atoms_too_close():
    s = Structure(Lattice.cubic(5.0), ["Sr", "O"], [[0, 0, 0], [0.06, 0, 0]])  # 0.3 Å apart
    with pytest.raises(StructureError, match=r"atoms 0 \(Sr\) and 1 \(O\) are 0\.3 Å apart.*min_distance=0\.5"):
        load_structure(s)
    load_structure(s, min_distance=0.2)  # allowed with a lower threshold
    load_structure(s, min_distance=0)  # check off


def test_atoms_too_close_across_the_cell_boundary():
    s = Structure(Lattice.cubic(10.0), ["Sr", "O"], [[0.01, 0.5, 0.5], [0.99, 0.5, 0.5]])  # 0.2 Å via image
    with pytest.raises(StructureError, match=r"atoms 0 \(Sr\) and 1 \(O, periodic image\) are 0\.2 Å apart"):
        load_structure(s)


def test_atom_too_close_to_its_own_image():
    s = Structure(Lattice.orthorhombic(0.4, 4.0, 4.0), ["H"], [[0, 0, 0]])
    with pytest.raises(StructureError, match=r"atom 0 \(H\) and its own periodic image.*0\.4 Å apart"):
        load_structure(s)


def test_molecule_atoms_too_close():
    with pytest.raises(StructureError, match=r"atoms 1 \(X\) and 2 \(X\) are 0\.1 Å apart"):
        load_structure(np.array([[0, 0, 0], [2.0, 0, 0], [2.0, 0.1, 0]]))


@pytest.mark.parametrize(
    ("species", "pattern"),
    [({"Sr": 0.5, "Ba": 0.5}, r"site 0 is disordered.*'Sr': 0\.5, 'Ba': 0\.5"), ({"Sr": 0.8}, r"'Sr': 0\.8")],
)
def test_partial_occupancy(species, pattern):
    s = Structure(Lattice.cubic(3.905), [species, "Ti"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(DisorderError, match=pattern):
        load_structure(s)
    with pytest.raises(DisorderError, match="disordered"):
        to_ase(s)


def test_bad_min_distance():
    with pytest.raises(StructureError, match="min_distance must be a finite number >= 0"):
        validate_structure(perovskite(), min_distance=-1.0)


# ------------------------------------------------------------------------------------------------------ files


def test_missing_file(tmp_path):
    path = tmp_path / "nope.cif"
    with pytest.raises(FileFormatError, match=r"no such file: .*nope\.cif"):
        load_structure(path)
    with pytest.raises(FileFormatError, match="no such file"):
        load_structure(str(path))


def test_unreadable_cif(tmp_path):
    path = tmp_path / "garbage.cif"
    path.write_text("this is not a CIF\nat all\n")
    with pytest.raises(FileFormatError, match=r"cannot read .*garbage\.cif as cif.*supported formats"):
        load_structure(path)


def test_unknown_extension(tmp_path):
    path = tmp_path / "structure.pdbx"
    path.write_text("whatever")
    with pytest.raises(FileFormatError, match=r"structure\.pdbx.*suffix '\.pdbx'.*supported: CIF"):
        load_structure(path)


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(FileFormatError, match="is a directory"):
        load_structure(tmp_path)


def test_poscar_without_element_names(tmp_path):
    path = tmp_path / "POSCAR"
    path.write_text("no names\n1.0\n3 0 0\n0 3 0\n0 0 3\n1 1\ndirect\n0 0 0\n0.5 0.5 0.5\n")
    with pytest.raises(FileFormatError, match="names no elements"):
        load_structure(path)


def test_json_that_is_not_a_structure(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps([1, 2, 3]))
    with pytest.raises(FileFormatError, match=r"x\.json.*expected an object"):
        load_structure(path)


def test_cif_without_symmetry_block_loads_without_warnings(tmp_path):
    # pymatgen warns "No _symmetry_equiv_pos_as_xyz type key found"; tests run with filterwarnings=error.
    text = "\n".join(
        [
            "data_test",
            "_cell_length_a 3.905",
            "_cell_length_b 3.905",
            "_cell_length_c 3.905",
            "_cell_angle_alpha 90",
            "_cell_angle_beta 90",
            "_cell_angle_gamma 90",
            "loop_",
            "_atom_site_label",
            "_atom_site_type_symbol",
            "_atom_site_fract_x",
            "_atom_site_fract_y",
            "_atom_site_fract_z",
            "Sr1 Sr 0 0 0",
            "Ti1 Ti 0.5 0.5 0.5",
            "",
        ]
    )
    path = tmp_path / "nosym.cif"
    path.write_text(text)
    s = load_structure(path)
    assert [site.specie.symbol for site in s] == ["Sr", "Ti"]


def test_cif_with_partial_occupancy_raises_disorder(tmp_path):
    s = Structure(Lattice.cubic(3.905), [{"Sr": 0.5, "Ba": 0.5}, "Ti"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    path = tmp_path / "disordered.cif"
    path.write_text(str(CifWriter(s)))
    with pytest.raises(DisorderError, match="site 0 is disordered"):
        load_structure(path)
    assert not load_structure(path, validate=False).is_ordered


def test_cif_with_several_structures_takes_the_first(tmp_path):
    first = str(CifWriter(perovskite())).replace("data_SrTiO3", "data_first")
    second_structure = perovskite(4.0)
    second_structure.replace_species({"Sr": "Ba"})
    second = str(CifWriter(second_structure)).replace("data_BaTiO3", "data_second")
    path = tmp_path / "two.cif"
    path.write_text(first + "\n" + second)
    s = load_structure(path)
    assert s.composition.reduced_formula == "SrTiO3"
    assert s.lattice.a == pytest.approx(3.905, abs=1e-6)


def test_cif_keeps_the_order_of_the_atom_site_loop(tmp_path):
    cubic = Structure.from_spacegroup(
        "Pm-3m", Lattice.cubic(3.905), ["Sr", "Ti", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0, 0.5, 0.5]]
    )
    with warnings.catch_warnings():  # spglib's own deprecation notice, inside pymatgen's CifWriter
        warnings.simplefilter("ignore", DeprecationWarning)
        text = str(CifWriter(cubic, symprec=0.01))
    head, rows = text.rstrip().rsplit("_atom_site_occupancy\n", 1)
    rows = rows.splitlines()
    assert [r.split()[0] for r in rows] == ["Sr", "Ti", "O"]
    path = tmp_path / "symmetric.cif"
    path.write_text(head + "_atom_site_occupancy\n" + "\n".join([rows[2], rows[0], rows[1]]) + "\n")
    s = load_structure(path)
    # pymatgen alone would group by electronegativity (Sr, Ti, O); the file lists O first.
    assert [site.specie.symbol for site in s] == ["O", "O", "O", "Sr", "Ti"]
    np.testing.assert_allclose(np.sort(np.abs(s.frac_coords[:3]).sum(axis=1)), [1.0, 1.0, 1.0], atol=1e-8)


# ------------------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("name", ["s.cif", "s.vasp", "POSCAR", "s.extxyz", "s.xyz", "s.json"])
def test_round_trip_through_file(tmp_path, name):
    s = distorted_triclinic()
    path = write_structure(s, tmp_path / name)
    loaded = load_structure(path)
    assert isinstance(loaded, Structure)
    assert [site.specie.symbol for site in loaded] == ["Sr", "O", "Ti", "O", "O"]
    np.testing.assert_allclose(loaded.lattice.abc, s.lattice.abc, rtol=0, atol=1e-5)
    np.testing.assert_allclose(loaded.lattice.angles, s.lattice.angles, rtol=0, atol=1e-5)
    assert np.all(periodic_distances(loaded, s) < 1e-5)
    if not name.endswith(".cif"):  # CIF keeps lattice parameters, not the Cartesian frame
        np.testing.assert_allclose(loaded.lattice.matrix, s.lattice.matrix, rtol=0, atol=1e-5)
        np.testing.assert_allclose(loaded.cart_coords, s.cart_coords, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["m.xyz", "m.json"])
def test_molecule_round_trip(tmp_path, name):
    m = Molecule(["O", "H", "H"], [[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    loaded = load_structure(write_structure(m, tmp_path / name))
    assert isinstance(loaded, Molecule)
    assert [site.specie.symbol for site in loaded] == ["O", "H", "H"]
    np.testing.assert_allclose(loaded.cart_coords, m.cart_coords, rtol=0, atol=1e-5)


def test_molecule_cannot_be_written_as_cif(tmp_path):
    with pytest.raises(FileFormatError, match="has no cell"):
        write_structure(np.array([[0, 0, 0], [1.0, 0, 0]]), tmp_path / "m.cif")


def test_mixed_pbc_round_trip_through_extxyz(tmp_path):
    atoms = to_ase(perovskite())
    atoms.pbc = (True, True, False)
    loaded = load_structure(write_structure(atoms, tmp_path / "slab.extxyz"))
    assert tuple(loaded.lattice.pbc) == (True, True, False)


def test_write_with_explicit_format(tmp_path):
    path = write_structure(perovskite(), tmp_path / "structure.txt", fmt="poscar")
    assert load_structure(path, fmt="vasp") == perovskite()
    with pytest.raises(FileFormatError, match="unknown format 'pdb'"):
        write_structure(perovskite(), tmp_path / "x.pdb", fmt="pdb")


def test_write_unknown_suffix(tmp_path):
    with pytest.raises(FileFormatError, match="supported"):
        write_structure(perovskite(), tmp_path / "x.pdb")
    assert list(tmp_path.iterdir()) == []


def test_atoms_in_atoms_out():
    atoms = to_ase(distorted_triclinic())
    s = to_pymatgen(atoms)
    out = like_input(s, atoms)
    assert isinstance(out, Atoms)
    assert out.get_chemical_symbols() == atoms.get_chemical_symbols()
    np.testing.assert_allclose(out.positions, atoms.positions, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.cell.array, atoms.cell.array, rtol=0, atol=1e-12)
    assert list(out.pbc) == [True, True, True]
    back = like_input(s, distorted_triclinic())
    assert isinstance(back, Structure) and back == s
    assert isinstance(like_input(atoms, "parent.cif"), Structure)


def test_to_ase_of_molecule_has_no_pbc():
    atoms = to_ase(np.array([[0, 0, 0], [1.0, 0, 0]]))
    assert atoms.get_chemical_symbols() == ["X", "X"]
    assert not atoms.pbc.any()


# ---------------------------------------------------------------------------------------------- atomic write


def test_no_overwrite_without_force(tmp_path):
    path = tmp_path / "out.cif"
    write_structure(perovskite(), path)
    before = path.read_text()
    bigger = perovskite(4.2)
    with pytest.raises(FileFormatError, match=r"out\.cif: it exists; pass force=True to overwrite"):
        write_structure(bigger, path)
    assert path.read_text() == before
    write_structure(bigger, path, force=True)
    assert load_structure(path).lattice.a == pytest.approx(4.2, abs=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["out.cif"]  # no temporary files left behind


def test_atomic_write_text(tmp_path):
    path = tmp_path / "result.json"
    atomic_write_text(path, '{"a": 1}')
    assert json.loads(path.read_text()) == {"a": 1}
    with pytest.raises(FileFormatError, match="exists; pass force=True"):
        atomic_write_text(path, '{"a": 2}')
    assert json.loads(path.read_text()) == {"a": 1}
    atomic_write_text(path, '{"a": 2}', force=True)
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_atomic_write_into_missing_folder(tmp_path):
    with pytest.raises(FileFormatError, match="does not exist"):
        atomic_write_text(tmp_path / "missing" / "x.json", "{}")

"""Space groups of the built-in structures against textbook results (Glazer 1972; Howard & Stokes 1998)."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from matsym.errors import DisorderError, StructureError, SymmetryMismatchError
from matsym.structures import (
    cubic_perovskite,
    jahn_teller_perovskite,
    polar_perovskite,
    square_rectangle,
    tilted_perovskite,
)
from matsym.symmetry import (
    DEFAULT_SYMPRECS,
    point_group,
    space_group,
    space_group_number,
    verify_space_group,
)

TIGHT = (1e-5, 1e-4, 1e-3, 1e-2)


def test_cubic_is_pm3m_at_every_tolerance():
    found = verify_space_group(cubic_perovskite(), expect="Pm-3m")
    assert list(found) == list(DEFAULT_SYMPRECS)
    assert all(v == (221, "Pm-3m") for v in found.values())


@pytest.mark.parametrize(
    ("glazer", "number"),
    [
        ("a+b-b-", 62),  # Pnma
        ("a0b-b-", 74),  # Imma
        ("a0a0c-", 140),  # I4/mcm
        ("a0a0c+", 127),  # P4/mbm
        ("a-a-a-", 167),  # R-3c
        ("a+a+a+", 204),  # Im-3
        ("a+a+c-", 137),  # P4_2/nmc
        ("a0b+c-", 63),  # Cmcm
    ],
)
def test_glazer_space_groups(glazer, number):
    _, target = tilted_perovskite(glazer, 8.0 if glazer not in ("a0b+c-",) else [0.0, 6.0, 9.0])
    found = verify_space_group(target, symprecs=TIGHT, expect=number)
    assert {v[0] for v in found.values()} == {number}


def test_parent_on_supercell_stays_cubic():
    parent, _ = tilted_perovskite("a+b-b-", 8.0)
    assert space_group(parent, 1e-5) == (221, "Pm-3m")


@pytest.mark.parametrize(("direction", "number"), [((0, 0, 1), 99), ((0, 1, 1), 38), ((1, 1, 1), 160)])
def test_polar_space_groups(direction, number):
    _, target = polar_perovskite(direction, 0.1)
    verify_space_group(target, symprecs=TIGHT, expect=number)


@pytest.mark.parametrize(("pattern", "number"), [("+", 127), ("-", 140)])
def test_jahn_teller_space_groups(pattern, number):
    """Cooperative Q2 order: M point (in-phase along z) P4/mbm, R point I4/mcm (KCuF3 polytypes)."""
    _, target = jahn_teller_perovskite(q2=0.1, pattern=pattern)
    verify_space_group(target, symprecs=TIGHT, expect=number)


def test_lamno3_recipe_is_pnma():
    _, target = jahn_teller_perovskite(q2=0.1, pattern="+", glazer="a-a-c+", angles_deg=8.0)
    verify_space_group(target, symprecs=TIGHT, expect="Pnma")


def test_expect_mismatch_lists_every_tolerance():
    _, target = tilted_perovskite("a+b-b-", 8.0)
    with pytest.raises(SymmetryMismatchError, match=r"expected space group 'Imma' \(No. 74\).*0.001: 62 \(Pnma\)"):
        verify_space_group(target, symprecs=TIGHT, expect="Imma")
    # a tiny distortion is symmetrised away at large symprec: a mismatch at one tolerance is enough to fail
    _, small = polar_perovskite((0, 0, 1), 1e-3)
    with pytest.raises(SymmetryMismatchError, match=r"0.01: 221 \(Pm-3m\)"):
        verify_space_group(small, symprecs=(1e-5, 1e-2), expect=99)


def test_expect_accepts_other_settings_and_numbers():
    _, target = tilted_perovskite("a+b-b-", 8.0)
    for expect in ("Pbnm", "Pnma", "P n m a", 62, "62", np.int64(62)):
        verify_space_group(target, symprecs=(1e-3,), expect=expect)
    assert space_group_number("P2_1/n") == 14
    assert space_group_number("R-3c") == 167
    assert space_group_number("Pm-3m") == 221
    with pytest.raises(SymmetryMismatchError, match="unknown space-group symbol 'Xyz'"):
        space_group_number("Xyz")
    with pytest.raises(SymmetryMismatchError, match="1-230"):
        space_group_number(231)


def test_atoms_and_file_inputs(tmp_path):
    _, target = tilted_perovskite("a0a0c-", 8.0)
    atoms = AseAtomsAdaptor.get_atoms(target)
    assert verify_space_group(atoms, symprecs=(1e-3,)) == {1e-3: (140, "I4/mcm")}
    path = tmp_path / "t.cif"
    target.to(filename=str(path))
    assert verify_space_group(str(path), symprecs=(1e-3,), expect=140)[1e-3][0] == 140


def test_bad_inputs():
    with pytest.raises(StructureError, match="too close"):
        space_group(Structure(Lattice.cubic(3.0), ["H", "H"], [[0, 0, 0], [0, 0, 1e-6]]), 1e-3)
    disordered = Structure(Lattice.cubic(3.0), [{"Fe": 0.5, "Co": 0.5}], [[0, 0, 0]])
    with pytest.raises(DisorderError, match="ordered"):
        verify_space_group(disordered)
    square, _ = square_rectangle()
    with pytest.raises(StructureError, match="point_group"):
        space_group(square)


def test_point_groups_of_square_and_rectangle():
    square, rectangle = square_rectangle(0.2)
    assert point_group(square) == "D4h"
    assert point_group(rectangle) == "D2h"

"""Tests of the built-in example structures (geometry from first principles, not builder output)."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Molecule, Structure

from matsym.errors import StructureError
from matsym.structures import (
    cubic_perovskite,
    glazer_phases,
    jahn_teller_perovskite,
    perovskite_cells,
    polar_perovskite,
    rectangle,
    rotation_matrix,
    square,
    square_rectangle,
    tilted_perovskite,
)

A = 3.905


def _min_image_cart(structure: Structure, i: int, j: int) -> np.ndarray:
    """Minimal-image Cartesian vector from site i to site j."""
    d = structure.frac_coords[j] - structure.frac_coords[i]
    d -= np.round(d)
    return d @ structure.lattice.matrix


def _neighbours(structure: Structure, i: int, species: str, r: float) -> list[np.ndarray]:
    """Cartesian vectors from site i to every periodic image of a `species` site within r."""
    centre = structure[i].coords
    return [n.coords - centre for n in structure.get_neighbors(structure[i], r) if n.specie.symbol == species]


def test_cubic_perovskite_positions():
    s = cubic_perovskite()
    assert [site.specie.symbol for site in s] == ["Sr", "Ti", "O", "O", "O"]
    np.testing.assert_allclose(s.lattice.matrix, A * np.eye(3), atol=1e-12)
    expected = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    np.testing.assert_allclose(s.frac_coords, expected, atol=1e-12)
    s2 = cubic_perovskite(a=4.0, species=("La", "Mn", "O"))
    assert s2.composition.reduced_formula == "LaMnO3"
    assert s2.lattice.a == pytest.approx(4.0)


def test_rotation_matrix_is_rodrigues():
    theta = np.deg2rad(23.0)
    r = rotation_matrix([0, 0, theta])
    np.testing.assert_allclose(r @ [1, 0, 0], [np.cos(theta), np.sin(theta), 0], atol=1e-15)
    rng = np.random.default_rng(1)
    w = rng.normal(size=3)
    r = rotation_matrix(w)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-14)
    assert np.linalg.det(r) == pytest.approx(1.0)
    np.testing.assert_allclose(r @ w, w, atol=1e-14)  # the axis is fixed
    np.testing.assert_allclose(rotation_matrix(np.zeros(3)), np.eye(3))


def test_perovskite_cells_counts_lattice_points():
    m = [[1, 1, 0], [-1, 1, 0], [0, 0, 2]]
    cells = perovskite_cells(m)
    assert len(cells) == 4
    # distinct modulo the supercell lattice
    frac = cells @ np.linalg.inv(np.array(m, dtype=float))
    assert np.all((frac >= -1e-12) & (frac < 1 - 1e-12))
    assert len({tuple(c) for c in cells.tolist()}) == 4


@pytest.mark.parametrize(
    ("glazer", "n_atoms"),
    [("a+b-b-", 20), ("a0a0c+", 20), ("a0a0c-", 20), ("a-a-a-", 20), ("a+a+a+", 40), ("a0a0a0", 5)],
)
def test_tilted_default_cell_size_and_parent(glazer, n_atoms):
    parent, target = tilted_perovskite(glazer, 0.0 if glazer == "a0a0a0" else 7.0)
    assert len(parent) == len(target) == n_atoms
    assert [s.specie for s in parent] == [s.specie for s in target]
    np.testing.assert_allclose(parent.lattice.matrix, target.lattice.matrix, atol=1e-12)
    # the cell is pseudo-cubic: volume = (n_atoms / 5) a^3
    assert target.volume == pytest.approx(n_atoms / 5 * A**3)
    # A and B sites do not move; the parent is the ideal perovskite (every Ti has 6 O at a/2)
    n = n_atoms // 5
    np.testing.assert_allclose(target.frac_coords[: 2 * n], parent.frac_coords[: 2 * n], atol=1e-12)
    for i in range(n, 2 * n):
        bonds = _neighbours(parent, i, "O", 0.6 * A)
        assert len(bonds) == 6
        np.testing.assert_allclose(np.linalg.norm(bonds, axis=1), A / 2, atol=1e-12)


def test_in_phase_tilt_about_z_geometry():
    """a0a0c+: O in the xy plane move by a/2 sin(theta) perpendicular to the bond, apical O stay."""
    theta = np.deg2rad(9.0)
    parent, target = tilted_perovskite("a0a0c+", 9.0)
    d = target.frac_coords - parent.frac_coords
    d -= np.round(d)
    disp = d @ target.lattice.matrix  # [n, 3]
    o_idx = [i for i, s in enumerate(target) if s.specie.symbol == "O"]
    moved = [i for i in o_idx if np.linalg.norm(disp[i]) > 1e-9]
    assert len(moved) == 8  # 2 equatorial O per octahedron, 4 octahedra
    for i in o_idx:
        if i in moved:
            np.testing.assert_allclose(np.linalg.norm(disp[i]), A / 2 * np.sin(theta), atol=1e-12)
            assert abs(disp[i][2]) < 1e-12
            # perpendicular to the Ti-O bond of the parent
            bond = _neighbours(parent, i, "Ti", 0.6 * A)[0]
            assert abs(np.dot(bond, disp[i])) < 1e-12
    # Ti-O-Ti angle in the plane: 180 - 2 atan(sin theta); in-phase along z: cells stacked along z rotate
    # alike
    for i in moved:
        b1, b2 = _neighbours(target, i, "Ti", 0.6 * A)
        angle = np.degrees(np.arccos(np.dot(b1, b2) / np.linalg.norm(b1) / np.linalg.norm(b2)))
        assert angle == pytest.approx(180 - 2 * np.degrees(np.arctan(np.sin(theta))), abs=1e-9)


@pytest.mark.parametrize(("glazer", "stacked"), [("a0a0c-", -1.0), ("a0a0c+", 1.0)])
def test_tilt_sense_pattern(glazer, stacked):
    """Tilts about z alternate between in-plane neighbours; along z they repeat (+) or alternate (-)."""
    parent, target = tilted_perovskite(glazer, 6.0, supercell=2 * np.eye(3, dtype=int))
    lat = parent.lattice.matrix
    ti = [i for i, s in enumerate(target) if s.specie.symbol == "Ti"]

    def sense(i: int) -> float:
        # z-component of sum r x d over the equatorial O of the octahedron of Ti i
        total = 0.0
        for j, site in enumerate(target):
            r = _min_image_cart(parent, i, j)
            if site.specie.symbol == "O" and np.linalg.norm(r) < 0.6 * A and abs(r[2]) < 1e-9:
                dd = target.frac_coords[j] - parent.frac_coords[j]
                total += np.cross(r, (dd - np.round(dd)) @ lat)[2]
        return total

    senses = {i: sense(i) for i in ti}
    assert all(abs(v) > 1e-3 for v in senses.values())
    for i in ti:
        for j in ti:
            r = _min_image_cart(parent, i, j)
            if np.isclose(np.linalg.norm(r), A):
                expected = stacked if abs(r[2]) > 1e-9 else -1.0
                assert np.sign(senses[i] * senses[j]) == expected


def test_explicit_supercell_and_commensurability():
    _, target = tilted_perovskite("a0a0c-", 5.0, supercell=2 * np.eye(3, dtype=int))
    assert len(target) == 40
    with pytest.raises(StructureError, match=r"not commensurate.*\[0, 0, 1\].*about z"):
        tilted_perovskite("a0a0c-", 5.0, supercell=[[1, 1, 0], [-1, 1, 0], [0, 0, 1]])
    with pytest.raises(StructureError, match="not commensurate"):
        tilted_perovskite("a+b-b-", 5.0, supercell=np.eye(3, dtype=int))
    with pytest.raises(StructureError, match="positive determinant"):
        tilted_perovskite("a0a0c+", 5.0, supercell=[[1, 1, 0], [1, -1, 0], [0, 0, 1]])
    with pytest.raises(StructureError, match="integer 3x3"):
        tilted_perovskite("a0a0c+", 5.0, supercell=[[1.5, 0, 0], [0, 1, 0], [0, 0, 1]])


def test_glazer_validation():
    assert glazer_phases("a+b-b-") == ("+", "-", "-")
    with pytest.raises(StructureError, match="three letter"):
        tilted_perovskite("a+b-", 5.0)
    with pytest.raises(StructureError, match="same letter 'b'"):
        tilted_perovskite("a+b-b-", [5.0, 6.0, 7.0])
    with pytest.raises(StructureError, match="no tilt about x"):
        tilted_perovskite("a0b-b-", [5.0, 6.0, 6.0])
    with pytest.raises(StructureError, match="one number or three"):
        tilted_perovskite("a0b-b-", [5.0, 6.0])
    # different letters may carry different angles
    _, t = tilted_perovskite("a+b-c-", [5.0, 6.0, 7.0])
    assert len(t) == 20


def test_polar_perovskite_displacement():
    parent, target = polar_perovskite((1, 1, 1), amplitude=0.2, a_site_amplitude=0.05)
    disp = target.cart_coords - parent.cart_coords
    u = np.ones(3) / np.sqrt(3)
    np.testing.assert_allclose(disp[1], 0.2 * u, atol=1e-12)
    np.testing.assert_allclose(disp[0], 0.05 * u, atol=1e-12)
    np.testing.assert_allclose(disp[2:], 0.0, atol=1e-12)
    with pytest.raises(StructureError, match="non-zero"):
        polar_perovskite((0, 0, 0))


@pytest.mark.parametrize("pattern", ["+", "-"])
def test_jahn_teller_bond_lengths(pattern):
    """Q2 only: each B has two long (x or y), two short, two unchanged (z) bonds; long/short alternate."""
    q2 = 0.12
    _, target = jahn_teller_perovskite(q2=q2, pattern=pattern)
    assert len(target) == (10 if pattern == "+" else 20)
    delta = q2 / (2 * np.sqrt(2))
    long_axes = []
    for i, site in enumerate(target):
        if site.specie.symbol != "Ti":
            continue
        bonds = np.array(_neighbours(target, i, "O", 0.6 * A))
        lengths = np.linalg.norm(bonds, axis=1)
        assert len(bonds) == 6
        np.testing.assert_allclose(
            np.sort(lengths), [A / 2 - delta] * 2 + [A / 2] * 2 + [A / 2 + delta] * 2, atol=1e-12
        )
        long_axes.append(int(np.argmax(np.abs(bonds[np.argmax(lengths)]))))
    assert sorted(set(long_axes)) == [0, 1]


def test_jahn_teller_validation():
    with pytest.raises(StructureError, match="pattern must be"):
        jahn_teller_perovskite(pattern="x")
    with pytest.raises(StructureError, match="not commensurate"):
        jahn_teller_perovskite(pattern="-", supercell=[[1, 1, 0], [-1, 1, 0], [0, 0, 1]])


def test_square_and_rectangle():
    sq = square()
    assert isinstance(sq, Molecule) and len(sq) == 4
    np.testing.assert_allclose(np.abs(sq.cart_coords), [[1, 1, 0]] * 4, atol=1e-15)
    s, r = square_rectangle(elongation=0.25)
    # same vertex order: each rectangle vertex is the square vertex stretched along x
    np.testing.assert_allclose(r.cart_coords, s.cart_coords * [1.25, 1, 1], atol=1e-15)
    rect = rectangle(3.0, 1.0)
    np.testing.assert_allclose(np.ptp(rect.cart_coords, axis=0), [3.0, 1.0, 0.0])
    with pytest.raises(StructureError, match="positive"):
        rectangle(-1.0, 1.0)

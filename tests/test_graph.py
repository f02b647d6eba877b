"""Tests for matsym.graph: crystal graphs against ASE's neighbour list, invariances and errors."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from ase import Atoms
from ase.neighborlist import neighbor_list
from pymatgen.core import Lattice, Molecule, Structure
from scipy.spatial.transform import Rotation

from matsym.errors import CutoffError, DisorderError
from matsym.graph import CrystalGraph, build_graph, nearest_neighbor_distances
from matsym.io import to_ase

A_STO = 3.905


def perovskite(a: float = A_STO) -> Structure:
    """Cubic SrTiO3: Sr at the origin, Ti at the body centre, O at the face centres."""
    return Structure(
        Lattice.cubic(a),
        ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )


def triclinic() -> Structure:
    lattice = Lattice.from_parameters(4.13, 5.27, 6.08, 77.0, 95.5, 104.3)
    return Structure(
        lattice,
        ["Na", "Cl", "K", "Br"],
        [[0.05, 0.10, 0.20], [0.55, 0.45, 0.62], [0.31, 0.83, 0.11], [0.77, 0.21, 0.93]],
    )


def layer() -> Structure:
    """A MoS2-like hexagonal layer with 15 Å of vacuum along c."""
    c = 3.2 + 15.0
    z0 = 0.5
    dz = 1.6 / c
    return Structure(
        Lattice.hexagonal(3.16, c),
        ["Mo", "S", "S"],
        [[0, 0, z0], [1 / 3, 2 / 3, z0 + dz], [1 / 3, 2 / 3, z0 - dz]],
    )


def supercell_222() -> Structure:
    s = perovskite()
    s.make_supercell([2, 2, 2])
    return s


def triples(g: CrystalGraph) -> set[tuple[int, int, tuple[int, int, int]]]:
    return {
        (int(i), int(j), tuple(int(x) for x in S)) for i, j, S in zip(g.edge_src, g.edge_dst, g.shifts, strict=True)
    }


def ase_triples(atoms: Atoms, cutoff: float) -> set[tuple[int, int, tuple[int, int, int]]]:
    i, j, S = neighbor_list("ijS", atoms, cutoff)
    return {(int(a), int(b), tuple(int(x) for x in s)) for a, b, s in zip(i, j, S, strict=True)}


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    return Rotation.random(random_state=rng).as_matrix()


CASES = {
    "perovskite_cutoff_gt_cell": (perovskite, 6.0),
    "triclinic": (triclinic, 5.5),
    "layer_vacuum_c": (layer, 4.0),
    "perovskite_2x2x2": (supercell_222, 4.5),
}


@pytest.mark.parametrize("backend", ["vesin", "pymatgen"])
@pytest.mark.parametrize("name", list(CASES))
def test_edges_match_ase_neighbor_list(name, backend, monkeypatch):
    """Either neighbour library, whatever the cell size would choose, gives ASE's edge set."""
    from matsym import graph as graph_module

    monkeypatch.setattr(graph_module, "_backend", lambda *args: backend)
    make, cutoff = CASES[name]
    s = make()
    g = build_graph(s, cutoff)
    ours = triples(g)
    assert len(ours) == g.num_edges  # no duplicate edges
    assert ours == ase_triples(to_ase(s), cutoff)
    assert g.num_edges > 0


def test_perovskite_graph_when_cutoff_exceeds_cell():
    g = build_graph(perovskite(), 6.0)
    assert g.cutoff == 6.0
    assert g.cell is not None and g.pbc == (True, True, True)
    # Every atom sees its own images at +-a along each axis (a = 3.905 Å < 6 Å) ...
    own = {(i, i, s) for i, _, s in triples(g) if i == _}
    for i in range(5):
        for axis in range(3):
            for sign in (1, -1):
                shift = tuple(sign * int(k == axis) for k in range(3))
                assert (i, i, shift) in own
    # ... but never at zero shift.
    assert not any(src == dst and not any(shift) for src, dst, shift in triples(g))
    assert np.all(g.edge_length > 0)
    assert np.all(g.edge_length <= 6.0)


def test_edges_match_ase_with_unwrapped_coordinates():
    s = perovskite()
    moved = Structure(
        s.lattice, s.species, s.frac_coords + np.array([1.3, -2.2, 0.7]), to_unit_cell=False
    )  # same crystal, atoms outside the home cell
    g = build_graph(moved, 4.5)
    assert triples(g) == ase_triples(to_ase(moved), 4.5)
    vec = g.positions[g.edge_dst] - g.positions[g.edge_src] + g.shifts @ g.cell
    np.testing.assert_allclose(g.edge_vec, vec, rtol=0, atol=1e-12)


def test_mixed_pbc_slab_matches_ase():
    atoms = to_ase(layer())
    atoms.pbc = (True, True, False)
    g = build_graph(atoms, 4.0)
    assert g.pbc == (True, True, False)
    assert not g.shifts[:, 2].any()
    assert triples(g) == ase_triples(atoms, 4.0)


@pytest.mark.parametrize("name", ["perovskite_cutoff_gt_cell", "triclinic", "layer_vacuum_c"])
def test_invariant_under_rotation_and_translation(name, rng):
    make, cutoff = CASES[name]
    s = make()
    g = build_graph(s, cutoff)
    for _ in range(3):
        R = random_rotation(rng)
        t = rng.normal(scale=5.0, size=3)
        rotated = Structure(
            Lattice(s.lattice.matrix @ R.T),
            s.species,
            s.cart_coords @ R.T + t,
            coords_are_cartesian=True,
            to_unit_cell=False,
        )
        gr = build_graph(rotated, cutoff)
        assert triples(gr) == triples(g)
        # Same sorted order, so edges correspond one to one.
        np.testing.assert_array_equal(gr.edge_src, g.edge_src)
        np.testing.assert_array_equal(gr.shifts, g.shifts)
        np.testing.assert_allclose(gr.edge_length, g.edge_length, rtol=0, atol=1e-10)
        np.testing.assert_allclose(gr.edge_vec, g.edge_vec @ R.T, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", list(CASES))
def test_every_edge_has_its_reverse(name):
    make, cutoff = CASES[name]
    g = build_graph(make(), cutoff)
    index = {
        t: e
        for e, t in enumerate(zip(g.edge_src.tolist(), g.edge_dst.tolist(), map(tuple, g.shifts.tolist()), strict=True))
    }
    for (src, dst, shift), e in index.items():
        back = index.get((dst, src, tuple(-x for x in shift)))
        assert back is not None, f"edge {(src, dst, shift)} has no reverse"
        np.testing.assert_allclose(g.edge_vec[back], -g.edge_vec[e], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", list(CASES))
def test_edge_vectors_from_positions_and_shifts(name):
    make, cutoff = CASES[name]
    g = build_graph(make(), cutoff)
    assert g.positions.dtype == np.float64 and g.edge_vec.dtype == np.float64
    assert g.edge_src.dtype == np.int64 and g.edge_dst.dtype == np.int64 and g.shifts.dtype == np.int64
    expected = g.positions[g.edge_dst] - g.positions[g.edge_src] + g.shifts.astype(np.float64) @ g.cell
    np.testing.assert_allclose(g.edge_vec, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(g.edge_length, np.linalg.norm(expected, axis=1), rtol=0, atol=1e-12)


def test_edges_sorted_and_reproducible():
    g1 = build_graph(triclinic(), 5.5)
    g2 = build_graph(triclinic(), 5.5)
    keys = np.column_stack([g1.edge_dst, g1.edge_src, g1.shifts])
    as_tuples = [tuple(k) for k in keys.tolist()]
    assert as_tuples == sorted(as_tuples)
    for field in ("edge_src", "edge_dst", "shifts", "edge_vec"):
        np.testing.assert_array_equal(getattr(g1, field), getattr(g2, field))


def test_neighbor_counts_of_perovskite():
    # Within 3 Å: Sr has 12 O at a/sqrt2 = 2.76 Å; Ti has 6 O at a/2 = 1.95 Å;
    # O has 2 Ti (1.95 Å), 4 Sr (2.76 Å) and 8 O (2.76 Å). Sr-Ti is 3.38 Å, Sr-Sr 3.905 Å.
    g = build_graph(perovskite(), 3.0)
    np.testing.assert_array_equal(g.neighbor_counts(), [12, 6, 14, 14, 14])
    assert g.species == ["Sr", "Ti", "O", "O", "O"]
    assert g.num_nodes == 5 and g.num_edges == 12 + 6 + 3 * 14


@pytest.mark.parametrize("cells", [1, 3])  # 3.9 Å (pymatgen's search) and 11.7 Å wide (vesin's half list)
def test_self_interaction_adds_zero_length_self_edges(cells):
    s = perovskite() * (cells, cells, cells)
    plain = build_graph(s, 3.0)
    g = build_graph(s, 3.0, self_interaction=True)
    zero = g.edge_length == 0
    assert zero.sum() == len(s)
    np.testing.assert_array_equal(np.sort(g.edge_src[zero]), np.arange(len(s)))
    np.testing.assert_array_equal(g.edge_src[zero], g.edge_dst[zero])
    assert not g.shifts[zero].any()
    assert triples(g) - triples(plain) == {(i, i, (0, 0, 0)) for i in range(len(s))}
    assert g.num_edges == plain.num_edges + len(s)
    np.testing.assert_array_equal(g.edge_dst, np.sort(g.edge_dst))


def test_graph_is_immutable():
    g = build_graph(perovskite(), 3.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.cutoff = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        g.edge_vec[0, 0] = 1.0


# --------------------------------------------------------------------------------------- finite point clouds


def test_square_point_cloud_has_only_side_edges():
    corners = np.array([[1, 1, 0], [1, -1, 0], [-1, -1, 0], [-1, 1, 0]], dtype=float)  # walk around the square
    g = build_graph(corners, 2.5)
    assert g.cell is None and g.pbc == (False, False, False)
    expected = set()
    for k in range(4):
        expected |= {(k, (k + 1) % 4, (0, 0, 0)), ((k + 1) % 4, k, (0, 0, 0))}
    assert triples(g) == expected
    assert g.num_edges == 8
    np.testing.assert_allclose(g.edge_length, 2.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(g.edge_vec, corners[g.edge_dst] - corners[g.edge_src], rtol=0, atol=1e-12)


def test_point_cloud_matches_brute_force(rng):
    grid = np.stack(np.meshgrid(*[np.arange(6.0)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    cloud = grid + rng.uniform(-0.2, 0.2, size=grid.shape)  # neighbours at least 0.6 Å apart
    cutoff = 1.7
    g = build_graph(cloud, cutoff)
    d = np.linalg.norm(cloud[None, :, :] - cloud[:, None, :], axis=-1)  # [n, n], d[i, j] = |r_j - r_i|
    src, dst = np.nonzero((d <= cutoff) & ~np.eye(len(cloud), dtype=bool))
    assert triples(g) == {(int(i), int(j), (0, 0, 0)) for i, j in zip(src, dst, strict=True)}


def test_point_cloud_from_atoms_and_molecule_agree():
    coords = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])
    g_mol = build_graph(Molecule(["O", "H", "H"], coords), 1.2)
    g_atoms = build_graph(Atoms("OH2", positions=coords), 1.2)
    assert g_mol.species == g_atoms.species == ["O", "H", "H"]
    assert (
        triples(g_mol)
        == triples(g_atoms)
        == {(0, 1, (0, 0, 0)), (1, 0, (0, 0, 0)), (0, 2, (0, 0, 0)), (2, 0, (0, 0, 0))}
    )


def test_point_cloud_invariant_under_rotation(rng):
    cloud = np.array([[0, 0, 0], [1.1, 0, 0], [0, 1.3, 0.2], [0.4, 0.5, 1.2], [2.0, 1.0, 1.0]])
    g = build_graph(cloud, 1.8)
    R = random_rotation(rng)
    gr = build_graph(cloud @ R.T + rng.normal(size=3), 1.8)
    assert triples(gr) == triples(g)
    np.testing.assert_allclose(gr.edge_vec, g.edge_vec @ R.T, rtol=0, atol=1e-10)


# ---------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("cutoff", [0, 0.0, -1.0, float("nan"), float("inf")])
def test_bad_cutoff(cutoff):
    with pytest.raises(CutoffError, match="cutoff must be a finite number > 0"):
        build_graph(perovskite(), cutoff)


def test_cutoff_of_wrong_type():
    with pytest.raises(CutoffError, match=r"cutoff must be a finite number > 0.*str"):
        build_graph(perovskite(), "5")  # type: ignore[arg-type]


def test_cutoff_too_small_names_atom_and_smallest_cutoff():
    # Ti-O is a/2 = 1.95 Å, so at 2 Å Ti and O are connected; Sr's nearest neighbours (O) are at a/sqrt(2).
    with pytest.raises(CutoffError, match=r"without a neighbour: 0 \(Sr\);") as info:
        build_graph(perovskite(), 2.0)
    need = float(re.search(r"smallest cutoff .* is ([0-9.]+) Å", str(info.value)).group(1))
    assert A_STO / np.sqrt(2) <= need < A_STO / np.sqrt(2) + 1e-4
    assert build_graph(perovskite(), need).neighbor_counts()[0] == 12


def test_cutoff_too_small_in_point_cloud():
    cloud = np.array([[0.0, 0, 0], [1.0, 0, 0], [4.0, 0, 0]])
    with pytest.raises(CutoffError, match=r"without a neighbour: 2 \(X\);.* is 3\.0000 Å"):
        build_graph(cloud, 1.5)


def test_lone_point_has_no_neighbour_at_any_distance():
    with pytest.raises(CutoffError, match="no neighbour at any distance"):
        build_graph(np.zeros((1, 3)), 2.0)


def test_nearest_neighbor_distances():
    a = A_STO
    np.testing.assert_allclose(
        nearest_neighbor_distances(perovskite()),
        [a / np.sqrt(2), a / 2, a / 2, a / 2, a / 2],
        rtol=0,
        atol=1e-12,
    )
    # A single atom in a small cell: its nearest neighbour is its own image along the shortest lattice vector.
    single = Structure(Lattice.orthorhombic(2.5, 3.0, 40.0), ["H"], [[0, 0, 0]])
    np.testing.assert_allclose(nearest_neighbor_distances(single), [2.5], rtol=0, atol=1e-12)
    cloud = np.array([[0.0, 0, 0], [1.0, 0, 0], [4.0, 0, 0]])
    np.testing.assert_allclose(nearest_neighbor_distances(cloud), [1.0, 1.0, 3.0], rtol=0, atol=1e-12)
    assert np.isinf(nearest_neighbor_distances(np.zeros((1, 3)))).all()


@pytest.mark.parametrize("cutoff", [4.5, 9.0])
def test_both_neighbour_libraries_give_the_same_graph(monkeypatch, cutoff):
    """vesin and pymatgen's compiled search (chosen by cell size, and pymatgen where vesin is missing) give the
    same edges in the same order, in a cell narrower than two cutoffs (4.5 Å) and in one wider (9 Å, 2x2x2)."""
    import sys

    from matsym import graph as graph_module
    from matsym.structures import tilted_perovskite

    _, target = tilted_perovskite("a+b-b-", 8.0)
    target = target * (2, 2, 2) if cutoff < 5 else target * (4, 4, 3)
    graphs = {}
    for backend in ("vesin", "pymatgen"):
        monkeypatch.setattr(graph_module, "_backend", lambda *args, backend=backend: backend)
        graphs[backend] = build_graph(target, cutoff)
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "vesin", None)
    assert graph_module._backend(np.asarray(target.lattice.matrix), (True, True, True), cutoff) == "pymatgen"
    graphs["no vesin"] = build_graph(target, cutoff)
    ref = graphs["vesin"]
    assert ref.num_edges > 0
    for g in graphs.values():
        assert g.num_edges == ref.num_edges
        np.testing.assert_array_equal(g.edge_src, ref.edge_src)
        np.testing.assert_array_equal(g.edge_dst, ref.edge_dst)
        np.testing.assert_array_equal(g.shifts, ref.shifts)
        np.testing.assert_allclose(g.edge_vec, ref.edge_vec, rtol=0, atol=1e-12)


def test_backend_follows_the_cell_width():
    """vesin where the cell is two cutoffs wide along every periodic direction, pymatgen otherwise; a direction
    that is not periodic does not count."""
    from matsym.graph import _backend

    cell = np.diag([10.0, 10.0, 4.0])
    assert _backend(cell, (True, True, True), 4.0) == "pymatgen"
    assert _backend(cell, (True, True, False), 4.0) == "vesin"
    assert _backend(cell, (True, True, True), 1.9) == "vesin"
    sheared = np.array([[10.0, 0, 0], [9.0, 3.0, 0], [0, 0, 10.0]])  # |b| = 9.5 Å but only 3 Å between faces
    assert _backend(sheared, (True, True, True), 2.0) == "pymatgen"


@pytest.mark.parametrize("cells", [1, 3])  # pymatgen's full list and vesin's half list
def test_lexsort_fallback_gives_the_same_graph(monkeypatch, cells):
    """Where the packed sort key would not fit in 63 bits, a lexsort takes over: same edges, same order."""
    from matsym import graph as graph_module

    s = perovskite() * (cells, cells, cells)
    packed = build_graph(s, 5.0)
    monkeypatch.setattr(graph_module, "_KEY_BITS", 0)
    fallback = build_graph(s, 5.0)
    assert fallback.num_edges == packed.num_edges > 0
    for name in ("edge_src", "edge_dst", "shifts"):
        np.testing.assert_array_equal(getattr(fallback, name), getattr(packed, name))
        assert getattr(fallback, name).dtype == np.int64
    np.testing.assert_allclose(fallback.edge_vec, packed.edge_vec, rtol=0, atol=1e-12)


def test_site_symbols_read_ordered_species_and_refuse_disorder():
    """Species with oxidation states give their element symbols; a solid-solution site (Ba0.5Sr0.5TiO3, A site
    half Ba, half Sr) is refused with a DisorderError, as is a site of occupancy below 1."""
    positions = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    lattice = Lattice.cubic(3.95)
    ionic = Structure(lattice, ["Sr2+", "Ti4+", "O2-", "O2-", "O2-"], positions)
    assert build_graph(ionic, 4.0).species == ["Sr", "Ti", "O", "O", "O"]
    for a_site in ({"Ba": 0.5, "Sr": 0.5}, {"Sr": 0.9}):
        disordered = Structure(lattice, [a_site, "Ti", "O", "O", "O"], positions)
        with pytest.raises(DisorderError):
            build_graph(disordered, 4.0)


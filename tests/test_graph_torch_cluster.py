"""torch-cluster neighbour backend (the ``cluster`` extra): ASE's edge set, and a clear error where it is missing.

The comparisons skip where torch-cluster is not installed; the error tests run everywhere.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from pymatgen.core import Molecule, Structure
from test_graph import CASES, ase_triples, perovskite, to_ase, triples

from matsym.errors import InputError
from matsym.graph import build_graph


@pytest.mark.parametrize("name", list(CASES))
def test_torch_cluster_edges_match_ase(name):
    pytest.importorskip("torch_cluster")
    make, cutoff = CASES[name]
    s = make()
    g = build_graph(s, cutoff, backend="torch-cluster")
    ours = triples(g)
    assert len(ours) == g.num_edges > 0  # no duplicate edges
    assert ours == ase_triples(to_ase(s), cutoff)
    # the same graph, in the same canonical order, as the default backend's
    auto = build_graph(s, cutoff)
    np.testing.assert_array_equal(g.edge_src, auto.edge_src)
    np.testing.assert_array_equal(g.shifts, auto.shifts)
    np.testing.assert_allclose(g.edge_vec, auto.edge_vec, rtol=0, atol=1e-12)


def test_torch_cluster_with_unwrapped_coordinates_and_finite_cloud():
    pytest.importorskip("torch_cluster")
    s = perovskite()
    moved = Structure(s.lattice, s.species, s.frac_coords + np.array([1.3, -2.2, 0.7]), to_unit_cell=False)
    assert triples(build_graph(moved, 4.5, backend="torch-cluster")) == ase_triples(to_ase(moved), 4.5)
    cloud = Molecule(s.species, s.cart_coords)  # five atoms, no periodicity: the k-d tree's pairs
    assert triples(build_graph(cloud, 3.0, backend="torch-cluster")) == triples(build_graph(cloud, 3.0))


def test_missing_torch_cluster_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_cluster", None)  # import fails as if it were not installed
    with pytest.raises(InputError, match=r"matsym\[cluster\]"):
        build_graph(perovskite(), 4.5, backend="torch-cluster")


def test_unknown_backend_is_refused():
    with pytest.raises(InputError, match="one of auto, vesin, pymatgen, torch-cluster; got 'ase'"):
        build_graph(perovskite(), 4.5, backend="ase")


def test_search_with_missing_torch_cluster_fails_before_the_network(monkeypatch):
    from matsym.search import OrderParameterSearch
    from matsym.structures import tilted_perovskite

    monkeypatch.setitem(sys.modules, "torch_cluster", None)
    parent, target = tilted_perovskite("a0a0c-", 5.0)  # I4/mcm, 10-atom cell
    with pytest.raises(InputError, match=r"matsym\[cluster\]"):
        OrderParameterSearch(parent, target, sites="Ti", irreps="1e", graph_backend="torch-cluster")

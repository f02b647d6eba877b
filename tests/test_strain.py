"""Strain as part of the target and of the order parameter (matsym.strain).

Strain-only targets are built from their definitions (``examples/strain_cases.py``): fcc Cu (a = 3.61 Å) taken to
face-centred tetragonal at c/a = 1.076 with the atoms at their ideal positions (I4/mmm), simple cubic to a
rhombohedral shear with alpha = 88° (R-3m), fcc to face-centred orthorhombic with a, b, c = 3.55, 3.62, 3.70 Å
rotated by 30° about z (Fmmm), and cubic SrTiO3 (a = 3.905 Å) to a tetragonal cell with ideal positions (P4/mmm).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from e3nn import o3
from pymatgen.core import Lattice, Structure

from matsym import OrderParameterSearch, OrderParameterTransformation
from matsym.model import EdgeGeometry, NetworkConfig
from matsym.result import OrderParameterResult
from matsym.strain import StrainHead, strain_from_irreps, strain_to_irreps
from matsym.symmetry import verify_space_group


def _example():
    """examples/strain_cases.py, whose builders (with their sources) these tests share."""
    name = "matsym_example_strain_cases"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "examples" / "strain_cases.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _cases() -> dict:
    return _example().strain_only_cases()


IRREPS = "0e+1o+1e+2e"
PEROVSKITE = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]


@pytest.fixture(scope="module")
def found():
    """One search per case, run on first use and shared by the tests of this module."""
    cache: dict = {}

    def get(name: str) -> OrderParameterResult:
        if name not in cache:
            parent, target, _ = _cases()[name]
            cache[name] = OrderParameterSearch(parent, target, irreps=IRREPS).run()
        return cache[name]

    return get


def test_strain_irreps_round_trip_keep_the_norm_and_rotate_as_0e_2e():
    rng = np.random.default_rng(0)
    eps = rng.normal(size=(3, 3)) * 0.01
    eps = eps + eps.T
    z = strain_to_irreps(eps)
    np.testing.assert_allclose(strain_from_irreps(z), eps, atol=1e-15)
    assert abs(np.linalg.norm(z) - np.linalg.norm(eps)) < 1e-15
    # 3z²-r² strain (fct) is pure 2e: no trace
    assert abs(strain_to_irreps(np.diag([-1.0, -1.0, 2.0]))[0]) < 1e-15
    torch.manual_seed(1)
    r = o3.rand_matrix(dtype=torch.float64).numpy()
    d = o3.Irreps("0e+2e").D_from_matrix(torch.as_tensor(r)).numpy()
    # e3nn's Wigner matrices carry float32 constants: agreement to ~1e-7 relative
    np.testing.assert_allclose(strain_to_irreps(r @ eps @ r.T), d @ z, atol=1e-8)


def test_strain_head_is_equivariant_under_rotation_inversion_and_translation():
    """Rotating (and inverting) the crystal and its input features rotates the predicted strain as 0e+2e."""
    from matsym.graph import build_graph

    torch.manual_seed(0)
    s = Structure(Lattice.tetragonal(3.9, 4.1), ["Sr", "Ti", "O", "O", "O"], PEROVSKITE)
    s.perturb(0.05, min_distance=0.01)
    irreps_in = o3.Irreps("2x0e+1x1o+1x1e+1x2e")
    config = NetworkConfig(sh_lmax=2)
    graph = build_graph(s, 3.5)
    geometry = EdgeGeometry.from_graph(graph, config, dtype=torch.float64)
    head = StrainHead(irreps_in, geometry).double()
    x = torch.randn(len(s), irreps_in.dim, dtype=torch.float64)
    z = head(x)
    for parity in (1, -1):
        r = parity * o3.rand_matrix(dtype=torch.float64)
        moved = Structure(Lattice(s.lattice.matrix @ r.numpy().T), s.species, (s.frac_coords + 0.37) % 1.0)
        g2 = EdgeGeometry.from_graph(build_graph(moved, 3.5), config, dtype=torch.float64)
        z2 = StrainHead(irreps_in, g2).double()
        z2.load_state_dict(head.state_dict())
        out = z2(x @ irreps_in.D_from_matrix(r).T)
        expected = o3.Irreps("0e+2e").D_from_matrix(r) @ z
        torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)  # e3nn's D: float32 constants


@pytest.mark.parametrize("name", list(_cases()))
def test_strain_only_target_is_incompatible_and_found(name, found):
    _, target, number = _cases()[name]
    assert verify_space_group(target, symprecs=(1e-3,))[1e-3][0] == number
    result = found(name)
    assert not result.nothing_to_find
    assert not result.curie.compatible  # the cell alone breaks the symmetry
    assert result.curie.displacement_error_ratio > 0.5
    groups = verify_space_group(result.predicted_structure, symprecs=(1e-3, 1e-2))
    assert groups[1e-3][0] == number and groups[1e-2][0] == number, groups
    m = result.metrics
    assert m["strain_share"] == pytest.approx(1.0)
    assert m["strain_error_ratio"] < 0.03, m
    assert np.abs(result.predicted_displacements).max() < 1e-3
    # the order parameter that explains it: a rank-two tensor (2e) on a one-atom lattice; in the perovskite the
    # cheaper scalar pattern on the oxygens (the one bonded along z against those bonded along x and y) is found
    if name == "perovskite-tetragonal":
        op = result.order_parameter[:, [c.split()[0] for c in result.components].index("0e")]
        assert np.abs(op[:2]).max() == 0.0 and op[3] == pytest.approx(op[4], rel=1e-3)
        assert op[2] * op[3] < 0  # O(z) opposite to O(x), O(y)
    else:
        assert result.irrep_fractions()["2e"] > 0.95
    eps = np.asarray(result.predicted_strain)
    np.testing.assert_allclose(eps, result.target_strain, atol=0.03 * np.linalg.norm(result.target_strain))
    g = result.predicted_structure.lattice.matrix @ np.linalg.inv(result.parent.lattice.matrix)
    np.testing.assert_allclose(g, np.eye(3) + eps.T, atol=1e-12)


def test_fct_order_parameter_is_3z2_minus_r2_along_the_tetragonal_axis(found):
    result = found("fct")
    fractions = result.component_fractions()
    assert fractions["2e m=0 3z²-r²"] > 0.99, fractions
    eps = np.asarray(result.predicted_strain)
    assert eps[2, 2] > 0 and abs(eps[0, 0] - eps[1, 1]) < 1e-6 and np.abs(eps - np.diag(np.diag(eps))).max() < 1e-6
    # the distortion applies the learned strain at every amplitude; round trip keeps it
    back = OrderParameterResult.from_dict(result.as_dict())
    np.testing.assert_array_equal(back.predicted_strain, result.predicted_strain)
    half = OrderParameterTransformation(back, 0.5)
    out = half.apply_transformation(result.parent)
    np.testing.assert_allclose(out.lattice.matrix, result.parent.lattice.matrix @ (np.eye(3) + 0.5 * eps).T, atol=1e-12)
    assert half.output_parameters["strain"] == "learned"
    assert half.output_parameters["space_groups"]["0.001"][0] == 139
    plain = OrderParameterTransformation(back, 1.0, learned_strain=False).apply_transformation(result.parent)
    np.testing.assert_allclose(plain.lattice.matrix, result.parent.lattice.matrix, atol=1e-12)


def test_rotated_and_translated_parent_is_still_nothing_to_find():
    parent, target, _ = _example().rigid_case()
    result = OrderParameterSearch(parent, target, irreps=IRREPS).run()
    assert result.nothing_to_find
    assert result.predicted_strain is None


def test_fluorite_to_tetragonal_zirconia_keeps_its_group_at_every_symprec():
    """t-ZrO2 (P4_2/nmc, Teufer 1962) from fluorite: the source and the builder are in examples/strain_cases.py."""
    fluorite, target, number = _example().zro2_tetragonal()
    symprecs = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
    assert {g for g, _ in verify_space_group(target, symprecs=symprecs).values()} == {number}
    result = OrderParameterSearch(fluorite, target).run()
    groups = verify_space_group(result.predicted_structure, symprecs=symprecs)
    assert {g for g, _ in groups.values()} == {number}, groups
    assert result.metrics["strain_share"] > 0.01 and result.metrics["strain_error_ratio"] < 0.05


def test_example_script_runs_quickly_and_writes_its_table(tmp_path, capsys):
    out = tmp_path / "strain"
    assert _example().main(["--quick", "--cases", "rigid,MnF2-mcif", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "note: target: magnetic moments read on 2 of 6 sites" in text
    rows = json.loads((out / "results.json").read_text())
    assert [r["case"] for r in rows] == ["rigid", "MnF2-mcif"] and rows[0]["nothing_to_find"]


def test_strain_survives_the_smallest_repeating_cell():
    """A strained target given as a supercell is searched on its small cell; the written structure keeps the strain."""
    parent, target, number = _cases()["fct"]
    big = target.copy()
    big.make_supercell([2, 1, 1])
    result = OrderParameterSearch(parent, big, irreps=IRREPS).run()
    assert "reduction" in result.registration
    assert len(result.predicted_structure) == len(big)
    assert result.predicted_strain is not None
    groups = verify_space_group(result.predicted_structure, symprecs=(1e-3, 1e-2))
    assert {g[0] for g in groups.values()} == {number}
    # the cell carries the learned strain: its volume-free shape matches the target's (c/a to 1e-3)
    abc = sorted(result.predicted_structure.lattice.abc)
    target_abc = sorted(big.lattice.abc)
    assert np.allclose(np.array(abc) / abc[0], np.array(target_abc) / target_abc[0], atol=2e-3)


def test_network_with_strain_head_reloads_its_own_weights():
    """The search snapshots and restores its network (prune); the strain head's e3nn constants must survive that."""
    parent, target, _ = _cases()["fct"]
    search = OrderParameterSearch(parent, target, irreps=IRREPS)
    assert search.strain_term is not None
    state = {k: v.clone() for k, v in search.network.state_dict().items()}
    assert any("strain_head" in k and "._compiled_main_" in k for k in state)
    search.network.load_state_dict(state)
    for k, v in search.network.state_dict().items():
        assert torch.equal(v, state[k])

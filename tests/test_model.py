"""Equivariant network: O(3) + translation equivariance on periodic graphs, supercell consistency, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matsym.errors import IrrepsError
from matsym.model import EdgeGeometry, EquivariantNetwork, NetworkConfig
from matsym.structures import cubic_perovskite
from matsym.testing import assert_equivariant, equivariance_error

IRREPS_IN = "4x0e+1x0o+1x1e+1x1o+1x2e+1x2o"
SIGNAL = "0e+1o+2e+3o"


def _random_features(n: int, irreps: str, seed: int = 0) -> np.ndarray:
    from e3nn import o3

    return np.random.default_rng(seed).normal(size=(n, o3.Irreps(irreps).dim))


def _rattled(s, seed: int):
    from pymatgen.core import Structure

    noise = np.random.default_rng(seed).normal(scale=0.05, size=(len(s), 3))
    return Structure(s.lattice, s.species, s.cart_coords + noise, coords_are_cartesian=True)


def _distorted_perovskite():
    return _rattled(cubic_perovskite() * (2, 1, 1), 1)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_equivariant_under_o3_and_translations_float64(seed, layers):
    net = EquivariantNetwork(
        IRREPS_IN, SIGNAL, NetworkConfig(layers=layers, mul=2, hidden_lmax=2, sh_lmax=2), dtype=torch.float64
    )
    s = _distorted_perovskite()
    feats = _random_features(len(s), IRREPS_IN)
    assert_equivariant(net, s, feats, cutoff=4.0, atol=1e-10, n_trials=4)


def test_equivariance_error_detects_a_broken_model(seed):
    """The helper must fail on a model that is not equivariant (here: inputs fed in the wrong irreps)."""
    from e3nn import o3

    wrong = EquivariantNetwork("1x1e", "1x1e", NetworkConfig(layers=1, mul=2), dtype=torch.float64)
    wrong.irreps_in = o3.Irreps("1x1o")  # the checker rotates the features as 1o; the network treats them as 1e
    s = _distorted_perovskite()
    feats = _random_features(len(s), "1x1o")
    assert equivariance_error(wrong, s, feats, cutoff=4.0, n_trials=8) > 1e-3


def test_float32_equivariance_is_at_float_precision(seed):
    net = EquivariantNetwork(IRREPS_IN, SIGNAL, NetworkConfig(layers=2, mul=2))
    s = _distorted_perovskite()
    feats = _random_features(len(s), IRREPS_IN)
    assert next(net.parameters()).dtype == torch.float32
    assert equivariance_error(net, s, feats, cutoff=4.0) < 1e-4


def test_supercell_gives_same_per_site_output(seed):
    from matsym.graph import build_graph

    net = EquivariantNetwork(IRREPS_IN, SIGNAL, NetworkConfig(layers=2, mul=2), dtype=torch.float64)
    prim = _rattled(cubic_perovskite(), 3)
    feats = _random_features(len(prim), IRREPS_IN)
    sup = prim * (2, 1, 1)
    # pymatgen's supercell orders sites by primitive site, then image: map each supercell site to its origin
    origin = [
        int(np.argmin([np.linalg.norm(((sc.frac_coords * [2, 1, 1]) - p.frac_coords + 0.5) % 1 - 0.5) for p in prim]))
        for sc in sup
    ]
    out = []
    for s, f in ((prim, feats), (sup, feats[origin])):
        g = build_graph(s, 4.5)
        geo = EdgeGeometry.from_graph(g, net.config, dtype=torch.float64)
        with torch.no_grad():
            out.append(net(torch.as_tensor(f), geo).numpy())
    np.testing.assert_allclose(out[1], out[0][origin], atol=1e-12)


def test_parameter_count_and_geometry_reuse(seed):
    from matsym.graph import build_graph

    net = EquivariantNetwork(IRREPS_IN, SIGNAL)
    assert net.num_parameters == sum(p.numel() for p in net.parameters()) > 0
    g = build_graph(cubic_perovskite(), 4.0)
    geo = EdgeGeometry.from_graph(g, net.config)
    x = torch.as_tensor(_random_features(5, IRREPS_IN), dtype=torch.float32)
    cached = net.radial_weights(geo)
    with torch.no_grad():
        torch.testing.assert_close(net(x, geo), net(x, geo, cached))


def test_bad_irreps_raise_matsym_error():
    with pytest.raises(IrrepsError, match="expected an e3nn irreps string"):
        EquivariantNetwork("1x1q", SIGNAL)
    with pytest.raises(IrrepsError, match="cannot reach output irreps"):
        EquivariantNetwork("1x0e", "0e+1o+2e+3o+4e+5o+6e", NetworkConfig(layers=1, sh_lmax=2))


def _species_graph(rattled: bool, cutoff: float = 4.5):
    from matsym.graph import build_graph

    return build_graph(_distorted_perovskite() if rattled else cubic_perovskite() * (2, 1, 1), cutoff)


def _species_geometry(config: NetworkConfig, dtype=torch.float64, rattled: bool = True, cutoff: float = 4.5):
    """A 2x1x1 perovskite (Sr, Ti, O: three species), rattled or cubic, with its one-hot species."""
    s = _distorted_perovskite() if rattled else cubic_perovskite() * (2, 1, 1)
    kinds = sorted({sp.symbol for sp in s.species})
    onehot = np.eye(len(kinds))[[kinds.index(sp.symbol) for sp in s.species]]
    geometry = EdgeGeometry.from_graph(_species_graph(rattled, cutoff), config, dtype=dtype, node_attr=onehot)
    return geometry, len(kinds)


@pytest.mark.parametrize(
    "config",
    [
        NetworkConfig.for_output(SIGNAL),
        NetworkConfig(layers=1, mul=3, hidden_lmax=2, sh_lmax=2),
        NetworkConfig(layers=3, mul=2, hidden_lmax=3, sh_lmax=4, connection="uvw"),
        NetworkConfig(layers=2, mul=2, sh_lmax=3, radial_neurons=(8, 6)),
        NetworkConfig(layers=2, mul=2, sh_lmax=3, radial_neurons=()),
    ],
    ids=["default", "one-layer", "uvw-three-layers", "radial-two-hidden", "radial-linear"],
)
@pytest.mark.parametrize("grouped", [False, True], ids=["fused", "grouped"])
@pytest.mark.parametrize(
    ("rattled", "cutoff"), [(True, 4.5), (False, 4.5), (False, 3.5)], ids=["rattled", "cubic", "cubic-directions"]
)
def test_dense_evaluation_equals_e3nn_path_by_path(seed, config, grouped, rattled, cutoff, monkeypatch):
    """forward() (dense operators, matsym._dense) is the same function as e3nn's path-by-path evaluation, with the
    same gradients for inputs and every parameter: float64, three species, to 1e-12. Both ways of weighting the
    messages (all at once on small graphs, group by group on large ones) are checked, on a rattled graph (every
    edge length distinct) and on cubic ones, whose messages are summed per (node, edge length) pair before they
    are weighted (matsym._dense.edge_classes); at 3.5 A the cubic graph's 26 directions also share their
    operators (matsym._dense.edge_directions)."""
    from matsym._dense import DenseConvolution, edge_classes, edge_directions

    monkeypatch.setattr(DenseConvolution, "GROUPED_FROM_EDGES", 0 if grouped else 10**9)
    geo, n_species = _species_geometry(config, rattled=rattled, cutoff=cutoff)
    classes = edge_classes(geo)
    directions = edge_directions(geo)
    assert (directions is not None) == (cutoff == 3.5)
    if directions is not None:  # every edge in one slot, and the edges of a run share their direction
        slots = directions["slots"].view(directions["D"], directions["C"])
        assert directions["D"] == 26
        assert sorted(slots[slots >= 0].tolist()) == list(range(len(geo.edge_src)))
        for run in slots:
            sh = geo.edge_sh[run[run >= 0]]
            assert (sh - sh[0]).abs().max() < 1e-12
    if rattled:
        assert classes is None
    else:  # the classes are the distinct edge lengths (to 1e-6 A), and the pairs are far fewer than the edges
        lengths = np.round(np.linalg.norm(_species_graph(rattled=False, cutoff=cutoff).edge_vec, axis=1), 6)
        dst = geo.edge_dst.numpy()
        assert len(classes["rep"]) == len(np.unique(lengths)) >= 3
        assert len(classes["node"]) == len({(int(n), r) for n, r in zip(dst, lengths, strict=True)})
        assert 4 * len(classes["node"]) < len(dst)
    net = EquivariantNetwork(IRREPS_IN, SIGNAL, config, num_species=n_species, dtype=torch.float64)
    if config == NetworkConfig.for_output(SIGNAL):  # the first layer's 0e/0o, 1e/1o, 2e/2o share their operators
        assert [(g["mul"], g["dim"]) for g in net._dense_layers[0]["conv"].groups] == [(5, 1), (2, 3), (2, 5)]
    x = torch.as_tensor(_random_features(geo.num_nodes, IRREPS_IN, seed=1)).requires_grad_(True)
    results = []
    for evaluate in (net.forward, net.forward_e3nn):
        net.zero_grad()
        x.grad = None
        out = evaluate(x, geo)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        grads = [p.grad.clone() for p in net.parameters()]
        results.append((out.detach(), x.grad.clone(), grads))
    (out_d, gx_d, gp_d), (out_e, gx_e, gp_e) = results
    assert out_e.abs().max() > 0.1  # a real output, not zeros
    torch.testing.assert_close(out_d, out_e, rtol=0, atol=1e-12)
    torch.testing.assert_close(gx_d, gx_e, rtol=0, atol=1e-11)
    for a, b in zip(gp_d, gp_e, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)
    # cached radial weights (e3nn's layout) give the same output
    with torch.no_grad():
        torch.testing.assert_close(net(x, geo, net.radial_weights(geo)), out_d, rtol=0, atol=1e-12)


@pytest.mark.parametrize("mul", [1, 2, 9])
def test_edge_products_and_their_gradient_match_a_plain_contraction(mul):
    """The convolution's per-edge products (matsym._dense._EdgeProducts): each group's columns of ``x`` read as
    [E, mul, dim] times the group's [E, dim, width] operator, with the products below PyTorch's scalar-loop size
    run with zero-padded operators. Same values as einsum and a correct gradient (gradcheck, float64), including
    input columns that no group reads (their gradient is zero)."""
    from matsym._dense import _BMM_SCALAR_LOOP, _edge_operator_forms, _EdgeProducts

    gen = torch.Generator().manual_seed(mul)
    e = 5
    groups = [(1, 7), (3, 4), (5, 2)]  # (dim, width): an outer product, then matrix products
    layout, operators, raw, start = [], [], [], 2  # columns 0-1 are read by no group
    for dim, width in groups:
        g = torch.randn(e, dim, width, dtype=torch.float64, generator=gen)
        forms = _edge_operator_forms(g, mul)
        padded = dim > 1 and mul * dim * width < _BMM_SCALAR_LOOP
        assert (forms[2] > 0) == padded and mul * (dim + forms[2]) * width >= (_BMM_SCALAR_LOOP if padded else 0)
        layout.append((start, mul, dim))
        operators.append(forms)
        raw.append(g)
        start += mul * dim
    x = torch.randn(e, start + 1, dtype=torch.float64, generator=gen, requires_grad=True)  # and one after

    def reference(x):
        return torch.cat(
            [
                torch.einsum("eum,emc->euc", x[:, a : a + m * d].reshape(e, m, d), g).reshape(e, -1)
                for (a, m, d), g in zip(layout, raw, strict=True)
            ],
            dim=1,
        )

    torch.testing.assert_close(_EdgeProducts.apply(x, layout, operators), reference(x), rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(lambda x: _EdgeProducts.apply(x, layout, operators), (x,))
    x.grad = None
    _EdgeProducts.apply(x, layout, operators).sum().backward()
    assert x.grad[:, :2].abs().max() == 0 and x.grad[:, -1].abs().max() == 0
    assert x.grad[:, 2:-1].abs().min() > 0
    # summed into rows (the per-(node, class) sums of the convolution): out[key[e]] += z[e]; row 2 gets nothing
    key = torch.tensor([3, 0, 1, 0, 3])
    summed = torch.zeros(4, reference(x).shape[1], dtype=x.dtype).index_add(0, key, reference(x))
    torch.testing.assert_close(_EdgeProducts.apply(x, layout, operators, key, 4), summed, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(lambda x: _EdgeProducts.apply(x, layout, operators, key, 4), (x,))
    # rows in runs sharing one operator (edges of one direction): 3 runs of 5 rows, operators [3, dim, width]
    shared = [_edge_operator_forms(g[:3], mul * 5) for g in raw]
    xs = torch.randn(15, x.shape[1], dtype=torch.float64, generator=gen, requires_grad=True)
    expanded = [g[:3].repeat_interleave(5, dim=0) for g in raw]  # each run's operator, row by row
    want = torch.cat(
        [
            torch.einsum("eum,emc->euc", xs[:, a : a + m * d].reshape(15, m, d), g).reshape(15, -1)
            for (a, m, d), g in zip(layout, expanded, strict=True)
        ],
        dim=1,
    )
    key = torch.arange(15) % 4
    summed = torch.zeros(4, want.shape[1], dtype=x.dtype).index_add(0, key, want)
    torch.testing.assert_close(_EdgeProducts.apply(xs, layout, shared, key, 4, 5), summed, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(lambda xs: _EdgeProducts.apply(xs, layout, shared, key, 4, 5), (xs,))


def test_dense_operators_leave_saved_weights_unchanged_and_stay_exact_when_cast(seed):
    """The dense evaluation adds nothing to the state dict, and a network built in float32 then cast to float64 is
    exact to 1e-12 (its Clebsch-Gordan coefficients are kept in float64, not rounded through float32)."""
    config = NetworkConfig.for_output(SIGNAL)
    geo, n_species = _species_geometry(config)
    net32 = EquivariantNetwork(IRREPS_IN, SIGNAL, config, num_species=n_species)
    ref = EquivariantNetwork(IRREPS_IN, SIGNAL, config, num_species=n_species, dtype=torch.float64)
    assert set(net32.state_dict()) == set(ref.state_dict())
    assert not any("dense" in key for key in net32.state_dict())
    with torch.no_grad():  # the parameters only: e3nn's own Clebsch-Gordan buffers are in its state dict too
        for mine, theirs in zip(ref.parameters(), net32.parameters(), strict=True):
            mine.copy_(theirs.double())
    x = torch.as_tensor(_random_features(geo.num_nodes, IRREPS_IN, seed=2))
    with torch.no_grad():
        expected = ref.forward_e3nn(x, geo)
        got = net32.to(torch.float64)(x, geo)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_a_search_does_not_load_torch_dynamo(tmp_path):
    """torch._dynamo costs ~1.4 s to import and matsym never compiles: neither importing matsym, nor building the
    network (e3nn modules, dense operators), nor optimising (torch.optim would load it), nor saving may load it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from matsym.search import OrderParameterSearch\n"
        "from matsym.structures import tilted_perovskite\n"
        "parent, target = tilted_perovskite('a0a0c-', 5.0)\n"
        "search = OrderParameterSearch(parent, target, sites='Ti', irreps='1e+1o', fit_steps=5, max_steps=5,\n"
        "                              polish_steps=5)\n"
        "result = search.run()\n"
        "result.to_json('result.json')\n"
        "search.save_weights('weights.safetensors')\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "result.json").is_file() and (tmp_path / "weights.safetensors").is_file()
    assert done.stdout.strip().splitlines()[-1] == "False"

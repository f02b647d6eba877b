"""Lean e3nn (matsym._lean_e3nn): the network built without e3nn's code generation is the same network.

The search builds its network inside ``lean_construction`` (e3nn's forward code generated on first use, activation
moments memoised) and imports e3nn without sympy and torch._dynamo. These tests build the same network the plain
e3nn way and compare parameters, saved weights and both evaluations.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys

import numpy as np
import torch

import matsym.model
from matsym.model import EdgeGeometry, EquivariantNetwork, NetworkConfig
from matsym.structures import cubic_perovskite

IRREPS_IN = "3x0e+1x0o+1x1e+1x1o+1x2e"
SIGNAL = "0e+1o+2e+3o"
CONFIG = NetworkConfig(layers=2, mul=2, hidden_lmax=2, sh_lmax=3)


def _geometry_and_features():
    from pymatgen.core import Structure

    from matsym.graph import build_graph

    s = cubic_perovskite() * (2, 1, 1)  # cubic SrTiO3 (a = 3.905 Å), rattled: no repeated edge lengths
    rng = np.random.default_rng(3)
    cart = s.cart_coords + rng.normal(scale=0.05, size=(len(s), 3))
    s = Structure(s.lattice, s.species, cart, coords_are_cartesian=True)
    geometry = EdgeGeometry.from_graph(build_graph(s, 4.5), CONFIG, dtype=torch.float64)
    from e3nn import o3

    x = torch.tensor(rng.normal(size=(len(s), o3.Irreps(IRREPS_IN).dim)))
    return geometry, x


def _networks(monkeypatch):
    torch.manual_seed(7)
    lean = EquivariantNetwork(IRREPS_IN, SIGNAL, CONFIG, dtype=torch.float64)
    with monkeypatch.context() as m:
        m.setattr(matsym.model, "lean_construction", contextlib.nullcontext)
        torch.manual_seed(7)
        full = EquivariantNetwork(IRREPS_IN, SIGNAL, CONFIG, dtype=torch.float64)
    return lean, full


def test_lean_network_has_e3nn_parameters_and_evaluations(monkeypatch):
    lean, full = _networks(monkeypatch)
    lean_state, full_state = lean.state_dict(), full.state_dict()
    # the same parameters, drawn in the same order from the same seed; the plain build also holds the constants
    # (Wigner 3j symbols) of its generated code, and nothing else
    assert set(lean_state) <= set(full_state)
    assert all("._compiled_main_" in k for k in set(full_state) - set(lean_state))
    assert any("._compiled_main_" in k for k in full_state)
    for k, v in lean_state.items():
        assert torch.equal(v, full_state[k]), k
    geometry, x = _geometry_and_features()
    reference = full.forward_e3nn(x, geometry)
    assert reference.abs().max() > 1e-3
    # e3nn's own code, generated on first use, and the dense evaluation: the plain network's function to 1e-12
    assert torch.allclose(lean.forward_e3nn(x, geometry), reference, rtol=0, atol=1e-12)
    assert torch.allclose(lean(x, geometry), reference, rtol=0, atol=1e-12)


def test_weights_saved_with_generated_code_constants_load(monkeypatch):
    lean, full = _networks(monkeypatch)
    with torch.no_grad():
        for p in full.parameters():
            p.add_(torch.randn_like(p))
    lean.load_state_dict(full.state_dict())  # old weights files hold the constants too: ignored, weights loaded
    geometry, x = _geometry_and_features()
    expected = full.forward_e3nn(x, geometry)
    scale = float(expected.detach().abs().max())  # ~4e3 with these weights: 1e-12 relative
    assert torch.allclose(lean(x, geometry), expected, rtol=0, atol=1e-12 * scale)


def test_search_imports_neither_sympy_nor_dynamo():
    code = (
        "import sys, json\n"
        "import matsym.search\n"
        "from matsym.model import EquivariantNetwork\n"
        "EquivariantNetwork('2x0e+1x1e', '0e+1o+2e')\n"
        "before = {m: m in sys.modules for m in ('sympy', 'torch._dynamo')}\n"
        "import e3nn.o3 as o3\n"
        "from e3nn.o3._angular_spherical_harmonics import Legendre\n"
        "print(json.dumps({'before': before, 'same': o3.Legendre is Legendre, 'sympy': 'sympy' in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["before"] == {"sympy": False, "torch._dynamo": False}
    assert report["same"] and report["sympy"]  # the deferred names load on access


def test_memoised_moments_are_e3nns_bit_for_bit():
    """The shared million samples give e3nn's own ``moment`` exactly, for every activation of the network."""
    import e3nn.math._normalize_activation as normalize

    from matsym._lean_e3nn import lean_construction
    from matsym.model import _even_abs

    original = normalize.moment
    functions = (torch.nn.functional.silu, torch.tanh, torch.sigmoid, _even_abs, torch.abs)
    for dtype in (torch.float32, torch.float64):
        expected = [original(f, 2, dtype=dtype) for f in functions]
        with lean_construction():
            assert normalize.moment is not original  # the memoising version is in place
            got = [normalize.moment(f, 2, dtype=dtype) for f in functions]
        assert normalize.moment is original
        for f, e, g in zip(functions, expected, got, strict=True):
            assert g.dtype == e.dtype == dtype and torch.equal(g, e), (f, dtype, float(g), float(e))
    # the four activations of matsym's networks come from the table in float64 (no samples drawn), abs does not
    from matsym._lean_e3nn import _KNOWN_MOMENTS, _known_moment

    tabulated = [f for f in functions if _known_moment(f, 2, torch.float64, None) is not None]
    assert tabulated == list(functions[:4]) and len(_KNOWN_MOMENTS) == 4
    assert _known_moment(torch.tanh, 2, torch.float32, None) is None

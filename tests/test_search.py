"""The order-parameter search: Curie's principle, the paper's square and perovskite results, constraints.

Fast settings: the default small network and step budgets; each search takes a few seconds on one core.
"""

from __future__ import annotations

import json
import platform

import numpy as np
import pytest

from matsym.errors import ResultError, SearchError
from matsym.result import OrderParameterResult
from matsym.search import OrderParameterSearch, curie_check
from matsym.structures import square_rectangle, tilted_perovskite
from matsym.symmetry import space_group

ALL_L5 = "+".join(f"{l}{p}" for l in range(6) for p in "eo")
B1G = {"2e m=2 x²-y²", "3e m=-2 xyz", "4e m=2", "5e m=-2"}


def _b1g_share(result: OrderParameterResult) -> float:
    shares = result.component_fractions(min_l=1)
    return sum(v for k, v in shares.items() if any(k.startswith(name) for name in B1G))


@pytest.fixture(scope="module")
def square_pair():
    return square_rectangle()


@pytest.fixture(scope="module")
def pnma_pair():
    return tilted_perovskite("a+b-b-", 8.0)


@pytest.fixture(scope="module")
def pnma_result(pnma_pair):
    parent, target = pnma_pair
    return OrderParameterSearch(parent, target, sites="Ti", irreps="0e+0o+1e+1o+2e+2o", seed=0).run()


# ------------------------------------------------------------------------- Curie's principle
def test_rectangle_to_square_fits_without_order_parameter(square_pair):
    square, rectangle = square_pair
    report = curie_check(rectangle, square, irreps="0e")
    assert report.compatible, report.verdict
    assert report.loss_ratio <= 1e-4
    assert report.verdict.startswith("compatible")


def test_square_to_rectangle_is_incompatible_and_degenerate(square_pair):
    square, rectangle = square_pair
    report = curie_check(square, rectangle, irreps="0e", fit_steps=600)
    assert not report.compatible
    assert report.loss_ratio >= 0.1
    assert report.degenerate_sites == (0, 1, 2, 3)
    assert "incompatible" in report.verdict and "Curie" in report.verdict


def test_cubic_parent_with_zero_order_parameter_predicts_zero_displacements(pnma_pair):
    parent, target = pnma_pair
    search = OrderParameterSearch(parent, target, sites="Ti", irreps="1e", fit_steps=400, patience=400)
    report = search.curie()
    assert not report.compatible
    _, decoded = search._predict()
    assert np.abs(decoded.vectors).max() <= 1e-8


# ------------------------------------------------------------------------- square -> rectangle (paper Figs. 1-2)
def test_square_global_order_parameter_up_to_l5_is_b1g(square_pair):
    square, rectangle = square_pair
    result = OrderParameterSearch(square, rectangle, irreps=ALL_L5, tie="all").run()
    assert result.metrics["loss_ratio"] <= 1e-3
    assert _b1g_share(result) >= 0.95, result.component_fractions(min_l=1)


def test_square_low_l_candidates_give_x2_minus_y2(square_pair):
    square, rectangle = square_pair
    result = OrderParameterSearch(square, rectangle, irreps="1e+1o+2e+2o", tie="all").run()
    assert result.metrics["loss_ratio"] <= 1e-3
    assert result.component_fractions(min_l=1)["2e m=2 x²-y²"] >= 0.99


# ------------------------------------------------------------------------- Pm-3m -> Pnma (paper Fig. 3)
def test_pnma_b_sites_carry_equal_pseudovectors(pnma_result):
    r = pnma_result
    assert r.sites.tolist() == [4, 5, 6, 7]
    for site in r.sites:
        assert r.irrep_fractions(site)["1e"] >= 0.90
    one_e = [slice for name, slice in zip(r.irrep_names, range(len(r.irrep_names)), strict=True) if name == "1e"]
    assert one_e, r.irrep_names
    mags = np.sqrt(r.irrep_weights[r.sites][:, r.irrep_names.index("1e")])
    assert np.ptp(mags) <= 0.05 * mags.mean()
    assert np.allclose(r.order_parameter[[i for i in range(20) if i not in r.sites]], 0.0)


def test_pnma_predicted_structure_is_pnma_and_fits(pnma_result):
    r = pnma_result
    for symprec in (1e-3, 1e-2):
        assert space_group(r.predicted_structure, symprec)[0] == 62
    assert r.metrics["displacement_error_ratio"] <= 0.10


def test_unused_components_end_at_zero(pnma_result):
    r = pnma_result
    for site in r.sites:
        op = r.order_parameter[site]
        norm = np.linalg.norm(op)
        used = np.array([name == "1e" for name in r.irrep_names])
        blocks = np.repeat(used, [1, 1, 3, 3, 5, 5])
        assert np.linalg.norm(op[~blocks]) <= 0.01 * norm


def test_imma_from_constraints_is_intermediate(pnma_pair, pnma_result):
    parent, target = pnma_pair
    # in-phase tilt axis of a+b-b- is x; the body centring (1/2,1/2,1/2) of this cell maps B sites of the
    # anti-phase (R-point) pattern onto equal ones and in-phase (M-point) ones onto opposite ones
    result = OrderParameterSearch(
        parent,
        target,
        sites="Ti",
        irreps="1e",
        mask=("1e", (1.0, 0.0, 0.0)),
        tie={"translation": [0.5, 0.5, 0.5]},
    ).run()
    for symprec in (1e-3, 1e-2):
        assert space_group(result.predicted_structure, symprec)[0] == 74
    assert result.metrics["loss_ratio"] > 10 * pnma_result.metrics["loss_ratio"]
    assert np.allclose(result.order_parameter[result.sites][:, 2], 0.0)  # no x component


# ------------------------------------------------------------------------- reproducibility and I/O
def test_same_seed_same_result(square_pair):
    square, rectangle = square_pair
    runs = [OrderParameterSearch(square, rectangle, irreps="2e", tie="all", seed=3).run() for _ in range(2)]
    assert np.array_equal(runs[0].order_parameter, runs[1].order_parameter)
    assert [h["loss"] for h in runs[0].loss_history] == [h["loss"] for h in runs[1].loss_history]


def test_result_json_round_trip(pnma_result, tmp_path):
    path = pnma_result.to_json(tmp_path / "result.json")
    back = OrderParameterResult.from_json(path)
    assert np.array_equal(back.order_parameter, pnma_result.order_parameter)
    assert np.array_equal(back.predicted_displacements, pnma_result.predicted_displacements)
    assert back.components == pnma_result.components and back.curie == pnma_result.curie
    assert back.predicted_structure == pnma_result.predicted_structure
    with pytest.raises(Exception, match="exists"):
        pnma_result.to_json(path)
    d = json.loads(path.read_text())
    d["schema_version"] = 99
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(d))
    with pytest.raises(ResultError, match="schema version 99"):
        OrderParameterResult.from_json(bad)


def test_weights_round_trip_and_loading_executes_no_code(square_pair, tmp_path):
    import pickle

    square, rectangle = square_pair
    search = OrderParameterSearch(square, rectangle, irreps="2e", tie="all", max_steps=50, fit_steps=50)
    search.run()
    path = tmp_path / "model.safetensors"
    search.save_weights(path)
    other = OrderParameterSearch(square, rectangle, irreps="2e", tie="all", seed=1)
    other.load_weights(path)
    for (k, a), (_, b) in zip(search.network.state_dict().items(), other.network.state_dict().items(), strict=True):
        assert np.array_equal(a.numpy(), b.numpy()), k

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('code executed')",))

    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(Exception) as info:
        other.load_weights(evil)
    assert not isinstance(info.value, SystemExit)


def test_runtime_sets_threads_and_flushes_subnormals_then_restores(square_pair):
    import torch

    square, rectangle = square_pair
    search = OrderParameterSearch(square, rectangle, irreps="0e", threads=1)
    before = torch.get_num_threads()
    subnormal = torch.tensor([1e-40], dtype=torch.float32)
    assert float(subnormal * 1.0) != 0.0  # PyTorch's default: subnormals kept
    with search.runtime():
        assert torch.get_num_threads() == 1
        flushed = float(subnormal * 1.0) == 0.0
    assert torch.get_num_threads() == before
    assert float(subnormal * 1.0) != 0.0  # flushing switched off again
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert flushed  # x86 supports flush-to-zero: the search's arithmetic runs without subnormals


def test_auto_threads_follow_the_graph_size(square_pair, monkeypatch):
    """``threads="auto"``: one thread below ``AUTO_THREADS_EDGES`` edges, torch's count from there."""
    import torch

    import matsym.search

    square, rectangle = square_pair
    assert OrderParameterSearch(square, rectangle, irreps="0e").threads == 1  # the default: one thread everywhere
    search = OrderParameterSearch(square, rectangle, irreps="0e", threads="auto")
    edges = search.problem.graph.num_edges
    assert 0 < edges < matsym.search.AUTO_THREADS_EDGES
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert search.threads == 1
        with search.runtime():
            assert torch.get_num_threads() == 1
        monkeypatch.setattr(matsym.search, "AUTO_THREADS_EDGES", edges)  # this graph now counts as large
        assert search.threads == 2
        with search.runtime():
            assert torch.get_num_threads() == 2
        assert OrderParameterSearch(square, rectangle, irreps="0e", threads=1).threads == 1  # a number is kept
    finally:
        torch.set_num_threads(before)


def test_prune_cuts_whole_irrep_blocks(square_pair, monkeypatch):
    """The prune zeroes irrep blocks whose share is small, never single components of a kept block.

    A block's norm does not depend on the frame, its components do: in a frame whose axes are not the crystal's
    (a CIF reader's ``Lattice.from_parameters``), a symmetric order parameter spreads over components, and cutting
    the weak ones broke the target's symmetry (monoclinic HfO2 ended P-1 at symprec 1e-3 and 1e-4).
    """
    square, rectangle = square_pair
    search = OrderParameterSearch(square, rectangle, irreps="1e+2e", tie="all")
    op = search.order_parameter
    monkeypatch.setattr(search, "_sparsify", lambda *args, **kwargs: None)  # the cut alone, no refit
    one_e, two_e = op.blocks()
    values = np.zeros(op.dim)
    values[one_e] = [0.05, 0.0, 0.05]  # 1e: 0.5 % of the squared norm, in two components
    values[two_e] = [0.0, 0.08, 0.0, 0.1, 1.0]  # 2e: 99.5 %, one component at 0.6 %
    op.set_(np.tile(values, (op.num_groups, 1)))
    search._prune([])
    allowed = np.diag(op.projector.cpu().numpy())
    assert np.all(allowed[one_e] == 0.0)  # the weak block is cut whole
    assert np.all(allowed[two_e] == 1.0)  # the kept block keeps its weak component
    theta = op.theta.detach().cpu().numpy()
    assert np.all(theta[:, one_e] == 0.0) and np.allclose(theta[:, two_e], values[two_e])  # RMS 1: not rescaled


def test_nothing_to_find(pnma_pair):
    parent, _ = pnma_pair
    result = OrderParameterSearch(parent, parent.copy(), sites="Ti", irreps="1e").run()
    assert result.nothing_to_find and "nothing" in result.summary()
    assert np.allclose(result.predicted_displacements, 0.0)


def test_bad_settings_raise():
    square, rectangle = square_rectangle()
    with pytest.raises(SearchError, match="unknown search settings"):
        OrderParameterSearch(square, rectangle, irreps="2e", max_stepz=3)
    with pytest.raises(SearchError, match="dtype"):
        OrderParameterSearch(square, rectangle, irreps="2e", dtype="float16")
    for bad in (0, -2, 1.5, "2", True):
        with pytest.raises(SearchError, match="threads: expected a positive integer, 'auto' or None"):
            OrderParameterSearch(square, rectangle, irreps="2e", threads=bad)


@pytest.mark.parametrize("skip_one", [False, True])
def test_adam_matches_torch_optim_adam(skip_one):
    """The search's Adam (no torch.optim, hence no torch._dynamo import) follows torch.optim.Adam step by step,
    including a learning-rate change and a parameter that misses a step."""
    import torch

    from matsym._adam import Adam

    gen = torch.Generator().manual_seed(0)
    ours = [torch.randn(5, 3, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    ref = [p.detach().clone().requires_grad_(True) for p in ours]
    start = [p.detach().clone() for p in ours]
    opt, opt_ref = Adam(ours, lr=0.05), torch.optim.Adam(ref, lr=0.05)
    targets = [torch.randn(5, 3, generator=gen, dtype=torch.float64) for _ in range(3)]
    for k in range(30):
        for params, o in ((ours, opt), (ref, opt_ref)):
            o.zero_grad(set_to_none=True)
            use = params[:2] if skip_one and k % 4 == 1 else params
            loss = sum(((p - t) ** 3).abs().sum() for p, t in zip(use, targets, strict=False))
            loss.backward()
            o.step()
        if k == 15:
            for o in (opt, opt_ref):
                o.param_groups[0]["lr"] *= 0.5
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert all((a - s).abs().max() > 0.1 for a, s in zip(ours, start, strict=True))  # 30 steps of 0.05 moved them
    # the parameters are views of one flat tensor (one update for all) until one of them misses a step
    assert all(p.data_ptr() == opt._flat[0][:1].data_ptr() + 8 * 15 * i for i, p in enumerate(ours))
    assert len(set(opt.steps)) == (2 if skip_one else 1)


def test_device_names_are_checked(square_pair):
    import torch

    square, rectangle = square_pair
    with pytest.raises(SearchError, match="device"):
        OrderParameterSearch(square, rectangle, irreps="0e", device="warp9")
    with pytest.raises(SearchError, match="'cpu' or 'cuda'"):
        OrderParameterSearch(square, rectangle, irreps="0e", device="meta")
    if not torch.cuda.is_available():
        with pytest.raises(SearchError, match="no CUDA device"):
            OrderParameterSearch(square, rectangle, irreps="0e", device="cuda")
    search = OrderParameterSearch(square, rectangle, irreps="0e", device="cpu")
    assert search.device == torch.device("cpu")
    assert search.config.as_dict()["device"] == "cpu"


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_cuda_search_agrees_with_cpu(pnma_pair):
    """On a machine with CUDA: the same float64 search on the GPU and on the CPU, same steps, agrees to 1e-5."""
    parent, target = pnma_pair
    settings = {"sites": "Ti", "irreps": "1e", "dtype": "float64", "fit_steps": 40, "max_steps": 40, "polish_steps": 10}
    cpu = OrderParameterSearch(parent, target, **settings).run()
    gpu = OrderParameterSearch(parent, target, device="cuda", **settings).run()
    np.testing.assert_allclose(gpu.order_parameter, cpu.order_parameter, rtol=0, atol=1e-5)
    np.testing.assert_allclose(gpu.predicted_displacements, cpu.predicted_displacements, rtol=0, atol=1e-5)


def test_float64_steps_return_to_the_search_dtype(square_pair):
    """The growth stages record their gradient span in float64 (OrderParameterSearch._in_float64): inside, the
    network, geometry, inputs and loss are float64; after, everything is float32 again and the loss is unchanged
    to float32 rounding."""
    import torch

    square, rectangle = square_pair
    search = OrderParameterSearch(square, rectangle, irreps="2e")
    before = search._current_loss()
    with search._in_float64():
        assert search._loss().dtype == torch.float64
        assert all(p.dtype == torch.float64 for p in search.network.parameters())
        inside = search._current_loss()
    assert search.dtype == torch.float32 and search._loss().dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in search.network.parameters())
    assert search.geometry.edge_sh.dtype == torch.float32
    assert abs(inside - before) <= 1e-5 * max(abs(before), 1e-12)
    assert search._current_loss() == before


def test_pace_ends_only_phases_that_cannot_reach_their_loss():
    """The pace rule on synthetic loss curves (budget 300, window 30, goal 3e-3)."""
    from matsym.search import _Pace

    def first_stop(curve, goal=3e-3, window=30, budget=300):
        pace = _Pace(window, goal)
        return next((i for i, loss in enumerate(curve) if pace.hopeless(loss, budget - i - 1)), None)

    steps = np.arange(300)
    assert first_stop(np.exp(-0.05 * steps)) is None  # reaches 3e-3 at step 117: never stopped
    plateau = 0.3 + 0.5 * np.exp(-steps / 20.0)  # levels off at 0.3, far above the goal
    assert first_stop(plateau) == 59  # judged as soon as two windows are in
    slow = 0.5 * np.exp(-0.005 * steps)  # would need about 1,000 steps at this rate
    assert first_stop(slow) == 59
    assert first_stop(plateau, window=0) is None and first_stop(plateau, goal=None) is None  # disabled
    assert first_stop(plateau, budget=100) is None  # under two windows left when it could judge: not worth it
    # a phase that is slow now but could still make it within twice the rest of its budget is left alone
    assert first_stop(0.5 * np.exp(-0.015 * steps)) is None

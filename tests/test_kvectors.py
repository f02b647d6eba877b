"""Wave-vector analysis of per-site fields (matsym.kvectors) and the search's steering off secondary wave vectors.

Structures: the cubic perovskite SrTiO3 (Pm-3m, Sr at 1a, Ti at 1b) and its rigid-tilt derivatives in the Glazer
(Acta Cryst. B28, 3384 (1972)) systems of Howard & Stokes (Acta Cryst. B54, 782 (1998)), built by
matsym.structures.tilted_perovskite.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Molecule

from matsym.kvectors import cell_translations, coupled_weakest
from matsym.result import OrderParameterResult
from matsym.search import OrderParameterSearch
from matsym.structures import cubic_perovskite, tilted_perovskite
from matsym.symmetry import space_group

M_POINT = np.array([0.0, 0.5, 0.5])  # in-phase tilt about x
R_POINT = np.array([0.5, 0.5, 0.5])  # anti-phase tilts
X_POINT = np.array([0.5, 0.0, 0.0])  # M + R


@pytest.fixture(scope="module")
def supercell():
    """The 40-atom 2 x 2 x 2 supercell of cubic SrTiO3 (cubic cell n of site j: floor(2 * frac))."""
    s = cubic_perovskite()
    s.make_supercell(2 * np.eye(3, dtype=int))
    return s


def _pattern(structure, k) -> np.ndarray:
    """cos(2 pi k . n) on the Ti sites (n: the cubic cell of the site), zero elsewhere.  # [n]"""
    cells = np.floor(2 * np.asarray(structure.frac_coords) + 1e-9)
    ti = np.array([site.species_string == "Ti" for site in structure])
    return np.where(ti, np.cos(2 * np.pi * cells @ k), 0.0)


def _pair_of(cells, k) -> int:
    d = cells.pair_kvectors() - np.asarray(k)
    s = cells.pair_kvectors() + np.asarray(k)
    hits = [p for p in range(cells.n_pairs) if np.allclose(d[p], np.round(d[p])) or np.allclose(s[p], np.round(s[p]))]
    assert len(hits) == 1, (k, cells.pair_kvectors())
    return hits[0]


def test_translations_of_a_supercell(supercell):
    cells = cell_translations(supercell)
    assert cells is not None
    assert len(cells.kvectors) == 8 and cells.n_pairs == 8  # every k of a 2x2x2 cell is its own -k
    assert np.bincount(cells.orbit).tolist() == [8] * 5
    assert cell_translations(cubic_perovskite()) is None  # the parent's own cell: no translation to analyse
    assert cell_translations(Molecule(["C", "O"], [[0, 0, 0], [0, 0, 1.13]])) is None


def test_single_k_pattern_has_share_one_there(supercell):
    cells = cell_translations(supercell)
    for k in (M_POINT, R_POINT, X_POINT, np.zeros(3)):
        field = _pattern(supercell, k)[:, None] * np.array([[0.3, -1.2, 0.7]])  # a 1e vector, one k
        shares = cells.shares(field)
        assert shares[_pair_of(cells, k)] == pytest.approx(1.0, abs=1e-12)
        assert shares.sum() == pytest.approx(1.0, abs=1e-12)
    # two patterns in different components: shares are their squared norms' fractions (Parseval)
    m, r = _pattern(supercell, M_POINT), _pattern(supercell, R_POINT)
    field = np.stack([m, 2.0 * r, 0.0 * r], axis=1)
    shares = cells.shares(field)
    assert shares[_pair_of(cells, M_POINT)] == pytest.approx(0.2, abs=1e-12)
    assert shares[_pair_of(cells, R_POINT)] == pytest.approx(0.8, abs=1e-12)


def test_shares_are_translation_invariant(supercell):
    cells = cell_translations(supercell)
    rng = np.random.default_rng(0)
    field = rng.normal(size=(len(supercell), 3))
    frac = np.asarray(supercell.frac_coords)
    for t in ([0.5, 0.0, 0.0], [0.0, 0.5, 0.5], [0.5, 0.5, 0.5]):  # parent lattice vectors, supercell fractions
        moved = (frac + np.asarray(t)) % 1.0
        d = moved[:, None, :] - frac[None, :, :]
        d -= np.round(d)
        image = np.argmin(np.linalg.norm(d, axis=2), axis=1)  # site j moves onto site image[j]
        translated = np.empty_like(field)
        translated[image] = field
        assert np.allclose(cells.shares(translated), cells.shares(field), atol=1e-12)
    ti = [j for j, site in enumerate(supercell) if site.species_string == "Ti"]
    swapped = field.copy()
    swapped[[ti[0], ti[1]]] = field[[ti[1], ti[0]]]  # a permutation that is no translation changes the shares
    assert not np.allclose(cells.shares(swapped), cells.shares(field), atol=1e-6)


def test_projectors_are_real_orthogonal_and_complete(supercell):
    cells = cell_translations(supercell)
    total = np.zeros((len(supercell), len(supercell)))
    for p in range(cells.n_pairs):
        proj = cells.projector([p])
        assert np.allclose(proj @ proj, proj, atol=1e-12) and np.allclose(proj, proj.T, atol=1e-12)
        for q in range(p + 1, cells.n_pairs):
            assert np.allclose(proj @ cells.projector([q]), 0.0, atol=1e-12)
        total += proj
    assert np.allclose(total, np.eye(len(supercell)), atol=1e-12)


def test_coupled_weakest_cuts_the_induced_pair_only():
    kv = np.array([np.zeros(3), M_POINT, X_POINT, R_POINT])
    assert coupled_weakest(np.array([0.0, 0.4, 0.001, 0.6]), kv) == [2]  # X = M + R, weak in the data
    assert coupled_weakest(np.array([0.0, 0.4, 0.3, 0.3]), kv) == []  # comparable content: all primary
    arms = np.array([[0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]])  # M arms: a triple of equal shares
    assert coupled_weakest(np.full(3, 1 / 3), arms) == []
    assert coupled_weakest(np.array([0.9, 0.1]), np.array([np.zeros(3), R_POINT])) == []  # Gamma never couples


def test_search_steers_mixed_tilts_to_m_and_r(tmp_path):
    """a+b-b- (Pnma): in-phase tilt about x (M2+), anti-phase about y and z (R5-), parent with Sr at 1a."""
    _, target = tilted_perovskite("a+b-b-", [7.0, 6.0, 6.0])
    runs = {
        steer: OrderParameterSearch(cubic_perovskite(), target, sites="Ti", irreps="1e", prune_kvectors=steer).run()
        for steer in (False, True)
    }

    def share(result):
        modes = result.order_parameter_modes["modes"]
        return sum(m["amplitude"] for m in modes if m["irrep"] in ("M2+", "R5-"))

    steered = runs[True]
    assert share(steered) >= 0.95
    assert share(runs[False]) < 0.9  # unsteered, the network reads the induced X5- content from its input
    assert space_group(steered.predicted_structure, 1e-3) == space_group(target, 1e-3) == (62, "Pnma")
    assert steered.metrics["displacement_error_ratio"] <= 0.01
    cut = np.asarray(steered.metrics["pruned_kvectors"]) @ np.asarray(cubic_perovskite().lattice.matrix).T
    assert cut.shape == (1, 3) and np.allclose(np.abs(cut[0]), X_POINT, atol=1e-4)
    back = OrderParameterResult.from_json(steered.to_json(tmp_path / "result.json"))
    assert back.metrics["pruned_kvectors"] == steered.metrics["pruned_kvectors"]


def test_steering_is_judged_after_the_network_catches_up():
    """a+a+c- (P4_2/nmc, Howard & Stokes, Acta Cryst. B54, 782 (1998)), tilts 6, 6, 7 degrees: the steered search ends
    above the prune test (its order parameter moved until its last step); the network-only refit that follows brings
    it below, so the order parameter keeps M2+ and R5- only."""
    _, target = tilted_perovskite("a+a+c-", [6.0, 6.0, 7.0])
    result = OrderParameterSearch(cubic_perovskite(), target, sites="Ti", irreps="1e").run()
    phases = [h["phase"] for h in result.loss_history]
    assert "k-polish" in phases and "k-reverted" not in phases
    modes = result.order_parameter_modes["modes"]
    assert sum(m["amplitude"] for m in modes if m["irrep"] in ("M2+", "R5-")) >= 0.95
    assert space_group(result.predicted_structure, 1e-3) == space_group(target, 1e-3) == (137, "P4_2/nmc")
    assert result.metrics["displacement_error_ratio"] <= 0.01


def test_where_the_steering_misses_the_secondary_content_is_shrunk():
    """a+b+c- (Pmmn, Howard & Stokes, Acta Cryst. B54, 782 (1998)), tilts 5, 6, 7 degrees: without X content the
    network stalls (the steered search is reverted); halving the X content of the first result, the network refitted
    after each halving, keeps the fit and leaves >= 95 % of the order parameter in M2+ and R5-."""
    _, target = tilted_perovskite("a+b+c-", [5.0, 6.0, 7.0])
    result = OrderParameterSearch(cubic_perovskite(), target, sites="Ti", irreps="1e").run()
    phases = [h["phase"] for h in result.loss_history]
    assert "k-reverted" in phases and "k-shrink" in phases
    modes = result.order_parameter_modes["modes"]
    assert sum(m["amplitude"] for m in modes if m["irrep"] in ("M2+", "R5-")) >= 0.95
    assert space_group(result.predicted_structure, 1e-3) == space_group(target, 1e-3) == (59, "Pmmn")
    assert result.metrics["displacement_error_ratio"] <= 0.01


def test_translations_are_found_before_subnormals_are_flushed(monkeypatch):
    """scipy's cKDTree (the translation tests) crashed the interpreter with subnormals flushed to zero, on the
    320-site antiphase search cell: the search finds the translations before it enters its runtime settings."""
    import torch

    import matsym.kvectors

    original = matsym.kvectors.cell_translations
    calls = []

    def checked(*args, **kwargs):
        calls.append(float(torch.tensor([1e-40], dtype=torch.float32) * 1.0) != 0.0)  # False while flushed
        return original(*args, **kwargs)

    monkeypatch.setattr(matsym.kvectors, "cell_translations", checked)
    _, target = tilted_perovskite("a0a0c-", 6.0)
    OrderParameterSearch(cubic_perovskite(), target, sites="Ti", irreps="1e", max_steps=20, fit_steps=20).run()
    assert calls == [True]  # found once, with subnormals kept

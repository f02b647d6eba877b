"""The batched and cached paths of matsym.modes agree with the per-operation, uncached ones.

The mode report of a search decomposes two fields on one parent; the parent's group, setting and site matrices
are built once and kept (``matsym.modes._decompose._parent``), operations are applied in one batched product
(``ParentGroup.apply_many``), Wigner matrices are built for all operations at once (``site_matrices``) and the
tables' Hall number is found by bisection. Each is checked here against the straightforward path it replaced.
Structures: SrTiO3 (Pm-3m, a = 3.905 Å, Ti 1a, Sr 1b, O 3d) and the a+b-b- tilt system of Howard & Stokes,
Acta Cryst. B54, 782 (1998), through matsym.structures; low-symmetry parents from matsym.modes._coverage.
"""

from __future__ import annotations

import numpy as np
import pytest

from matsym.modes import _decompose as dec
from matsym.modes import decompose, decompose_field
from matsym.modes._group import FieldBlock, block_matrix, field_blocks, parent_group, site_matrices
from matsym.structures import HOWARD_STOKES_TILTS, cubic_perovskite, tilted_perovskite


def _general(number: int):
    from matsym.modes._coverage import general_structure

    return general_structure(number)


@pytest.mark.parametrize("number", [221, 194, 14])
def test_apply_many_is_apply_for_each_operation_bit_for_bit(number):
    group = parent_group(cubic_perovskite() if number == 221 else _general(number))
    rho = site_matrices(group, field_blocks("0e+1o+2e+2o"))
    rng = np.random.default_rng(7)
    amp = rng.normal(size=(len(group.frac), rho.shape[1])) + 1j * rng.normal(size=(len(group.frac), rho.shape[1]))
    for k in (np.zeros(3), np.array([0.5, 0.5, 0.0]), np.array([1 / 3, 1 / 3, 0.0]), np.array([0.25, -1 / 6, 0.5])):
        gs = np.arange(group.n_ops)
        one_by_one = np.array([group.apply(g, amp, k, rho) for g in gs])
        assert np.array_equal(group.apply_many(gs, amp, k, rho), one_by_one)
        # leading dimensions are kept: two amplitudes at once
        both = group.apply_many(gs[::3], np.stack([amp, 2 * amp]), k, rho)
        assert np.array_equal(both[1], np.array([group.apply(g, 2 * amp, k, rho) for g in gs[::3]]))


def test_site_matrices_are_the_per_operation_block_matrices():
    group = parent_group(cubic_perovskite())
    blocks = (*field_blocks("0e+0o+1e+1o+2e+2o+3e+3o"), FieldBlock(1, -1, 32, cartesian=True))
    rho = site_matrices(group, blocks)
    for g, r in enumerate(group.cart_rotations):
        for b in blocks:
            sl = slice(b.start, b.start + b.dim)
            np.testing.assert_allclose(rho[g, sl, sl], block_matrix(b, r), rtol=0, atol=1e-13)
        # a representation: orthogonal, and off-diagonal blocks zero
        np.testing.assert_allclose(rho[g] @ rho[g].T, np.eye(rho.shape[1]), rtol=0, atol=1e-12)


def test_table_hall_number_by_bisection_is_the_first_standard_setting_of_each_group():
    from matsym.modes._labels import table_hall_number
    from matsym.symmetry import _spglib_raising

    settings: dict[int, list[tuple[int, str]]] = {}
    with _spglib_raising() as spglib:
        for h in range(1, 531):
            t = spglib.get_spacegroup_type(h)
            settings.setdefault(t.number, []).append((h, t.choice))
    assert len(settings) == 230
    for number, halls in settings.items():
        expected = next((h for h, choice in halls if choice in ("2", "H")), halls[0][0])
        assert table_hall_number(number) == expected, number


def test_cached_parent_gives_the_uncached_report_on_a_second_parent(monkeypatch):
    # two different parents in turn: the second one's report must not depend on what the first left in the cache
    monkeypatch.setattr(dec, "_PARENTS", {})
    cubic = cubic_perovskite()
    _, target = tilted_perovskite("a+b-b-", HOWARD_STOKES_TILTS["a+b-b-"])
    sc = _general(123).copy()
    sc.make_supercell([[1, 0, 0], [0, 1, 0], [0, 0, 2]])
    field = np.random.default_rng(3).normal(size=(len(sc), 9))

    fresh_tetragonal = decompose_field(_general(123), sc, field, irreps="1x1e+1x2e+1x0o").as_dict()
    dec._PARENTS.clear()
    fresh_cubic = decompose(cubic, target).as_dict()
    assert len(dec._PARENTS) == 1
    # now both parents are cached, in the other order
    again_tetragonal = decompose_field(_general(123), sc, field, irreps="1x1e+1x2e+1x0o").as_dict()
    again_cubic = decompose(cubic, target).as_dict()
    assert len(dec._PARENTS) == 2
    assert again_tetragonal == fresh_tetragonal and again_cubic == fresh_cubic
    assert fresh_cubic["subgroup"]["number"] == 62 and fresh_tetragonal["parent"]["space_group"]["number"] == 123
    # a parent that differs only by its species is another entry, not a hit
    swapped = cubic.copy()
    swapped.replace_species({"Sr": "Ba"})
    decompose_field(swapped, swapped, np.ones((len(swapped), 3)))
    assert len(dec._PARENTS) == 3


def test_cached_parent_arrays_are_read_only(monkeypatch):
    monkeypatch.setattr(dec, "_PARENTS", {})
    cached = dec._parent(cubic_perovskite(), 1e-3)
    assert dec._parent(cubic_perovskite(), 1e-3) is cached
    with pytest.raises(ValueError, match="read-only"):
        cached.group.frac[0, 0] = 0.5
    with pytest.raises(ValueError, match="read-only"):
        cached.rho(field_blocks(None))[0, 0, 0] = 2.0


def test_parents_decomposed_from_threads_give_the_serial_reports(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(dec, "_PARENTS", {})
    monkeypatch.setattr(dec, "_PARENTS_MAX", 2)  # fewer entries than parents: entries are evicted while in use
    rng = np.random.default_rng(11)
    cases = []
    for parent in (cubic_perovskite(), _general(123), _general(14)):
        sc = parent.copy()
        sc.make_supercell([[2, 0, 0], [0, 1, 0], [0, 0, 1]])
        cases.append((parent, sc, rng.normal(size=(len(sc), 3))))
    serial = [decompose_field(p, sc, f, kind="displacement").as_dict() for p, sc, f in cases]
    dec._PARENTS.clear()

    def report(i: int) -> dict:
        parent, sc, field = cases[i % 3]
        return decompose_field(parent, sc, field, kind="displacement").as_dict()

    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(report, range(12)))
    assert all(threaded[i] == serial[i % 3] for i in range(12))
    assert len(dec._PARENTS) == 2

"""Symmetry modes (matsym.modes): projectors, amplitudes, labels, isotropy subgroups, the ``matsym modes`` command.

Physics checked as physics: the projectors are computed from the parent's operations and spgrep's irreps and are
checked for the properties every set of irrep projectors has (real on real fields, idempotent, mutually
orthogonal, summing to the identity) on parents of five crystal systems; amplitudes against the ISODISTORT
normalisation worked out from the geometry; labels against the Howard & Stokes tilt table (Acta Cryst. B54, 782
(1998)) and the Bilbao tables; isotropy subgroups against spglib on the target.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from matsym.errors import InputError, MatsymError
from matsym.modes import decompose, decompose_field, labels_available
from matsym.modes._decompose import mode_fields
from matsym.structures import HOWARD_STOKES_TILTS, cubic_perovskite, tilted_perovskite
from matsym.symmetry import space_group

A0 = 3.9
# CDML labels need the optional tables (pip install matsym[labels]); `make test` installs them
needs_labels = pytest.mark.skipif(not labels_available(), reason="irreptables (matsym[labels]) not installed")


def _perovskite_b_at_origin(a: float = A0) -> Structure:
    """SrTiO3 with Ti at 1a: Ti (0,0,0), Sr (1/2,1/2,1/2), O (1/2,0,0), (0,1/2,0), (0,0,1/2)."""
    return Structure(
        Lattice.cubic(a),
        ["Sr", "Ti", "O", "O", "O"],
        [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]],
    )


def _general(number: int) -> Structure:
    from matsym.modes._coverage import general_structure

    return general_structure(number)


def _check_projectors(parent: Structure, supercell_matrix, irreps: str | None = None, seed: int = 0) -> int:
    sc = parent.copy()
    sc.make_supercell(supercell_matrix)
    rng = np.random.default_rng(seed)
    dim = 3 if irreps is None else sum((2 * int(t[-2]) + 1) * int(t.split("x")[0]) for t in irreps.split("+"))
    f = rng.normal(size=(len(sc), dim))
    comps = mode_fields(parent, sc, f, irreps=irreps)
    scale = float(np.abs(f).max())
    # real on a real field
    assert max(float(np.abs(c.imag).max()) for _, c in comps) < 1e-10 * scale
    # sum to the identity
    assert np.abs(sum(c.real for _, c in comps) - f).max() < 1e-10 * scale
    # mutually orthogonal
    gram = np.array([[np.vdot(a, b).real for _, b in comps] for _, a in comps])
    assert np.abs(gram - np.diag(np.diag(gram))).max() < 1e-9 * float(np.sum(f * f))
    # idempotent: a component decomposes into itself
    for name, c in comps[:6]:
        again = mode_fields(parent, sc, c.real, irreps=irreps)
        assert len(again) == 1 and again[0][0] == name
        assert np.abs(again[0][1].real - c.real).max() < 1e-9 * scale
    return len(comps)


@pytest.mark.parametrize(
    ("system", "parent", "matrix"),
    [
        ("cubic", _perovskite_b_at_origin(), 2 * np.eye(3, dtype=int)),
        ("cubic, √2×√2×2", _perovskite_b_at_origin(), [[1, 1, 0], [-1, 1, 0], [0, 0, 2]]),
        ("tetragonal P4/mmm", _general(123), [[1, 0, 0], [0, 1, 0], [0, 0, 2]]),
        ("hexagonal P6_3/mmc", _general(194), [[1, 0, 0], [0, 1, 0], [0, 0, 1]]),
        ("trigonal R-3m", _general(166), [[1, 0, 0], [0, 1, 0], [0, 0, 1]]),
        ("monoclinic P2_1/c", _general(14), [[2, 0, 0], [0, 1, 0], [0, 0, 1]]),
    ],
)
def test_projectors_are_real_idempotent_orthogonal_and_complete(system, parent, matrix):
    assert _check_projectors(parent, matrix) >= 2, system


@pytest.mark.parametrize("irreps", ["1x1e", "1x2e+1x0o"])
def test_projectors_on_pseudovectors_and_rank_two_fields(irreps):
    # 1e transforms with det(R) R, 2e with e3nn's Wigner matrices in matsym's standard basis
    _check_projectors(_perovskite_b_at_origin(), 2 * np.eye(3, dtype=int), irreps=irreps, seed=1)


def _a0a0c_minus_first_order(theta_deg: float = 8.0, a: float = A0) -> tuple[Structure, Structure, float]:
    """40-atom 2×2×2 cell, Ti at 1a, anti-phase rotations about z to first order: O in the TiO2 planes move by
    θ·a/2 perpendicular to the Ti-O bond, with the sign (-1)^(nx+ny+nz) of their octahedron."""
    parent = _perovskite_b_at_origin(a)
    sc = parent.copy()
    sc.make_supercell(2 * np.eye(3, dtype=int))
    theta = math.radians(theta_deg)
    ti = [s.coords for s in sc if s.species_string == "Ti"]
    disp = np.zeros((len(sc), 3))
    for j, site in enumerate(sc):
        if site.species_string != "O":
            continue
        # the Ti at -a/2 along the bond (wrapped into the supercell)
        for r in ti:
            d = site.coords - r
            d -= np.rint(d @ np.linalg.inv(sc.lattice.matrix)) @ sc.lattice.matrix
            if np.isclose(np.linalg.norm(d), a / 2) and np.all(d >= -1e-9) and abs(d[2]) < 1e-9:
                n = np.rint(r / a).astype(int)
                disp[j] = (-1) ** int(n.sum()) * theta * np.cross([0, 0, 1.0], d)
    target = Structure(sc.lattice, sc.species, sc.cart_coords + disp, coords_are_cartesian=True)
    return parent, target, theta * a / 2


@needs_labels
def test_a0a0c_minus_normalisation_follows_isodistort():
    parent, target, u = _a0a0c_minus_first_order()
    assert u == pytest.approx(0.2723, abs=1e-4)
    r = decompose(parent, target)
    assert r.subgroup["number"] == space_group(target)[0] == 140
    assert [m.irrep for m in r.modes] == ["R4+"]
    mode = r.modes[0]
    # 16 of 24 O move u; the I4/mcm primitive cell holds 2 of the 8 parent cells (s = 2), a quarter of the 40
    assert r.supercell_size == pytest.approx(2.0)
    assert mode.amplitude == pytest.approx(math.sqrt(16 * u**2 / 4), rel=1e-9)
    assert mode.amplitude == pytest.approx(0.5445, abs=1e-4)
    assert mode.amplitude_parent == pytest.approx(0.3850, abs=1e-4)
    assert mode.subgroup == {"number": 140, "symbol": "I4/mcm"}
    assert mode.dimension == 3 and mode.star == 1 and mode.k_name == "R"
    assert mode.pattern.count("0") == 2  # one tilt axis: (a,0,0) in some order
    assert {s["species"] for s in mode.sites} == {"O"}
    assert r.glazer == "a0a0c-"
    assert "origin as given" in r.parent["origin"]["description"]


HOWARD_STOKES = HOWARD_STOKES_TILTS  # Howard & Stokes, Acta Cryst. B54, 782 (1998), Table 2


def _primary(r, share: float = 0.05) -> set[str]:
    return {m.irrep for m in r.modes if m.amplitude**2 >= share * r.total**2}


@needs_labels
@pytest.mark.parametrize("glazer", list(HOWARD_STOKES))
def test_tilt_systems_read_m3_plus_and_r4_plus_with_b_at_1a(glazer):
    _, target = tilted_perovskite(glazer, HOWARD_STOKES[glazer])
    r = decompose(cubic_perovskite(), target, origin=(0.5, 0.5, 0.5))  # builder has Sr at 0: move Ti there
    expected = ({"M3+"} if "+" in glazer else set()) | ({"R4+"} if "-" in glazer else set())
    assert _primary(r) == expected
    assert r.subgroup["number"] == space_group(target)[0]
    assert r.glazer == glazer
    assert "Ti 1a" in r.parent["origin"]["description"]
    assert sum(m.amplitude**2 for m in r.modes) == pytest.approx(r.total**2, rel=1e-6)


@needs_labels
@pytest.mark.parametrize("glazer", ["a0a0c+", "a-a-a-", "a+b-b-", "a+a+c-"])
def test_tilt_systems_read_m2_plus_and_r5_minus_with_a_at_1a(glazer):
    _, target = tilted_perovskite(glazer, HOWARD_STOKES[glazer])
    r = decompose(cubic_perovskite(), target)
    expected = ({"M2+"} if "+" in glazer else set()) | ({"R5-"} if "-" in glazer else set())
    assert _primary(r) == expected
    assert r.subgroup["number"] == space_group(target)[0]
    assert "Sr 1a" in r.parent["origin"]["description"]


@needs_labels
@pytest.mark.parametrize("number", [1, 2, 14, 62, 122, 141, 142, 148, 166, 194, 221, 227])
def test_character_matching_is_one_to_one(number):
    from matsym.modes._coverage import group_coverage

    c = group_coverage(number)
    assert c.kpoints >= 1 and c.matched == c.kpoints, c.failures


@needs_labels
def test_without_the_tables_labels_fall_back_to_k_and_index_with_the_same_numbers(monkeypatch):
    from matsym.modes import _labels

    _, target = tilted_perovskite("a+b-b-", HOWARD_STOKES["a+b-b-"])
    with_tables = decompose(cubic_perovskite(), target, origin=(0.5, 0.5, 0.5))
    monkeypatch.setattr(_labels, "_tables_dir", lambda: None)
    _labels.load_table.cache_clear()
    try:
        plain = decompose(cubic_perovskite(), target, origin=(0.5, 0.5, 0.5))
    finally:
        _labels.load_table.cache_clear()
    assert plain.labels == "index" and with_tables.labels == "bilbao"
    names = [m.irrep for m in plain.modes]
    assert all(", irrep " in n and " of " in n for n in names), names
    assert [m.amplitude for m in plain.modes] == pytest.approx([m.amplitude for m in with_tables.modes], rel=1e-9)
    assert [m.subgroup for m in plain.modes] == [m.subgroup for m in with_tables.modes]
    assert plain.subgroup == with_tables.subgroup
    assert "matsym[labels]" in plain.parent["origin"]["description"]


def test_result_round_trips_through_json_and_is_frozen():
    from matsym.modes import ModeDecomposition

    _, target = tilted_perovskite("a+b-b-", HOWARD_STOKES["a+b-b-"])
    r = decompose(cubic_perovskite(), target)
    d = json.loads(r.to_json())
    assert set(d) >= {"parent", "subgroup", "modes", "strain"}
    assert set(d["modes"][0]) >= {"irrep", "k", "dimension", "amplitude", "amplitude_parent", "direction",
                                  "subgroup", "sites"}
    back = ModeDecomposition.from_dict(d)
    assert back == r
    with pytest.raises(AttributeError):
        r.total = 0.0  # type: ignore[misc]
    with pytest.raises(MatsymError, match="lacks"):
        ModeDecomposition.from_dict({"parent": {}})


@needs_labels
def test_learned_pseudovectors_report_shares_of_the_squared_norm():
    # a 1e pseudovector on Ti, anti-phase about z: the R4+ tilt pattern as an order parameter (std basis y,z,x)
    parent = _perovskite_b_at_origin()
    sc = parent.copy()
    sc.make_supercell(2 * np.eye(3, dtype=int))
    field = np.zeros((len(sc), 3))
    for j, s in enumerate(sc):
        if s.species_string == "Ti":
            n = np.rint(s.coords / A0).astype(int)
            field[j] = [0.0, (-1) ** int(n.sum()), 0.0]  # z component
    r = decompose_field(parent, sc, field, irreps="1x1e")
    assert r.kind == "order_parameter"
    assert [m.irrep for m in r.modes] == ["R4+"] and r.modes[0].amplitude == pytest.approx(1.0)
    assert r.subgroup["number"] == 140
    # as a polar vector (1o) the same numbers are an R4- pattern
    r_polar = decompose_field(parent, sc, field, irreps="1x1o")
    assert [m.irrep for m in r_polar.modes] == ["R4-"]


def test_bad_inputs_raise_clear_errors():
    parent = _perovskite_b_at_origin()
    with pytest.raises(InputError, match="origin"):
        decompose(parent, parent, origin=(0.5, 0.5))
    with pytest.raises(InputError, match="field"):
        decompose_field(parent, parent, np.zeros((4, 3)))
    with pytest.raises(InputError, match="components per site"):
        decompose_field(parent, parent, np.zeros((5, 3)), irreps="1x2e")


@needs_labels
def test_modes_command_prints_table_json_and_plot(tmp_path, capsys):
    from matsym.cli import main

    _, target = tilted_perovskite("a+b-b-", HOWARD_STOKES["a+b-b-"])
    cubic_perovskite().to(filename=str(tmp_path / "parent.cif"))
    target.to(filename=str(tmp_path / "target.cif"))
    args = [str(tmp_path / "parent.cif"), str(tmp_path / "target.cif"), "--origin", "1/2,1/2,1/2"]
    assert main(["modes", *args, "--plot", str(tmp_path / "modes.png")]) == 0
    text = capsys.readouterr().out
    assert "R4+" in text and "M3+" in text and "Pnma" in text and "a+b-b-" in text
    assert (tmp_path / "modes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["modes", *args, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["subgroup"] == {"number": 62, "symbol": "Pnma"}
    assert d["parent"]["space_group"] == {"number": 221, "symbol": "Pm-3m"}
    assert d["parent"]["origin"]["shift"] == [0.5, 0.5, 0.5]
    assert {m["irrep"] for m in d["modes"]} >= {"R4+", "M3+"}
    # the plot is not overwritten without --force; bad origin is a usage error
    assert main(["modes", *args, "--plot", str(tmp_path / "modes.png")]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["modes", *args[:2], "--origin", "1/2,x,0"]) == 2


# ------------------------------------------------------------------------------------------------------------
# published structures (coordinates as published, expanded with spglib's operations of the stated setting)
# ------------------------------------------------------------------------------------------------------------


def _hall(number: int, choice: str | None = None) -> int:
    from matsym.symmetry import _spglib_raising

    with _spglib_raising() as spglib:
        halls = [h for h in range(1, 531) if spglib.get_spacegroup_type(h).number == number]
        return halls[0] if choice is None else next(h for h in halls if spglib.get_spacegroup_type(h).choice == choice)


def _from_asymmetric_unit(hall: int, lattice: Lattice, sites) -> Structure:
    from matsym.symmetry import _spglib_raising

    with _spglib_raising() as spglib:
        ops = spglib.get_symmetry_from_database(hall)
    species, points = [], []
    for element, x in sites:
        orbit: list[np.ndarray] = []
        for r, t in zip(ops["rotations"], ops["translations"], strict=True):
            y = (r @ np.asarray(x, float) + t) % 1.0
            if not any(np.abs((y - z) - np.rint(y - z)).max() < 1e-4 for z in orbit):
                orbit.append(y)
        points += orbit
        species += [element] * len(orbit)
    return Structure(lattice, species, points)


def _zro2():
    # fluorite ZrO2, a = 5.09 Å (primitive cell); tetragonal ZrO2 P4_2/nmc (origin choice 1), a = 3.5984 Å,
    # c = 5.1520 Å, Zr 2a, O 4d (0, 1/2, 0.2044): Howard, Hill & Reichert, Acta Cryst. B44, 116 (1988)
    a = 5.09
    parent = Structure(
        Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]]),
        ["Zr", "O", "O"],
        [[0, 0, 0], [0.25, 0.25, 0.25], [0.75, 0.75, 0.75]],
    )
    target = _from_asymmetric_unit(
        _hall(137, "1"), Lattice.tetragonal(3.5984, 5.1520), [("Zr", (0, 0, 0)), ("O", (0, 0.5, 0.2044))]
    )
    return parent, target, 137, {"X2-"}


def _ymno3():
    # P6_3cm YMnO3 at room temperature: Gibbs, Knight & Lightfoot, PRB 83, 094111 (2011); the P6_3/mmc parent is
    # the idealised high-temperature structure (a = 3.61 Å, c = 11.40 Å, Y 2a, Mn 2c, O 4f z = 0.0866, O 2b)
    parent = _from_asymmetric_unit(
        _hall(194),
        Lattice.hexagonal(3.61, 11.40),
        [("Y", (0, 0, 0)), ("Mn", (1 / 3, 2 / 3, 1 / 4)), ("O", (1 / 3, 2 / 3, 0.0866)), ("O", (0, 0, 1 / 4))],
    )
    target = _from_asymmetric_unit(
        _hall(185),
        Lattice.hexagonal(6.1387, 11.4071),
        [
            ("Y", (0, 0, 0.2743)),
            ("Y", (1 / 3, 2 / 3, 0.2335)),
            ("Mn", (0.3352, 0, 0)),
            ("O", (0.3083, 0, 0.1627)),
            ("O", (0.6413, 0, 0.3362)),
            ("O", (0, 0, 0.4734)),
            ("O", (1 / 3, 2 / 3, 0.0186)),
        ],
    )
    # K3 primary with GM2- (the polarisation) secondary: Fennie & Rabe, PRB 72, 100103(R) (2005)
    return parent, target, 185, {"K3", "GM2-"}


def _vo2():
    # rutile VO2: McWhan et al., PRB 10, 490 (1974); monoclinic M1: Longo & Kierkegaard, Acta Chem. Scand. 24,
    # 420 (1970)
    parent = _from_asymmetric_unit(
        _hall(136), Lattice.tetragonal(4.5546, 2.8514), [("V", (0, 0, 0)), ("O", (0.3001, 0.3001, 0))]
    )
    target = _from_asymmetric_unit(
        _hall(14),
        Lattice.monoclinic(5.7517, 4.5378, 5.3825, 122.646),
        [("V", (0.23947, 0.97894, 0.02646)), ("O", (0.10616, 0.21185, 0.20859)), ("O", (0.40051, 0.70258, 0.29884))],
    )
    return parent, target, 14, None


def _quartz():
    # beta quartz P6_222: Wright & Lehmann, J. Solid State Chem. 36, 371 (1981); alpha quartz P3_221: Le Page &
    # Donnay, Acta Cryst. B32, 2456 (1976), origin moved by c/3·2 to the ITA setting (Si 3a at z = 2/3)
    parent = _from_asymmetric_unit(
        _hall(180), Lattice.hexagonal(4.9977, 5.4601), [("Si", (0.5, 0, 0)), ("O", (0.2072, 0.4144, 0.5))]
    )
    target = _from_asymmetric_unit(
        _hall(154),
        Lattice.hexagonal(4.9134, 5.4052),
        [("Si", (0.4697, 0, 2 / 3)), ("O", (0.4135, 0.2669, 0.1191 + 2 / 3))],
    )
    return parent, target, 154, {"GM3"}


@needs_labels
@pytest.mark.parametrize("case", [_zro2, _ymno3, _vo2, _quartz], ids=["ZrO2", "YMnO3", "VO2", "quartz"])
def test_published_distortions_decompose_into_modes_of_the_targets_group(case):
    from matsym.registration import register

    parent, target, number, primary = case()
    assert space_group(target)[0] == number
    r = decompose(parent, target)
    assert r.subgroup["number"] == number
    # the amplitudes add in quadrature to the total, and the total is the registration's displacements
    reg = register(parent, target)
    n_cells = len(target) / len(parent) * _primitive_sites_ratio(parent)
    total2 = r.supercell_size * float(np.sum(reg.displacements**2)) / n_cells
    assert r.total**2 == pytest.approx(total2, rel=1e-6)
    assert sum(m.amplitude**2 for m in r.modes) == pytest.approx(r.total**2, rel=1e-6)
    if primary is not None:
        assert _primary(r, share=0.01) == primary


def _primitive_sites_ratio(parent: Structure) -> float:
    from matsym.modes._group import parent_group

    return len(parent) / len(parent_group(parent).frac)


def test_search_results_carry_modes_of_the_order_parameter_and_the_decoded_displacements():
    from types import SimpleNamespace

    from matsym.modes import result_modes
    from matsym.registration import register

    _, target = tilted_perovskite("a+b-b-", HOWARD_STOKES["a+b-b-"])
    parent = cubic_perovskite()
    reg = register(parent, target)
    disp = np.asarray(reg.displacements)
    # the displacements as a 1o order parameter in matsym's standard basis (y, z, x) and as decoded displacements
    fake = SimpleNamespace(
        parent=reg.parent,
        registration=reg.as_dict(),
        nothing_to_find=False,
        order_parameter=disp[:, [1, 2, 0]],
        irreps="1x1o",
        predicted_displacements=disp,
    )
    op_modes, dist_modes = result_modes(fake)
    direct = decompose(parent, target)
    assert [m["irrep"] for m in dist_modes["modes"]] == [m.irrep for m in direct.modes]
    assert [m["amplitude"] for m in dist_modes["modes"]] == pytest.approx([m.amplitude for m in direct.modes])
    shares = {m["irrep"]: m["amplitude"] for m in op_modes["modes"]}
    assert shares == pytest.approx({m.irrep: m.amplitude**2 / direct.total**2 for m in direct.modes})
    assert op_modes["kind"] == "order_parameter" and dist_modes["subgroup"]["number"] == 62


@needs_labels
def test_a_supercell_parent_gives_the_modes_of_its_primitive_cell():
    # spglib lists only the operations that keep the given cell's lattice: the √2×√2×1 cell alone would lose the
    # 3-fold axes; the decomposition works on the primitive cell, so both parents give the same report
    parent = cubic_perovskite()
    big = parent.copy()
    big.make_supercell([[1, 1, 0], [-1, 1, 0], [0, 0, 1]])
    _, target = tilted_perovskite("a0a0c-", HOWARD_STOKES["a0a0c-"])
    small_r, big_r = decompose(parent, target), decompose(big, target)
    assert [(m.irrep, m.dimension) for m in big_r.modes] == [(m.irrep, m.dimension) for m in small_r.modes]
    assert [m.amplitude for m in big_r.modes] == pytest.approx([m.amplitude for m in small_r.modes], rel=1e-9)
    assert big_r.subgroup == small_r.subgroup and big_r.glazer == small_r.glazer == "a0a0c-"


@needs_labels
def test_label_coverage_script_reports_one_to_one_matching(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "modes_label_coverage.py"
    spec = importlib.util.spec_from_file_location("matsym_example_modes_label_coverage", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--groups", "62,221"]) == 0
    out = capsys.readouterr().out
    assert "2 space groups" in out and ", 0 not (" in out

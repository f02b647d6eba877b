"""The ``matsym`` command, run as a subprocess on real files."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from matsym.io import write_structure
from matsym.result import OrderParameterResult
from matsym.structures import cubic_perovskite, tilted_perovskite
from matsym.symmetry import verify_space_group

STRAIN = (1.02, 0.985, 1.015)  # scale factors of the three (orthogonal) lattice vectors of the Pbnm cell
SHIFT = (0.13, 0.27, 0.41)  # fractional origin shift, not a lattice vector
PBNM_HALL_NUMBER = 294  # spglib's Hall number of the "cab" (Pbnm) setting of space group 62


def to_pbnm(target: Structure) -> Structure:
    """tilted_perovskite("a+b-b-") is in the Pnam setting (a, -c, b of Pnma); (b, a, -c) of it is Pbnm.

    The permutation swaps two axes and flips the third, so the cell stays right-handed.
    """
    lat = target.lattice.matrix
    frac = target.frac_coords[:, [1, 0, 2]] * np.array([1.0, 1.0, -1.0])
    return Structure(Lattice(np.array([lat[1], lat[0], -lat[2]])), target.species, frac)


def disguise(target: Structure) -> Structure:
    """Pbnm setting, shifted origin, strained lattice (fractional coordinates kept)."""
    pbnm = to_pbnm(target)
    lattice = pbnm.lattice.matrix * np.array(STRAIN)[:, None]
    return Structure(Lattice(lattice), pbnm.species, pbnm.frac_coords + np.array(SHIFT))


def run(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "matsym", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_user_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 1, exactly one non-empty stderr line starting with 'matsym: error:', no traceback."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("matsym: error:"), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """parent.cif (5-atom cubic), target.cif (Pnma in Pbnm, shifted, strained), and a few bad files."""
    folder = tmp_path_factory.mktemp("cli")
    _, target = tilted_perovskite("a+b-b-", 8.0)
    write_structure(cubic_perovskite(), folder / "parent.cif")
    write_structure(disguise(target), folder / "target.cif")
    write_structure(cubic_perovskite(species=("Ca", "Ti", "O")), folder / "other_composition.cif")
    write_structure(cubic_perovskite(a=5.0), folder / "too_big.cif")
    disordered = cubic_perovskite()
    disordered.replace(0, {"Sr": 0.5, "Ba": 0.5})
    write_structure(disordered, folder / "disordered.cif")
    (folder / "garbage.cif").write_text("this is not a CIF file\n{}[]\n")
    return folder


def test_target_is_in_pbnm_setting(files, monkeypatch):
    """The acceptance target is Pnma in the Pbnm setting: spglib's Pbnm transformation is the identity."""
    import spglib

    monkeypatch.setattr(spglib.error, "OLD_ERROR_HANDLING", False, raising=False)
    target = Structure.from_file(files / "target.cif")
    assert verify_space_group(target, symprecs=(1e-3,), expect="Pbnm")
    cell = (target.lattice.matrix, target.frac_coords, [site.specie.Z for site in target])
    dataset = spglib.get_symmetry_dataset(cell, symprec=1e-3, hall_number=PBNM_HALL_NUMBER)
    np.testing.assert_allclose(dataset.transformation_matrix, np.eye(3), atol=1e-8)
    assert np.linalg.det(target.lattice.matrix) > 0


@pytest.fixture(scope="module")
def found(files) -> tuple[Path, dict]:
    """The acceptance run: `matsym find parent.cif target.cif --sites Ti --irreps 1e --out d` (with a
    300-step search budget to keep it short, ``--threads auto``, and --json)."""
    args = [
        "find",
        "parent.cif",
        "target.cif",
        "--sites",
        "Ti",
        "--irreps",
        "1e",
        "--steps",
        "300",
        "--threads",
        "auto",
        "--out",
        "d",
        "--json",
    ]
    proc = run(*args, cwd=files)
    assert proc.returncode == 0, proc.stderr
    return files / "d", json.loads(proc.stdout)


def test_find_recovers_b_site_pseudovectors(found, files):
    out, report = found
    for name in ("result.json", "predicted.cif", "model.safetensors"):
        assert (out / name).is_file()
    assert report["files"]["predicted"] == str(Path("d") / "predicted.cif")
    assert report["nothing_to_find"] is False
    assert report["curie_compatible"] is False
    assert report["space_groups"] == {"0.001": [62, "Pnma"], "0.01": [62, "Pnma"]}
    assert report["irrep_fractions"]["1e"] > 0.999
    assert OrderParameterResult.from_json(out / "result.json").settings["config"]["threads"] == "auto"

    result = OrderParameterResult.from_json(out / "result.json")
    ti = [i for i, site in enumerate(result.parent) if site.specie.symbol == "Ti"]
    assert len(ti) == 4 and sorted(result.sites.tolist()) == ti
    norms = np.linalg.norm(result.order_parameter, axis=1)
    assert np.all(norms[ti] > 1e-3 * norms.max())  # a pseudovector on every B site ...
    assert np.all(norms[[i for i in range(len(norms)) if i not in ti]] == 0)  # ... and nowhere else
    for i in ti:
        assert result.irrep_fractions(i)["1e"] > 0.999
    # the registration found the strain that was applied (principal strains are the scale factors - 1)
    strain = np.linalg.eigvalsh(np.asarray(result.registration["strain"]))
    np.testing.assert_allclose(np.sort(strain), np.sort(np.array(STRAIN) - 1), atol=1e-6)


def test_verify_predicted_is_pnma(found, files):
    proc = run("verify", "d/predicted.cif", "--expect", "Pnma", cwd=files)
    assert proc.returncode == 0, proc.stderr
    assert "Pnma" in proc.stdout
    proc = run("verify", "d/predicted.cif", "--symprec", "1e-3", "1e-2", "--json", cwd=files)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["space_groups"] == {"0.001": [62, "Pnma"], "0.01": [62, "Pnma"]}


def test_verify_expect_mismatch_is_one_line(found, files):
    proc = run("verify", "parent.cif", "--expect", "Pnma", cwd=files)
    assert_user_error(proc, "Pnma", "221")


def test_distort_half_amplitude(found, files):
    proc = run("distort", "parent.cif", "--result", "d/result.json", "--amplitude", "0.5", "-o", "half.cif",
               "--json", cwd=files)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["matched_as"] == "original parent"
    assert report["space_groups"] == {"0.001": [62, "Pnma"], "0.01": [62, "Pnma"]}
    result = OrderParameterResult.from_json(files / "d" / "result.json")
    half = Structure.from_file(files / "half.cif")
    assert len(half) == len(result.parent)
    # a CIF stores fractional coordinates to 8 decimals: half the displacements within 1e-6 Å
    d = half.frac_coords - result.parent.frac_coords
    d -= np.round(d)
    np.testing.assert_allclose(d @ result.parent.lattice.matrix, 0.5 * result.predicted_displacements, atol=1e-6)

    again = run("distort", "parent.cif", "--result", "d/result.json", "-o", "half.cif", cwd=files)
    assert_user_error(again, "half.cif", "--force")
    assert Structure.from_file(files / "half.cif") == half  # untouched

    extra = run("distort", "parent.cif", "--result", "d/result.json", "--amplitude", "1.5", "-o", "more.cif",
                cwd=files)  # fmt: skip
    assert extra.returncode == 0, extra.stderr
    assert "matsym: warning:" in extra.stderr and "extrapolat" in extra.stderr


def test_find_refuses_to_overwrite(found, files):
    before = (files / "d" / "result.json").read_bytes()
    proc = run("find", "parent.cif", "target.cif", "--out", "d", "--no-progress", cwd=files)
    assert_user_error(proc, "exists", "--force")
    assert (files / "d" / "result.json").read_bytes() == before


def test_check_reports_verdict(files):
    proc = run("check", "parent.cif", "target.cif", "--json", "--no-progress", cwd=files)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["compatible"] is False
    assert "incompatible" in report["verdict"]


def test_identical_target_has_nothing_to_find(files):
    proc = run("find", "parent.cif", "parent.cif", "--out", "same", "--no-progress", cwd=files)
    assert proc.returncode == 0, proc.stderr
    assert "nothing to find" in proc.stdout.lower()
    result = OrderParameterResult.from_json(files / "same" / "result.json")
    assert result.nothing_to_find
    assert np.abs(result.predicted_displacements).max() == 0


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("find", "missing.cif", "target.cif", "--out", "e1"), ("missing.cif",)),
        (("find", "garbage.cif", "target.cif", "--out", "e2"), ("garbage.cif",)),
        (("find", "other_composition.cif", "target.cif", "--out", "e3"), ("composition",)),
        (("find", "parent.cif", "too_big.cif", "--out", "e4"), ("no supercell relation",)),
        (("find", "disordered.cif", "target.cif", "--out", "e5"), ("disordered",)),
        (("verify", "missing.cif"), ("missing.cif",)),
        (("find", "parent.cif", "target.cif", "--out", "e6", "--device", "warp9"), ("device", "warp9")),
    ],
    ids=["missing", "unreadable", "composition", "no-supercell", "disordered", "verify-missing", "bad-device"],
)
def test_user_errors_are_one_line(files, args, fragments):
    proc = run(*args, "--no-progress", cwd=files) if args[0] == "find" else run(*args, cwd=files)
    assert_user_error(proc, *fragments)
    assert proc.stdout == ""
    if args[0] == "find":
        assert not (files / args[-1]).exists()  # nothing written


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("frobnicate",),
        ("find", "parent.cif"),
        ("verify", "parent.cif", "--symprec", "-1"),
        ("distort", "parent.cif", "-o", "x.cif"),
        ("find", "parent.cif", "target.cif", "--out", "d", "--steps", "zero"),
        ("find", "parent.cif", "target.cif", "--out", "d", "--threads", "0"),
    ],
    ids=["no-command", "unknown-command", "missing-args", "bad-symprec", "no-result", "bad-steps", "bad-threads"],
)
def test_usage_errors_exit_2(files, args):
    proc = run(*args, cwd=files)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "usage:" in proc.stderr


def test_help_is_light(tmp_path):
    """`matsym --help` imports no heavy module (torch, pymatgen, ase, spglib, e3nn), so it starts at once."""
    for args in ([], ["find"], ["distort"], ["check"], ["verify"]):
        code = (
            "import sys, contextlib, io\n"
            "from matsym.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    status = main({[*args, '--help']!r}, standalone=True)\n"
            "heavy = {'torch', 'pymatgen', 'ase', 'spglib', 'e3nn'}\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & heavy)\n"
            "print(status, heavy)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
        assert proc.stdout.strip() == "0 []", (args, proc.stdout, proc.stderr)


def test_standalone_run_imports_with_collection_paused_then_frozen(tmp_path):
    """The console entry point imports a command's heavy modules with the garbage collector paused and freezes
    them (matsym.cli._preload); the collector is on again for the command itself. Only what the command uses is
    preloaded (``distort`` and ``verify`` never import torch; pymatgen's CIF module only for a CIF), and ``main``
    called from a program that goes on (standalone off) leaves the collector alone."""
    code = (
        "import gc, sys\n"
        "from matsym.cli import _heavy_imports, _preload, build_parser\n"
        "calls = []\n"
        "gc.callbacks.append(lambda phase, info: calls.append(info['generation']) if phase == 'start' else None)\n"
        "modules = _heavy_imports(build_parser().parse_args(sys.argv[1:]))\n"
        "before = len(calls)\n"
        "_preload(modules)\n"
        "print(gc.isenabled(), gc.get_freeze_count() > 10000, 'torch' in sys.modules, 'pymatgen.io.cif' in sys.modules,"
        " len(calls) - before)\n"
    )
    cases = {
        # nothing collected while they import
        ("find", "a.cif", "b.cif", "-o", "run"): ["True", "True", "True", "True", "0"],
        ("check", "a.vasp", "b.vasp"): ["True", "True", "True", "False", "0"],
        ("verify", "a.cif"): ["True", "True", "False", "True", "0"],
        ("distort", "a.vasp", "--result", "r.json", "-o", "b.vasp"): ["True", "True", "False", "False", "0"],
        ("modes", "a.cif", "b.cif"): ["True", "False", "False", "False", "0"],  # not preloaded: nothing frozen
    }
    for args, expected in cases.items():
        proc = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=tmp_path, check=True
        )
        assert proc.stdout.split() == expected, (args, proc.stdout, proc.stderr)
    from matsym.cli import main

    write_structure(cubic_perovskite(), tmp_path / "cubic.cif")
    before = gc.get_freeze_count()
    assert main(["verify", str(tmp_path / "cubic.cif"), "--expect", "Pm-3m"]) == 0
    assert gc.get_freeze_count() == before and gc.isenabled()


def test_standalone_exit_keeps_status_output_and_atexit_handlers(tmp_path):
    """The entry point ends a preloaded command without the interpreter's teardown (matsym.cli._exit_without_teardown):
    the exit status, everything printed on stdout and stderr, and atexit handlers registered during the run are kept."""
    write_structure(cubic_perovskite(), tmp_path / "cubic.cif")
    code = (
        "import atexit, sys\n"
        "from matsym import cli\n"
        "atexit.register(lambda: open('atexit-ran', 'w').write('yes'))\n"
        "sys.argv = ['matsym', *sys.argv[1:]]\n"
        "cli.run()\n"
    )
    ok = subprocess.run(
        [sys.executable, "-c", code, "verify", "cubic.cif", "--json"], capture_output=True, text=True, cwd=tmp_path
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["space_groups"]["0.001"] == [221, "Pm-3m"]
    assert (tmp_path / "atexit-ran").read_text() == "yes"
    (tmp_path / "atexit-ran").unlink()
    bad = subprocess.run(
        [sys.executable, "-c", code, "verify", "cubic.cif", "--expect", "Pnma"], capture_output=True, text=True,
        cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 1 and bad.stderr.startswith("matsym: error: expected Pnma"), bad.stderr
    assert (tmp_path / "atexit-ran").read_text() == "yes"


def test_interrupt_while_preloading_ends_like_any_interrupt(tmp_path):
    """Ctrl-C while the entry point imports torch (simulated: the import raises KeyboardInterrupt) gives the usual
    one line and exit status 130, not a traceback."""
    code = (
        "import importlib, sys\n"
        "from matsym import cli\n"
        "real = importlib.import_module\n"
        "def interrupted(name, *args):\n"
        "    if name == 'torch':\n"
        "        raise KeyboardInterrupt\n"
        "    return real(name, *args)\n"
        "importlib.import_module = interrupted\n"
        "sys.argv = ['matsym', 'find', 'a.cif', 'b.cif', '-o', 'run']\n"
        "cli.run()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 130 and proc.stderr.strip() == "matsym: interrupted", proc.stderr


def test_console_script_matches_module(tmp_path):
    script = Path(sys.executable).with_name("matsym")
    if not script.exists():
        pytest.skip("console script not installed next to the interpreter")
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("matsym ")


def test_search_options_reach_the_search_settings():
    """``--no-steer``, ``--no-reduce`` and ``--threads auto`` become search settings (find and screen share them)."""
    from matsym.cli import build_parser, search_settings

    find = ["find", "p.cif", "t.cif", "--out", "d"]
    args = build_parser().parse_args([*find, "--no-steer", "--no-reduce", "--threads", "auto"])
    kwargs = search_settings(args)
    assert kwargs["prune_kvectors"] is False and kwargs["reduce_cell"] is False and kwargs["threads"] == "auto"
    plain = search_settings(build_parser().parse_args(find))
    assert not {"prune_kvectors", "reduce_cell", "threads"} & set(plain)  # the search's defaults apply

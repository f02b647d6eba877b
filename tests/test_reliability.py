"""Bad inputs, hostile files and interrupted runs (issue 12): nothing executed, nothing crashed, nothing lost.

Every case asserts the exit status (or the exception), exactly one line on stderr without a traceback, and that no
file was created, changed or left behind. Structures: cubic SrTiO3 (Pm-3m, a = 3.905 Å, Materials Project mp-5229)
as the parent and its a+b-b- tilted Pnma cell (the GdFeO3 type of the paper's Fig. 1) from
:func:`matsym.structures.tilted_perovskite`. Subprocesses are used where the failure on main at 186e0aa was a hang
or a crash of the interpreter (FIFO, NaN into spglib, ``--threads 100000``, SIGTERM) and for the console script;
the rest calls :func:`matsym.cli.main` in-process, which is the same code without the interpreter start-up.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from matsym.cli import main
from matsym.errors import MatsymError, ResultError
from matsym.io import load_structure, write_structure
from matsym.result import OrderParameterResult
from matsym.structures import cubic_perovskite, tilted_perovskite

PLANTED = "matsym_planted_module"
ZEN = "Beautiful is better than ugly"  # printed by `import this`


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (hidden ones too) with a hash of its content."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.is_symlink() or not p.is_file():
            out[rel] = "dir" if p.is_dir() else "special"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def one_error_line(err: str, *fragments: str, prefix: str = "matsym: error:") -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix), lines[0]
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def cli(folder: Path, *args: str, capsys) -> tuple[int, str, str]:
    """Run ``matsym ARGS`` in-process in ``folder``."""
    old = os.getcwd()
    os.chdir(folder)
    try:
        status = main([*args, "--no-progress"] if args[0] in ("find", "check") else list(args))
    finally:
        os.chdir(old)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def subprocess_cli(folder: Path, *args: str, timeout: float = 120, script: bool = False, **kw):
    command = [str(Path(sys.executable).with_name("matsym"))] if script else [sys.executable, "-m", "matsym"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*command, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=timeout, **kw)


def refused(folder: Path, *args: str, capsys, fragments: tuple[str, ...] = (), status: int = 1) -> str:
    """``matsym ARGS`` exits ``status`` with one line on stderr and leaves ``folder`` as it was."""
    before = snapshot(folder)
    code, out, err = cli(folder, *args, capsys=capsys)
    assert code == status, (code, out, err)
    line = one_error_line(err, *fragments)
    assert snapshot(folder) == before
    return line


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """parent.cif, target.cif and a result.json of the parent against itself (zero displacements, fast)."""
    folder = tmp_path_factory.mktemp("reliability")
    _, target = tilted_perovskite("a+b-b-", 8.0)
    write_structure(cubic_perovskite(), folder / "parent.cif")
    write_structure(target, folder / "target.cif")
    old = os.getcwd()
    os.chdir(folder)
    try:
        assert main(["find", "parent.cif", "parent.cif", "--out", "same", "--no-progress"]) == 0
    finally:
        os.chdir(old)
    return folder


@pytest.fixture
def work(base, tmp_path) -> Path:
    """A fresh folder with the base files (the result as result.json)."""
    for name in ("parent.cif", "target.cif"):
        (tmp_path / name).write_bytes((base / name).read_bytes())
    (tmp_path / "result.json").write_bytes((base / "same" / "result.json").read_bytes())
    return tmp_path


def result_dict(work: Path) -> dict:
    return json.loads((work / "result.json").read_text())


def write_json(path: Path, d: dict) -> None:
    path.write_text(json.dumps(d))


def plant(folder: Path) -> Path:
    """A module that leaves a marker file when imported."""
    marker = folder / "IMPORTED"
    (folder / f"{PLANTED}.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n")
    return marker


def tagged_property(module: str) -> dict:
    return {"@module": module, "@class": "Anything", "value": 1}


# ------------------------------------------------------------------------------------------------ 1. security


@pytest.mark.parametrize("how", ["python -m matsym", "console script"])
def test_result_json_imports_nothing_through_the_cli(work, how):
    """Issue 12 item 1: a site property naming a module in a result.json imports nothing; it is dropped, with a
    warning, and the command does its work. Planted: a module in the working directory (on the path of
    ``python -m``) and the installed module ``this`` (prints the Zen of Python on import)."""
    script = how == "console script"
    if script and not Path(sys.executable).with_name("matsym").exists():
        pytest.skip("console script not installed next to the interpreter")
    marker = plant(work)
    d = result_dict(work)
    d["parent"]["sites"][0]["properties"] = {"a": tagged_property(PLANTED), "b": tagged_property("this")}
    write_json(work / "result.json", d)
    proc = subprocess_cli(work, "distort", "parent.cif", "--result", "result.json", "-o", "out.cif", script=script)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    assert ZEN not in proc.stdout + proc.stderr
    assert "dropped" in proc.stderr and "Traceback" not in proc.stderr
    assert (work / "out.cif").is_file()


def test_structure_json_imports_nothing_through_the_cli(work):
    """Issue 12 item 1: `matsym verify structure.json` with a property naming a planted module."""
    marker = plant(work)
    d = cubic_perovskite().as_dict()
    d["sites"][1]["properties"] = {"magmom": tagged_property(PLANTED), "other": [tagged_property("this")]}
    write_json(work / "structure.json", d)
    proc = subprocess_cli(work, "verify", "structure.json", "--expect", "Pm-3m")
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    assert ZEN not in proc.stdout


def test_api_loading_imports_nothing(work, monkeypatch):
    """Issue 12 item 1 through the API, the working directory on sys.path: structure JSON, result JSON, a result
    dictionary, and the registration stored in a result."""
    monkeypatch.syspath_prepend(str(work))
    marker = plant(work)
    d = cubic_perovskite().as_dict()
    d["sites"][0]["properties"] = {"x": tagged_property(PLANTED), "keep": [1, 2.5, "text", {"k": None}]}
    d["properties"] = {"y": tagged_property(PLANTED)}
    write_json(work / "structure.json", d)
    with pytest.warns(UserWarning, match="dropped"):
        s = load_structure(work / "structure.json")
    assert s[0].properties == {"keep": [1, 2.5, "text", {"k": None}]}

    r = result_dict(work)
    for key in ("parent", "target", "predicted_structure"):
        r[key]["sites"][0]["properties"] = {"x": tagged_property(PLANTED)}
    r["registration"] = {"parent": d}
    write_json(work / "result.json", r)
    with pytest.warns(UserWarning, match="dropped"):
        result = OrderParameterResult.from_json(work / "result.json")
    assert result.parent[0].properties == {}
    assert "x" not in result.registration["parent"]["sites"][0]["properties"]
    assert PLANTED not in sys.modules
    assert not marker.exists()


def test_weights_load_imports_nothing_and_fail_as_matsym_errors(work, monkeypatch):
    """Issue 12 items 1 and 4: weights are safetensors (metadata naming a module is never acted upon); weights of
    another network, a file that is not safetensors, or a FIFO are ResultError / FileFormatError."""
    import torch
    from safetensors.torch import save_file

    from matsym.search import OrderParameterSearch

    monkeypatch.syspath_prepend(str(work))
    marker = plant(work)
    search = OrderParameterSearch(cubic_perovskite(), cubic_perovskite(), irreps="1e", max_steps=5)
    path = work / "model.safetensors"
    search.save_weights(path)
    save_file({"x": torch.zeros(2)}, str(work / "other.safetensors"), metadata={"@module": PLANTED})
    search.load_weights(path)  # its own weights load
    for name, text in (("other.safetensors", None), ("garbage.safetensors", "not safetensors at all")):
        if text is not None:
            (work / name).write_text(text)
        with pytest.raises(MatsymError, match="weights"):
            search.load_weights(work / name)
    os.mkfifo(work / "fifo.safetensors")
    with pytest.raises(MatsymError, match="regular file"):
        search.load_weights(work / "fifo.safetensors")
    assert PLANTED not in sys.modules
    assert not marker.exists()


# ------------------------------------------------------------------------------------------------ 2. crashes


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda d: d["predicted_displacements"][0].__setitem__(0, float("nan")), "finite"),
        (lambda d: d.pop("predicted_displacements"), "predicted_displacements"),
        (lambda d: d["predicted_displacements"].pop(), "predicted_displacements"),
        (lambda d: d.__setitem__("parent", None), "expected the parent structure"),
        (lambda d: d["sites"].append(99), "sites"),
        (lambda d: d.__setitem__("components", [7]), "components"),
    ],
    ids=["nan", "missing", "short", "no-parent", "site-out-of-range", "bad-components"],
)
def test_malformed_result_is_one_line(work, change, fragment):
    """Issue 12 items 2, 4, 12: a result with a NaN (Python's json writes a bare NaN; on main spglib segfaulted,
    exit 139), missing or short displacements (a matmul ValueError), no parent (called "a finite point cloud")."""
    d = result_dict(work)
    change(d)
    (work / "result.json").write_text(json.dumps(d))  # allow_nan: a bare NaN, as Python writes it
    before = snapshot(work)
    proc = subprocess_cli(work, "distort", "parent.cif", "--result", "result.json", "-o", "out.cif")
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    one_error_line(proc.stderr, fragment)
    assert snapshot(work) == before


def test_deeply_nested_result_is_one_line(work, capsys):
    """Issue 12 item 4: 100,000 nested '[' ended in a RecursionError traceback."""
    (work / "result.json").write_text("[" * 100_000)
    refused(
        work, "distort", "parent.cif", "--result", "result.json", "-o", "out.cif", capsys=capsys, fragments=("nested",)
    )


def test_threads_beyond_the_machine_are_refused(work):
    """Issue 12 item 2: --threads 100000 segfaulted (or libgomp ran out of memory)."""
    before = snapshot(work)
    proc = subprocess_cli(work, "find", "parent.cif", "target.cif", "--out", "run", "--threads", "100000")
    assert proc.returncode == 1, proc.stderr
    one_error_line(proc.stderr, "--threads", "100000")
    assert snapshot(work) == before


def test_huge_sparse_cell_fails_fast_in_little_memory(tmp_path):
    """Issue 12 item 3 / acceptance: two atoms 866 Å apart in a 1,000 Å cell: one line within 10 s (of CPU) and
    1 GB (on main: 4.5 GB at 500 Å, a MemoryError traceback at 1,000 Å)."""
    from pymatgen.core import Lattice, Structure

    cell = Structure(Lattice.cubic(1000.0), ["Si", "Si"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    write_structure(cell, tmp_path / "big.cif")
    code = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run([sys.executable, '-m', 'matsym', 'find', 'big.cif', 'big.cif', '--out', 'run'],"
        " capture_output=True, text=True)\n"
        "r = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(p.returncode, r.ru_utime + r.ru_stime, r.ru_maxrss)\n"
        "sys.stderr.write(p.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    status, cpu_seconds, max_rss_kb = proc.stdout.split()
    assert int(status) == 1, proc.stderr
    one_error_line(proc.stderr, "--max-volume", "1e+06")
    assert float(cpu_seconds) < 10  # CPU time: wall time on a loaded machine measures the other processes
    assert int(max_rss_kb) < 1024**2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.cif"]


# ------------------------------------------------------------------------------------------------ 4. one-line errors


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (("--seed", "99999999999999999999999"), ("--seed", "2^63")),
        (("--seed", "-1"), ("--seed",)),
        (("--irreps", "100000x1e"), ("100000x1e", "max_components=1000")),
        (("--irreps", "2000x0e"), ("2000 components",)),
    ],
    ids=["seed-overflow", "seed-negative", "irreps-huge", "irreps-many"],
)
def test_out_of_range_options_are_one_line(work, capsys, extra, fragments):
    refused(work, "find", "parent.cif", "target.cif", "--out", "run", *extra, capsys=capsys, fragments=fragments)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sites": 3.5},
        {"tie": {"translation": "x"}},
        {"seed": "x"},
        {"seed": 2**70},
        {"sparsity": float("nan")},
        {"max_steps": -1},
        {"threads": 10**6},
        {"irreps": "100000x1e"},
    ],
    ids=["sites-float", "tie-translation", "seed-str", "seed-huge", "sparsity-nan", "max-steps", "threads", "irreps"],
)
def test_bad_search_arguments_are_matsym_errors(kwargs):
    """Issue 12 item 4 (API): each was a TypeError, OverflowError, FloatingPointError during the run, or accepted."""
    from matsym.search import OrderParameterSearch

    _, target = tilted_perovskite("a+b-b-", 8.0)
    with pytest.raises(MatsymError):
        OrderParameterSearch(cubic_perovskite(), target, **kwargs)


# ------------------------------------------------------------------------------------------------ 5-8. wrong answers

POSCAR = """SrTiO3 cubic, mp-5229
1.0
3.905 0 0
0 3.905 0
0 0 3.905
Sr Ti O
{counts}
Direct
0 0 0
0.5 0.5 0.5
0.5 0.5 0
0.5 0 0.5
0 0.5 0.5
"""


@pytest.mark.parametrize(
    ("counts", "fragment"),
    [("1 1 2", "promise 4 atoms but 5"), ("1 1 4", "promise 6 atoms but 5"), ("1 x 3", "atom counts")],
    ids=["fewer", "more", "not-integers"],
)
def test_poscar_counts_must_match_the_coordinates(work, capsys, counts, fragment):
    """Issue 12 items 5 and 12: counts promising fewer atoms were read as another compound (verify reported the
    group of the truncated structure); more atoms gave 'IndexError: list index out of range'."""
    (work / "POSCAR").write_text(POSCAR.format(counts=counts))
    refused(work, "verify", "POSCAR", capsys=capsys, fragments=(fragment,))


CIF = """data_SrTiO3
_symmetry_space_group_name_H-M 'P 1'
_cell_length_a {a}
_cell_length_b 3.905
_cell_length_c 3.905
_cell_angle_alpha {alpha}
_cell_angle_beta {beta}
_cell_angle_gamma {gamma}
loop_
_symmetry_equiv_pos_as_xyz
'x, y, z'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Sr1 Sr 0 0 0 1
Ti1 Ti 0.5 0.5 0.5 1
O1 O 0.5 0.5 0 1
O2 O 0.5 0 0.5 1
O3 O 0 0.5 0.5 1
{extra}
"""


@pytest.mark.parametrize(
    ("cell", "fragments"),
    [
        ({"a": "-3.905"}, ("_cell_length_a", "-3.905", "> 0")),
        ({"alpha": "-90"}, ("_cell_angle_alpha", "between 0 and 180")),
        ({"a": "nan"}, ("_cell_length_a", "finite number")),
        ({"a": "0"}, ("_cell_length_a", "> 0")),
        ({"alpha": "120", "beta": "120", "gamma": "120"}, ("one plane",)),  # c = -(a + b) in direction: no volume
        ({"extra": "O4 O 0.5 0.5 0 1"}, ("O1 and O4", "same position")),
    ],
    ids=["negative-length", "negative-angle", "nan-length", "zero-length", "flat-cell", "duplicate-atom"],
)
def test_bad_cif_cells_say_what_is_wrong(work, capsys, cell, fragments):
    """Issue 12 items 6 and 12: a negative length or angle was accepted as a left-handed cell; NaN, zero and flat
    cells and duplicate atoms all gave 'No structure parsed for section 1'."""
    values = {"a": "3.905", "alpha": "90", "beta": "90", "gamma": "90", "extra": "", **cell}
    (work / "bad.cif").write_text(CIF.format(**values))
    refused(work, "verify", "bad.cif", capsys=capsys, fragments=fragments)


def test_failed_fit_has_its_own_exit_status(work, capsys):
    """Issue 12 item 7: a scalar order parameter on Ti cannot describe octahedral tilts (the paper finds a
    pseudovector, 1e, on the B site): the fit fails, exit 3 with one line, outputs written, the result says so."""
    code, out, err = cli(
        work,
        "find",
        "parent.cif",
        "target.cif",
        "--sites",
        "Ti",
        "--irreps",
        "0e",
        "--steps",
        "20",
        "--out",
        "run",
        capsys=capsys,
    )
    assert code == 3, err
    one_error_line(err, "--irreps", prefix="matsym: fit failed:")
    assert "FIT FAILED" in out
    result = OrderParameterResult.from_json(work / "run" / "result.json")
    assert result.fit_failed and result.metrics["displacement_error_ratio"] > 0.2
    assert sorted(p.name for p in (work / "run").iterdir()) == ["model.safetensors", "predicted.cif", "result.json"]


def test_huge_amplitude_is_refused(work, capsys):
    """Issue 12 item 8: --amplitude 1e300 exited 0 with a CIF that verify could not read back. The zero-displacement
    result moves nothing, so the test result gets a real displacement first."""
    d = result_dict(work)
    d["predicted_displacements"][1] = [0.1, 0.0, 0.0]
    write_json(work / "result.json", d)
    refused(
        work,
        "distort",
        "parent.cif",
        "--result",
        "result.json",
        "--amplitude",
        "1e300",
        "-o",
        "out.cif",
        capsys=capsys,
        fragments=("amplitude 1e+300",),
    )
    # atoms pushed onto each other are refused too (Ti moved by 1.95 Å onto the O at (1/2, 1/2, 0)... of the next
    # cell along z: 0.5 Å apart or less)
    d["predicted_displacements"][1] = [0.0, 0.0, 1.8]
    write_json(work / "result.json", d)
    refused(
        work,
        "distort",
        "parent.cif",
        "--result",
        "result.json",
        "-o",
        "out.cif",
        capsys=capsys,
        fragments=("unusable", "min_distance"),
    )


# ------------------------------------------------------------------------------------------------ 9-11. lost work


def test_out_is_checked_before_the_search(work, capsys):
    """Issue 12 item 9: an unusable --out is refused before the search set-up (on main the tie error, raised
    while setting up the search, came first; the folder was only checked after the whole search)."""
    (work / "blocker").write_text("a file where the output folder's parent should be")
    refused(
        work,
        "find",
        "parent.cif",
        "target.cif",
        "--out",
        "blocker/run",
        "--tie",
        "0;0",
        capsys=capsys,
        fragments=("blocker/run",),
    )


def test_outputs_are_written_as_one_set(tmp_path):
    """Issue 12 item 10 (API of the set writer): a failure after some files were written leaves nothing; a file
    that appears meanwhile makes the commit fail without leaving the others in place; leftovers of a killed run are
    removed by the next one."""
    from matsym.errors import OutputExistsError
    from matsym.outputs import TEMP_PREFIX, OutputSet

    names = ["model.safetensors", "predicted.cif", "result.json"]
    with pytest.raises(RuntimeError), OutputSet(tmp_path / "run", names) as out:
        out.path("model.safetensors").write_text("m")
        raise RuntimeError("killed while writing")
    assert not (tmp_path / "run").exists()

    (tmp_path / "run").mkdir()
    with pytest.raises(OutputExistsError), OutputSet(tmp_path / "run", names) as out:
        for name in names:
            out.path(name).write_text(name)
        (tmp_path / "run" / "result.json").write_text("another process")
        out.commit()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["result.json"]
    assert (tmp_path / "run" / "result.json").read_text() == "another process"

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / "run" / f"{TEMP_PREFIX}{dead.pid}-abc"
    stale.mkdir()
    (stale / "result.json").write_text("half")
    with OutputSet(tmp_path / "run", names, force=True) as out:
        assert not stale.exists()
        for name in names:
            out.path(name).write_text("new " + name)
        out.commit()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == names
    assert (tmp_path / "run" / "result.json").read_text() == "new result.json"


def test_stale_temporary_folder_is_removed_by_the_next_run(work, capsys):
    """Issue 12 item 10 through the CLI: a killed run's temporary folder goes with the next run."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = work / "run" / f".matsym-tmp-{dead.pid}-x"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_text("half-written")
    code, _, err = cli(work, "find", "parent.cif", "parent.cif", "--out", "run", capsys=capsys)
    assert code == 0, err
    assert sorted(p.name for p in (work / "run").iterdir()) == ["model.safetensors", "predicted.cif", "result.json"]


def test_sigterm_during_the_search_leaves_nothing(work):
    """Issue 12 item 10: a run terminated during its search exits 143 with one line and leaves no folder."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "matsym",
            "find",
            "parent.cif",
            "target.cif",
            "--sites",
            "Ti",
            "--irreps",
            "1e",
            "--out",
            "run",
            "--no-progress",
        ],
        cwd=work,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (work / "run").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert (work / "run").exists(), "the output folder is prepared before the search"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    one_error_line(err, prefix="matsym: terminated")
    assert not (work / "run").exists()


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory"])
def test_special_files_are_refused(work, kind):
    """Issue 12 item 11: a FIFO hung forever; a symlink to /dev/zero was read until memory ran out."""
    path = work / "special.cif"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    before = snapshot(work)
    for args in (("verify", "special.cif"), ("distort", "parent.cif", "--result", "special.cif", "-o", "o.cif")):
        proc = subprocess_cli(work, *args, timeout=60)
        assert proc.returncode == 1, proc.stderr
        one_error_line(proc.stderr, "special.cif")
    assert snapshot(work) == before


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("99999999999\n", "promises 99999999999 atoms"),
        ("3\ncomment\nSr 0 0 0\n", "promises 3 atoms but the file has 1"),
    ],
    ids=["huge-count", "short"],
)
def test_xyz_count_beyond_the_file_is_refused(work, text, fragment):
    """Found by make fuzz: an extxyz whose count line promises more atoms than the file holds made ASE's reader
    loop on the exhausted file (99,999,999,999 atoms: hours)."""
    (work / "x.extxyz").write_text(text)
    before = snapshot(work)
    proc = subprocess_cli(work, "verify", "x.extxyz", timeout=60)
    assert proc.returncode == 1, proc.stderr
    one_error_line(proc.stderr, fragment)
    assert snapshot(work) == before


# ------------------------------------------------------------------------------------------------ 12-13. messages


def test_wrong_parent_says_by_how_much(work, capsys):
    """Issue 12 item 12: the message printed both lattices to 4 decimals, so that a difference just above the
    tolerance (1e-3 Å) could not be seen; it now states the largest difference."""
    from pymatgen.core import Lattice, Structure

    p = cubic_perovskite()
    moved = Structure(Lattice(p.lattice.matrix * 1.0005), p.species, p.frac_coords)
    write_structure(moved, work / "other.json")
    refused(
        work,
        "distort",
        "other.json",
        "--result",
        "result.json",
        "-o",
        "out.cif",
        capsys=capsys,
        fragments=("lattice vectors differ from the expected ones by up to 0.001952 Å",),
    )


def test_unreadable_result_says_why(work, monkeypatch):
    """Issue 12 item 12: a permission error on result.json was reported as "not a JSON result file". (Tests run as
    root here, where permissions do not stop reads, so the refusal of the operating system is simulated.)"""
    from matsym import safejson

    def denied(path, flags, *args):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(safejson.os, "open", denied)
    with pytest.raises(MatsymError, match=r"cannot read result .*result\.json: Permission denied") as info:
        OrderParameterResult.from_json(work / "result.json")
    assert "not a JSON" not in str(info.value)


def test_existing_output_names_the_cli_option(work, capsys):
    """Issue 12 item 12: the CLI told users to 'pass force=True / --force'."""
    (work / "out.cif").write_text("mine")
    line = refused(
        work, "distort", "parent.cif", "--result", "result.json", "-o", "out.cif", capsys=capsys, fragments=("--force",)
    )
    assert "force=True" not in line


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_output_modes_follow_the_umask(work, capsys, umask):
    """Issue 12 item 13: model.safetensors was written 0600, the other outputs 0644."""
    old = os.umask(umask)
    try:
        code, _, err = cli(work, "find", "parent.cif", "parent.cif", "--out", "run", capsys=capsys)
    finally:
        os.umask(old)
    assert code == 0, err
    modes = {p.name: p.stat().st_mode & 0o777 for p in (work / "run").iterdir()}
    assert modes == dict.fromkeys(["model.safetensors", "predicted.cif", "result.json"], 0o666 & ~umask)


# ------------------------------------------------------------------------------------------------ 4. limits


@pytest.mark.parametrize(
    ("poscar", "extra", "fragments"),
    [
        ("nan", (), ("non-finite",)),
        ("far", (), ("more than 100 cells", "1e+11")),
        ("left", (), ("left-handed",)),
        ("close", (), ("min_distance=0.5",)),
        ("ok", ("--max-atoms", "3"), ("5 sites", "max_atoms=3", "--max-atoms")),
        ("ok", ("--max-volume", "50"), ("59.55", "max_volume=50", "--max-volume")),
    ],
    ids=["nan", "far", "left-handed", "too-close", "max-atoms", "max-volume"],
)
def test_inputs_are_validated_before_work(work, capsys, poscar, extra, fragments):
    lines = POSCAR.format(counts="1 1 3").splitlines()
    if poscar == "nan":
        lines[8] = "nan 0 0"
    elif poscar == "far":  # found by make fuzz: pymatgen's neighbour search asked for more than 10 GB
        lines[9] = "99999999999 0.5 0.5"
    elif poscar == "left":
        lines[4] = "0 0 -3.905"
    elif poscar == "close":
        lines[8] = "0.45 0.5 0.5"  # Sr 0.195 Å from Ti
    (work / "POSCAR").write_text("\n".join(lines) + "\n")
    refused(work, "find", "POSCAR", "target.cif", "--out", "run", *extra, capsys=capsys, fragments=fragments)


def test_limits_can_be_raised(work, capsys):
    """The same close pair passes with a lower --min-distance (and verify reports its group)."""
    lines = POSCAR.format(counts="1 1 3").splitlines()
    lines[8] = "0.45 0.5 0.5"
    (work / "POSCAR").write_text("\n".join(lines) + "\n")
    code, out, err = cli(work, "verify", "POSCAR", "--min-distance", "0.1", capsys=capsys)
    assert code == 0, err
    assert "P4mm" in out


def test_result_with_extra_optional_keys_loads(work):
    """Newer results add optional fields; validation leaves unknown keys alone."""
    d = result_dict(work)
    d["symmetry_modes"] = {"anything": [1, 2]}
    d["timings"] = {"search": 1.0}
    result = OrderParameterResult.from_dict(d)
    np.testing.assert_array_equal(result.predicted_displacements, np.asarray(d["predicted_displacements"]))
    with pytest.raises(ResultError, match="schema version"):
        OrderParameterResult.from_dict({**d, "schema_version": 99})

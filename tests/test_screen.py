"""``matsym screen`` on a real Dask cluster (2 worker processes) and real databases (SQLite; PostgreSQL if installed).

Pairs come from :mod:`matsym.structures`: the ferroelectric off-centring of cubic SrTiO3 (B site along [001]: P4mm)
and the in-phase Jahn-Teller Q2 order of LaMnO3 (Rodriguez-Carvajal et al., PRB 57, R3189 (1998);
P4/mbm on the 10-atom cell). Searches run with a few steps only (seconds each); the tests check what the screen
stores, not the search's convergence: space groups in the rows are compared with spglib on the stored atoms and on
the target files.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from matsym.cli import main  # noqa: E402
from matsym.errors import FileFormatError, InputError  # noqa: E402
from matsym.io import load_structure  # noqa: E402
from matsym.result import OrderParameterResult  # noqa: E402
from matsym.screen import pair_task, read_pairs, screen  # noqa: E402
from matsym.screening_set import perovskite_pairs, write_pairs  # noqa: E402
from matsym.symmetry import space_group  # noqa: E402

# a few steps per phase: each search takes about a second once the worker has imported torch
FAST = {"irreps": "1o+1e", "fit_steps": 10, "max_steps": 10, "search_steps": 5, "polish_steps": 5, "span_steps": 2}
SMALL = ("polar 001", "JT Q2+")


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, one thread each, as ``matsym screen --workers 2`` starts (shared by the tests)."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
    ) as c:
        yield c


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory):
    """CIF files of the small pairs and of two broken ones (missing parent file; unknown file format)."""
    folder = tmp_path_factory.mktemp("pairs")
    built = perovskite_pairs()
    pairs = {name: built[name] for name in SMALL}
    pairs["missing parent"] = ("no_such_parent.cif", "polar_001_target.cif")
    csv = write_pairs(folder, pairs)
    return csv


@pytest.fixture(scope="module")
def one_pair(tmp_path_factory):
    """One small pair (polar 001) and one with a missing parent file."""
    folder = tmp_path_factory.mktemp("one")
    built = perovskite_pairs()
    return write_pairs(
        folder, {"polar 001": built["polar 001"], "missing parent": ("gone.cif", "polar_001_target.cif")}
    )


def _rows(db):
    import ase.db

    with ase.db.connect(str(db)) as con:
        return {row.name: row for row in con.select()}


def test_read_pairs_resolves_paths_and_row_settings(tmp_path):
    (tmp_path / "sub").mkdir()
    csv = tmp_path / "sub" / "pairs.csv"
    csv.write_text(
        'name,parent,target,sites,tie,mask\na,p.cif,t.cif,Ti,"0,1;2,3","1e@1,0,0;2e m=2"\nb,/abs/p.cif,t.cif,,,\n'
    )
    a, b = read_pairs(csv)
    assert a.parent == tmp_path / "sub" / "p.cif" and b.parent == Path("/abs/p.cif")
    assert a.settings == {"sites": "Ti", "tie": [[0, 1], [2, 3]], "mask": ["1e@1,0,0", "2e m=2"]}
    assert b.settings == {}
    # the row's settings override the screen's, and the hash follows the settings
    ta, ta2 = pair_task(a, {"sites": "Sr", "seed": 1}), pair_task(a, {"sites": "Sr", "seed": 2})
    assert ta["search"]["sites"] == "Ti" and ta["search"]["seed"] == 1
    assert ta["input_hash"] != ta2["input_hash"]
    # an option left at its default (None, as the command line passes it) is the same search as no option
    assert pair_task(b, {"sites": None, "mask": None})["input_hash"] == pair_task(b, {})["input_hash"]
    assert "no such file" in ta["parent"]["error"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name,parent\na,p.cif\n", "expected a CSV header with columns name,parent,target"),
        ("name,parent,target,colour\na,p,t,red\n", r"unknown column\(s\) \['colour'\]"),
        ("name,parent,target\na,p,t\na,q,r\n", "name 'a' repeats line 2"),
        ("name,parent,target\n,p,t\n", "line 2: empty name"),
        ("name,parent,target\na,,t\n", r"line 2 \(a\): no parent file"),
        ("name,parent,target\n", "no pairs"),
        ("name,parent,target,mask\na,p,t,1e@1,0,0\n", "more cells than the header"),
    ],
)
def test_read_pairs_rejects_malformed_csv(tmp_path, text, match):
    csv = tmp_path / "pairs.csv"
    csv.write_text(text)
    with pytest.raises(InputError, match=match):
        read_pairs(csv)


def test_read_pairs_missing_file(tmp_path):
    with pytest.raises(FileFormatError, match="no such file"):
        read_pairs(tmp_path / "nope.csv")


def test_screen_sqlite_failed_pair_then_rerun_skips(cluster, pair_files, tmp_path):
    db = tmp_path / "screen.db"
    summary = screen(pair_files, db, settings=FAST, scheduler=cluster.scheduler_address, progress=False)
    assert (summary.total, summary.done, summary.failed, summary.skipped) == (3, 2, 1, 0)
    assert summary.exit_status == 1
    assert "no such file" in summary.failures["missing parent"]
    rows = _rows(db)
    assert set(rows) == {*SMALL, "missing parent"}
    broken = rows["missing parent"]
    assert broken.status == "failed" and "no_such_parent.cif" in broken.error and broken.natoms == 0
    for name in SMALL:
        row = rows[name]
        assert row.status == "done" and not hasattr(row, "error")
        atoms = row.toatoms()
        result = OrderParameterResult.from_dict(row.data["result"])
        # the row's atoms are the predicted structure, its space group is spglib's on them
        assert atoms.get_chemical_formula() == result.predicted_structure.to_ase_atoms().get_chemical_formula()
        assert abs(atoms.positions - result.predicted_structure.cart_coords).max() < 1e-9
        assert row.space_group == space_group(atoms, 1e-3)[0]
        target = load_structure(row.data["target_file"], min_distance=0)
        assert row.target_space_group == space_group(target, 1e-3)[0]
        assert row.loss_ratio == pytest.approx(result.metrics["loss_ratio"])
        assert row.dominant_irrep in ("1o", "1e")
        assert len(row.input_hash) == 64 and row.seconds > 0
    # the B-site off-centring is a vector: 1o dominates
    assert rows["polar 001"].dominant_irrep == "1o"

    before = {name: (row.id, row.mtime) for name, row in rows.items()}
    start = time.perf_counter()
    again = screen(pair_files, db, settings=FAST, scheduler="tcp://127.0.0.1:1", progress=False)
    assert time.perf_counter() - start < 5  # nothing to run: no scheduler is contacted (this address is dead)
    assert (again.done, again.failed, again.skipped) == (2, 1, 2)
    after = {name: (row.id, row.mtime) for name, row in _rows(db).items()}
    assert after == before  # the failed pair failed again with the same error: its row is kept as it was


def test_killed_worker_loses_no_pair(cluster, pair_files, tmp_path):
    """SIGKILL the worker process running a pair: Dask reschedules the task and the pair is stored."""
    client = distributed.Client(cluster)
    killed: dict[str, object] = {}

    def kill_first_running() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for worker, keys in client.processing().items():
                mine = [k for k in keys if str(k).startswith("matsym-screen-")]
                if mine:
                    pid = client.run(os.getpid, workers=[worker])[worker]
                    os.kill(pid, signal.SIGKILL)
                    killed.update(pid=pid, key=str(mine[0]))
                    return
            time.sleep(0.02)

    thread = threading.Thread(target=kill_first_running, daemon=True)
    thread.start()
    summary = screen(pair_files, tmp_path / "k.db", settings=FAST, client=client, progress=False)
    thread.join(timeout=5)
    client.close()
    assert killed, "no task was seen running"
    assert (summary.done, summary.failed, summary.not_run) == (2, 1, 0)
    rows = _rows(tmp_path / "k.db")
    assert len(rows) == 3
    name = next(n for n in SMALL if killed["key"].startswith(f"matsym-screen-{n}-"))
    assert rows[name].status == "done"
    assert rows[name].data["worker"]["pid"] != killed["pid"]  # finished by another (or restarted) worker


def test_interrupt_keeps_finished_pairs(cluster, pair_files, tmp_path):
    """Ctrl-C (KeyboardInterrupt in the client) after the first finished pair: it is stored, a rerun carries on."""
    db = tmp_path / "i.db"

    def interrupt(out):
        raise KeyboardInterrupt

    summary = screen(
        pair_files, db, settings=FAST, scheduler=cluster.scheduler_address, progress=False, on_result=interrupt
    )
    assert summary.interrupted and summary.exit_status == 130
    assert summary.not_run == 3 - summary.done - summary.failed and summary.not_run > 0
    assert len(_rows(db)) == summary.done + summary.failed >= 1
    rest = screen(pair_files, db, settings=FAST, scheduler=cluster.scheduler_address, progress=False)
    assert (rest.done, rest.failed, rest.not_run) == (2, 1, 0) and len(_rows(db)) == 3


def test_cli_screen(cluster, one_pair, tmp_path, capsys):
    pair_files = one_pair
    db = tmp_path / "cli.db"
    argv = ["screen", str(pair_files), "--db", str(db), "--scheduler", cluster.scheduler_address, "--no-progress"]
    argv += ["--irreps", "1o+1e", "--steps", "10", "--json"]
    assert main(argv) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["done"] == 1 and summary["failed"] == 1 and summary["exit_status"] == 1
    assert set(summary["failures"]) == {"missing parent"}
    assert _rows(db)["polar 001"].data["search"]["max_steps"] == 10
    # rerun: nothing to do, same exit status
    assert main(argv) == 1
    assert json.loads(capsys.readouterr().out)["skipped"] == 1
    # usage errors: exit 2
    assert main(["screen", str(pair_files), "--db", str(db), "--workers", "2", "--scheduler", "tcp://x:1"]) == 2
    assert main(["screen", str(pair_files)]) == 2
    capsys.readouterr()
    # user error: one line on stderr, exit 1
    assert main(["screen", str(tmp_path / "none.csv"), "--db", str(db)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("matsym: error: cannot read pairs: no such file") and "\n" not in err


def test_failed_pair_retried_when_its_file_appears(cluster, tmp_path):
    built = perovskite_pairs()
    csv = write_pairs(tmp_path, {"polar 001": ("parent.cif", built["polar 001"][1])})
    db = tmp_path / "r.db"
    first = screen(csv, db, settings=FAST, scheduler="tcp://127.0.0.1:1", progress=False)  # fails before any task
    assert (first.failed, first.exit_status) == (1, 1)
    old_id = _rows(db)["polar 001"].id
    built["polar 001"][0].to(filename=str(tmp_path / "parent.cif"))
    pair = read_pairs(csv)[0]  # the same pair as a Pair object (the Python API takes either)
    second = screen([pair], db, settings=FAST, scheduler=cluster.scheduler_address, progress=False)
    assert (second.done, second.failed, second.exit_status) == (1, 0, 0)
    rows = _rows(db)
    assert len(rows) == 1 and rows["polar 001"].status == "done" and rows["polar 001"].id != old_id


# ------------------------------------------------------------------------------------------------------------
# PostgreSQL: a real server, started here, when the binaries are installed (Debian: apt-get install postgresql)
# ------------------------------------------------------------------------------------------------------------


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return candidates[-1].parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    """A PostgreSQL server on a free loopback port in a temporary folder; yields its URL."""
    pytest.importorskip("ase_db_backends.postgresql")
    pytest.importorskip("psycopg2")
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    folder = Path(tempfile.mkdtemp(prefix="matsym-pg-"))  # pytest's tmp_path is private to root
    data = folder / "data"
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: run the server as an unprivileged user
        import pwd

        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server")
        os.chown(folder, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            log = (folder / "log").read_text() if (folder / "log").exists() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stderr.strip()} {done.stdout.strip()} {log}")

    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-U", "matsym", "--auth=trust", "-E", "UTF8")
        run(
            str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(folder / "log"), "-o",
            f"-p {port} -h 127.0.0.1 -k {folder} -c fsync=off", "start",
        )  # fmt: skip
        run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "matsym", "screen")
        yield f"postgresql://matsym@127.0.0.1:{port}/screen"
    finally:
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_screen_postgresql(cluster, one_pair, postgres):
    pair_files = one_pair
    summary = screen(pair_files, postgres, settings=FAST, scheduler=cluster.scheduler_address, progress=False)
    assert (summary.done, summary.failed) == (1, 1)
    rows = _rows(postgres)
    assert set(rows) == {"polar 001", "missing parent"}
    row = rows["polar 001"]
    assert row.status == "done" and row.space_group == space_group(row.toatoms(), 1e-3)[0]
    assert OrderParameterResult.from_dict(row.data["result"]).predicted_structure.num_sites == 5
    again = screen(pair_files, postgres, settings=FAST, scheduler="tcp://127.0.0.1:1", progress=False)
    assert again.skipped == 1 and len(_rows(postgres)) == 2
    assert "gone.cif" in rows["missing parent"].error


def test_unreadable_database_is_a_user_error(one_pair, tmp_path, capsys):
    garbage = tmp_path / "garbage.db"
    garbage.write_text("not a database\n")
    with pytest.raises(FileFormatError, match=r"cannot read database .*garbage\.db: DatabaseError"):
        screen(one_pair, garbage, progress=False)
    with pytest.raises(FileFormatError, match="no such folder"):
        screen(one_pair, tmp_path / "no" / "x.db", progress=False)
    # a PostgreSQL server that does not answer: one line, and the URL's password is not printed
    pytest.importorskip("ase_db_backends.postgresql")
    url = f"postgresql://me:secret@127.0.0.1:{_free_port()}/screen"
    assert main(["screen", str(one_pair), "--db", url, "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("matsym: error: cannot read database postgresql://me:***@127.0.0.1:") and "secret" not in err

"""Acceptance check of ``matsym screen``: 25 pairs (24 good, one missing its parent file) on 2 worker processes.

Writes the 24 pairs of :func:`matsym.screening_set.perovskite_pairs` as CIF files plus a pair whose parent file does
not exist, then runs the real command line, as a user would::

    matsym screen pairs.csv --db screen.db --workers 2 --json

and checks: exit status 1; 25 rows; the broken pair ``failed`` with its one-line error naming the missing file; the
24 others ``done`` with the predicted space group (spglib, symprec 1e-3) equal to the target's, which spglib also
computes here from the target file. With ``--interrupt``, a first run gets Ctrl-C (SIGINT to its process group,
as a terminal sends it) once 3 pairs are stored: it must exit 130 without a traceback, with those pairs stored,
and the main run then carries on from them. With ``--kill-worker`` one Dask worker process is killed (SIGKILL) while it
runs a pair, and no pair may be lost. Then the same command runs again: it must finish within ``--rerun-limit``
seconds (default 20) and leave every row as it was (ids and modification times).

Run: ``python workflows/screen_acceptance.py OUT [--interrupt] [--kill-worker] [--quick]`` (about 2 minutes with
default settings on 2 idle cores; ``--quick`` uses short searches, whose space groups are then reported, not
required).
Exits 0 when every check holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

QUICK = ["--steps", "40"]


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _dask_worker(pid: int) -> int | None:
    """A Dask worker process started by the command ``pid`` (a multiprocessing spawn child, not its tracker)."""
    for child in _children(pid):
        try:
            cmdline = (Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "spawn_main" in cmdline and "resource_tracker" not in cmdline:
            return child
    return None


def _rows(db: Path) -> dict[str, dict]:
    import ase.db

    with ase.db.connect(str(db)) as con:
        return {r.name: {"id": r.id, "mtime": r.mtime, **r.key_value_pairs} for r in con.select()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="new folder for the pairs and the database")
    parser.add_argument("--kill-worker", action="store_true", help="SIGKILL one worker process during the screen")
    parser.add_argument("--quick", action="store_true", help="short searches (space groups reported, not required)")
    parser.add_argument(
        "--interrupt", action="store_true", help="first send Ctrl-C (SIGINT to the process group) after 3 rows"
    )
    parser.add_argument("--rerun-limit", type=float, default=20.0, help="seconds the rerun may take (default 20)")
    args = parser.parse_args(argv)
    if args.out.exists():
        parser.error(f"{args.out} exists; give a new folder")

    from matsym.io import load_structure
    from matsym.screening_set import perovskite_pairs, write_pairs
    from matsym.symmetry import space_group

    pairs = perovskite_pairs()
    pairs["broken: missing parent"] = ("missing_parent.cif", "polar_001_target.cif")
    csv = write_pairs(args.out, pairs)
    db = args.out / "screen.db"
    command = [sys.executable, "-m", "matsym", "screen", str(csv), "--db", str(db), "--workers", "2", "--json"]
    command += ["--no-progress"] + (QUICK if args.quick else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    checks: list[tuple[str, bool, str]] = []
    if args.interrupt:
        checks += _interrupted_run(command, env, db)
    stored_before = len(_rows(db)) if db.exists() else 0
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    killed = None
    if args.kill_worker:
        while proc.poll() is None and killed is None:
            time.sleep(0.2)
            # wait until the screen is under way (a row is stored), then kill a busy worker
            if db.exists() and len(_rows(db)) >= stored_before + 2:
                killed = _dask_worker(proc.pid)
                if killed is not None:
                    os.kill(killed, signal.SIGKILL)
                    print(f"killed Dask worker process {killed} at {time.perf_counter() - start:.1f} s", flush=True)
    stdout, _ = proc.communicate(timeout=3600)
    seconds = time.perf_counter() - start
    summary = json.loads(stdout)
    rows = _rows(db)
    checks.append(("exit status 1", proc.returncode == 1, str(proc.returncode)))
    checks.append(("25 rows", len(rows) == 25, str(len(rows))))
    broken = rows.get("broken: missing parent", {})
    checks.append(
        (
            "broken pair failed with its error",
            broken.get("status") == "failed" and "missing_parent.cif" in broken.get("error", ""),
            f"{broken.get('status')}: {broken.get('error')}",
        )
    )
    wrong = []
    for name in perovskite_pairs():
        row = rows.get(name, {})
        want = space_group(load_structure(args.out / _target_file(csv, name), min_distance=0), 1e-3)[0]
        if row.get("status") != "done" or row.get("space_group") != want or row.get("target_space_group") != want:
            wrong.append(f"{name}: {row.get('status')} {row.get('space_group')} (target {want})")
    checks.append(("24 pairs done with the target's space group", not wrong or args.quick, "; ".join(wrong) or "all"))
    if args.kill_worker:
        checks.append(
            ("a worker was killed mid-screen and no pair lost", killed is not None and len(rows) == 25, str(killed))
        )
    print(f"first run: {seconds:.1f} s, summary {json.dumps({k: summary[k] for k in ('done', 'failed', 'skipped')})}")

    again_start = time.perf_counter()
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    again_s = time.perf_counter() - again_start
    checks.append(
        (
            f"rerun within {args.rerun_limit:g} s",
            again_s <= args.rerun_limit and again.returncode == 1,
            f"{again_s:.1f} s",
        )
    )
    checks.append(
        ("rerun changes nothing", _rows(db) == rows, json.loads(again.stdout)["skipped"].__str__() + " skipped")
    )
    for text, ok, measured in checks:
        print(f"[{'yes' if ok else 'NO'}] {text}: {measured}")
    return 0 if all(ok for _, ok, _ in checks) else 1


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupted_run(command: list[str], env: dict, db: Path) -> list[tuple[str, bool, str]]:
    """Ctrl-C as a terminal sends it (SIGINT to the whole process group) once 3 pairs are stored."""
    # a new process group, as a terminal's foreground job, with SIGINT at its default even when this script runs
    # in the background of a non-interactive shell (which starts it with SIGINT ignored, and children inherit that)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True, preexec_fn=_default_sigint)  # fmt: skip
    while proc.poll() is None:
        time.sleep(0.2)
        if db.exists() and len(_rows(db)) >= 3:
            os.killpg(proc.pid, signal.SIGINT)
            break
    _, stderr = proc.communicate(timeout=1800)
    stored = _rows(db)
    print(f"interrupted run: exit {proc.returncode}, {len(stored)} rows stored; stderr: {stderr.strip()[-300:]}")
    return [
        ("Ctrl-C: exit 130", proc.returncode == 130, str(proc.returncode)),
        ("Ctrl-C: no traceback on stderr", "Traceback" not in stderr, f"{len(stderr.splitlines())} lines"),
        ("Ctrl-C: finished pairs stored", 3 <= len(stored) < 25, f"{len(stored)} rows"),
    ]


def _target_file(csv: Path, name: str) -> str:
    import csv as _csv

    with csv.open(encoding="utf-8") as fh:
        return next(row["target"] for row in _csv.DictReader(fh) if row["name"] == name)


if __name__ == "__main__":
    sys.exit(main())

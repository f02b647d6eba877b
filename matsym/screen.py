"""Screening many parent/target pairs on Dask distributed, one row per pair in an ASE database.

A search takes seconds on one core and uses one torch thread, so a screen over thousands of pairs is
embarrassingly parallel: one task per pair, one worker *process* per core. :func:`screen` reads a CSV of pairs,
sends one task per pair to a Dask cluster (a :class:`distributed.LocalCluster` of worker processes by default, or
any running cluster given by its scheduler address, e.g. one started by dask-jobqueue on SLURM/PBS), and writes
each finished pair to an ASE database (:mod:`ase.db`: an SQLite file by default, a ``postgresql://`` URL for
many machines) as soon as it arrives.

Design, and why:

* **Tasks carry bytes and JSON, never live objects.** The client reads each structure file and sends its bytes,
  its format and the search settings (plain JSON) to the worker; the worker returns the result as MSON
  (``OrderParameterResult.as_dict()``) and a few scalars. Nothing torch-shaped crosses the network, so workers
  need no shared file system and the scheduler can retry a task anywhere.
* **Only the client writes to the database.** Workers never open it, so SQLite needs no locking across
  processes and a worker needs no database credentials.
* **Fault isolation.** A pair whose search raises is returned by its task as ``failed`` with the one-line error;
  the other pairs go on. A worker process that dies (killed, out of memory) takes its running task with it; the
  scheduler reschedules that task on another worker (Dask's ``distributed.scheduler.allowed-failures``, 3 by
  default), so no pair is lost. A file that cannot be read is recorded as ``failed`` by the client at once.
* **Resume.** Each row carries ``input_hash``, a SHA-256 of the pair's file contents and formats and its search
  settings. A rerun skips a pair whose row is ``done`` with the same hash, and runs again the failed pairs and
  those whose inputs or settings changed (their old row is replaced). A rerun that has nothing to run starts no
  cluster and takes about as long as reading the database.
* **Ctrl-C** stops the screen: the pairs already finished are in the database (each is written as it arrives),
  the queued ones are cancelled, and a rerun carries on where it stopped.

Row layout (``ase db screen.db`` lists it; see the README for queries): the predicted structure as the row's
atoms; key-value pairs ``name``, ``status`` (``done``/``failed``), ``space_group`` (spglib number of the predicted
structure at symprec 1e-3), ``target_space_group``, ``loss_ratio``, ``dominant_irrep``, ``seconds``,
``input_hash``, and ``error`` for a failed pair; the row's data hold the whole result JSON (``data["result"]``),
the search settings and the worker that ran it.

Requires the ``screen`` extra: ``pip install "matsym[screen]"`` (Dask distributed and a PostgreSQL driver).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import distributed
except ImportError as _exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'matsym.screen needs Dask distributed, which is not installed: pip install "matsym[screen]"'
    ) from _exc

from matsym.errors import FileFormatError, InputError, MatsymError
from matsym.screen_tasks import PAIR_COLUMNS, SYMPREC, Pair, _one_line, pair_task, read_pairs, run_pair

__all__ = [
    "PAIR_COLUMNS",
    "SYMPREC",
    "Pair",
    "ScreenError",
    "ScreenSummary",
    "pair_task",
    "read_pairs",
    "run_pair",
    "screen",
]

_POLL_SECONDS = 0.5  # how often the progress bar refreshes its count of running pairs


class ScreenError(MatsymError, RuntimeError):
    """The screen cannot run: no local cluster could be started, or the scheduler cannot be reached."""


# ------------------------------------------------------------------------------------------------------------
# database (client side only)
# ------------------------------------------------------------------------------------------------------------


def _shown(db: Any) -> str:
    """The database's name as printed: a URL's password replaced by ``***``."""
    import re

    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", str(getattr(db, "filename", db)))


def _connect(db: str | os.PathLike) -> Any:
    import ase.db

    name = str(db)
    if "://" not in name:
        folder = Path(name).parent
        if not folder.is_dir():
            raise FileFormatError(f"cannot open database {_shown(name)}: no such folder {folder}")
    try:
        return ase.db.connect(name)
    except (ValueError, OSError) as exc:
        raise FileFormatError(f"cannot open database {_shown(name)}: {_one_line(exc)}") from None


def _existing_rows(db: Any) -> dict[str, dict[str, Any]]:
    """``{name: {"ids": [...], "status", "input_hash", "error"}}`` of the rows already in the database."""
    rows: dict[str, dict[str, Any]] = {}
    try:
        found = list(db.select(include_data=False))
    except Exception as exc:  # each backend has its own errors (sqlite3, psycopg2, ...): one line for all
        raise FileFormatError(f"cannot read database {_shown(db)}: {_one_line(exc)}") from None
    for row in found:
        kv = row.key_value_pairs
        name = kv.get("name")
        if name is None:
            continue
        entry = rows.setdefault(str(name), {"ids": []})
        entry["ids"].append(row.id)
        entry.update(status=kv.get("status"), input_hash=kv.get("input_hash"), error=kv.get("error"))
    return rows


def _row(out: Mapping[str, Any], task: Mapping[str, Any]) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Atoms, key-value pairs and data of a finished pair."""
    from ase import Atoms

    from matsym.io import to_ase

    keys: dict[str, Any] = {
        "name": str(out["name"]),
        "status": str(out["status"]),
        "seconds": round(float(out.get("seconds", 0.0)), 3),
        "input_hash": str(out["input_hash"]),
    }
    data: dict[str, Any] = {
        "parent_file": task["parent"]["path"],
        "target_file": task["target"]["path"],
        "search": task["search"],
        "worker": out.get("worker", {}),
        "matsym_version": _version(),
    }
    if out["status"] != "done":
        keys["error"] = str(out.get("error", "unknown error"))
        return Atoms(), keys, data
    for key in ("space_group", "target_space_group", "dominant_irrep"):
        if out.get(key) is not None:
            keys[key] = out[key]
    keys["loss_ratio"] = float(out["loss_ratio"])
    data["result"] = out["result"]
    return to_ase(out["result"]["predicted_structure"]), keys, data


def _version() -> str:
    from matsym import __version__

    return __version__


def _store(db: Any, out: Mapping[str, Any], task: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    """Write one pair's row, replacing its old rows; returns False when an identical failure is already stored."""
    if (
        old is not None
        and out["status"] == "failed"
        and old.get("status") == "failed"
        and old.get("input_hash") == out["input_hash"]
        and old.get("error") == out.get("error")
        and len(old["ids"]) == 1
    ):
        return False
    atoms, keys, data = _row(out, task)
    with db:
        if old is not None and old["ids"]:
            db.delete(list(old["ids"]))
        db.write(atoms, key_value_pairs=keys, data=data)
    return True


# ------------------------------------------------------------------------------------------------------------
# the screen
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScreenSummary:
    """What a screen did.

    Attributes:
        db: The database written.
        total: Pairs in the input.
        done: Pairs whose row is ``done`` at the end (skipped ones included).
        failed: Pairs whose row is ``failed``.
        skipped: Pairs skipped because their row was ``done`` with the same inputs and settings.
        not_run: Pairs left unfinished by an interruption.
        interrupted: The screen was stopped (Ctrl-C) before every pair finished.
        seconds: Wall time of the screen.
        failures: ``{name: one-line error}`` of the failed pairs.
    """

    db: str
    total: int
    done: int
    failed: int
    skipped: int
    not_run: int
    interrupted: bool
    seconds: float
    failures: dict[str, str]

    @property
    def exit_status(self) -> int:
        """0 when every pair is done, 1 when any failed, 130 when interrupted."""
        if self.interrupted:
            return 130
        return 1 if self.failed else 0

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON (the ``--json`` summary of ``matsym screen``)."""
        return {
            "db": self.db,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "skipped": self.skipped,
            "not_run": self.not_run,
            "interrupted": self.interrupted,
            "seconds": round(self.seconds, 3),
            "failures": dict(self.failures),
            "exit_status": self.exit_status,
        }


class _Progress:
    """Pairs done / failed / running, elapsed and remaining time, on stderr (tqdm)."""

    def __init__(self, total: int, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.done = self.failed = self.running = 0
        self.bar = tqdm(total=total, desc="screen", unit="pair", file=sys.stderr, disable=not enabled, leave=True)
        self._show()

    def _show(self) -> None:
        self.bar.set_postfix_str(f"done={self.done} failed={self.failed} running={self.running}", refresh=False)
        self.bar.refresh()

    def finished(self, status: str) -> None:
        if status == "done":
            self.done += 1
        else:
            self.failed += 1
        self.bar.update(1)
        self._show()

    def set_running(self, running: int) -> None:
        if running != self.running:
            self.running = running
            self._show()

    def close(self) -> None:
        self.bar.close()


def _local_cluster(workers: int | None, threads_per_worker: int) -> Any:
    """Worker processes that ignore SIGINT: Ctrl-C in a terminal reaches the whole process group, and only the
    client should act on it (store what finished, cancel the rest, close the cluster) rather than every worker
    dying with a traceback. Python leaves SIGINT ignored in a child whose parent ignored it at spawn time."""
    n = workers or os.cpu_count() or 1
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        return distributed.LocalCluster(
            n_workers=n,
            threads_per_worker=threads_per_worker,
            processes=True,
            dashboard_address=":0",  # the scheduler's HTTP server on a free port: 8787 may be another cluster's
            silence_logs=logging.ERROR,
        )
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _running(client: Any, keys: set[str]) -> int:
    """Pairs being computed: tasks assigned to a worker, at most its thread count (workers queue a few ahead)."""
    try:
        processing, threads = client.processing(), client.nthreads()
    except Exception:  # a progress figure is not worth failing the screen over
        return 0
    return sum(min(sum(key in keys for key in tasks), threads.get(w, 1)) for w, tasks in processing.items())


def screen(
    pairs: str | os.PathLike | Sequence[Pair],
    db: str | os.PathLike,
    *,
    settings: Mapping[str, Any] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
    threads_per_worker: int = 1,
    progress: bool = True,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> ScreenSummary:
    """Run one order-parameter search per pair on Dask and store every pair as a row of an ASE database.

    Args:
        pairs: A pairs CSV (see :func:`read_pairs`) or a list of :class:`Pair`.
        db: The ASE database: a file name (``screen.db``: SQLite) or a ``postgresql://user:password@host:port/db``
            URL. Rows of other pairs in it are left alone.
        settings: Keyword arguments of :class:`~matsym.search.OrderParameterSearch` for every pair (plain JSON:
            ``sites``, ``irreps``, ``tie``, ``mask``, ``sparsity``, ``l_penalty``, ``seed``, any
            :class:`~matsym.search.SearchConfig` field such as ``max_steps``); a pair's CSV settings override them.
        workers: Worker processes of the local cluster (default: the number of cores). Ignored with
            ``scheduler`` or ``client``.
        scheduler: Address of a running Dask scheduler (``tcp://host:8786``), e.g. ``cluster.scheduler_address``
            of a dask-jobqueue cluster; the screen then starts no cluster of its own.
        client: A connected :class:`distributed.Client` to use instead (left open).
        threads_per_worker: Threads of each local worker process (each search uses one torch thread).
        progress: Show a progress bar on stderr.
        on_result: Called on the client with each finished pair's output (after it is stored).

    Returns:
        A :class:`ScreenSummary`; ``summary.exit_status`` is 0 when every pair is done, 1 when any failed, 130
        when interrupted by Ctrl-C (finished pairs are stored either way).

    Raises:
        FileFormatError: the pairs file or the database cannot be opened.
        InputError: the pairs file is malformed, or the settings are not JSON data.
    """
    start = time.perf_counter()
    pair_list = read_pairs(pairs) if isinstance(pairs, (str, os.PathLike)) else list(pairs)
    names = [p.name for p in pair_list]
    if len(set(names)) != len(names):
        raise InputError(
            f"pair names must be unique, got duplicates {sorted({n for n in names if names.count(n) > 1})}"
        )
    if workers is not None and workers < 1:
        raise InputError(f"workers must be a positive integer, got {workers}")
    if threads_per_worker < 1:
        raise InputError(f"threads_per_worker must be a positive integer, got {threads_per_worker}")
    database = _connect(db)
    existing = _existing_rows(database)
    tasks = [pair_task(p, settings) for p in pair_list]

    status: dict[str, str] = {}
    failures: dict[str, str] = {}
    skipped = 0
    to_run: list[dict[str, Any]] = []
    for task in tasks:
        old = existing.get(task["name"])
        if old is not None and old.get("status") == "done" and old.get("input_hash") == task["input_hash"]:
            status[task["name"]] = "done"
            skipped += 1
        else:
            to_run.append(task)

    bar = _Progress(len(to_run), progress)

    def record(out: dict[str, Any], task: dict[str, Any]) -> None:
        _store(database, out, task, existing.get(task["name"]))
        status[task["name"]] = out["status"]
        if out["status"] != "done":
            failures[task["name"]] = str(out.get("error"))
        bar.finished(out["status"])
        if on_result is not None:
            on_result(out)

    interrupted = False
    try:
        remote = []
        for task in to_run:  # unreadable files fail here, without a cluster
            if "error" in task["parent"] or "error" in task["target"]:
                record(run_pair(task), task)
            else:
                remote.append(task)
        if remote:
            _run_remote(remote, record, bar, workers, scheduler, client, threads_per_worker)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    return ScreenSummary(
        db=_shown(db),
        total=len(tasks),
        done=sum(s == "done" for s in status.values()),
        failed=sum(s == "failed" for s in status.values()),
        skipped=skipped,
        not_run=len(tasks) - len(status),
        interrupted=interrupted,
        seconds=time.perf_counter() - start,
        failures=failures,
    )


def _run_remote(
    tasks: list[dict[str, Any]],
    record: Callable[[dict[str, Any], dict[str, Any]], None],
    bar: _Progress,
    workers: int | None,
    scheduler: str | None,
    client: Any,
    threads_per_worker: int,
) -> None:
    """Submit the tasks, store each as it finishes; cancels the rest and closes what it opened on exit."""
    cluster = None
    own_client = client is None
    futures: dict[Any, dict[str, Any]] = {}
    try:
        if client is None:
            if scheduler is None:
                try:
                    cluster = _local_cluster(workers, threads_per_worker)
                except RuntimeError as exc:
                    raise ScreenError(f"cannot start a local Dask cluster: {_one_line(exc)}") from exc
                client = distributed.Client(cluster)
            else:
                try:
                    client = distributed.Client(scheduler, timeout="30s")
                except OSError as exc:
                    raise ScreenError(f"cannot reach the Dask scheduler {scheduler}: {_one_line(exc)}") from None
        for task in tasks:
            key = f"matsym-screen-{task['name']}-{uuid.uuid4().hex[:8]}"
            futures[client.submit(run_pair, task, key=key, pure=False)] = task
        keys = {f.key for f in futures}
        pending = set(futures)
        while pending:
            try:
                finished, pending = distributed.wait(pending, timeout=_POLL_SECONDS, return_when="FIRST_COMPLETED")
            except TimeoutError:
                finished = set()
            for future in finished:
                task = futures.pop(future)
                keys.discard(future.key)
                if future.status == "finished":
                    out = future.result()
                else:  # e.g. KilledWorker: the task's workers died more often than Dask allows
                    exc = future.exception()
                    out = {
                        "name": task["name"],
                        "input_hash": task["input_hash"],
                        "status": "failed",
                        "error": f"task lost: {_one_line(exc)}" if exc is not None else f"task {future.status}",
                    }
                future.release()
                record(out, task)
            bar.set_running(_running(client, keys))
    finally:
        for future in list(futures):  # queued and running pairs of an interrupted screen
            future.cancel()
        if own_client and client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

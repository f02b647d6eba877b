"""Pairs and tasks of ``matsym screen``: the pairs CSV, what travels to a Dask worker, and what runs there.

A task is plain data: the bytes and format of the two structure files, the search settings as JSON and a content
hash of both (``input_hash``), so a worker needs neither the user's file system nor any live object, and a rerun can
tell a pair it has already done. :func:`run_pair` is the function a worker runs: it reads the structures from the
bytes, runs :class:`~matsym.search.OrderParameterSearch` and returns the result as MSON plus the figures the
database keeps (space groups from spglib at symprec 1e-3, loss ratio, dominant irrep). It never raises for a bad
pair: any exception becomes ``status="failed"`` with a one-line error, so one pair cannot stop a screen.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matsym.errors import FileFormatError, InputError, MatsymError

__all__ = ["PAIR_COLUMNS", "SYMPREC", "Pair", "pair_task", "read_pairs", "run_pair"]

#: Required columns of a pairs CSV, then the optional per-row search settings.
PAIR_COLUMNS: tuple[str, ...] = ("name", "parent", "target")
_ROW_SETTINGS: tuple[str, ...] = ("sites", "irreps", "tie", "mask")
#: Tolerance (Å) of the space groups recorded in the database.
SYMPREC = 1e-3


# ------------------------------------------------------------------------------------------------------------
# pairs
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """One row of a pairs CSV.

    Attributes:
        name: Unique name of the pair (the database row's ``name``).
        parent: Path of the parent structure file.
        target: Path of the target structure file.
        settings: Per-row search settings (``sites``, ``irreps``, ``tie``, ``mask``) that override the screen's
            settings for this pair; plain JSON.
    """

    name: str
    parent: Path
    target: Path
    settings: dict[str, Any] = field(default_factory=dict)


def _row_setting(column: str, text: str) -> Any:
    """A CSV cell as a search argument: tie in ``--tie`` syntax, mask items separated by ``;``."""
    if column == "tie":
        from matsym.cli import parse_tie

        return parse_tie(text)
    if column == "mask":
        items = [item.strip() for item in text.split(";") if item.strip()]
        return items if len(items) != 1 else items[0]
    return text


def read_pairs(path: str | os.PathLike) -> list[Pair]:
    """Read a pairs CSV: a header with ``name,parent,target`` and optional ``sites,irreps,tie,mask``.

    File paths are relative to the CSV's folder (absolute paths stay as they are); they are not opened here, so a
    missing structure file becomes a failed pair rather than an error of the whole screen. An empty optional cell
    keeps the screen's setting. ``tie`` takes the ``--tie`` syntax (``all``, ``translation:0.5,0.5,0.5``,
    ``0,1;2,3``); ``mask`` takes items separated by ``;`` (``1e@1,0,0;2e m=2``).

    Args:
        path: The CSV file.

    Returns:
        The pairs in file order.

    Raises:
        FileFormatError: the file is missing or unreadable.
        InputError: a required column is missing, a column is unknown, a name is empty or repeated, a row has no
            parent or target, or there are no rows.
    """
    p = Path(path)
    if not p.is_file():
        raise FileFormatError(f"cannot read pairs: no such file: {p}")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"cannot read pairs file {p}: {exc}") from None
    reader = csv.DictReader(text.splitlines())
    header = [c.strip() for c in (reader.fieldnames or [])]
    missing = [c for c in PAIR_COLUMNS if c not in header]
    if missing:
        raise InputError(
            f"{p}: expected a CSV header with columns {','.join(PAIR_COLUMNS)} (optional: "
            f"{','.join(_ROW_SETTINGS)}), got {','.join(header) or 'an empty file'}"
        )
    unknown = [c for c in header if c not in PAIR_COLUMNS + _ROW_SETTINGS]
    if unknown:
        raise InputError(f"{p}: unknown column(s) {unknown}; allowed: {list(PAIR_COLUMNS + _ROW_SETTINGS)}")
    pairs: list[Pair] = []
    seen: dict[str, int] = {}
    for line, raw in enumerate(reader, start=2):
        if None in raw:
            raise InputError(
                f'{p}, line {line}: more cells than the header has columns (quote a cell that holds commas: "1e@1,0,0")'
            )
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        if not any(row.values()):
            continue
        name = row.get("name", "")
        if not name:
            raise InputError(f"{p}, line {line}: empty name; every pair needs a unique name")
        if name in seen:
            raise InputError(f"{p}, line {line}: name {name!r} repeats line {seen[name]}; names must be unique")
        seen[name] = line
        for column in ("parent", "target"):
            if not row.get(column):
                raise InputError(f"{p}, line {line} ({name}): no {column} file given")
        settings = {c: _row_setting(c, row[c]) for c in _ROW_SETTINGS if row.get(c)}
        pairs.append(Pair(name, p.parent / row["parent"], p.parent / row["target"], settings))
    if not pairs:
        raise InputError(f"{p}: no pairs (a header and at least one row are needed)")
    return pairs


# ------------------------------------------------------------------------------------------------------------
# tasks (what travels to the workers)
# ------------------------------------------------------------------------------------------------------------


def _file_entry(path: Path) -> dict[str, Any]:
    """``{"path", "format", "content"}`` of a structure file, or ``{"path", "error"}`` if it cannot be read."""
    from matsym.io import detect_format

    if not path.is_file():
        return {"path": str(path), "error": f"cannot read structure: no such file: {path}"}
    try:
        fmt = detect_format(path)
        content = path.read_bytes()
    except (MatsymError, OSError) as exc:
        return {"path": str(path), "error": " ".join(str(exc).split())}
    return {"path": str(path), "format": fmt, "content": content}


def pair_task(pair: Pair, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The task of one pair: file contents, formats and search settings (bytes and JSON only).

    Args:
        pair: The pair.
        settings: Search settings of the screen (keyword arguments of
            :class:`~matsym.search.OrderParameterSearch`, plain JSON); the pair's own settings override them.

    Returns:
        ``{"name", "parent", "target", "search", "input_hash"}``; ``parent``/``target`` hold ``format`` and
        ``content`` (bytes), or ``error`` when the file cannot be read.
    """
    merged = {**dict(settings or {}), **pair.settings}
    search = {k: v for k, v in merged.items() if v is not None}  # None = the default: the same hash either way
    task = {"name": pair.name, "parent": _file_entry(pair.parent), "target": _file_entry(pair.target)}
    task["search"] = _plain(search, "search settings")
    task["input_hash"] = _input_hash(task)
    return task


def _plain(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be plain JSON data (str, numbers, lists, dicts), got {value!r}: {exc}") from None


def _input_hash(task: Mapping[str, Any]) -> str:
    """SHA-256 of what determines a pair's result: file contents and formats, and the search settings."""
    h = hashlib.sha256()
    for role in ("parent", "target"):
        entry = task[role]
        h.update(f"{role}:{entry.get('format')}:".encode())
        content = entry.get("content")
        h.update(hashlib.sha256(content).digest() if content is not None else b"unreadable")
    h.update(json.dumps(task["search"], sort_keys=True).encode())
    return h.hexdigest()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if isinstance(exc, MatsymError) and text else f"{type(exc).__name__}: {text}".rstrip(": ")


def _load(entry: Mapping[str, Any], folder: Path, role: str) -> Any:
    from matsym.io import load_structure

    path = folder / role
    path.write_bytes(entry["content"])
    try:
        return load_structure(path, fmt=entry["format"], min_distance=0.0)
    except FileFormatError as exc:  # name the user's file, not the worker's copy
        raise FileFormatError(str(exc).replace(str(path), entry["path"])) from None


def _space_group(structure: Any) -> int | None:
    from pymatgen.core import IStructure

    from matsym.symmetry import space_group

    if not isinstance(structure, IStructure):
        return None
    try:
        return space_group(structure, SYMPREC)[0]
    except MatsymError:
        return None


def run_pair(task: Mapping[str, Any]) -> dict[str, Any]:
    """Run the search of one task (on a worker); never raises for a bad pair.

    Args:
        task: A :func:`pair_task` dictionary.

    Returns:
        ``{"name", "input_hash", "status", "seconds", "worker"}`` and, for ``done``: ``space_group``,
        ``target_space_group`` (spglib at :data:`SYMPREC`; None for finite point clouds), ``loss_ratio``,
        ``dominant_irrep``, ``result`` (MSON of the :class:`~matsym.result.OrderParameterResult`); for ``failed``:
        ``error`` (one line).
    """
    start = time.perf_counter()
    out: dict[str, Any] = {
        "name": task["name"],
        "input_hash": task["input_hash"],
        "worker": {"pid": os.getpid(), "host": os.uname().nodename},
    }
    try:
        for role in ("parent", "target"):
            if "error" in task[role]:
                raise FileFormatError(task[role]["error"])
        from matsym.registration import register
        from matsym.search import OrderParameterSearch, search_arguments

        with tempfile.TemporaryDirectory(prefix="matsym-screen-") as tmp:
            parent = _load(task["parent"], Path(tmp), "parent")
            target = _load(task["target"], Path(tmp), "target")
        if _is_periodic(parent) and _is_periodic(target):
            register(parent, target)  # fail fast on a bad pair, before the network is built
        search = dict(task["search"])
        kwargs = search_arguments(
            search.pop("sites", None), search.pop("irreps", None), search.pop("tie", "none"),
            search.pop("mask", None), search,
        )  # fmt: skip
        kwargs.setdefault("threads", 1)  # one torch thread per search: a worker's threads run other pairs
        result = OrderParameterSearch(parent, target, **kwargs).run(progress=False)
        fractions = result.irrep_fractions() if result.irrep_weights.size else {}
        dominant = max(fractions, key=fractions.get) if fractions and max(fractions.values()) > 0 else None
        target_structure = result.target if result.target is not None else target
        out.update(
            status="done",
            space_group=_space_group(result.predicted_structure),
            target_space_group=_space_group(target_structure),
            loss_ratio=float(result.metrics.get("loss_ratio", math.nan)),
            dominant_irrep=dominant,
            result=result.as_dict(),
        )
    except Exception as exc:  # fault isolation: any failure of one pair is that pair's result
        out.update(status="failed", error=_one_line(exc))
    out["seconds"] = time.perf_counter() - start
    return out


def _is_periodic(s: Any) -> bool:
    from pymatgen.core import IStructure

    return isinstance(s, IStructure)

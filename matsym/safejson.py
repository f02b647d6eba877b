"""Reading files and JSON without executing anything a file names.

Two ways in which reading a file could run code or exhaust the machine are closed here:

* **Imports named by data.** pymatgen's ``Site.from_dict`` passes site ``properties`` through monty's
  ``MontyDecoder``, which imports any module that a ``{"@module": ..., "@class": ...}`` entry names (with
  ``python -m matsym`` the working directory is on the path, so a planted ``.py`` file there would run).
  :func:`structure_from_dict` therefore rebuilds a Structure or Molecule from a *cleaned copy* of its dictionary:
  only the keys pymatgen needs, species as element symbols with occupancies and oxidation states, and properties
  reduced to plain data (numbers, strings, booleans, None, and lists / dicts of those). Anything else, in particular
  every dictionary with an ``@``-key, is dropped with a :class:`UserWarning` naming it, so nothing reaches monty's
  decoder that it could import.
* **Inputs that never end.** :func:`read_regular_file` opens without blocking, refuses anything that is not a
  regular file after following links (a FIFO would hang the reader forever, ``/dev/zero`` would be read until memory
  runs out) and reads at most a stated number of bytes. :func:`loads` rejects ``NaN`` / ``Infinity`` (Python's
  :mod:`json` writes and reads them, but no later stage can use them) and nesting deeper than a bound (100,000
  nested ``[`` otherwise end in a ``RecursionError``).
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import warnings
from pathlib import Path
from typing import Any

from matsym.errors import FileFormatError

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_JSON_DEPTH",
    "load_json_file",
    "loads",
    "plain_data",
    "read_regular_file",
    "structure_from_dict",
]

#: Largest file matsym reads (bytes): 256 MiB holds a result of several hundred thousand atoms.
MAX_FILE_BYTES = 256 * 1024**2
#: Deepest nesting of JSON arrays / objects accepted (results nest at most 6 deep).
MAX_JSON_DEPTH = 64


def read_regular_file(path: str | os.PathLike, *, what: str = "file", max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """Read a whole regular file, refusing FIFOs, devices, sockets and files above ``max_bytes``.

    The file is opened with ``O_NONBLOCK`` (so opening a FIFO with no writer returns at once) and checked with
    ``fstat`` on the open descriptor, so a link swapped between a check and the open cannot slip a device in.

    Args:
        path: File to read; symbolic links are followed, and their target must be a regular file.
        what: What the file is, for messages ("structure", "result", "weights").
        max_bytes: Largest size accepted.

    Returns:
        The file's bytes.

    Raises:
        FileFormatError: missing, a directory, not a regular file, unreadable (permissions), or too large.
    """
    p = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(p, flags)
    except FileNotFoundError:
        raise FileFormatError(f"cannot read {what}: no such file: {p}") from None
    except IsADirectoryError:
        raise FileFormatError(f"cannot read {what} {p}: it is a directory, expected a file") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if exc.errno in (errno.ENXIO, errno.EOPNOTSUPP):  # a socket, or a FIFO-like node without a reader
            reason = "not a regular file"
        raise FileFormatError(f"cannot read {what} {p}: {reason}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise FileFormatError(f"cannot read {what} {p}: it is a directory, expected a file")
        if not stat.S_ISREG(info.st_mode):
            raise FileFormatError(
                f"cannot read {what} {p}: expected a regular file, got a {_kind(info.st_mode)} (matsym reads "
                "regular files only)"
            )
        if info.st_size > max_bytes:
            raise FileFormatError(
                f"cannot read {what} {p}: {info.st_size} bytes, more than the limit of {max_bytes} bytes"
            )
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:  # the file grew while being read
                raise FileFormatError(f"cannot read {what} {p}: more than the limit of {max_bytes} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise FileFormatError(f"cannot read {what} {p}: {exc.strerror or type(exc).__name__}") from None
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-finite number {name} (expected finite numbers)")


def _depth(text: str) -> int:
    """Deepest nesting of brackets outside strings (a cheap scan that runs before the recursive parser)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def loads(text: str | bytes, *, where: str = "JSON", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON strictly: no ``NaN`` / ``Infinity``, nesting at most ``max_depth``, valid UTF-8.

    Raises:
        FileFormatError: the text is not such JSON (the message gives the position).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileFormatError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    # the scan is linear and cheap next to the parse; only texts with many brackets need it
    if text.count("[") + text.count("{") > max_depth and _depth(text) > max_depth:
        raise FileFormatError(f"{where}: JSON nested more than {max_depth} levels deep")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except ValueError as exc:
        raise FileFormatError(f"{where}: {exc}") from None
    except RecursionError:
        raise FileFormatError(f"{where}: JSON nested too deeply") from None


def load_json_file(path: str | os.PathLike, *, what: str = "JSON file", max_bytes: int = MAX_FILE_BYTES) -> Any:
    """:func:`read_regular_file` then :func:`loads`."""
    return loads(read_regular_file(path, what=what, max_bytes=max_bytes), where=f"{what} {path}")


# -------------------------------------------------------------------------------------------- plain data


def plain_data(value: Any, *, where: str, _depth: int = 0) -> Any:
    """``value`` reduced to plain JSON data; anything else is dropped (returns ``_DROP``) with a warning.

    Plain data: None, booleans, finite or non-finite floats, integers, strings, lists of plain data, and
    dictionaries with string keys, none starting with ``@`` (those name classes for monty to import).
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if _depth > MAX_JSON_DEPTH:
        return _dropped(where, "nested too deeply")
    if isinstance(value, list):
        items = [plain_data(v, where=f"{where}[{i}]", _depth=_depth + 1) for i, v in enumerate(value)]
        if any(v is _DROP for v in items):
            return _dropped(where, "a list holding an entry that is not plain data")
        return items
    if isinstance(value, dict):
        tagged = [k for k in value if not isinstance(k, str) or k.startswith("@")]
        if tagged:
            return _dropped(where, f"an object with class tag(s) {tagged[:3]}; matsym imports nothing a file names")
        out = {}
        for k, v in value.items():
            clean = plain_data(v, where=f"{where}.{k}", _depth=_depth + 1)
            if clean is not _DROP:
                out[k] = clean
        return out
    return _dropped(where, f"a {type(value).__name__}")


class _Drop:
    def __repr__(self) -> str:
        return "<dropped>"


_DROP = _Drop()


def _dropped(where: str, why: str) -> _Drop:
    warnings.warn(f"{where} dropped: {why} (only plain data is read)", UserWarning, stacklevel=3)
    return _DROP


def _properties(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        warnings.warn(f"{where} dropped: expected an object of properties, got {type(value).__name__}", stacklevel=3)
        return {}
    clean = plain_data(value, where=where)
    return {} if clean is _DROP else clean


# -------------------------------------------------------------------------------------------- structures


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FileFormatError(f"{where}: expected a number, got {type(value).__name__} {value!r:.40}")
    out = float(value)
    if not math.isfinite(out):
        raise FileFormatError(f"{where}: expected a finite number, got {value!r}")
    return out


def _vector(value: Any, where: str) -> list[float]:
    if not isinstance(value, list) or len(value) != 3:
        raise FileFormatError(f"{where}: expected a list of 3 numbers, got {str(value)[:60]}")
    return [_number(x, f"{where}[{k}]") for k, x in enumerate(value)]


def _species(value: Any, where: str) -> list[dict]:
    from pymatgen.core import Element

    if not isinstance(value, list) or not value:
        raise FileFormatError(f"{where}: expected a non-empty list of species, got {str(value)[:60]}")
    out = []
    for k, sp in enumerate(value):
        here = f"{where}[{k}]"
        if not isinstance(sp, dict) or not isinstance(sp.get("element"), str):
            raise FileFormatError(f"{here}: expected {{'element': symbol, 'occu': number}}, got {str(sp)[:60]}")
        symbol = sp["element"]
        clean: dict[str, Any] = {"element": symbol, "occu": _number(sp.get("occu", 1.0), f"{here}.occu")}
        if sp.get("oxidation_state") is not None:
            clean["oxidation_state"] = _number(sp["oxidation_state"], f"{here}.oxidation_state")
        if not Element.is_valid_symbol(symbol) and "oxidation_state" not in clean:
            clean["oxidation_state"] = None  # a dummy species (e.g. "X")
        out.append(clean)
    return out


def structure_from_dict(d: Any, *, where: str = "structure") -> Any:
    """Rebuild a pymatgen Structure or Molecule from its ``as_dict()`` without importing anything it names.

    Args:
        d: ``Structure.as_dict()`` or ``Molecule.as_dict()`` (``@class`` may be missing: a ``lattice`` key makes it
            a Structure).
        where: Where the dictionary came from, for messages and warnings.

    Returns:
        A new Structure or Molecule.

    Raises:
        FileFormatError: the dictionary is not a structure (the message names the offending key).
    """
    from pymatgen.core import Molecule, Structure

    if not isinstance(d, dict):
        raise FileFormatError(f"{where}: expected a structure object, got {type(d).__name__}")
    cls_name = d.get("@class")
    periodic = cls_name in ("Structure", "IStructure") or (cls_name is None and "lattice" in d)
    if not periodic and cls_name not in ("Molecule", "IMolecule") and not (cls_name is None and "sites" in d):
        raise FileFormatError(
            f"{where}: expected a pymatgen Structure.as_dict() or Molecule.as_dict(), got an object with "
            f"@class={cls_name!r} and keys {sorted(map(str, d))[:8]}"
        )
    sites = d.get("sites")
    if not isinstance(sites, list):
        raise FileFormatError(f"{where}: expected a list of sites under 'sites', got {type(sites).__name__}")
    clean: dict[str, Any] = {"@module": "pymatgen.core.structure", "@class": "Structure" if periodic else "Molecule"}
    if periodic:
        lattice = d.get("lattice")
        if not isinstance(lattice, dict) or "matrix" not in lattice:
            raise FileFormatError(f"{where}: expected a lattice object with a 'matrix', got {str(lattice)[:60]}")
        matrix = lattice["matrix"]
        if not isinstance(matrix, list) or len(matrix) != 3:
            raise FileFormatError(f"{where}: lattice matrix: expected 3 vectors, got {str(matrix)[:60]}")
        clean["lattice"] = {"matrix": [_vector(v, f"{where}: lattice vector {k}") for k, v in enumerate(matrix)]}
        pbc = lattice.get("pbc", (True, True, True))
        if not isinstance(pbc, (list, tuple)) or len(pbc) != 3 or not all(isinstance(x, bool) for x in pbc):
            raise FileFormatError(f"{where}: lattice pbc: expected 3 booleans, got {str(pbc)[:60]}")
        clean["lattice"]["pbc"] = list(pbc)
    else:
        clean["charge"] = _number(d.get("charge", 0) or 0, f"{where}: charge")
        clean["spin_multiplicity"] = d.get("spin_multiplicity") if isinstance(d.get("spin_multiplicity"), int) else None
    clean_sites = []
    for i, site in enumerate(sites):
        here = f"{where}: site {i}"
        if not isinstance(site, dict):
            raise FileFormatError(f"{here}: expected an object, got {type(site).__name__}")
        entry: dict[str, Any] = {"species": _species(site.get("species"), f"{here} species")}
        if periodic:
            entry["abc"] = _vector(site.get("abc"), f"{here} abc")
        else:
            entry["xyz"] = _vector(site.get("xyz"), f"{here} xyz")
        if isinstance(site.get("label"), str):
            entry["label"] = site["label"]
        entry["properties"] = _properties(site.get("properties"), f"{here} properties")
        clean_sites.append(entry)
    clean["sites"] = clean_sites
    clean["properties"] = _properties(d.get("properties"), f"{where}: properties")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return (Structure if periodic else Molecule).from_dict(clean)
    except Exception as exc:  # pymatgen's own checks (unknown element, ...)
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise FileFormatError(f"{where}: cannot build the structure ({text})") from None

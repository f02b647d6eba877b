"""CDML/Bilbao labels of small irreps by character matching against the `irreptables` data files.

The pip package ``irreptables`` (GPL-3, optional extra ``matsym[labels]``) ships the Bilbao character tables of
the maximal k-points of all 230 space groups as text files (``data/tables/irreps-SG=N-scal.dat``). They are read
here at run time, as data; the package is never imported (its ``irrep`` dependency fails to import on Python
3.11) and no table data is copied into matsym.

Conventions, measured on all 230 groups (``examples/label_matching.py``):

* the tables use the ITA setting with origin choice 2 and hexagonal axes for rhombohedral groups; spglib puts the
  parent in that setting with the matching Hall number;
* translations and k-vectors are printed as rounded decimals (0.333333): they are rationalised to twelfths, or
  screw-axis groups fail to match;
* an operation ``(R, τ)`` of the table and spgrep's ``(R, w)`` differ by a lattice translation ``Δ = τ - w``;
  the characters then agree as ``χ_spgrep(R, w) · exp(-2πi k·Δ) = conj(χ_table)``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
from fractions import Fraction
from pathlib import Path

import numpy as np

__all__ = ["LabelTable", "labels_available", "load_table"]


def _rational(x: float) -> float:
    return float(Fraction(x).limit_denominator(12))


@dataclasses.dataclass(frozen=True)
class TableKPoint:
    """One maximal k-point of a table: name, k (conventional reciprocal basis), ops of its little co-group."""

    name: str
    k: np.ndarray
    ops: tuple[int, ...]  # 0-based indices into LabelTable.rotations
    labels: tuple[str, ...]
    dims: tuple[int, ...]
    characters: np.ndarray  # [n_irreps, len(ops)] complex


@dataclasses.dataclass(frozen=True)
class LabelTable:
    """The character table of one space group (standard setting)."""

    number: int
    rotations: np.ndarray  # [n, 3, 3]
    translations: np.ndarray  # [n, 3]
    kpoints: tuple[TableKPoint, ...]


def _tables_dir() -> Path | None:
    spec = importlib.util.find_spec("irreptables")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "tables"
    return path if path.is_dir() else None


def labels_available() -> bool:
    """True when the optional ``irreptables`` data files (``pip install matsym[labels]``) are installed."""
    return _tables_dir() is not None


@functools.lru_cache(maxsize=256)
def load_table(number: int) -> LabelTable | None:
    """Parse ``irreps-SG=<number>-scal.dat``; None when the extra is not installed."""
    root = _tables_dir()
    if root is None:
        return None
    lines = (root / f"irreps-SG={number}-scal.dat").read_text().splitlines()
    rots, trans = [], []
    i = next(n for n, line in enumerate(lines) if line.strip().startswith("symmetries")) + 1
    while i < len(lines) and lines[i].split():
        v = lines[i].split()
        rots.append(np.array(v[:9], dtype=int).reshape(3, 3))
        trans.append([_rational(float(x)) for x in v[9:12]])
        i += 1
    kpoints: list[TableKPoint] = []
    seen: set[tuple] = set()
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line.startswith("kpoint"):
            continue
        head, kstr, ops = line.split(":")
        name = head.split()[1]
        k = np.array([_rational(float(x)) for x in kstr.split()])
        idx = tuple(int(x) - 1 for x in ops.split())
        labels, dims, chars = [], [], []
        while i < len(lines) and lines[i].split() and not lines[i].strip().startswith("kpoint"):
            v = lines[i].split()
            i += 1
            nums = np.array(v[2:], dtype=float)
            if len(nums) == 2 * len(idx):
                phase = np.array([_rational(x) for x in nums[len(idx) :]])
                ch = nums[: len(idx)] * np.exp(1j * np.pi * phase)
            else:
                ch = nums.astype(complex)
            labels.append(v[0])
            dims.append(int(v[1]))
            chars.append(ch)
        key = (name, tuple(k))
        if key in seen or not labels:
            continue
        seen.add(key)
        kpoints.append(TableKPoint(name, k, idx, tuple(labels), tuple(dims), np.array(chars)))
    return LabelTable(number, np.array(rots), np.array(trans), tuple(kpoints))


@functools.lru_cache(maxsize=256)
def table_hall_number(number: int) -> int:
    """spglib's Hall number of the tables' setting: origin choice 2, hexagonal axes, else spglib's default."""
    from matsym.symmetry import _spglib_raising

    with _spglib_raising() as spglib:
        # Hall numbers 1-530 run in order of the space-group number: bisect for the group's first one, then
        # read its few settings (a scan of all 530 was 5-8 ms of a search's mode report)
        lo, hi = 1, 530
        while lo < hi:
            mid = (lo + hi) // 2
            if spglib.get_spacegroup_type(mid).number < number:
                lo = mid + 1
            else:
                hi = mid
        halls = []
        for h in range(lo, 531):
            t = spglib.get_spacegroup_type(h)
            if t.number != number:
                break
            halls.append((h, t.choice))
        for h, choice in halls:
            if choice in ("2", "H"):
                return h
    return halls[0][0]


def match_characters(
    table_k: TableKPoint,
    table: LabelTable,
    std_rotations: np.ndarray,
    std_translations: np.ndarray,
    characters: np.ndarray,
    tol: float = 1e-3,
) -> list[int | None]:
    """Table irrep index for each of our irreps, or None.

    Args:
        table_k: the table's k-point (its ``k`` is the one our irreps were computed at, in the standard basis).
        table: the group's table.
        std_rotations: [m, 3, 3] our little-group operations' W in the standard setting.
        std_translations: [m, 3] their w in the standard setting.
        characters: [n_irreps, m] our characters.
    """
    cols, sel = [], []
    index = {np.asarray(r, dtype=np.int64).tobytes(): g for g, r in enumerate(std_rotations)}
    for j, t_idx in enumerate(table_k.ops):
        r_t, tau_t = table.rotations[t_idx], table.translations[t_idx]
        g = index.get(np.asarray(r_t, dtype=np.int64).tobytes())
        if g is None:
            return [None] * len(characters)
        delta = tau_t - std_translations[g]
        cols.append(characters[:, g] * np.exp(-2j * np.pi * float(table_k.k @ delta)))
        sel.append(j)
    ours = np.array(cols).T  # [n_irreps, m]
    theirs = np.conj(table_k.characters[:, sel])
    out: list[int | None] = []
    for row in ours:
        diff = np.abs(theirs - row[None]).max(axis=1)
        hits = np.nonzero(diff < tol)[0]
        out.append(int(hits[0]) if len(hits) == 1 else None)
    return out

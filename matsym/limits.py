"""Bounds on the size of what matsym accepts, checked before any heavy work.

Why each bound exists (measured on main at 186e0aa, 2-core machine):

* ``max_volume`` (Å^3): the neighbour search bins the cell into boxes about one trial cutoff wide, and the default
  cutoff is found by growing a trial radius from 2 Å, so memory grows with the cell volume, not the number of atoms:
  two atoms 866 Å apart in a 1,000 Å cubic cell took 4.5 GB at 500 Å and ended in a MemoryError at 1,000 Å. The
  default, 10^6 Å^3 (a 100 Å cube), holds 80,000 atoms of a perovskite and a 5,000-atom cell with 60 % vacuum.
* ``max_atoms``: the network's memory grows with the number of edges, about 60 per atom at the default cutoff.
* ``min_distance`` (Å): two atoms closer than this are almost always a duplicated site (a CIF listing a
  symmetry-equivalent atom twice), and a zero-length edge has no direction for the spherical harmonics.
* ``max_components``: ``--irreps 100000x1e`` asked for a 671 GiB tensor. The default candidate set (L = 0..4, both
  parities) has 50 components; the bound is 20 times that.
* ``threads``: at most 4 per CPU of the machine (at least 64); ``--threads 100000`` made libgomp run out of memory
  or segfault.
* ``seed``: torch seeds are 64-bit; matsym takes 0 <= seed < 2^63 so that the seed round-trips through JSON and
  numpy.

The values in force are a :class:`Limits` held in a context variable: :func:`current` reads it and
:func:`using` changes it for a block (the command line does this with ``--max-volume``, ``--max-atoms`` and
``--min-distance``), so that every stage (loading, registration, the search's own loading) applies the same
bounds without passing them through each signature.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from matsym.errors import InputError, StructureError

__all__ = ["MAX_SEED", "Limits", "check_seed", "check_size", "check_threads", "current", "max_threads", "using"]

MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class Limits:
    """Bounds on inputs (see the module docstring for the reasons behind each default).

    Attributes:
        min_distance: smallest distance between two atoms (Å), periodic images included; 0 disables the check.
        max_atoms: largest number of sites of a structure (the search cell has as many sites as the target).
        max_volume: largest cell volume (Å^3).
        max_components: largest number of order-parameter components per site (irreps dimension).
    """

    min_distance: float = 0.5
    max_atoms: int = 20_000
    max_volume: float = 1e6
    max_components: int = 1000

    def __post_init__(self) -> None:
        for name in ("min_distance", "max_volume"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise InputError(f"{name}: expected a finite number >= 0, got {value!r}")
        for name in ("max_atoms", "max_components"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name}: expected a positive integer, got {value!r}")


_DEFAULT = Limits()
_CURRENT: contextvars.ContextVar[Limits] = contextvars.ContextVar("matsym_limits")


def current() -> Limits:
    """The limits in force (the defaults unless inside :func:`using`)."""
    return _CURRENT.get(_DEFAULT)


@contextlib.contextmanager
def using(limits: Limits | None = None, **changes: Any) -> Iterator[Limits]:
    """Apply other limits inside a ``with`` block, e.g. ``with using(max_volume=5e6): search.run()``.

    Args:
        limits: A full :class:`Limits` (default: the ones in force).
        **changes: Fields to change.
    """
    new = replace(limits if limits is not None else current(), **changes)
    token = _CURRENT.set(new)
    try:
        yield new
    finally:
        _CURRENT.reset(token)


def check_size(structure: Any, *, what: str = "structure", limits: Limits | None = None) -> None:
    """Refuse a structure with more sites or a larger cell than the limits allow.

    Raises:
        StructureError: too many sites or too large a cell (the message names the limit and its option).
    """
    from pymatgen.core import IStructure

    lim = limits if limits is not None else current()
    n = len(structure)
    if n > lim.max_atoms:
        raise StructureError(
            f"{what} has {n} sites, more than max_atoms={lim.max_atoms} (raise it with --max-atoms, or "
            "matsym.limits.using(max_atoms=...))"
        )
    if isinstance(structure, IStructure):
        volume = abs(float(structure.lattice.volume))
        if not volume <= lim.max_volume:
            raise StructureError(
                f"{what} has a cell volume of {volume:.4g} Å^3, more than max_volume={lim.max_volume:g} Å^3 "
                "(raise it with --max-volume, or matsym.limits.using(max_volume=...))"
            )


def max_threads() -> int:
    """The largest ``threads`` accepted: 4 per CPU this process may run on, and at least 64 (more threads than CPUs
    only slow torch down, but a command line written for a bigger machine should still run)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(64, 4 * cpus)


def check_threads(threads: Any, *, what: str = "threads") -> int | None:
    """``threads`` if it is None, ``"auto"`` or an integer in 1..:func:`max_threads`, else an :class:`InputError`."""
    if threads is None or threads == "auto":
        return threads
    top = max_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= top:
        raise InputError(
            f"{what}: expected 'auto' or an integer from 1 to {top} (4 per CPU of this machine, at least 64), got "
            f"{threads!r}"
        )
    return threads


def check_seed(seed: Any, *, what: str = "seed") -> int:
    """``seed`` if it is an integer in 0..2^63-1, else an :class:`InputError`."""
    import numpy as np

    if isinstance(seed, np.integer):
        seed = int(seed)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        big = isinstance(seed, int) and abs(seed) >= 10**30
        shown = f"an integer of {len(str(abs(seed)))} digits" if big else repr(seed)
        raise InputError(f"{what}: expected an integer from 0 to 2^63-1, got {shown}")
    return seed

"""Exceptions raised by matsym.

Every error a user can provoke with bad input is a :class:`MatsymError`. The subclasses also derive from the
built-in exception that best describes them (``ValueError``, ``FileNotFoundError``, ...) so that generic handlers
keep working.
"""

from __future__ import annotations

__all__ = [
    "CutoffError",
    "DisorderError",
    "FileFormatError",
    "InputError",
    "IrrepsError",
    "MatsymError",
    "OutputExistsError",
    "RegistrationError",
    "ResultError",
    "SearchError",
    "StructureError",
    "SymmetryMismatchError",
]


class MatsymError(Exception):
    """Base class of every error matsym raises on purpose."""


class InputError(MatsymError, ValueError):
    """An argument has the wrong type, shape or value (the message says what was expected)."""


class StructureError(MatsymError, ValueError):
    """A structure is unusable: empty, non-finite, singular lattice, atoms too close, ..."""


class DisorderError(StructureError):
    """A structure has partially occupied or mixed-species sites; matsym needs an ordered structure."""


class FileFormatError(MatsymError, ValueError):
    """A file is missing, unreadable, or in a format matsym cannot read."""


class OutputExistsError(FileFormatError):
    """An output file exists and overwriting was not asked for (``path`` is the file)."""

    def __init__(self, message: str, *, path: object = None) -> None:
        super().__init__(message)
        self.path = path


class CutoffError(MatsymError, ValueError):
    """A neighbour cutoff is not positive, or too small for every atom to have a neighbour."""


class IrrepsError(MatsymError, ValueError):
    """An irreps specification cannot be parsed or is not allowed here."""


class RegistrationError(MatsymError, ValueError):
    """Parent and target cannot be put on a common cell with a one-to-one site mapping."""


class SymmetryMismatchError(MatsymError, AssertionError):
    """A structure's space group is not the expected one."""


class SearchError(MatsymError, ValueError):
    """An order-parameter search is misconfigured (sites, tying, masks, budgets)."""


class ResultError(MatsymError, ValueError):
    """A saved result or model cannot be loaded: wrong schema, version, or content."""

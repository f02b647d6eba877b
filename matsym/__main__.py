"""``python -m matsym``: the ``matsym`` command (see :mod:`matsym.cli`)."""

from __future__ import annotations

from matsym.cli import run

__all__: list[str] = []

if __name__ == "__main__":
    run()

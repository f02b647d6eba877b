"""``python -m matsym``: the ``matsym`` command (see :mod:`matsym.cli`)."""

from __future__ import annotations

import sys

from matsym.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())

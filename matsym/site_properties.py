"""Site properties of input structures, made plain enough for JSON (results are plain JSON, see matsym.result).

Structures arrive with whatever site properties their reader attached: pymatgen's CIF parser gives a magnetic CIF
(``.mcif``, e.g. from MAGNDATA) a ``magmom`` property of ``Magmom`` objects, which ``json`` cannot write (a search
on a magnetic target used to run to the end and then fail writing ``result.json``). Each input is converted once,
when it is loaded for a search:

- magnetic moments (``magmom``, ``Magmom`` objects or numbers) become plain lists of floats (``[mx, my, mz]`` in
  μB, as pymatgen holds them) and are reported; the search itself fits atomic displacements and strain only, so the
  moments are carried with the input structure (``result.registration["target"]``) but are not part of the target
  or the order parameter;
- numpy values become Python numbers and lists;
- any other property that JSON cannot hold is dropped, with a ``UserWarning`` that names it.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np

__all__ = ["plain_site_properties"]


def _plain(value: Any) -> Any:
    """A JSON-ready copy of one property value; raises TypeError/ValueError when there is none."""
    if hasattr(value, "moment") and type(value).__name__ == "Magmom":
        return [float(v) for v in np.asarray(value.moment, dtype=np.float64)]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    json.dumps(value, allow_nan=True)  # raises TypeError for anything json cannot hold
    return value


def plain_site_properties(structure, what: str = "structure") -> tuple[Any, list[str]]:
    """Copy of ``structure`` whose site properties JSON can hold, and notes on what was done.

    Args:
        structure: a pymatgen ``Structure`` or ``Molecule`` (not modified).
        what: how to name the structure in notes and warnings (``"target"``, ``"parent"``).

    Returns:
        ``(structure, notes)``: the structure itself when nothing needed converting, else a copy; one note per
        magnetic moment set read (the moments are kept, not fitted).

    Warns:
        UserWarning: for each site property dropped because JSON cannot hold it.
    """
    props = structure.site_properties
    if not props:
        return structure, []
    notes: list[str] = []
    plain: dict[str, list] = {}
    for name, values in props.items():
        try:
            plain[name] = [_plain(v) for v in values]
        except (TypeError, ValueError) as exc:
            warnings.warn(
                f"{what}: site property {name!r} dropped: its values ({type(values[0]).__name__}) cannot be "
                f"written to JSON ({exc})",
                UserWarning,
                stacklevel=3,
            )
    if "magmom" in plain:
        norms = np.array([np.linalg.norm(np.atleast_1d(np.asarray(m, dtype=np.float64))) for m in plain["magmom"]])
        magnetic = int((norms > 0).sum())
        notes.append(
            f"{what}: magnetic moments read on {magnetic} of {len(norms)} sites (largest {norms.max(initial=0):.3g} "
            "μB); kept with the input structure in result.registration, not fitted: the search fits atomic "
            "displacements and strain only"
        )
    out = structure.copy()
    for name in props:
        out.remove_site_property(name)
    for name, values in plain.items():
        out.add_site_property(name, values)
    return out, notes

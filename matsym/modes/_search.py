"""Symmetry modes of a search result: the learned order parameter and the decoded displacements.

``OrderParameterResult.order_parameter_modes`` decomposes the learned order parameter (per-site components in
matsym's standard basis, any irreps: 1e with det R, L ≥ 2 with Wigner matrices); its amplitudes are shares of the
order parameter's squared norm. ``distortion_modes`` decomposes the displacements decoded from the network's
output (Å). Both use the registration stored in the result to put the search cell back on the parent as given.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from matsym.errors import MatsymError

__all__ = ["attach_modes", "result_modes"]


def _supercell(result: Any):
    from pymatgen.core import IStructure, Structure

    reg = result.registration or {}
    if not isinstance(result.parent, IStructure) or "parent_input" not in reg or "origin_shift" not in reg:
        return None, None
    parent = Structure.from_dict(reg["parent_input"])
    sc = result.parent.copy()
    frac = np.asarray(sc.frac_coords) + np.asarray(reg["origin_shift"], dtype=np.float64)
    sc = Structure(sc.lattice, [s.species for s in sc], frac)
    return parent, sc


def _spglib_errors() -> tuple[type[BaseException], ...]:
    import spglib

    from matsym.symmetry import _spglib_errors as errors

    return errors(spglib)


def result_modes(result: Any) -> tuple[dict | None, dict | None]:
    """``(order_parameter_modes, distortion_modes)`` of a result as JSON-ready dictionaries (None if n/a).

    Finite clouds, results without a registration, and parents the decomposition cannot handle give None.
    """
    from matsym.modes._decompose import decompose_field

    parent, sc = _supercell(result)
    if parent is None or result.nothing_to_find:
        return None, None
    out: list[dict | None] = []
    for field, irreps, kind in (
        (result.order_parameter, result.irreps, "order_parameter"),
        (result.predicted_displacements, None, "displacement"),
    ):
        values = np.asarray(field, dtype=np.float64)
        if values.size == 0 or not np.any(values):
            out.append(None)
            continue
        try:
            out.append(decompose_field(parent, sc, values, irreps=irreps, kind=kind).as_dict())
        except (MatsymError, np.linalg.LinAlgError, ValueError, KeyError, RuntimeError, *_spglib_errors()):
            # reporting must not lose a finished search: the result keeps None and the rest of its report
            out.append(None)
    return out[0], out[1]


def attach_modes(result: Any) -> Any:
    """The result with ``order_parameter_modes`` and ``distortion_modes`` filled in."""
    op_modes, dist_modes = result_modes(result)
    return dataclasses.replace(result, order_parameter_modes=op_modes, distortion_modes=dist_modes)

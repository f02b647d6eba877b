"""ASE helpers: order-parameter results as :class:`ase.Atoms`, and a one-call search on Atoms.

Per-site arrays go to ``atoms.arrays``, run metadata to ``atoms.info``; both survive an extxyz round trip
(``ase.io.write(..., format="extxyz")`` / ``ase.io.read``)::

    >>> atoms = find_order_parameter(parent_atoms, target_atoms, sites="Ti", irreps="1e")
    >>> atoms.arrays["order_parameter"].shape, atoms.info["components"]
    ((20, 3), '1e m=-1 y;1e m=0 z;1e m=1 x')

Arrays (indexed like the result's search cell):

* ``order_parameter`` [n, dim]: learned order parameter, standard z-polar basis, zeros on sites without one
  (extxyz stores a one-component order parameter as shape [n]);
* ``predicted_displacements`` [n, 3] and ``target_displacements`` [n, 3] in Å;
* ``irrep_weights`` [n, n_irrep_blocks]: squared norm per irrep block (extxyz stores a one-column array as
  shape [n]: ``arr.reshape(n, -1)`` restores it);
* ``degenerate`` [n] bool: sites whose predicted signal has several equal maxima.

Info (extxyz-safe values: strings, numbers, booleans, lists of numbers):

* ``matsym_structure``: which structure the Atoms hold (``"predicted"``, ``"parent"``, ``"target"``);
* ``irreps``; ``components`` and ``irrep_names`` (labels joined with ``";"``, in the order of the array
  columns); ``order_parameter_sites`` (list of site indices);
* ``irrep_fraction_<irrep>`` (e.g. ``irrep_fraction_1e``): share of the order parameter's squared norm;
* ``loss_ratio``, ``displacement_error_ratio``, ``rms_target_displacement``, ``nothing_to_find``,
  ``curie_compatible`` (when a Curie check ran);
* ``space_group_<symprec>`` (symbol) and ``space_group_number_<symprec>`` at symprec 1e-3 and 1e-2, for
  periodic structures (``point_group`` for finite clouds), when ``symmetry=True``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from matsym.errors import InputError, MatsymError, ResultError

if TYPE_CHECKING:
    from ase import Atoms

    from matsym.result import OrderParameterResult

__all__ = ["find_order_parameter", "result_to_atoms"]

_WHICH = ("predicted", "parent", "target")
_SYMPRECS = ((1e-3, "1e-3"), (1e-2, "1e-2"))


def result_to_atoms(result: OrderParameterResult | Any, which: str = "predicted", *, symmetry: bool = True) -> Atoms:
    """One structure of a search result as ASE Atoms, with the order parameter attached.

    Args:
        result: An :class:`~matsym.result.OrderParameterResult`, its ``as_dict()``, or the path of its JSON
            file.
        which: ``"predicted"`` (the parent moved by the predicted displacements), ``"parent"`` (the parent on
            the search cell) or ``"target"`` (the target on the search cell, strain removed).
        symmetry: Record the space group (or point group) in ``atoms.info`` (spglib; milliseconds).

    Returns:
        Atoms with the arrays and info listed in the module docstring.

    Raises:
        InputError: ``which`` is not one of the three names.
        ResultError: the result holds no such structure (e.g. no target kept).
    """
    from matsym.io import to_ase
    from matsym.transformations import _load_result

    if which not in _WHICH:
        raise InputError(f"which must be one of {list(_WHICH)}, got {which!r}")
    result = _load_result(result)
    structure = {"predicted": result.predicted_structure, "parent": result.parent, "target": result.target}[which]
    if structure is None:
        raise ResultError(f"this result holds no {which} structure")
    atoms = to_ase(structure)
    n = len(atoms)
    arrays = {
        "order_parameter": result.order_parameter,
        "predicted_displacements": result.predicted_displacements,
        "target_displacements": result.target_displacements,
        "irrep_weights": result.irrep_weights,
    }
    for name, value in arrays.items():
        arr = np.asarray(value, dtype=np.float64)
        if arr.shape[:1] != (n,):
            raise ResultError(f"result array {name} has shape {arr.shape}, expected one row per site ({n})")
        atoms.arrays[name] = arr.copy()
    degenerate = np.asarray(result.degenerate, dtype=bool)
    if degenerate.shape == (n,):
        atoms.arrays["degenerate"] = degenerate.copy()

    info: dict[str, Any] = {
        "matsym_structure": which,
        "irreps": str(result.irreps),
        "components": ";".join(result.components),
        "irrep_names": ";".join(result.irrep_names),
        "order_parameter_sites": [int(i) for i in np.asarray(result.sites)],
        "nothing_to_find": bool(result.nothing_to_find),
    }
    if result.irrep_weights.size:
        for name, fraction in result.irrep_fractions().items():
            info[f"irrep_fraction_{name}"] = float(fraction)
    for key in ("loss_ratio", "displacement_error_ratio", "rms_target_displacement"):
        if key in (result.metrics or {}):
            info[key] = float(result.metrics[key])
    if result.curie is not None:
        info["curie_compatible"] = bool(result.curie.compatible)
    if symmetry:
        info.update(_symmetry_info(structure))
    atoms.info.update(info)
    return atoms


def _symmetry_info(structure: Any) -> dict[str, Any]:
    from pymatgen.core import IStructure

    from matsym import symmetry

    out: dict[str, Any] = {}
    try:
        if isinstance(structure, IStructure):
            for symprec, key in _SYMPRECS:
                number, symbol = symmetry.space_group(structure, symprec)
                out[f"space_group_{key}"] = symbol
                out[f"space_group_number_{key}"] = int(number)
        else:
            out["point_group"] = symmetry.point_group(structure)
    except MatsymError:  # symmetry is a courtesy here; the result itself is still valid
        return {}
    return out


def find_order_parameter(
    parent_atoms: Atoms | Any,
    target_atoms: Atoms | Any,
    *,
    return_result: bool = False,
    progress: bool = False,
    **kwargs: Any,
) -> Atoms | tuple[Atoms, OrderParameterResult]:
    """Run an :class:`~matsym.search.OrderParameterSearch` and return the predicted structure as Atoms.

    Args:
        parent_atoms: The parent (ASE Atoms, or anything the search accepts).
        target_atoms: The target, any cell, setting and origin for crystals.
        return_result: Also return the :class:`~matsym.result.OrderParameterResult`.
        progress: Show a progress bar.
        **kwargs: Arguments of :class:`~matsym.search.OrderParameterSearch` (``sites``, ``irreps``, ``tie``,
            ``mask``, ``sparsity``, ``seed``, ``max_steps``, ...).

    Returns:
        The predicted (distorted) structure on the search cell as Atoms, with the arrays and info of
        :func:`result_to_atoms`; with ``return_result``, ``(atoms, result)``.

    Raises:
        MatsymError: the search cannot be set up (registration, sites, irreps, ...).

    Example:
        >>> atoms = find_order_parameter(parent_atoms, target_atoms, sites="Ti", irreps="1e")
        >>> atoms.info["irrep_fraction_1e"]
        1.0
    """
    from matsym.search import OrderParameterSearch

    result = OrderParameterSearch(parent_atoms, target_atoms, **kwargs).run(progress=progress)
    atoms = result_to_atoms(result, "predicted")
    return (atoms, result) if return_result else atoms

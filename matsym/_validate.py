"""Validation of saved results and of search arguments, before anything uses them.

A result file is data from outside: on main at 186e0aa a bare ``NaN`` in ``predicted_displacements`` passed
``from_json`` and crashed spglib (exit 139, no message), and a short ``predicted_displacements`` surfaced as a
ValueError from a matrix product. :func:`check_result_dict` checks the schema (required keys and their types), the
shapes of every per-site array against the parent's number of sites, that every number is finite and every index
in range, and the sizes against :mod:`matsym.limits`, so that a loaded result is usable by every method.
Keys it does not know are left alone (newer versions add optional fields); structures inside the result are
rebuilt by :func:`matsym.safejson.structure_from_dict`, which imports nothing a file names.

:func:`check_search_arguments` does the same for the arguments of an order-parameter search (``seed="x"``,
``seed=2**70``, ``sparsity=nan``, ``max_steps=-1``, ``sites=3.5``, ...), which otherwise failed deep inside
torch or numpy, or not at all.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from matsym.errors import MatsymError, ResultError, SearchError

__all__ = ["MAX_DISPLACEMENT", "check_distorted", "check_result_dict", "check_search_arguments", "clean_registration"]

#: Largest displacement (Å) a result may hold: beyond it a "distortion" has left every cell it could belong to.
MAX_DISPLACEMENT = 1e3
_COMPONENT = re.compile(r"^\d+[eo]")


def _fail(name: str, expected: str, got: Any) -> ResultError:
    text = repr(got) if isinstance(got, (int, float, str, bool, type(None))) else type(got).__name__
    return ResultError(f"malformed result: {name}: expected {expected}, got {text[:80]}")


def _array(d: dict, name: str, shape: tuple, dtype: str) -> np.ndarray:
    """``d[name]`` as an array of ``shape`` (None: any length), finite, of numbers / integers / booleans."""
    value = d.get(name)
    want = "x".join("n" if s is None else str(s) for s in shape)
    if not isinstance(value, list):
        raise _fail(name, f"a [{want}] array", value)
    try:
        arr = np.asarray(value, dtype=object if dtype == "bool" else np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ResultError(f"malformed result: {name}: expected a [{want}] array of numbers") from None
    if arr.ndim != len(shape) or any(s is not None and a != s for a, s in zip(arr.shape, shape, strict=False)):
        raise ResultError(f"malformed result: {name}: expected shape [{want}], got {list(arr.shape)}")
    if dtype == "bool":
        if not all(isinstance(x, bool) or x in (0, 1) for x in arr.ravel()):
            raise ResultError(f"malformed result: {name}: expected booleans")
        return arr.astype(bool)
    if not np.isfinite(arr).all():
        raise ResultError(f"malformed result: {name}: expected finite numbers, got NaN or infinity")
    if dtype == "int" and not (np.round(arr) == arr).all():
        raise ResultError(f"malformed result: {name}: expected integers")
    return arr


def _site_count(d: dict, name: str, *, required: bool) -> int | None:
    s = d.get(name)
    if s is None:
        if required:
            raise ResultError(
                f"malformed result: {name}: expected the {name} structure (a pymatgen Structure.as_dict()), got nothing"
            )
        return None
    if not isinstance(s, dict) or not isinstance(s.get("sites"), list):
        raise _fail(name, "a pymatgen Structure.as_dict() with a list of sites", s)
    return len(s["sites"])


def check_result_dict(d: dict) -> None:
    """Check a serialised :class:`~matsym.result.OrderParameterResult` (see the module docstring).

    Raises:
        ResultError: the first problem found, with the key, what was expected and what was found.
    """
    from matsym.limits import current

    n = _site_count(d, "parent", required=True)
    if n == 0:
        raise ResultError("malformed result: parent: expected at least one site, got 0")
    if n > current().max_atoms:
        raise ResultError(f"malformed result: parent has {n} sites, more than max_atoms={current().max_atoms}")
    for name in ("target", "predicted_structure"):
        m = _site_count(d, name, required=False)
        if m is not None and m != n:
            raise ResultError(f"malformed result: {name} has {m} sites, the parent {n}")
    if not isinstance(d.get("irreps"), str):
        raise _fail("irreps", "an e3nn irreps string", d.get("irreps"))
    for name in ("components", "irrep_names"):
        v = d.get(name)
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise _fail(name, "a list of strings", v)
    bad = [c for c in d["components"] if not _COMPONENT.match(c)]
    if bad:
        raise ResultError(f"malformed result: components: expected labels like '1e m=0', got {bad[0][:40]!r}")
    dim = len(d["components"])
    if dim > current().max_components:
        raise ResultError(f"malformed result: {dim} components, more than max_components={current().max_components}")

    for name in ("predicted_displacements", "target_displacements"):
        arr = _array(d, name, (n, 3), "float")
        if np.abs(arr).max(initial=0.0) > MAX_DISPLACEMENT:
            raise ResultError(
                f"malformed result: {name}: a displacement of {np.abs(arr).max():.3g} Å, more than "
                f"{MAX_DISPLACEMENT:g} Å"
            )
    _array(d, "order_parameter", (n, dim), "float")
    _array(d, "irrep_weights", (n, None), "float")
    sites = _array(d, "sites", (None,), "int")
    if sites.size and (sites.min() < 0 or sites.max() >= n or len(set(sites.tolist())) != sites.size):
        raise ResultError(f"malformed result: sites: expected distinct indices in 0..{n - 1}, got {sites.tolist()[:8]}")
    groups = _array(d, "groups", (sites.size,), "int")
    if groups.size and groups.min() < 0:
        raise ResultError("malformed result: groups: expected indices >= 0")
    _array(d, "degenerate", (n,), "bool")

    history = d.get("loss_history", [])
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise _fail("loss_history", "a list of objects", history)
    for name in ("metrics", "settings"):
        if not isinstance(d.get(name, {}), dict):
            raise _fail(name, "an object", d.get(name))
    if not isinstance(d.get("registration") or {}, dict):
        raise _fail("registration", "an object", d.get("registration"))
    if not isinstance(d.get("nothing_to_find", False), bool):
        raise _fail("nothing_to_find", "true or false", d.get("nothing_to_find"))
    curie = d.get("curie")
    if curie is not None:
        if not isinstance(curie, dict):
            raise _fail("curie", "an object", curie)
        if not isinstance(curie.get("compatible"), bool) or not isinstance(curie.get("verdict"), str):
            raise ResultError("malformed result: curie: expected 'compatible' (true/false) and 'verdict' (text)")
        for key in ("loss_ratio", "displacement_error_ratio"):
            if isinstance(curie.get(key), bool) or not isinstance(curie.get(key), int | float):
                raise _fail(f"curie.{key}", "a number", curie.get(key))
        deg = curie.get("degenerate_sites")
        if not isinstance(deg, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in deg):
            raise _fail("curie.degenerate_sites", "a list of integers", deg)


def clean_registration(registration: Any) -> dict:
    """The stored registration with every structure in it rebuilt safely (plain-data site properties only).

    ``Registration.from_dict`` hands its structures to pymatgen's ``Structure.from_dict``, which decodes site
    properties with monty; rebuilding them here first leaves nothing for monty to import.
    """
    from matsym.safejson import structure_from_dict

    if not registration:
        return {}
    out = dict(registration)
    for key, value in registration.items():
        if isinstance(value, dict) and ("sites" in value or "@class" in value):
            try:
                out[key] = structure_from_dict(value, where=f"registration {key}").as_dict()
            except MatsymError as exc:
                raise ResultError(f"malformed result: {exc}") from None
    return out


# -------------------------------------------------------------------------------------------- search arguments


def _number(name: str, value: Any, *, low: float = 0.0, integer: bool = False, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an integer" if integer else "a number"
        raise SearchError(f"{name}: expected {kind} >= {low:g}, got {type(value).__name__} {value!r:.40}")
    if not (math.isfinite(float(value)) and value >= low):
        raise SearchError(f"{name}: expected a finite {'integer' if integer else 'number'} >= {low:g}, got {value!r}")


_INT_FIELDS = {"fit_steps": 0, "max_steps": 1, "search_steps": 0, "polish_steps": 0, "patience": 1, "max_decays": 0}
_INT_FIELDS |= {"span_steps": 0, "signal_lmax": 1, "pace_window": 0}
_FLOAT_FIELDS = ("model_lr", "op_lr", "rel_tol", "decay", "stage_loss", "span_tol", "search_loss", "prune_share")
_FLOAT_FIELDS += ("prune_tolerance", "prune_loss", "converged_loss", "compatible_error", "nothing_tol")


def check_search_arguments(config: Any, *, irreps: Any, sites: Any, tie: Any, sparsity: Any, l_penalty: Any) -> None:
    """Check the settings of an order-parameter search before anything is built.

    Raises:
        SearchError: a setting has the wrong type or an out-of-range value.
        InputError: ``seed`` or ``threads`` out of range (:mod:`matsym.limits`).
        IrrepsError: ``irreps`` cannot be parsed or has more components than ``max_components``.
    """
    from matsym.limits import check_seed, check_threads, current
    from matsym.model import parse_irreps

    check_seed(config.seed)
    threads = config.threads
    if isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1:
        check_threads(threads)  # the upper bound; types and positivity are checked by the search itself
    for name, low in _INT_FIELDS.items():
        if hasattr(config, name):
            _number(name, getattr(config, name), low=low, integer=True)
    for name in _FLOAT_FIELDS:
        if hasattr(config, name):
            _number(name, getattr(config, name))
    _number("cutoff", getattr(config, "cutoff", None), low=1e-6, allow_none=True)
    _number("op_norm", getattr(config, "op_norm", None), low=1e-12, allow_none=True)
    _number("sparsity", sparsity)
    _number("l_penalty", l_penalty)
    if isinstance(irreps, str):
        mul = re.findall(r"(\d+)\s*x", irreps)
        if any(len(m) > 6 for m in mul):  # before e3nn builds anything of that size
            raise _too_many(irreps, current().max_components)
    parsed = parse_irreps(irreps, "irreps")
    if parsed.dim > current().max_components:
        raise _too_many(irreps, current().max_components, parsed.dim)
    plain_sites = sites is None or isinstance(sites, str | list | tuple | np.ndarray | range)
    if not plain_sites and (isinstance(sites, bool) or not isinstance(sites, int | np.integer)):
        raise SearchError(
            f"sites: expected a species symbol, a list of species or of indices, or None, got "
            f"{type(sites).__name__} {sites!r:.40}"
        )
    if isinstance(tie, dict) and "translation" in tie:
        t = tie["translation"]
        ok = isinstance(t, list | tuple | np.ndarray) and len(t) == 3
        ok = ok and all(not isinstance(x, bool) and isinstance(x, int | float | np.number) for x in t)
        if not ok or not all(math.isfinite(float(x)) for x in t):
            raise SearchError(f"tie translation: expected 3 finite fractional coordinates, got {t!r:.60}")


def _too_many(irreps: Any, limit: int, dim: int | None = None) -> Exception:
    from matsym.errors import IrrepsError

    size = f"{dim} components" if dim is not None else "a multiplicity of a million or more"
    return IrrepsError(f"irreps {str(irreps)[:60]!r}: {size}, more than max_components={limit} per site")


def check_distorted(structure: Any, displacements: np.ndarray, amplitude: float) -> None:
    """Refuse a distorted structure that no later stage could use: displacements that are not finite or larger than
    :data:`MAX_DISPLACEMENT`, or atoms that collide (``--amplitude 1e300`` wrote a CIF that could not be read back).

    Raises:
        InputError: the amplitude moves atoms too far or onto each other (the message gives the figures).
    """
    from matsym.errors import InputError, StructureError
    from matsym.io import validate_structure
    from matsym.limits import current

    with np.errstate(all="ignore"):
        largest = float(np.linalg.norm(displacements, axis=1).max(initial=0.0))
    if not largest <= MAX_DISPLACEMENT:
        raise InputError(
            f"amplitude {amplitude:g} moves an atom by {largest:.3g} Å, more than {MAX_DISPLACEMENT:g} Å; expected an "
            "amplitude of order 1 (0 = parent, 1 = fitted distortion)"
        )
    try:
        validate_structure(structure, min_distance=current().min_distance, check_order=False)
    except StructureError as exc:
        raise InputError(f"amplitude {amplitude:g} gives an unusable structure: {exc}") from None

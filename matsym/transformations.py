"""pymatgen transformations: from a parent to the distorted structure an order parameter describes.

:class:`OrderParameterTransformation` applies a finished search (an
:class:`~matsym.result.OrderParameterResult`) to a parent at a chosen amplitude;
:class:`OrderParameterSearchTransformation` runs the search itself, from a stored target, so that a workflow
goes parent -> distorted structure in one step. Both follow pymatgen's ``AbstractTransformation`` contract:
constructor arguments are stored under their own names, ``as_dict`` / ``from_dict`` round-trip (MSON), and the
figures of the last application (space groups of the output, amplitude, dominant irreps) are kept in
:attr:`output_parameters` and in ``as_dict()["output"]``, which is what
:class:`pymatgen.alchemy.materials.TransformedStructure` records in its history (pymatgen stores
``transformation.as_dict()`` after applying it; its own ``"output_parameters"`` entry stays empty for
one-to-one transformations)::

    >>> from pymatgen.alchemy.materials import TransformedStructure
    >>> ts = TransformedStructure(parent, [OrderParameterTransformation("run/result.json", amplitude=0.5)])
    >>> ts.history[-1]["output"]["space_groups"]
    {'0.001': [62, 'Pnma'], '0.01': [62, 'Pnma']}

Which parents are accepted (tried in this order; the first that matches is used, reported as ``matched_as``):

1. ``"search cell"``: the parent on the search cell, ``result.parent`` itself (same lattice vectors, species
   in the same order, every site within ``tol``). The output keeps the caller's coordinates and site order.
2. ``"original parent"``: the parent exactly as given to the search (e.g. the 5-atom cubic cell), recognised
   from the registration record ``result.registration`` (``parent_input``); it is repeated on the registered
   ``supercell_matrix``, ordered by ``site_map`` and shifted by ``origin_shift``, which rebuilds the search
   cell from the caller's own coordinates. The output is on the search cell, in ``result.parent``'s site
   order.
3. ``"registered"``: any other cell of the same crystal (another setting, origin, site order, or a rigid
   rotation) that the search cell is a supercell of: :func:`matsym.registration.register` maps it onto
   ``result.parent`` with displacements at most ``tol`` and no strain beyond ``tol``; displacements are
   rotated into the caller's frame. The output is on the search cell (in the caller's frame), in
   ``result.parent``'s site order.

Anything else (another composition, lattice, or sites more than ``tol`` away) raises
:class:`~matsym.errors.RegistrationError` naming what differs.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pymatgen.transformations.transformation_abc import AbstractTransformation

from matsym._validate import check_distorted
from matsym.errors import InputError, MatsymError, RegistrationError, ResultError

if TYPE_CHECKING:
    from pymatgen.core import Molecule, Structure

    from matsym.result import OrderParameterResult

__all__ = [
    "OUTPUT_SYMPRECS",
    "OrderParameterSearchTransformation",
    "OrderParameterTransformation",
]

#: Tolerances (Å) at which the space group of every output is recorded.
OUTPUT_SYMPRECS: tuple[float, ...] = (1e-3, 1e-2)
_DEFAULT_TOL = 1e-3  # Å
_MIN_FRACTION = 0.01  # irreps below this share of the order parameter are not "dominant"


def _version() -> str:
    from matsym import __version__

    return __version__


def _plain(value: Any) -> Any:
    """JSON-serialisable copy of ``value`` (numpy arrays and scalars, tuples, Paths converted)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "as_dict"):
        return _plain(value.as_dict())
    return value


def _check_amplitude(amplitude: Any) -> float:
    if isinstance(amplitude, bool) or not isinstance(amplitude, int | float | np.integer | np.floating):
        raise InputError(f"amplitude must be a real number (0 = parent, 1 = fitted distortion), got {amplitude!r}")
    value = float(amplitude)
    if not math.isfinite(value):
        raise InputError(f"amplitude must be finite, got {amplitude!r}")
    return value


def _check_tol(tol: Any) -> float:
    if isinstance(tol, bool) or not isinstance(tol, int | float | np.integer | np.floating):
        raise InputError(f"tol must be a positive distance in Å, got {tol!r}")
    value = float(tol)
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"tol must be a positive distance in Å, got {tol!r}")
    return value


def _load_result(result: Any) -> OrderParameterResult:
    from matsym.result import OrderParameterResult

    if isinstance(result, OrderParameterResult):
        return result
    if isinstance(result, dict):
        return OrderParameterResult.from_dict(result)
    if isinstance(result, str | Path):
        return OrderParameterResult.from_json(result)
    raise InputError(
        "result must be an OrderParameterResult, its as_dict() dictionary, or the path of its JSON file; got "
        f"{type(result).__name__}"
    )


def _is_periodic(s: Any) -> bool:
    from pymatgen.core import IStructure

    return isinstance(s, IStructure)


def _describe_lattice(matrix: np.ndarray) -> str:
    lengths = np.linalg.norm(matrix, axis=1)
    angles = [
        math.degrees(math.acos(float(np.clip(matrix[j] @ matrix[k] / lengths[j] / lengths[k], -1, 1))))
        for j, k in ((1, 2), (0, 2), (0, 1))
    ]
    abc = ", ".join(f"{x:.4f}" for x in lengths)
    return f"a,b,c = {abc} Å, angles = {', '.join(f'{x:.2f}' for x in angles)} deg"


def _difference(s: Any, ref: Any, tol: float) -> str | None:
    """None if ``s`` is ``ref`` (kind, species order, lattice and sites within ``tol`` Å), else why not."""
    if _is_periodic(s) != _is_periodic(ref):
        kinds = ("a periodic crystal", "a finite point cloud")
        return f"it is {kinds[not _is_periodic(s)]}, the fitted parent is {kinds[not _is_periodic(ref)]}"
    if len(s) != len(ref):
        return f"it has {len(s)} sites, expected {len(ref)}"
    species = [site.species_string for site in s]
    ref_species = [site.species_string for site in ref]
    if species != ref_species:
        j = next(i for i, (a, b) in enumerate(zip(species, ref_species, strict=True)) if a != b)
        return f"site {j} is {species[j]}, expected {ref_species[j]} (species must come in the same order)"
    if _is_periodic(s):
        lat = np.asarray(s.lattice.matrix, dtype=np.float64)
        ref_lat = np.asarray(ref.lattice.matrix, dtype=np.float64)
        if np.abs(lat - ref_lat).max() > tol:
            return (
                f"its lattice vectors differ from the expected ones by up to {np.abs(lat - ref_lat).max():.4g} Å "
                f"(tol {tol:g} Å): {_describe_lattice(lat)} against {_describe_lattice(ref_lat)}"
            )
        diff = np.asarray(s.frac_coords) - np.asarray(ref.frac_coords)
        diff -= np.round(diff)
        dist = np.linalg.norm(diff @ ref_lat, axis=1)  # [n]
    else:
        dist = np.linalg.norm(np.asarray(s.cart_coords) - np.asarray(ref.cart_coords), axis=1)  # [n]
    j = int(np.argmax(dist)) if len(dist) else 0
    if len(dist) and dist[j] > tol:
        return f"site {j} ({species[j]}) is {dist[j]:.4g} Å from its expected position (tol {tol:g} Å)"
    return None


def _symmetry(structure: Any) -> dict[str, Any]:
    """Space group at each of :data:`OUTPUT_SYMPRECS` (periodic) or point group (finite); errors recorded."""
    from matsym import symmetry

    try:
        if _is_periodic(structure):
            return {"space_groups": {f"{p:g}": list(symmetry.space_group(structure, p)) for p in OUTPUT_SYMPRECS}}
        return {"point_group": symmetry.point_group(structure)}
    except MatsymError as exc:
        return {"symmetry_error": str(exc)}


def _order_parameter_summary(result: OrderParameterResult) -> dict[str, Any]:
    fractions = result.irrep_fractions() if result.irrep_weights.size else {}
    dominant = sorted((k for k, v in fractions.items() if v >= _MIN_FRACTION), key=lambda k: -fractions[k])
    m = result.metrics or {}
    return {
        "irreps": result.irreps,
        "irrep_fractions": {k: float(v) for k, v in fractions.items()},
        "dominant_irreps": dominant,
        "sites": [int(i) for i in np.asarray(result.sites)],
        "loss_ratio": float(m.get("loss_ratio", float("nan"))),
        "displacement_error_ratio": float(m.get("displacement_error_ratio", float("nan"))),
        "nothing_to_find": bool(result.nothing_to_find),
        "order_parameter_modes": _mode_table(result.order_parameter_modes),
        "distortion_modes": _mode_table(result.distortion_modes),
    }


def _mode_table(modes: dict | None) -> list[dict[str, Any]] | None:
    """The mode table (label, k, amplitudes, subgroup) for the history; None when the result has none."""
    if not modes:
        return None
    keep = ("irrep", "k_name", "dimension", "amplitude", "amplitude_parent", "pattern", "subgroup")
    return [{k: m[k] for k in keep} for m in modes.get("modes", [])]


@dataclasses.dataclass
class _Mapped:
    """The caller's parent on the search cell: coordinates and frame of the output."""

    base: Any  # Structure | Molecule, result.parent's site order (or the caller's, when it is the search cell)
    rotation: np.ndarray  # [3, 3] R: a vector v in result.parent's frame is R.T @ v in the caller's frame
    matched_as: str


class _Distortion(AbstractTransformation):
    """What both transformations share of pymatgen's contract: one structure in, one out, no inverse."""

    @property
    def inverse(self) -> None:
        """None: a distortion has no stored inverse."""
        return None

    @property
    def is_one_to_many(self) -> bool:
        """False: one parent gives one distorted structure."""
        return False


class OrderParameterTransformation(_Distortion):
    """Move a parent along a learned order parameter: ``parent + amplitude * predicted_displacements``.

    Args:
        result: An :class:`~matsym.result.OrderParameterResult`, its ``as_dict()``, or the path of its JSON
            file (read with :meth:`OrderParameterResult.from_json`). ``as_dict`` embeds the result itself, so
            the serialised transformation is self-contained.
        amplitude: 0 gives the parent, 1 the fitted distortion, values in between trace the path; negative
            values give the opposite domain; values above 1 extrapolate (a ``UserWarning`` is emitted when the
            transformation is applied).
        include_strain: Also deform the lattice by the registered strain of the target, interpolated as
            ``U(amplitude) = I + amplitude * (U - I)``, where ``U`` is the rotation-free stretch of the
            deformation gradient ``F = R U`` (the rigid rotation ``R`` only changes the frame and is not
            interpolated; at amplitude 1 the lattice parameters are the target's). Periodic results only.
        learned_strain: When ``include_strain`` is False, deform the lattice by the strain the network predicted
            (``result.predicted_strain``, present when the target was strained; :mod:`matsym.strain`), scaled
            like the displacements: ``I + amplitude * eps``. At amplitude 1 this gives ``predicted_structure``.
        tol: Largest difference (Å) in lattice vectors and site positions for a structure to count as the
            parent the result was fitted on.

    Attributes:
        result: The :class:`~matsym.result.OrderParameterResult`.
        output_parameters: Figures of the last :meth:`apply_transformation` (empty before): ``amplitude``,
            ``include_strain``, ``matched_as``, ``num_sites``, ``max_displacement`` (Å), ``space_groups``
            (``{"0.001": [number, symbol], "0.01": [...]}``; ``point_group`` for finite clouds) and
            ``order_parameter`` (irreps, irrep fractions, dominant irreps, fit quality).

    Raises:
        InputError: bad ``result``, ``amplitude`` or ``tol``.
        ResultError, FileFormatError: the result file cannot be read.
    """

    def __init__(
        self,
        result: OrderParameterResult | str | Path | dict,
        amplitude: float = 1.0,
        *,
        include_strain: bool = False,
        learned_strain: bool = True,
        tol: float = _DEFAULT_TOL,
    ) -> None:
        self.result = _load_result(result)
        self.amplitude = _check_amplitude(amplitude)
        self.include_strain = bool(include_strain)
        self.learned_strain = bool(learned_strain)
        self.tol = _check_tol(tol)
        self.output_parameters: dict[str, Any] = {}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.result.parent.composition.reduced_formula}, "
            f"{len(self.result.parent)} "
            f"sites, irreps={self.result.irreps!r}, amplitude={self.amplitude:g}, "
            f"include_strain={self.include_strain})"
        )

    def apply_transformation(self, structure: Structure | Any) -> Structure | Molecule | Any:
        """Return the parent distorted by ``amplitude`` times the learned displacements.

        Args:
            structure: The parent: the search cell (``result.parent``), the parent as given to the search, or
                another cell of it (see the module docstring), as a pymatgen Structure / Molecule, ASE Atoms,
                or a file path.

        Returns:
            The distorted structure (ASE Atoms if ``structure`` is Atoms, else pymatgen), on the search cell.

        Raises:
            RegistrationError: ``structure`` is not the parent the result was fitted on (the message says what
                differs).
            DisorderError, StructureError: ``structure`` is unusable.
        """
        from matsym.io import like_input, load_structure

        s = load_structure(structure, min_distance=0.0)
        amplitude = self.amplitude
        if amplitude > 1:
            warnings.warn(
                f"amplitude {amplitude:g} > 1 extrapolates beyond the fitted distortion",
                UserWarning,
                stacklevel=2,
            )
        mapped = self._map(s)
        disp = np.asarray(self.result.predicted_displacements, dtype=np.float64) @ mapped.rotation  # [n, 3]
        base = mapped.base
        cart = np.asarray(base.cart_coords, dtype=np.float64) + amplitude * disp  # [n, 3]
        species = [site.species for site in base]
        stretch = None
        if _is_periodic(base):
            from pymatgen.core import Lattice, Structure

            lattice = np.asarray(base.lattice.matrix, dtype=np.float64)  # rows, [3, 3]
            stretch = self._stretch(amplitude) if self.include_strain else self._learned_stretch(amplitude)
            if stretch is not None:
                g = mapped.rotation.T @ stretch @ mapped.rotation  # in the caller's frame
                lattice = lattice @ g.T
                cart = cart @ g.T
            out = Structure(
                Lattice(lattice, pbc=base.lattice.pbc),
                species,
                cart,
                coords_are_cartesian=True,
                to_unit_cell=False,
            )
        else:
            from pymatgen.core import Molecule

            if self.include_strain:
                raise InputError("include_strain needs a periodic result; this result is a finite point cloud")
            out = Molecule(species, cart)
        check_distorted(out, amplitude * disp, amplitude)  # finite, within bounds, no colliding atoms
        self.output_parameters = {
            "amplitude": amplitude,
            "include_strain": self.include_strain,
            "strain": "registered" if self.include_strain else ("none" if stretch is None else "learned"),
            "matched_as": mapped.matched_as,
            "num_sites": len(out),
            "max_displacement": float(np.linalg.norm(amplitude * disp, axis=1).max(initial=0.0)),
            **_symmetry(out),
            "order_parameter": _order_parameter_summary(self.result),
        }
        return like_input(out, structure)

    # ------------------------------------------------------------------ helpers
    def _stretch(self, amplitude: float) -> np.ndarray:
        """Interpolated stretch ``I + amplitude * (U - I)`` in ``result.parent``'s frame; [3, 3]."""
        strain = self.result.registration.get("strain") if self.result.registration else None
        if strain is None:
            raise ResultError(
                "include_strain needs the registered strain, but this result has no registration record "
                "(result.registration is empty)"
            )
        return np.eye(3) + amplitude * np.asarray(strain, dtype=np.float64)

    def _learned_stretch(self, amplitude: float) -> np.ndarray | None:
        """``I + amplitude * predicted_strain`` in ``result.parent``'s frame, or None (none learned, or not used)."""
        eps = getattr(self.result, "predicted_strain", None)
        if not self.learned_strain or eps is None:
            return None
        return np.eye(3) + amplitude * np.asarray(eps, dtype=np.float64)

    def _map(self, s: Any) -> _Mapped:
        """Express the caller's parent on the search cell (see the module docstring for the order tried)."""
        ref = self.result.parent
        tol = self.tol
        eye = np.eye(3)
        if _is_periodic(s) != _is_periodic(ref):
            kinds = ("a periodic crystal", "a finite point cloud")
            raise RegistrationError(
                f"structure does not match the parent the result was fitted on: it is "
                f"{kinds[not _is_periodic(s)]}, the fitted parent is {kinds[not _is_periodic(ref)]}"
            )
        comp = s.composition.element_composition.reduced_composition
        ref_comp = ref.composition.element_composition.reduced_composition
        if not comp.almost_equals(ref_comp):
            raise RegistrationError(
                f"structure does not match the parent the result was fitted on: different compositions, "
                f"got {comp.reduced_formula} ({len(s)} sites), fitted on {ref_comp.reduced_formula} "
                f"({len(ref)} sites on the search cell)"
            )
        why_cell = _difference(s, ref, tol)
        if why_cell is None:
            return _Mapped(s, eye, "search cell")
        if not _is_periodic(s):
            raise RegistrationError(f"structure does not match the parent the result was fitted on: {why_cell}")

        reasons = [f"as the search cell ({len(ref)} sites): {why_cell}"]
        reg = self._registration()
        if reg is not None:
            why_input = _difference(s, reg.parent_input, tol)
            if why_input is None:
                return _Mapped(self._from_original(reg, s), eye, "original parent")
            reasons.append(f"as the original parent ({len(reg.parent_input)} sites): {why_input}")

        if len(ref) % len(s):
            reasons.append(f"the search cell ({len(ref)} sites) is not a supercell of a {len(s)}-site cell")
        else:
            mapped = self._register(s, reasons)
            if mapped is not None:
                return mapped
        raise RegistrationError("structure does not match the parent the result was fitted on: " + "; ".join(reasons))

    def _registration(self):
        from matsym.registration import Registration

        if not self.result.registration:
            return None
        try:
            return Registration.from_dict(self.result.registration)
        except (MatsymError, KeyError, TypeError, ValueError) as exc:
            raise ResultError(f"the result's registration record cannot be read: {exc}") from exc

    @staticmethod
    def _from_original(reg: Any, s: Structure) -> Structure:
        """``s`` (the parent as given) repeated on the registered supercell, in ``result.parent``'s order."""
        from pymatgen.core import Lattice, Structure

        supercell = dataclasses.replace(reg, parent_input=s).parent_supercell()
        frac = np.asarray(supercell.frac_coords)[np.asarray(reg.site_map)] - np.asarray(reg.origin_shift)
        frac -= np.floor(frac)
        frac[frac > 1 - 1e-12] = 0.0
        species = [supercell[int(i)].species for i in reg.site_map]
        return Structure(Lattice(supercell.lattice.matrix, pbc=s.lattice.pbc), species, frac)

    def _register(self, s: Structure, reasons: list[str]) -> _Mapped | None:
        from matsym.registration import register

        ref = self.result.parent
        try:
            reg = register(s, ref, max_displacement=self.tol)
        except MatsymError as exc:
            reasons.append(f"registration onto the search cell failed: {exc}")
            return None
        scale = float(np.linalg.norm(ref.lattice.matrix, axis=1).max())
        strain = float(np.abs(reg.strain).max())
        if strain * scale > self.tol:
            reasons.append(
                f"registered onto the search cell with a strain of {strain:.3g} (up to {strain * scale:.3g} "
                "Å "
                f"over the cell, tol {self.tol:g} Å): the lattice differs"
            )
            return None
        return _Mapped(reg.parent, np.asarray(reg.rotation, dtype=np.float64), "registered")

    # ------------------------------------------------------------------ serialisation
    def as_dict(self) -> dict[str, Any]:
        """MSON dictionary: the constructor arguments (the result embedded), plus ``"output"``: the
        :attr:`output_parameters` of the last application (None before)."""
        return {
            "@module": type(self).__module__,
            "@class": type(self).__name__,
            "@version": _version(),
            "result": self.result.as_dict(),
            "amplitude": self.amplitude,
            "include_strain": self.include_strain,
            "learned_strain": self.learned_strain,
            "tol": self.tol,
            "output": _plain(self.output_parameters) if self.output_parameters else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OrderParameterTransformation:
        """Inverse of :meth:`as_dict` (also reads a ``TransformedStructure`` history entry).

        Raises:
            ResultError: the dictionary lacks ``result`` or is not of this class.
        """
        _check_dict(d, cls)
        out = cls(
            d["result"],
            d.get("amplitude", 1.0),
            include_strain=d.get("include_strain", False),
            learned_strain=d.get("learned_strain", True),
            tol=d.get("tol", _DEFAULT_TOL),
        )
        out.output_parameters = dict(d.get("output") or {})
        return out


def _check_dict(d: Any, cls: type, required: tuple[str, ...] = ("result",)) -> None:
    if not isinstance(d, dict):
        raise ResultError(f"expected a dictionary from {cls.__name__}.as_dict(), got {type(d).__name__}")
    if d.get("@class", cls.__name__) != cls.__name__:
        raise ResultError(f"expected a serialised {cls.__name__}, got @class={d.get('@class')!r}")
    missing = [k for k in required if k not in d]
    if missing:
        raise ResultError(f"serialised {cls.__name__} lacks {missing}")


class OrderParameterSearchTransformation(_Distortion):
    """Search the order parameter from the given parent to a stored target, then apply it.

    ``apply_transformation(parent)`` runs :class:`~matsym.search.OrderParameterSearch` with ``parent`` and
    :attr:`target`, keeps the result in :attr:`result`, and returns
    ``OrderParameterTransformation(result, amplitude).apply_transformation(parent)``.

    Args:
        target: The distorted structure (pymatgen Structure, ASE Atoms, path, or ``as_dict()``); stored as a
            pymatgen Structure / Molecule.
        sites: Sites that carry an order parameter (species, list of species or indices; None = all).
        irreps: Candidate irreps (e3nn string); None uses the search's default.
        tie: Tie specification (see :class:`~matsym.search.OrderParameterSearch`).
        mask: Masked components (see :class:`~matsym.search.OrderParameterSearch`).
        amplitude: Amplitude of the returned distortion (see :class:`OrderParameterTransformation`).
        include_strain: Apply the registered strain as well.
        search_kwargs: Further keyword arguments of the search, JSON-serialisable (``sparsity``,
            ``l_penalty``, ``seed``, :class:`~matsym.search.SearchConfig` fields such as ``max_steps``; a
            ``config`` may be a SearchConfig or its ``as_dict()``).

    Attributes:
        result: The :class:`~matsym.result.OrderParameterResult` of the last application (None before).
        output_parameters: Those of :class:`OrderParameterTransformation`, plus ``search``: the verdict, the
            metrics and the summary of the search.
    """

    def __init__(
        self,
        target: Any,
        *,
        sites: Any = None,
        irreps: str | None = None,
        tie: Any = "none",
        mask: Any = None,
        amplitude: float = 1.0,
        include_strain: bool = False,
        search_kwargs: dict[str, Any] | None = None,
    ) -> None:
        from matsym.io import load_structure

        self.target = load_structure(target, min_distance=0.0)
        self.sites = sites
        self.irreps = irreps
        self.tie = tie
        self.mask = mask
        self.amplitude = _check_amplitude(amplitude)
        self.include_strain = bool(include_strain)
        if search_kwargs is not None and not isinstance(search_kwargs, dict):
            raise InputError(f"search_kwargs must be a dictionary or None, got {type(search_kwargs).__name__}")
        self.search_kwargs = dict(search_kwargs or {})
        self.result: OrderParameterResult | None = None
        self.output_parameters: dict[str, Any] = {}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(target={self.target.composition.reduced_formula}, "
            f"{len(self.target)} sites, "
            f"sites={self.sites!r}, irreps={self.irreps!r}, amplitude={self.amplitude:g})"
        )

    def _search_arguments(self) -> dict[str, Any]:
        from matsym.search import search_arguments

        return search_arguments(self.sites, self.irreps, self.tie, self.mask, self.search_kwargs)

    def apply_transformation(self, structure: Structure | Any) -> Structure | Molecule | Any:
        """Run the search from ``structure`` to :attr:`target` and return the distorted ``structure``.

        Args:
            structure: The parent (pymatgen Structure / Molecule, ASE Atoms, or path).

        Returns:
            The distorted structure on the search cell (ASE Atoms if ``structure`` is Atoms).

        Raises:
            MatsymError: the search cannot be set up (registration, sites, irreps, ...).
        """
        from matsym.search import OrderParameterSearch

        result = OrderParameterSearch(structure, self.target, **self._search_arguments()).run(progress=False)
        self.result = result
        inner = OrderParameterTransformation(result, self.amplitude, include_strain=self.include_strain)
        out = inner.apply_transformation(structure)
        curie = result.curie
        self.output_parameters = {
            **inner.output_parameters,
            "search": {
                "verdict": None if curie is None else curie.verdict,
                "metrics": _plain(result.metrics),
                "summary": result.summary(),
            },
        }
        return out

    def as_dict(self) -> dict[str, Any]:
        """MSON dictionary: constructor arguments (target embedded), plus ``"output"`` (last application's
        output parameters) and ``"result"`` (last search result), both None before the first application."""
        return {
            "@module": type(self).__module__,
            "@class": type(self).__name__,
            "@version": _version(),
            "target": self.target.as_dict(),
            "sites": _plain(self.sites),
            "irreps": self.irreps,
            "tie": _plain(self.tie),
            "mask": _plain(self.mask),
            "amplitude": self.amplitude,
            "include_strain": self.include_strain,
            "search_kwargs": _plain(self.search_kwargs),
            "output": _plain(self.output_parameters) if self.output_parameters else None,
            "result": None if self.result is None else self.result.as_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OrderParameterSearchTransformation:
        """Inverse of :meth:`as_dict` (also reads a ``TransformedStructure`` history entry)."""
        _check_dict(d, cls, ("target",))
        out = cls(
            d["target"],
            sites=d.get("sites"),
            irreps=d.get("irreps"),
            tie=d.get("tie", "none"),
            mask=d.get("mask"),
            amplitude=d.get("amplitude", 1.0),
            include_strain=d.get("include_strain", False),
            search_kwargs=d.get("search_kwargs"),
        )
        out.output_parameters = dict(d.get("output") or {})
        if d.get("result") is not None:
            out.result = _load_result(d["result"])
        return out

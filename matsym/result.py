"""Results of order-parameter searches: frozen dataclasses with versioned JSON round trips.

Nothing here executes code on load: JSON is parsed with :mod:`json` (regular files only, bounded size, no NaN),
validated (:mod:`matsym._validate`), structures are rebuilt from cleaned copies of their pymatgen dicts
(:mod:`matsym.safejson`: site properties plain data only), and network weights (optional, separate file) are read
with :mod:`safetensors`.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

import numpy as np

from matsym.errors import MatsymError, ResultError

__all__ = ["SCHEMA_VERSION", "CurieReport", "OrderParameterResult"]

SCHEMA_VERSION = 1


def _structure_to_dict(s) -> dict | None:
    return None if s is None else s.as_dict()


def _structure_from_dict(d: dict | None, where: str = "structure"):
    if d is None:
        return None
    from matsym.safejson import structure_from_dict

    return structure_from_dict(d, where=where)  # imports nothing the file names


@dataclass(frozen=True)
class CurieReport:
    """Can the parent reach the target without an order parameter? (Curie's principle, paper Eq. 5.)

    Attributes:
        compatible: True when the network fits the target displacements with no order parameter.
        loss_ratio: residual signal loss divided by the target signal's mean square.
        displacement_error_ratio: RMS error of the decoded displacements / RMS target displacement.
        degenerate_sites: sites whose predicted signal has several equal maxima (the network cannot choose).
        verdict: one plain sentence for the user.
    """

    compatible: bool
    loss_ratio: float
    displacement_error_ratio: float
    degenerate_sites: tuple[int, ...]
    verdict: str

    def as_dict(self) -> dict:
        return {
            "compatible": self.compatible,
            "loss_ratio": self.loss_ratio,
            "displacement_error_ratio": self.displacement_error_ratio,
            "degenerate_sites": list(self.degenerate_sites),
            "verdict": self.verdict,
        }

    @classmethod
    def from_dict(cls, d: dict) -> CurieReport:
        return cls(
            compatible=bool(d["compatible"]),
            loss_ratio=float(d["loss_ratio"]),
            displacement_error_ratio=float(d["displacement_error_ratio"]),
            degenerate_sites=tuple(int(i) for i in d["degenerate_sites"]),
            verdict=str(d["verdict"]),
        )


_ARRAYS = (
    "sites",
    "groups",
    "order_parameter",
    "irrep_weights",
    "predicted_displacements",
    "target_displacements",
    "degenerate",
)


@dataclass(frozen=True)
class OrderParameterResult:
    """Outcome of an :class:`matsym.search.OrderParameterSearch`.

    All per-site arrays are indexed like ``parent`` (the parent expressed on the search cell, in the target's site
    order). Order parameters are in the standard real spherical-harmonic basis with z polar, in the Cartesian frame
    of the input structures.

    Attributes:
        parent: parent structure on the search cell (pymatgen ``Structure`` or ``Molecule``).
        target: target structure on the same cell, strain removed (``None`` if not kept).
        predicted_structure: ``parent`` moved by ``predicted_displacements``.
        irreps: candidate irreps of the order parameter (e3nn string).
        components: label of each order-parameter component, e.g. ``"2e m=2 x²-y²"``.
        irrep_names: name of each irrep block, e.g. ``["0e", "1e", ...]``.
        sites: indices of the sites that carry an order parameter.
        groups: tie group of each order-parameter site.
        order_parameter: learned order parameter per site (zeros where none).  # [n, dim]
        irrep_weights: squared norm per irrep block per site.  # [n, n_irreps]
        predicted_displacements: displacements decoded from the predicted signals (Å).  # [n, 3]
        target_displacements: displacements of the target relative to the parent (Å).  # [n, 3]
        degenerate: sites whose predicted signal has several equal maxima.  # [n]
        loss_history: list of ``{"step", "phase", "loss", "penalty"}`` records.
        metrics: final figures (``loss_ratio``, ``displacement_error_ratio``, ``steps``, ``seconds``, ...).
        curie: the no-order-parameter fit (:class:`CurieReport`).
        settings: everything needed to reproduce the run (spec, search and network configuration, seed).
        registration: how parent and target were put on one cell (supercell matrix, origin shift, strain).
        nothing_to_find: True when the target equals the parent (no displacement above tolerance).
        order_parameter_modes: the learned order parameter as symmetry modes of the parent
            (:meth:`matsym.modes.ModeDecomposition.as_dict`; amplitudes are shares of its squared norm), or None.
        distortion_modes: the decoded displacements as symmetry modes of the parent (Å), or None.
        predicted_strain: strain the network predicts (symmetric, parent's Cartesian frame; ``predicted_structure``
            carries it), or ``None`` when the target has no strain (:mod:`matsym.strain`).  # [3, 3]
        target_strain: the target's registered strain that was fitted, or ``None``.  # [3, 3]
        notes: what was done with the inputs beyond the fit (e.g. magnetic moments read and kept, not fitted).
        schema_version: JSON schema version.
    """

    parent: object
    target: object
    predicted_structure: object
    irreps: str
    components: tuple[str, ...]
    irrep_names: tuple[str, ...]
    sites: np.ndarray
    groups: np.ndarray
    order_parameter: np.ndarray
    irrep_weights: np.ndarray
    predicted_displacements: np.ndarray
    target_displacements: np.ndarray
    degenerate: np.ndarray
    loss_history: tuple[dict, ...]
    metrics: dict
    curie: CurieReport | None
    settings: dict
    registration: dict = field(default_factory=dict)
    nothing_to_find: bool = False
    order_parameter_modes: dict | None = None
    distortion_modes: dict | None = None
    predicted_strain: np.ndarray | None = None
    target_strain: np.ndarray | None = None
    notes: tuple[str, ...] = ()
    schema_version: int = SCHEMA_VERSION

    # ----------------------------------------------------------------- derived views
    @property
    def fit_failed(self) -> bool:
        """True when the search ran but its decoded displacements miss the target (``metrics["fit_failed"]``)."""
        return bool(self.metrics.get("fit_failed", False))

    def irrep_fractions(self, site: int | None = None) -> dict[str, float]:
        """Share of the squared norm of the order parameter per irrep (one site, or all sites together)."""
        w = self.irrep_weights if site is None else self.irrep_weights[[site]]
        total = float(w.sum())
        out: dict[str, float] = {}
        for k, name in enumerate(self.irrep_names):
            out[name] = out.get(name, 0.0) + (float(w[:, k].sum()) / total if total > 0 else 0.0)
        return out

    def component_fractions(self, sites=None, *, min_l: int = 0) -> dict[str, float]:
        """Share of the squared norm per labelled component, over ``sites`` (default: order-parameter sites)."""
        idx = self.sites if sites is None else np.atleast_1d(sites)
        op = self.order_parameter[idx]
        ls = np.array([int(c.split()[0].split("[")[0][:-1]) for c in self.components])
        sq = (op**2).sum(axis=0) * (ls >= min_l)
        total = float(sq.sum())
        return {c: (float(v) / total if total > 0 else 0.0) for c, v in zip(self.components, sq, strict=True)}

    def summary(self, *, threshold: float = 0.01) -> str:
        """Human-readable report: verdict, fit quality, and the dominant components per site."""
        lines = [f"Note: {note}" for note in self.notes]
        if self.nothing_to_find:
            lines.append("Target equals the parent within tolerance: there is nothing to find (no symmetry breaking).")
            return "\n".join(lines)
        if self.fit_failed:
            lines.append(
                "FIT FAILED: the decoded displacements miss the target (error above "
                f"{100 * self.metrics.get('fit_failed_above', float('nan')):.3g}% of the RMS target displacement); "
                "the order parameter below does not describe this distortion"
            )
        if self.curie is not None:
            lines.append(f"Without order parameter: {self.curie.verdict}")
        m = self.metrics
        lines.append(
            f"With order parameter: loss ratio {m.get('loss_ratio', float('nan')):.2e}, decoded-displacement "
            f"error {100 * m.get('displacement_error_ratio', float('nan')):.2f}% of the RMS target displacement"
        )
        if self.predicted_strain is not None:
            eps = np.asarray(self.predicted_strain)
            lines.append(
                "Strain (parent frame, xx yy zz yz xz xy): predicted "
                + " ".join(f"{v:+.4f}" for v in eps[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]])
                + f"; {100 * m.get('strain_share', float('nan')):.1f}% of the fitted distortion, error "
                f"{100 * m.get('strain_error_ratio', float('nan')):.2f}% of the target strain"
            )
        for k, site in enumerate(self.sites):
            op = self.order_parameter[site]
            norm2 = float((op**2).sum())
            species = self.parent[int(site)].species_string
            if norm2 == 0:
                lines.append(f"  site {site:4d} {species:>3s} group {self.groups[k]}: zero")
                continue
            parts = [f"{c} {v:+.4f}" for c, v in zip(self.components, op, strict=True) if v * v >= threshold * norm2]
            lines.append(f"  site {site:4d} {species:>3s} group {self.groups[k]}: " + ", ".join(parts))
        for title, modes in (
            ("order parameter", self.order_parameter_modes),
            ("decoded displacements", self.distortion_modes),
        ):
            if modes:
                from matsym.modes import ModeDecomposition

                lines.append(f"Symmetry modes of the {title}:")
                lines += ["  " + line for line in ModeDecomposition.from_dict(modes).table().splitlines()]
        return "\n".join(lines)

    # ----------------------------------------------------------------- serialisation
    def as_dict(self) -> dict:
        d = {
            "@module": type(self).__module__,
            "@class": type(self).__name__,
            "schema_version": self.schema_version,
        }
        for f in fields(self):
            if f.name == "schema_version":
                continue
            v = getattr(self, f.name)
            if f.name in ("parent", "target", "predicted_structure"):
                v = _structure_to_dict(v)
            elif f.name == "curie":
                v = None if v is None else v.as_dict()
            elif f.name in _ARRAYS:
                v = np.asarray(v).tolist()
            elif isinstance(v, tuple):
                v = list(v)
            d[f.name] = v
        return json.loads(json.dumps(d, default=json_default))

    @classmethod
    def from_dict(cls, d: dict) -> OrderParameterResult:
        if not isinstance(d, dict) or d.get("@class", cls.__name__) != cls.__name__:
            raise ResultError(
                f"expected a serialised {cls.__name__}, got {type(d).__name__} "
                f"with @class={d.get('@class') if isinstance(d, dict) else None!r}"
            )
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ResultError(
                f"result schema version {version!r} is not supported (this matsym reads {SCHEMA_VERSION})"
            )
        from matsym._validate import check_result_dict, clean_registration

        check_result_dict(d)  # schema, shapes, finite numbers, sizes; unknown keys are left alone
        try:
            kwargs = {}
            for f in fields(cls):
                if f.name not in d and (f.default is not MISSING or f.default_factory is not MISSING):
                    continue  # optional field, absent from older files
                v = d.get(f.name)
                if f.name in ("parent", "target", "predicted_structure"):
                    v = _structure_from_dict(v, where=f"result {f.name}")
                elif f.name == "curie":
                    v = None if v is None else CurieReport.from_dict(v)
                elif f.name in ("sites", "groups"):
                    v = np.asarray(v, dtype=np.int64)
                elif f.name == "degenerate":
                    v = np.asarray(v, dtype=bool)
                elif f.name in _ARRAYS:
                    v = np.asarray(v, dtype=np.float64)
                elif f.name in ("components", "irrep_names", "loss_history"):
                    v = tuple(v)
                elif f.name == "notes":
                    v = tuple(str(n) for n in (v or ()))
                elif f.name == "registration":
                    v = clean_registration(v)
                elif f.name in ("predicted_strain", "target_strain") and v is not None:
                    v = np.asarray(v, dtype=np.float64).reshape(3, 3)
                kwargs[f.name] = v
            return cls(**kwargs)
        except MatsymError as exc:
            raise ResultError(f"malformed {cls.__name__} JSON: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise ResultError(f"malformed {cls.__name__} JSON: {exc}") from None

    def to_json(self, path, *, force: bool = False) -> Path:
        """Write the result as JSON, atomically; refuses to overwrite unless ``force``."""
        from matsym.io import atomic_write_text

        path = Path(path)
        atomic_write_text(path, json.dumps(self.as_dict(), indent=1), force=force)
        return path

    @classmethod
    def from_json(cls, path) -> OrderParameterResult:
        """Read a result written by :meth:`to_json` (plain JSON; executes nothing)."""
        from matsym.safejson import load_json_file

        return cls.from_dict(load_json_file(path, what="result"))


def json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot serialise {type(o).__name__}")

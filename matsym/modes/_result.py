"""Frozen, JSON-serialisable results of a symmetry-mode decomposition."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from matsym.errors import ResultError

__all__ = ["Mode", "ModeDecomposition", "StrainMode"]


@dataclasses.dataclass(frozen=True)
class Mode:
    """One physically irreducible component of a field.

    Attributes:
        irrep: label, e.g. ``"R4+"`` (CDML/Bilbao, needs ``matsym[labels]``) or ``"R, irrep 4 of 10"``.
        k: the star's representative, fractional in the parent's conventional reciprocal basis where labels are
            available (as the tables print it), else in the primitive basis; with its name (``"R"``) in
            ``k_name``.
        k_name: name of the k-point ("R", "M", …; ``"k"`` when not in the tables).
        star: number of arms of the star.
        dimension: dimension of the full irrep (arms × small-irrep dimension; doubled for complex pairs).
        amplitude: As (Å for displacements): root of the summed squares over the primitive cell of the isotropy
            subgroup of the whole field; for learned order parameters the share of the squared norm.
        amplitude_parent: Ap = As / sqrt(s), s = that cell's volume over the parent's primitive volume.
        direction: the component's coordinates in a basis of the irrep (arms × rows of spgrep's small-irrep
            matrices, fixed up to an overall phase by the field itself), unit norm.
        pattern: the direction as a pattern, e.g. ``"(a,a,0)"``.
        subgroup: isotropy subgroup of this component alone, ``{"number", "symbol"}``.
        sites: per Wyckoff orbit of the parent (and field block): ``{"species", "wyckoff", "block", "amplitude"}``.
    """

    irrep: str
    k: tuple[float, float, float]
    k_name: str
    star: int
    dimension: int
    amplitude: float
    amplitude_parent: float
    direction: tuple[float, ...]
    pattern: str
    subgroup: dict[str, Any]
    sites: tuple[dict[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["k"], d["direction"], d["sites"] = list(self.k), list(self.direction), [dict(s) for s in self.sites]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Mode:
        return cls(**{**d, "k": tuple(d["k"]), "direction": tuple(d["direction"]), "sites": tuple(d["sites"])})


@dataclasses.dataclass(frozen=True)
class StrainMode:
    """Strain projected onto one irrep of the parent's point group (``GM1+``, ``GM3+``, ``GM5+`` for cubic).

    Attributes:
        irrep: label.
        dimension: irrep dimension.
        amplitude: Frobenius norm of the projected (Biot) strain.
        strain: the projected strain, [3, 3] as nested lists (parent's Cartesian frame).
    """

    irrep: str
    dimension: int
    amplitude: float
    strain: tuple[tuple[float, ...], ...]

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "strain": [list(r) for r in self.strain]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StrainMode:
        return cls(**{**d, "strain": tuple(tuple(r) for r in d["strain"])})


@dataclasses.dataclass(frozen=True)
class ModeDecomposition:
    """A field (displacements, or a learned order parameter) decomposed onto the parent's irreps.

    Attributes:
        parent: ``{"space_group": {"number", "symbol"}, "origin": {...}}``: the origin says where the parent's
            origin was put (``shift``, fractional in the parent cell as given), and the setting the labels refer
            to.
        subgroup: isotropy subgroup of the whole field (with the strain for displacements), ``{"number",
            "symbol"}``.
        kind: ``"displacement"`` (amplitudes in Å) or ``"order_parameter"`` (amplitudes are shares of the
            squared norm, As² summing to 1).
        modes: nonzero components, largest first.
        strain: strain by the point group's irreps (empty when not a displacement decomposition).
        total: root of the summed squares of the field over the subgroup's primitive cell (Å for displacements).
        supercell_size: s, the subgroup primitive cell's volume over the parent's primitive volume.
        glazer: Glazer tilt symbol for a cubic perovskite parent (None otherwise).
        labels: ``"bilbao"`` (CDML labels from irreptables) or ``"index"`` (fallback "R, irrep 4 of 10").
    """

    parent: dict[str, Any]
    subgroup: dict[str, Any]
    kind: str
    modes: tuple[Mode, ...]
    strain: tuple[StrainMode, ...]
    total: float
    supercell_size: float
    glazer: str | None
    labels: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary; the schema of ``matsym modes --json``."""
        return {
            "parent": self.parent,
            "subgroup": self.subgroup,
            "kind": self.kind,
            "modes": [m.as_dict() for m in self.modes],
            "strain": [s.as_dict() for s in self.strain],
            "total": self.total,
            "supercell_size": self.supercell_size,
            "glazer": self.glazer,
            "labels": self.labels,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModeDecomposition:
        """Inverse of :meth:`as_dict`.

        Raises:
            ResultError: a key is missing.
        """
        need = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in need if n not in d]
        if missing:
            raise ResultError(f"mode decomposition dictionary lacks {missing}; expected keys {need}")
        return cls(
            parent=d["parent"],
            subgroup=d["subgroup"],
            kind=d["kind"],
            modes=tuple(Mode.from_dict(m) for m in d["modes"]),
            strain=tuple(StrainMode.from_dict(s) for s in d["strain"]),
            total=float(d["total"]),
            supercell_size=float(d["supercell_size"]),
            glazer=d["glazer"],
            labels=d["labels"],
        )

    def to_json(self) -> str:
        return json.dumps(self.as_dict())

    def table(self) -> str:
        """Plain-text mode table, ISODISTORT style."""
        sg = self.parent["space_group"]
        unit = "Å" if self.kind == "displacement" else "share"
        lines = [
            f"Parent {sg['symbol']} (#{sg['number']}), {self.parent['origin']['description']}; "
            f"subgroup {self.subgroup['symbol']} (#{self.subgroup['number']}), s = {self.supercell_size:g}",
            f"{'irrep':<18s} {'k':<16s} {'dim':>3s} {'As':>9s} {'Ap':>9s}  {'direction':<14s} subgroup",
        ]
        if self.kind == "order_parameter":
            lines[1] = f"{'irrep':<18s} {'k':<16s} {'dim':>3s} {'share':>9s} {'':>9s}  {'direction':<14s} subgroup"
        for m in self.modes:
            k = "(" + ",".join(_frac(x) for x in m.k) + ")"
            ap = "" if self.kind == "order_parameter" else f"{m.amplitude_parent:9.4f}"
            lines.append(
                f"{m.irrep:<18s} {m.k_name + ' ' + k:<16s} {m.dimension:>3d} {m.amplitude:9.4f} "
                f"{ap:>9s}  {m.pattern:<14s} {m.subgroup['symbol']} (#{m.subgroup['number']})"
            )
        lines.append(f"{'total':<18s} {'':<16s} {'':>3s} {self.total:9.4f} {unit}")
        for s in self.strain:
            lines.append(f"strain {s.irrep:<11s} dim {s.dimension}  |ε| {s.amplitude:.5f}")
        if self.glazer:
            lines.append(f"Glazer tilt system: {self.glazer}")
        return "\n".join(lines)


def _frac(x: float) -> str:
    from fractions import Fraction

    f = Fraction(x).limit_denominator(48)
    return str(f) if abs(float(f) - x) < 1e-6 else f"{x:.4f}"

"""jobflow workflows: one order-parameter search per job, many searches per flow.

:class:`OrderParameterMaker` is a jobflow :class:`~jobflow.Maker` whose ``make(parent, target)`` job runs
:class:`matsym.search.OrderParameterSearch` and returns an :class:`OrderParameterDocument` (MSONable: the
full :class:`~matsym.result.OrderParameterResult`, the predicted structure, its space groups, the Curie
verdict and the key metrics). :func:`screening_flow` builds one such job per (parent, target) pair, plus a job
that collects a summary table. Job inputs are pymatgen structures and plain JSON values; outputs serialise to
JSON through ``as_dict``; no job holds a torch object, so the same flow runs with ``jobflow.run_locally`` on
one machine or through jobflow-remote / FireWorks on a cluster (see ``workflows/README.md``)::

    >>> from jobflow import JobStore, run_locally
    >>> from maggma.stores import MemoryStore
    >>> from matsym.structures import tilted_perovskite
    >>> from matsym.workflows import OrderParameterMaker, screening_flow
    >>> flow = screening_flow(
    ...     {"a0a0c-": tilted_perovskite("a0a0c-", 8.0)}, OrderParameterMaker(sites="Ti", irreps="1e")
    ... )
    >>> store = JobStore(MemoryStore())
    >>> run_locally(flow, store=store, ensure_success=True)
    >>> print(store.get_output(flow.jobs[-1].uuid)["table"])

Requires the ``workflows`` extra: ``pip install "matsym[workflows]"`` (jobflow).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

try:
    from jobflow import Flow, Maker, OnMissing, job
except ImportError as _exc:  # pragma: no cover - exercised by a test that hides jobflow
    raise ImportError(
        'matsym.workflows needs jobflow, which is not installed: pip install "matsym[workflows]"'
    ) from _exc
from monty.json import MSONable

from matsym.errors import InputError, MatsymError, ResultError

if TYPE_CHECKING:
    from pymatgen.core import Molecule, Structure

    from matsym.result import OrderParameterResult

__all__ = [
    "SUMMARY_COLUMNS",
    "SYMPRECS",
    "OrderParameterDocument",
    "OrderParameterMaker",
    "collect_summary",
    "screening_flow",
    "summary_row",
    "summary_table",
]

#: Tolerances (Å) at which the space groups of the predicted structure and the target are recorded.
SYMPRECS: tuple[float, ...] = (1e-3, 1e-2)
#: Columns of :func:`summary_table`, in order.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "label",
    "formula",
    "sites",
    "verdict",
    "target SG",
    "found SG 1e-3",
    "found SG 1e-2",
    "dominant irrep",
    "share",
    "disp. error",
    "time (s)",
)
_METRICS = ("loss_ratio", "displacement_error_ratio", "rms_target_displacement", "steps", "seconds")
_SEARCH_ARGUMENTS = ("sparsity", "l_penalty", "seed", "config")


def _version() -> str:
    from matsym import __version__

    return __version__


def _symprec_key(symprec: float) -> str:
    return repr(float(symprec))  # "0.001", "0.01": JSON object keys must be strings


def _json_safe(value: Any, what: str) -> Any:
    """``value`` as plain JSON (tuples, numpy arrays become lists); InputError naming ``what`` otherwise."""

    def numpy(o: Any) -> Any:
        if hasattr(o, "tolist") and type(o).__module__ == "numpy":  # arrays and numpy scalars
            return o.tolist()
        raise TypeError(f"{type(o).__name__} is not JSON data")

    try:
        return json.loads(json.dumps(value, allow_nan=True, default=numpy))
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{what} must be plain JSON data (str, numbers, lists, dicts) so that jobs can be stored and "
            f"sent to other machines, got {value!r} ({exc})"
        ) from None


def _mask_item(item: Any) -> Any:
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        try:
            direction = [float(v) for v in item[1]]
        except (TypeError, ValueError):
            raise InputError(f"mask: expected (irrep, (x, y, z)), got {item!r}") from None
        return f"{item[0]}@" + ",".join(repr(v) for v in direction)
    return item


def _mask_json(mask: Any) -> Any:
    """A mask whose ``(irrep, direction)`` tuples are rewritten as ``"irrep@x,y,z"``.

    JSON turns tuples into lists, and a list is read back as a list of mask items: the string form survives.
    """
    if isinstance(mask, tuple):
        return _mask_item(mask)
    if isinstance(mask, list):
        return [_mask_item(item) for item in mask]
    return mask


def _structure_from_dict(d: Any) -> Structure | Molecule | None:
    if d is None:
        return None
    from pymatgen.core import IMolecule, IStructure

    if isinstance(d, (IStructure, IMolecule)):
        return d
    if not isinstance(d, dict):
        raise ResultError(f"expected a serialised pymatgen Structure or Molecule, got {type(d).__name__}")
    from matsym.safejson import structure_from_dict

    return structure_from_dict(d, where="document structure")  # plain-data properties: nothing imported


def _result_from_dict(d: Any) -> OrderParameterResult:
    from matsym.result import OrderParameterResult

    if isinstance(d, OrderParameterResult):
        return d
    if not isinstance(d, dict):
        raise ResultError(f"expected a serialised OrderParameterResult, got {type(d).__name__}")
    # MontyDecoder strips "@module"/"@class" from the dictionary it hands to from_dict;
    # OrderParameterResult.from_dict checks @class
    d = {"@module": "matsym.result", "@class": "OrderParameterResult", **d}
    return OrderParameterResult.from_dict(d)


def _symmetry(structure: Any) -> tuple[dict[str, list], str | None]:
    """Space groups ``{"0.001": [number, symbol], ...}`` of a crystal, or the point group of a finite one."""
    from pymatgen.core import IStructure

    from matsym import symmetry

    if structure is None:
        return {}, None
    if not isinstance(structure, IStructure):
        try:
            return {}, symmetry.point_group(structure)
        except MatsymError:
            return {}, None
    groups: dict[str, list] = {}
    for symprec in SYMPRECS:
        try:
            number, symbol = symmetry.space_group(structure, symprec)
        except MatsymError:  # e.g. atoms closer than symprec: record nothing rather than fail the job
            continue
        groups[_symprec_key(symprec)] = [int(number), str(symbol)]
    return groups, None


@dataclass
class OrderParameterDocument(MSONable):
    """Output of one :class:`OrderParameterMaker` job (MSONable; every field is plain data or pymatgen).

    Attributes:
        label: Name of the (parent, target) pair.
        formula: Reduced formula of the parent.
        num_sites: Sites of the search cell.
        result: The full :class:`~matsym.result.OrderParameterResult` (serialised with its own ``as_dict``).
        predicted_structure: The parent moved by the predicted displacements (search cell).
        space_groups: Space group of ``predicted_structure`` per symprec (Å): ``{"0.001": [62, "Pnma"],
            "0.01": [...]}``; empty for finite point clouds.
        target_space_groups: The same for the target on the search cell (strain removed).
        point_group: Point group of the predicted structure for finite point clouds, else None.
        target_point_group: The same for the target.
        verdict: ``"nothing to find"``, ``"compatible"`` (no order parameter needed) or ``"incompatible"``
            (the parent is more symmetric than the target: an order parameter was searched for).
        curie_verdict: The Curie check's full sentence.
        curie_compatible: The Curie check's answer (None if none ran).
        nothing_to_find: The target equals the parent.
        irrep_fractions: Share of the order parameter's squared norm per irrep.
        dominant_irrep: The irrep with the largest share (None when the order parameter is zero).
        metrics: ``loss_ratio``, ``displacement_error_ratio``, ``rms_target_displacement``, ``steps``,
            ``seconds`` of the search.
        search: The search arguments the job ran with (``sites``, ``irreps``, ``tie``, ``mask``,
            ``search_kwargs``).
        matsym_version: Version of matsym that ran the search.
    """

    label: str
    formula: str
    num_sites: int
    result: Any  # OrderParameterResult
    predicted_structure: Any  # Structure | Molecule
    space_groups: dict[str, list] = field(default_factory=dict)
    target_space_groups: dict[str, list] = field(default_factory=dict)
    point_group: str | None = None
    target_point_group: str | None = None
    verdict: str = ""
    curie_verdict: str | None = None
    curie_compatible: bool | None = None
    nothing_to_find: bool = False
    irrep_fractions: dict[str, float] = field(default_factory=dict)
    dominant_irrep: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=dict)
    matsym_version: str = ""

    @classmethod
    def from_result(
        cls, result: OrderParameterResult, *, label: str | None = None, search: dict[str, Any] | None = None
    ) -> OrderParameterDocument:
        """Build the document of a finished search.

        Args:
            result: The search result.
            label: Name of the pair (default: the parent's reduced formula).
            search: The search arguments, recorded as given (must be JSON data).

        Returns:
            The document, with space groups from :func:`matsym.symmetry.space_group` at :data:`SYMPRECS`.
        """
        from matsym.result import OrderParameterResult

        if not isinstance(result, OrderParameterResult):
            raise InputError(f"expected an OrderParameterResult, got {type(result).__name__}")
        predicted = result.predicted_structure
        groups, point_group = _symmetry(predicted)
        target_groups, target_point_group = _symmetry(result.target)
        fractions = result.irrep_fractions() if result.irrep_weights.size else {}
        dominant = max(fractions, key=fractions.get) if fractions and max(fractions.values()) > 0 else None
        curie = result.curie
        if result.nothing_to_find:
            verdict = "nothing to find"
        elif curie is None:
            verdict = "unknown"
        else:
            verdict = "compatible" if curie.compatible else "incompatible"
        metrics = {k: float(result.metrics[k]) for k in _METRICS if k in (result.metrics or {})}
        formula = result.parent.composition.reduced_formula
        return cls(
            label=formula if label is None else str(label),
            formula=formula,
            num_sites=len(result.parent),
            result=result,
            predicted_structure=predicted,
            space_groups=groups,
            target_space_groups=target_groups,
            point_group=point_group,
            target_point_group=target_point_group,
            verdict=verdict,
            curie_verdict=None if curie is None else curie.verdict,
            curie_compatible=None if curie is None else bool(curie.compatible),
            nothing_to_find=bool(result.nothing_to_find),
            irrep_fractions={k: float(v) for k, v in fractions.items()},
            dominant_irrep=dominant,
            metrics=metrics,
            search=_json_safe(search or {}, "search arguments"),
            matsym_version=_version(),
        )

    def matches_target(self, symprec: float = 1e-3) -> bool | None:
        """Whether the predicted structure has the target's space group at ``symprec`` (None if unknown)."""
        key = _symprec_key(symprec)
        if key not in self.space_groups or key not in self.target_space_groups:
            return None
        return self.space_groups[key][0] == self.target_space_groups[key][0]

    def as_dict(self) -> dict[str, Any]:
        """MSON dictionary: plain JSON, structures and the result through their own ``as_dict``."""
        return {
            "@module": type(self).__module__,
            "@class": type(self).__name__,
            "@version": self.matsym_version or None,
            "label": self.label,
            "formula": self.formula,
            "num_sites": int(self.num_sites),
            "result": self.result.as_dict(),
            "predicted_structure": None if self.predicted_structure is None else self.predicted_structure.as_dict(),
            "space_groups": {k: [int(v[0]), str(v[1])] for k, v in self.space_groups.items()},
            "target_space_groups": {k: [int(v[0]), str(v[1])] for k, v in self.target_space_groups.items()},
            "point_group": self.point_group,
            "target_point_group": self.target_point_group,
            "verdict": self.verdict,
            "curie_verdict": self.curie_verdict,
            "curie_compatible": self.curie_compatible,
            "nothing_to_find": bool(self.nothing_to_find),
            "irrep_fractions": {k: float(v) for k, v in self.irrep_fractions.items()},
            "dominant_irrep": self.dominant_irrep,
            "metrics": {k: float(v) for k, v in self.metrics.items()},
            "search": _json_safe(self.search, "search arguments"),
            "matsym_version": self.matsym_version,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OrderParameterDocument:
        """Inverse of :meth:`as_dict` (also reads the dictionary ``MontyDecoder`` passes, without ``@`` keys).

        Raises:
            ResultError: ``d`` is not a serialised document.
        """
        if not isinstance(d, dict):
            raise ResultError(f"expected a serialised OrderParameterDocument, got {type(d).__name__}")
        if d.get("@class", cls.__name__) != cls.__name__:
            raise ResultError(f"expected a serialised OrderParameterDocument, got @class={d.get('@class')!r}")
        missing = [k for k in ("label", "formula", "num_sites", "result", "predicted_structure") if k not in d]
        if missing:
            raise ResultError(f"serialised OrderParameterDocument lacks {missing}")
        try:
            return cls(
                label=str(d["label"]),
                formula=str(d["formula"]),
                num_sites=int(d["num_sites"]),
                result=_result_from_dict(d["result"]),
                predicted_structure=_structure_from_dict(d["predicted_structure"]),
                space_groups={k: [int(v[0]), str(v[1])] for k, v in (d.get("space_groups") or {}).items()},
                target_space_groups={
                    k: [int(v[0]), str(v[1])] for k, v in (d.get("target_space_groups") or {}).items()
                },
                point_group=d.get("point_group"),
                target_point_group=d.get("target_point_group"),
                verdict=str(d.get("verdict", "")),
                curie_verdict=d.get("curie_verdict"),
                curie_compatible=d.get("curie_compatible"),
                nothing_to_find=bool(d.get("nothing_to_find", False)),
                irrep_fractions={k: float(v) for k, v in (d.get("irrep_fractions") or {}).items()},
                dominant_irrep=d.get("dominant_irrep"),
                metrics={k: float(v) for k, v in (d.get("metrics") or {}).items()},
                search=dict(d.get("search") or {}),
                matsym_version=str(d.get("matsym_version", "")),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ResultError(f"malformed OrderParameterDocument: {exc}") from None


@dataclass
class OrderParameterMaker(Maker):
    """jobflow Maker: ``make(parent, target)`` runs one order-parameter search and returns its document.

    All settings are plain JSON data, checked here (before any job is stored or sent to another machine).

    Args:
        name: Job name.
        sites: Sites that carry an order parameter (species such as ``"Ti"``, list of species or indices;
            None = all).
        irreps: Candidate irreps (e3nn string such as ``"1e+1o"``); None uses the search's default.
        tie: Tie specification (see :class:`~matsym.search.OrderParameterSearch`).
        mask: Masked components (see :class:`~matsym.search.OrderParameterSearch`); ``(irrep, (x, y, z))``
            items are stored as the equivalent ``"irrep@x,y,z"`` strings, which survive JSON.
        search_kwargs: Further search arguments: ``sparsity``, ``l_penalty``, ``seed``, fields of
            :class:`~matsym.search.SearchConfig` (``max_steps=...``), or ``config`` (a SearchConfig or its
            ``as_dict()``; stored as a dictionary).

    Raises:
        InputError: a setting is not JSON data, or ``search_kwargs`` names an unknown argument.
        IrrepsError: ``irreps`` is not a valid irreps string.

    Example:
        >>> maker = OrderParameterMaker(sites="Ti", irreps="1e+1o", search_kwargs={"max_steps": 200})
        >>> job = maker.make(parent, target)  # a jobflow Job; its output is an OrderParameterDocument
    """

    name: str = "order parameter search"
    sites: str | int | list | None = None
    irreps: str | None = None
    tie: str | list | dict = "none"
    mask: str | list | None = None
    search_kwargs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        from matsym.search import SearchConfig

        if not isinstance(self.name, str) or not self.name:
            raise InputError(f"name must be a non-empty string, got {self.name!r}")
        if self.search_kwargs is None:
            self.search_kwargs = {}
        if not isinstance(self.search_kwargs, dict):
            raise InputError(f"search_kwargs must be a dictionary, got {type(self.search_kwargs).__name__}")
        kwargs = dict(self.search_kwargs)
        reserved = sorted({"sites", "irreps", "tie", "mask"} & set(kwargs))
        if reserved:
            raise InputError(f"give {reserved} as OrderParameterMaker arguments, not in search_kwargs")
        allowed = set(_SEARCH_ARGUMENTS) | set(SearchConfig.__dataclass_fields__)
        unknown = sorted(set(kwargs) - allowed)
        if unknown:
            raise InputError(f"unknown search_kwargs {unknown}; valid: {sorted(allowed)}")
        if isinstance(kwargs.get("config"), SearchConfig):
            kwargs["config"] = kwargs["config"].as_dict()
        if isinstance(kwargs.get("config"), dict):
            try:
                SearchConfig.from_dict(kwargs["config"])
            except TypeError as exc:
                raise InputError(f"search_kwargs['config'] is not a SearchConfig dictionary: {exc}") from None
        elif kwargs.get("config") is not None:
            raise InputError(
                f"search_kwargs['config'] must be a SearchConfig or its as_dict(), got "
                f"{type(kwargs['config']).__name__}"
            )
        self.search_kwargs = _json_safe(kwargs, "search_kwargs")
        self.sites = _json_safe(self.sites, "sites")
        self.tie = _json_safe(self.tie, "tie")
        self.mask = _json_safe(_mask_json(self.mask), "mask")
        if self.irreps is not None:
            from matsym.model import parse_irreps

            if not isinstance(self.irreps, str):
                raise InputError(f"irreps must be an e3nn irreps string such as '1e+1o', got {self.irreps!r}")
            parse_irreps(self.irreps, "order-parameter irreps")

    def search_arguments(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~matsym.search.OrderParameterSearch` (``config`` a SearchConfig)."""
        from matsym.search import search_arguments

        return search_arguments(self.sites, self.irreps, self.tie, self.mask, self.search_kwargs)

    @job
    def make(
        self, parent: Structure | Molecule, target: Structure | Molecule, label: str | None = None
    ) -> OrderParameterDocument:
        """Run the search from ``parent`` to ``target``.

        Args:
            parent: The parent (pymatgen Structure or Molecule; keep job inputs MSONable: convert ASE Atoms or
                files with :func:`matsym.io.load_structure` first, as :func:`screening_flow` does).
            target: The target, any cell, setting and origin for crystals.
            label: Name of the pair in the document (default: the parent's reduced formula).

        Returns:
            An :class:`OrderParameterDocument`.

        Raises:
            MatsymError: the search cannot be set up (registration, sites, irreps, ...); the job fails.
        """
        from matsym.io import load_structure
        from matsym.search import OrderParameterSearch

        p = load_structure(parent)
        t = load_structure(target)
        result = OrderParameterSearch(p, t, **self.search_arguments()).run(progress=False)
        search = {
            "sites": self.sites,
            "irreps": self.irreps,
            "tie": self.tie,
            "mask": self.mask,
            "search_kwargs": self.search_kwargs,
        }
        return OrderParameterDocument.from_result(result, label=label, search=search)


# ------------------------------------------------------------------------------------------------------------
# summary
# ------------------------------------------------------------------------------------------------------------


def _sg_text(groups: dict[str, list], symprec: float) -> str:
    value = groups.get(_symprec_key(symprec))
    return "-" if value is None else f"{value[1]} ({value[0]})"


def summary_row(document: OrderParameterDocument | dict | None, label: str | None = None) -> dict[str, Any]:
    """One row of the screening table (plain JSON) for a document, its ``as_dict()``, or None (failed job).

    Args:
        document: The job's output; None when the job failed.
        label: Label used when ``document`` is None (or to override the document's).

    Returns:
        ``{column: value}`` for :data:`SUMMARY_COLUMNS`, plus ``"status"`` (``"ok"`` or ``"failed"``) and the
        raw figures ``"space_groups"``, ``"target_space_groups"``, ``"metrics"``.
    """
    if document is None:
        row: dict[str, Any] = dict.fromkeys(SUMMARY_COLUMNS, "-")
        row.update(label="-" if label is None else str(label), status="failed", verdict="job failed")
        return row
    if isinstance(document, dict):
        document = OrderParameterDocument.from_dict(document)
    if not isinstance(document, OrderParameterDocument):
        raise InputError(f"expected an OrderParameterDocument, got {type(document).__name__}")
    share = document.irrep_fractions.get(document.dominant_irrep or "", 0.0)
    error = document.metrics.get("displacement_error_ratio", math.nan)
    seconds = document.metrics.get("seconds", math.nan)
    found = [_sg_text(document.space_groups, s) for s in SYMPRECS]
    if document.point_group is not None:
        found = [f"{document.point_group} (point group)"] * len(SYMPRECS)
    target = _sg_text(document.target_space_groups, SYMPRECS[0])
    if document.target_point_group is not None:
        target = f"{document.target_point_group} (point group)"
    values = [
        document.label if label is None else str(label),
        document.formula,
        document.num_sites,
        document.verdict,
        target,
        *found,
        document.dominant_irrep or "-",
        round(float(share), 4),
        float(error),
        round(float(seconds), 2),
    ]
    row = dict(zip(SUMMARY_COLUMNS, values, strict=True))
    row.update(
        status="ok",
        space_groups=document.space_groups,
        target_space_groups=document.target_space_groups,
        metrics=document.metrics,
    )
    return row


def summary_table(rows: Sequence[dict[str, Any]]) -> str:
    """Fixed-width text table of :func:`summary_row` rows (columns :data:`SUMMARY_COLUMNS`)."""

    def text(value: Any) -> str:
        if isinstance(value, float):
            return "-" if math.isnan(value) else f"{value:.3g}"
        return str(value)

    cells = [list(SUMMARY_COLUMNS)] + [[text(row.get(c, "-")) for c in SUMMARY_COLUMNS] for row in rows]
    widths = [max(len(r[k]) for r in cells) for k in range(len(SUMMARY_COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@job(name="order parameter summary")
def collect_summary(documents: list, labels: list[str] | None = None) -> dict[str, Any]:
    """jobflow job: the screening table of a list of documents (None entries are failed searches).

    Args:
        documents: :class:`OrderParameterDocument` outputs (references, resolved by jobflow).
        labels: Label of each pair (used for failed jobs).

    Returns:
        ``{"rows": [...], "table": str, "num_pairs": int, "num_failed": int}`` (plain JSON).
    """
    labels = list(labels) if labels is not None else [None] * len(documents)
    if len(labels) != len(documents):
        raise InputError(f"got {len(documents)} documents but {len(labels)} labels")
    rows = [summary_row(doc, label) for doc, label in zip(documents, labels, strict=True)]
    return {
        "rows": rows,
        "table": summary_table(rows),
        "num_pairs": len(rows),
        "num_failed": sum(row["status"] == "failed" for row in rows),
    }


def _pairs(pairs: Any) -> list[tuple[str, Any, Any]]:
    """Normalise the pairs argument of :func:`screening_flow` to ``[(label, parent, target), ...]``."""
    if isinstance(pairs, Mapping):
        items = []
        for label, pair in pairs.items():
            if not (isinstance(pair, Sequence) and not isinstance(pair, str) and len(pair) == 2):
                raise InputError(f"pairs[{label!r}] must be a (parent, target) pair, got {type(pair).__name__}")
            items.append((str(label), pair[0], pair[1]))
    elif isinstance(pairs, Sequence) and not isinstance(pairs, str):
        items = []
        for i, pair in enumerate(pairs):
            if isinstance(pair, Sequence) and not isinstance(pair, str) and len(pair) == 3:
                items.append((str(pair[0]), pair[1], pair[2]))
            elif isinstance(pair, Sequence) and not isinstance(pair, str) and len(pair) == 2:
                items.append((None, pair[0], pair[1]))
            else:
                raise InputError(
                    f"pairs[{i}] must be (parent, target) or (label, parent, target), got "
                    f"{type(pair).__name__}" + (f" of length {len(pair)}" if isinstance(pair, Sequence) else "")
                )
    else:
        raise InputError(
            f"pairs must be a dict {{label: (parent, target)}} or a list of (parent, target) or "
            f"(label, parent, target), got {type(pairs).__name__}"
        )
    if not items:
        raise InputError("pairs is empty: give at least one (parent, target) pair")
    labels = [label for label, _, _ in items if label is not None]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise InputError(f"pair labels must be unique, got duplicates {duplicates}")
    return items


def screening_flow(
    pairs: Mapping[str, tuple[Any, Any]] | Sequence[tuple[Any, ...]],
    maker: OrderParameterMaker | None = None,
    *,
    summary: bool = True,
    name: str = "order parameter screening",
) -> Flow:
    """A jobflow Flow with one search job per (parent, target) pair and a final summary job.

    Parents and targets are read here with :func:`matsym.io.load_structure` (Structure, Molecule, ASE Atoms or
    file path), so the jobs hold pymatgen structures only and bad inputs fail now, not on a worker.

    Args:
        pairs: ``{label: (parent, target)}``, or a list of ``(parent, target)`` or
            ``(label, parent, target)``; unlabelled pairs are named ``"<index>:<parent formula>"``.
        maker: The search settings (default: ``OrderParameterMaker()``, i.e. the search's defaults).
        summary: Add a :func:`collect_summary` job. It runs even if some searches fail
            (``on_missing_references=OnMissing.NONE``); those rows say ``job failed``.
        name: Name of the flow.

    Returns:
        The Flow. Its ``output`` is the summary's output (``{"rows", "table", ...}``) with ``summary``, else
        the list of the searches' documents. Each search job carries ``metadata["label"]``.

    Raises:
        InputError: malformed ``pairs`` or ``maker``.
        MatsymError: a structure cannot be read.

    Example:
        >>> flow = screening_flow({"Pnma": tilted_perovskite("a+b-b-", 8.0)}, OrderParameterMaker(sites="Ti"))
        >>> run_locally(flow, store=JobStore(MemoryStore()), ensure_success=True)
    """
    from matsym.io import load_structure

    maker = OrderParameterMaker() if maker is None else maker
    if not isinstance(maker, OrderParameterMaker):
        raise InputError(f"maker must be an OrderParameterMaker, got {type(maker).__name__}")
    jobs = []
    labels = []
    for i, (label, parent, target) in enumerate(_pairs(pairs)):
        p = load_structure(parent)
        t = load_structure(target)
        label = f"{i}:{p.composition.reduced_formula}" if label is None else label
        search = maker.make(p, t, label=label)
        search.name = f"{maker.name} [{label}]"
        search.update_metadata({"label": label})
        jobs.append(search)
        labels.append(label)
    outputs = [j.output for j in jobs]
    if not summary:
        return Flow(jobs, output=outputs, name=name)
    table = collect_summary(outputs, labels)
    table.config.on_missing_references = OnMissing.NONE
    return Flow([*jobs, table], output=table.output, name=name)

"""The order-parameter search (the method of Smidt, Geiger & Miller 2021).

Given a parent (input geometry) and a target (the same sites, displaced), an equivariant network is trained to map
the parent, plus per-site order parameters, to the spherical signal of each site's displacement:

1. **Curie check.** Fit the network with the order parameters at zero until the loss stops improving. By Curie's
   principle the output is at least as symmetric as the input: if the target is less symmetric, the fit fails and
   the predicted signals are degenerate. This is reported as a plain verdict (:class:`CurieReport`).
2. **Search.** Train network and order parameters together: each step updates the network (Adam) and the order
   parameters (a proximal gradient step: plain gradient step, then soft-thresholding in the standard basis, which
   leaves unused components at exactly zero) from one shared forward/backward pass.
3. **Settle and polish.** The order-parameter step size is decayed once the loss has converged, then the network is
   refitted with the order parameters frozen.

Everything is deterministic for a fixed seed on the CPU. Decoded displacements, not signal losses, measure the fit:
the symmetric parts of a signal can be fitted without any order parameter.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from matsym._adam import Adam
from matsym._validate import check_search_arguments
from matsym.errors import InputError, RegistrationError, ResultError, SearchError
from matsym.model import EdgeGeometry, EquivariantNetwork, NetworkConfig
from matsym.order_parameter import DEFAULT_IRREPS, OrderParameter, OrderParameterSpec
from matsym.result import CurieReport, OrderParameterResult

#: Most halvings of the secondary wave vectors' content where the steered search misses
#: (:meth:`OrderParameterSearch._shrink_kvectors`).
_KSHRINK_HALVINGS = 2
#: Largest search cell (sites) for which :meth:`OrderParameterSearch._kvector_cut` builds its dense site projector
#: and phase table (n x n and n x |det M|: 32 MB at 2,000 sites); larger searches skip the wave-vector steering.
_KCUT_MAX_SITES = 2000

#: Decoded-displacement error (RMS error / RMS target displacement) above which a search counts as failed. Converged
#: searches of the examples end below 5 %; a search whose irreps cannot describe the distortion ends near 100 %.
FIT_FAILED_ERROR = 0.2

#: Graphs with at least this many edges run on all of torch's threads when ``SearchConfig.threads`` is ``"auto"``
#: (smaller ones on one: a second thread costs more than it gains there). ``benchmarks/bench_threads.py``, 2-core
#: machine, two runs (loaded / quiet): 2 threads ran 0.95x / 1.03x as fast as 1 at 1,216 edges, 1.09x / 0.98x at
#: 2,432, 1.2x / 1.5x at 4,864, 1.42x / 1.63x at 19,456.
AUTO_THREADS_EDGES = 4000

__all__ = [
    "FIT_FAILED_ERROR",
    "OrderParameterSearch",
    "Problem",
    "SearchConfig",
    "curie_check",
    "prepare_problem",
    "search_arguments",
]


@dataclass(frozen=True)
class SearchConfig:
    """Optimisation settings.

    Attributes:
        signal_lmax: largest L of the displacement signals the network predicts.
        cutoff: neighbour cutoff in Å (default: 1.25 x the largest nearest-neighbour distance).
        network: network sizes (default: :meth:`NetworkConfig.for_output` of the signal irreps).
        dtype: ``"float32"`` (fast) or ``"float64"``.
        seed: seed of the network's initial weights.
        model_lr: Adam learning rate of the network.
        op_lr: step size of the order-parameter proximal gradient step.
        op_norm: largest RMS of the order parameter over its sites (None: no cap).
        fit_steps: step budget of the Curie fit (order parameter at zero).
        max_steps: step budget of each order-parameter phase (each growth stage, the penalised search, a prune).
        search_steps: step budget of the penalised search. Kept short on purpose: with a finite network, an order
            parameter that breaks more symmetry than the target needs can fit slightly better (Curie's principle
            allows an output more symmetric than the input), so a long search drifts towards over-broken solutions.
            The polish that follows refits the network with the order parameter frozen.
        polish_steps: step budget of the final network fit with frozen order parameters.
        precision_steps: step budget of the last phase, run in float64 whatever ``dtype`` is: network and order
            parameter together, unpenalised, with small steps (``precision_lr`` x the usual ones), keeping exact
            zeros. float32 gradients leave the order parameter slightly less symmetric than the target (β -> α
            quartz: predicted sites 2.8e-4 Å from the target's group, C2 instead of P3_121 at symprec 1e-5 and
            1e-4); 10 such steps took it to 1.5e-7 Å and P3_121 at every symprec from 1e-5 to 1e-1 (20 steps: the
            same). Kept short because each float64 step costs about two float32 steps: 100 of them made ``matsym
            find`` on the Pnma example 1.2x slower. It stops at ``converged_loss`` like any phase.
        precision_lr: step-size factor of the float64 phase.
        patience: steps without relative improvement ``rel_tol`` that count as a plateau.
        rel_tol: relative improvement that resets the plateau counter.
        decay: factor applied to both step sizes at each plateau.
        max_decays: plateaus after which a phase ends.
        stage_loss: loss ratio at which the growth stops unlocking higher L.
        span_steps: order-parameter steps at the start of each growth stage whose gradients span the subspace the
            order parameter is then restricted to (0 disables; see ``OrderParameter.lock_span_``). They run in
            float64 whatever ``dtype`` is, so that float32 rounding does not enter the span.
        span_tol: relative singular value below which a recorded gradient direction counts as rounding noise.
        search_loss: loss ratio at which the penalised search stops (the polish refines the fit further).
        prune_share: components below this share of the order parameter's squared norm are tried
            at zero after the search (backward elimination).
        prune_tolerance: a cut is kept if the loss ends at most this factor above the loss before it ...
        prune_loss: ... or below this loss ratio.
        prune_kvectors: steer the order parameter to as few wave vectors as the data allow: where it carries at
            least ``prune_share`` on secondary ones (coupled to two others it carries, ``k1 + k2 + k3 = 0``, with
            clearly less content in the target's displacements: the X-point content that in-phase (M) and
            anti-phase (R) tilts induce), grow and search again with those projected out of the span, and keep that
            result if its fit is as good as a kept prune's, else halve the secondary content of the first result
            while the fit stays as good (:mod:`matsym.kvectors`, ``OrderParameterSearch._steer_kvectors``,
            ``_shrink_kvectors``). Needs a periodic search cell larger than the parent's
            primitive cell, of at most 2,000 sites; costs a second growth and search only where it applies.
        converged_loss: loss ratio below which a phase stops early.
        pace_window: steps over which a phase that must reach a loss (a growth stage: ``stage_loss``; a prune: the
            loss it must end below to be kept) measures its pace. From ``2 x pace_window`` steps on, the phase ends
            when the best loss's log-rate of decrease over the last ``pace_window`` steps, held for twice the rest of
            the budget, would still not reach that loss. 0 disables. The margin of two is measured: growth stages
            can sit on a plateau and then drop (the order parameter grows exponentially from zero), and a prune
            kept on the 20-atom a+b-b- cell would have been cut by a margin of one. On the 1,280-atom antiphase
            pair (320-site search cell) the unreachable L = 0 and L = 1 stages ended after 74 and 87 steps instead
            of 300 each, and ``matsym find`` took 17.7 s instead of 31.1 s with the same fit (displacement error
            1.6 % against 1.7 %, Pm).
        compatible_error: decoded-displacement error ratio up to which the Curie check calls the data compatible.
        nothing_tol: largest target displacement (Å) that still counts as "no distortion".
        threads: torch threads during the search. 1 (default) gives the same result on every machine and is
            steady on shared ones: a search's float32 sums depend on the thread count (a 320-site search ended
            198 steps at loss 0.14360 on 1 thread, 0.14199 on 2), and a 2-thread search that met other work on a
            2-core machine took 210 s instead of 18 s. ``"auto"`` runs graphs of at least
            :data:`AUTO_THREADS_EDGES` edges on torch's own thread count (``OMP_NUM_THREADS`` where set, else the
            cores), smaller ones on 1: 1.5x faster at 320 sites, 1.6x at 1,280 on a quiet 2-core machine
            (``benchmarks/bench_threads.py``). An integer fixes the count; None leaves torch's setting.
            Subnormal floats are flushed to zero during the search too (see ``OrderParameterSearch.runtime``).
        device: torch device of the network and its inputs (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...). Results
            and saved weights are always returned on the CPU.
        ltol: registration: largest principal strain of the target cell against the parent supercell.
        angle_tol: registration: largest change of an angle between two directions by that strain, degrees.
        graph_backend: neighbour library of the graph (:func:`matsym.graph.build_graph`): ``"auto"``, ``"vesin"``,
            ``"pymatgen"`` or ``"torch-cluster"`` (the ``cluster`` extra); all give the same graph.
        strain_weight: relative weight ``w`` of the target's strain against its displacements: a strain ``eps``
            counts like a displacement of ``|eps| * ell`` on every site, ``ell = (V/N)^(1/3)`` (see
            :mod:`matsym.strain`).
        reduce_cell: search a target that repeats with a smaller period than its cell on its smallest repeating
            cell and map the result back (:mod:`matsym.reduction`); applies when sites are chosen by species (or
            all) and ``tie`` is ``"none"`` or ``"all"``.
        reduce_tol: translation tolerance (Å) of that reduction.
    """

    signal_lmax: int = 3
    cutoff: float | None = None
    network: NetworkConfig | None = None
    dtype: str = "float32"
    seed: int = 0
    model_lr: float = 0.03
    op_lr: float = 0.1
    op_norm: float | None = None
    fit_steps: int = 300
    max_steps: int = 300
    search_steps: int = 100
    polish_steps: int = 30
    precision_steps: int = 10
    precision_lr: float = 0.03
    patience: int = 15
    rel_tol: float = 1e-3
    decay: float = 0.3
    max_decays: int = 3
    stage_loss: float = 3e-3
    span_steps: int = 10
    span_tol: float = 1e-4
    search_loss: float = 1e-5
    prune_share: float = 0.02
    prune_tolerance: float = 2.0
    prune_loss: float = 1e-4
    prune_kvectors: bool = True
    converged_loss: float = 1e-6
    pace_window: int = 30
    compatible_error: float = 0.05
    nothing_tol: float = 1e-4
    threads: int | str | None = 1
    device: str = "cpu"
    ltol: float = 0.2
    angle_tol: float = 20.0
    graph_backend: str = "auto"
    strain_weight: float = 1.0
    reduce_cell: bool = True
    reduce_tol: float = 1e-3

    def as_dict(self) -> dict:
        d = asdict(self)
        d["network"] = None if self.network is None else self.network.as_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SearchConfig:
        d = dict(d)
        if d.get("network") is not None:
            d["network"] = NetworkConfig.from_dict(d["network"])
        return cls(**d)


@dataclass
class Problem:
    """Parent and target on one cell, with the graph and the fixed inputs of the network."""

    parent: object  # Structure | Molecule, search cell
    target: object  # same sites, displaced, strain removed
    displacements: np.ndarray  # [n, 3]
    graph: object
    species: list[str]
    frac_coords: np.ndarray | None
    registration: dict = field(default_factory=dict)
    strain: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))  # [3, 3] symmetric, parent's frame
    notes: list = field(default_factory=list)  # what was done with the inputs' site properties


def _default_cutoff(structure, backend: str = "auto") -> float:
    from matsym.graph import build_graph

    # grow a trial cutoff until every atom has a neighbour, then take 1.25 x the largest nearest distance
    trial = 2.0
    for _ in range(12):
        try:
            graph = build_graph(structure, trial, backend=backend)
        except InputError:  # an unknown or missing backend: no cutoff helps
            raise
        except Exception:
            trial *= 1.5
            continue
        nearest = np.full(graph.num_nodes, np.inf)
        np.minimum.at(nearest, graph.edge_dst, graph.edge_length)
        if np.isfinite(nearest).all():
            return float(1.25 * nearest.max())
        trial *= 1.5
    raise SearchError("could not find a cutoff that gives every atom a neighbour")


def prepare_problem(
    parent, target, *, cutoff: float | None = None, graph_backend: str = "auto", **registration_options
) -> Problem:
    """Load, register and graph a parent/target pair.

    Periodic structures are registered (:func:`matsym.registration.register`): any cells, settings, origins and
    strain; ``registration_options`` (``ltol``, ``angle_tol``, ...) go to it. Finite point clouds must list the same
    species in the same order; their mean displacement (a rigid translation) is removed.
    """
    from pymatgen.core import Molecule

    from matsym.graph import build_graph
    from matsym.io import load_structure
    from matsym.site_properties import plain_site_properties

    p, notes = plain_site_properties(load_structure(parent), "parent")
    t, target_notes = plain_site_properties(load_structure(target), "target")
    notes += target_notes
    if isinstance(p, Molecule) != isinstance(t, Molecule):
        raise SearchError("parent and target must both be periodic crystals or both finite point clouds")
    if isinstance(p, Molecule):
        if [s.species_string for s in p] != [s.species_string for s in t]:
            raise SearchError(
                f"finite point clouds must have the same species in the same order: parent "
                f"{[s.species_string for s in p]}, target {[s.species_string for s in t]}"
            )
        disp = np.asarray(t.cart_coords) - np.asarray(p.cart_coords)
        disp -= disp.mean(axis=0)
        registration = {}
        frac = None
        parent_cell = p
        strain = np.zeros((3, 3))
    else:
        from matsym.registration import register

        reg = register(p, t, **registration_options)
        parent_cell = reg.parent
        disp = np.asarray(reg.displacements, dtype=np.float64)
        registration = reg.as_dict() if hasattr(reg, "as_dict") else {}
        frac = np.asarray(parent_cell.frac_coords)
        strain = np.asarray(reg.strain, dtype=np.float64)
    target_cell = parent_cell.copy()
    if isinstance(target_cell, Molecule):
        target_cell = Molecule([s.species_string for s in parent_cell], np.asarray(parent_cell.cart_coords) + disp)
    else:
        for i in range(len(target_cell)):
            target_cell.translate_sites([i], disp[i], frac_coords=False, to_unit_cell=False)
    cutoff = _default_cutoff(parent_cell, graph_backend) if cutoff is None else float(cutoff)
    graph = build_graph(parent_cell, cutoff, backend=graph_backend)
    return Problem(
        parent=parent_cell,
        target=target_cell,
        displacements=disp,
        graph=graph,
        species=[s.species_string for s in parent_cell],
        frac_coords=frac,
        registration=registration,
        strain=0.5 * (strain + strain.T),
        notes=notes,
    )


def _device(name) -> torch.device:
    """The torch device of a search, checked: a clear error for a malformed name or a device this machine lacks."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise SearchError(f"device: expected a torch device such as 'cpu' or 'cuda:0', got {name!r} ({exc})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SearchError(
            f"device {name!r}: this torch build or machine has no CUDA device (torch {torch.__version__})"
        )
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise SearchError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    if device.type not in ("cpu", "cuda"):
        raise SearchError(f"device {name!r}: matsym runs on 'cpu' or 'cuda' devices")
    return device


@contextlib.contextmanager
def _runtime(threads: int | None):
    """Torch threads set to ``threads`` (None: left as they are) and subnormal floats flushed to zero, for a search.

    The search's small radial and species products produce subnormal numbers (below 1.2e-38 in float32), on which
    x86 CPUs compute 10-100x slower: one float32 matrix product with a few of them in its operand took 530 us
    instead of 36 us. Flushing them to zero changes nothing above that scale. PyTorch offers no way to read the
    flag back, so on exit it is set to PyTorch's default (off). It applies to the calling thread, which runs the
    whole search when ``threads`` is 1.
    """
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    flushed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if flushed:
            torch.set_flush_denormal(False)
        torch.set_num_threads(old)


class _Plateau:
    """Counts steps since the loss last improved by a relative ``rel_tol``."""

    def __init__(self, patience: int, rel_tol: float) -> None:
        self.patience, self.rel_tol = patience, rel_tol
        self.best = math.inf
        self.since = 0

    def update(self, loss: float) -> bool:
        if loss < self.best * (1 - self.rel_tol):
            self.best = loss
            self.since = 0
        else:
            self.since += 1
        return self.since >= self.patience


class _Pace:
    """Whether a phase can still reach ``goal`` at the pace of its last ``window`` steps, held for ``margin`` times
    the steps it has left (``SearchConfig.pace_window``).

    It is asked after the step, where the plateau test is, so that a phase both would end does end at the same
    step; and never with fewer than ``2 x window`` steps left: a cut that saves little is not worth a different
    trajectory (a stage cut 5 steps before its end left monoclinic HfO2 in a generic frame P-1 at symprec 1e-3).
    """

    margin = 2.0

    def __init__(self, window: int, goal: float | None) -> None:
        self.window, self.goal = window, goal
        self.best: list[float] = []

    def hopeless(self, loss: float, remaining: int) -> bool:
        if self.goal is None or self.window <= 0:
            return False
        self.best.append(min(loss, self.best[-1]) if self.best else loss)
        if len(self.best) < 2 * self.window or remaining < 2 * self.window or self.best[-1] <= self.goal:
            return False  # too early to judge, too little left to gain, or there
        then, now = self.best[-1 - self.window], self.best[-1]
        if not (now > 0 and then > now):
            return True
        rate = math.log(then / now) / self.window
        return math.log(now / self.goal) > self.margin * rate * remaining


class OrderParameterSearch:
    """Find the order parameter that maps a parent onto a less symmetric target.

    Args:
        parent: parent structure (``Structure``, ``Atoms``, ``Molecule``, array of points, or a file path).
        target: target structure, same kinds; any cell, setting and origin for crystals.
        sites: sites that carry an order parameter: species (``"Ti"``), list of species or indices; None = all.
        irreps: candidate irreps (e3nn string); default L = 0..4, both parities.
        tie: ``"none"``, ``"all"``, groups of indices, or ``{"translation": [fa, fb, fc]}``.
        mask: components forced to zero (see :func:`matsym.order_parameter.parse_mask`).
        sparsity: L1 weight on every component.
        l_penalty: extra L1 weight per unit of L.
        seed: seed of the network's initial weights.
        config: :class:`SearchConfig`; keyword overrides of its fields are accepted too.

    Example:
        >>> search = OrderParameterSearch(parent, target, sites="Ti", irreps="1e+1o+2e+2o")
        >>> result = search.run(progress=True)
        >>> print(result.summary())
    """

    def __init__(
        self,
        parent,
        target,
        *,
        sites=None,
        irreps: str = DEFAULT_IRREPS,
        tie="none",
        mask=None,
        sparsity: float = 1e-2,
        l_penalty: float = 1e-2,
        seed: int = 0,
        config: SearchConfig | None = None,
        **overrides,
    ) -> None:
        config = config if config is not None else SearchConfig()
        unknown = set(overrides) - set(SearchConfig.__dataclass_fields__)
        if unknown:
            raise SearchError(
                f"unknown search settings {sorted(unknown)}; valid: {sorted(SearchConfig.__dataclass_fields__)}"
            )
        self.config = replace(config, seed=seed, **overrides)
        check_search_arguments(self.config, irreps=irreps, sites=sites, tie=tie, sparsity=sparsity, l_penalty=l_penalty)
        if self.config.dtype not in ("float32", "float64"):
            raise SearchError(f"dtype: expected 'float32' or 'float64', got {self.config.dtype!r}")
        if self.config.signal_lmax < 1:
            raise SearchError(f"signal_lmax must be >= 1, got {self.config.signal_lmax}")
        threads = self.config.threads
        plain = threads is None or threads == "auto"
        if not plain and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise SearchError(f"threads: expected a positive integer, 'auto' or None, got {threads!r}")
        self.device = _device(self.config.device)
        self.spec = OrderParameterSpec(
            irreps=irreps, sites=sites, tie=tie, mask=mask, sparsity=sparsity, l_penalty=l_penalty
        )
        self.reduction = _reduce(parent, target, sites, tie, self.config)
        self.problem = None
        problem_options = {
            "cutoff": self.config.cutoff,
            "graph_backend": self.config.graph_backend,
            "ltol": self.config.ltol,
            "angle_tol": self.config.angle_tol,
        }
        if self.reduction is not None:
            try:
                red = self.reduction
                self.problem = prepare_problem(red.parent.cell, red.target.cell, **problem_options)
            except RegistrationError:  # the small cells do not register: the user's cells decide
                self.reduction = None
        if self.problem is None:
            self.problem = prepare_problem(parent, target, **problem_options)
        self._input_was_atoms = _is_atoms(parent)
        self._callback = None
        self._pruned_kvectors: list = []
        self._translations: tuple | None = None  # (CellTranslations or None,), found when first needed
        self._steering = False
        self.order_parameter = OrderParameter(
            self.problem.species, self.spec, self.problem.frac_coords, norm=self.config.op_norm
        ).to(self.device)
        self.dtype = torch.float32 if self.config.dtype == "float32" else torch.float64
        self._build_network()

    # ------------------------------------------------------------------ set-up
    def _build_network(self) -> None:
        from matsym.signals import encode, signal_irreps

        cfg = self.config
        irreps_out = signal_irreps(cfg.signal_lmax)
        kinds = sorted(set(self.problem.species))
        n = len(self.problem.species)
        onehot = np.zeros((n, len(kinds) + 1))
        onehot[np.arange(n), [kinds.index(s) for s in self.problem.species]] = 1.0
        onehot[:, -1] = 1.0  # the constant scalar
        self.fixed_features = torch.as_tensor(onehot, dtype=self.dtype, device=self.device)
        irreps_in = f"{len(kinds) + 1}x0e+{self.order_parameter.irreps}"
        torch.manual_seed(cfg.seed)
        self.network = EquivariantNetwork(irreps_in, irreps_out, cfg.network, num_species=len(kinds), dtype=self.dtype)
        self.network.to(self.device)
        self.node_attr = onehot[:, :-1]
        self._geometry64 = None  # float64 copy, built by _in_float64 when first needed
        self.geometry = EdgeGeometry.from_graph(
            self.problem.graph, self.network.config, dtype=self.dtype, device=self.device, node_attr=self.node_attr
        )
        disp = torch.tensor(self.problem.displacements, dtype=torch.float64)
        # the network learns displacements in units of their RMS, so that its output starts at the right scale
        rms = float(disp.pow(2).sum(dim=1).mean().sqrt())
        self.length_scale = rms if rms > 0 else 1.0
        # ... and signals in units of their RMS coefficient, so that the loss is relative and starts near 1
        signal = encode(disp / self.length_scale, cfg.signal_lmax)  # [n, (lmax+1)^2]
        ms = float(signal.pow(2).mean())
        self.signal_scale = math.sqrt(ms) if ms > 0 else 1.0
        self.target_signal = (signal / self.signal_scale).to(dtype=self.dtype, device=self.device)
        self.target_scale = 1.0
        self.strain_term = None
        if self._strain_counts():
            self._add_strain_head(rms)

    def _strain_counts(self) -> bool:
        """Whether the registered strain exceeds ``nothing_tol`` as a displacement (``ell * max|eps|``, Å)."""
        from matsym.strain import StrainTerm

        if not hasattr(self.problem.parent, "lattice") or self.config.strain_weight <= 0:
            return False
        ell = StrainTerm.spacing_of(self.problem.parent)
        return ell * float(np.abs(self.problem.strain).max()) > self.config.nothing_tol

    def _add_strain_head(self, rms: float) -> None:
        """Make the strain part of the target (:mod:`matsym.strain`): a head beside the network, one loss unit.

        The head is registered as a submodule of the network so that Adam, the float64 switch, prune's snapshots and
        saved weights include it; the network's own forward never calls it. Signals are rescaled so that signal and
        strain losses share one length unit ``sqrt(D^2 + w ell^2 |eps|^2)``.
        """
        from matsym.signals import encode
        from matsym.strain import StrainHead, StrainTerm

        cfg = self.config
        term = StrainTerm(self.problem.strain, StrainTerm.spacing_of(self.problem.parent), rms, cfg.strain_weight)
        if rms == 0:  # no displacement: signals in the units of a unit displacement, target zero
            unit = encode(torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64), cfg.signal_lmax)
            self.signal_scale = math.sqrt(float(unit.pow(2).mean()))
        self.target_signal = self.target_signal * (rms / term.scale)
        self.length_scale = term.scale
        torch.manual_seed(cfg.seed + 1)
        head = StrainHead(self.network.irreps_in, self.geometry)
        self.network.strain_head = head.to(dtype=self.dtype, device=self.device)
        self.strain_term = term

    def _features(self) -> torch.Tensor:
        return torch.cat([self.fixed_features, self.order_parameter.features(self.dtype)], dim=1)

    def _loss(self, radial=None) -> torch.Tensor:
        x = self._features()
        pred = self.network(x, self.geometry, radial)
        loss = torch.nn.functional.mse_loss(pred, self.target_signal)  # one operation each way
        if self.strain_term is not None:
            loss = loss + self.strain_term.loss(self.network.strain_head(x))
        return loss if self.target_scale == 1.0 else loss / self.target_scale

    def _optimizer(self, lr: float) -> Adam:
        """Adam on the network's parameters (:class:`matsym._adam.Adam`: torch's update, without importing
        ``torch._dynamo`` as ``torch.optim`` does)."""
        return Adam(self.network.parameters(), lr=lr)

    # ------------------------------------------------------------------ phases
    def _optimise(
        self,
        steps: int,
        history: list,
        phase: str,
        *,
        train_op: bool,
        penalise: bool = True,
        decays: int | None = None,
        stop_loss: float | None = None,
        goal: float | None = None,
        lr_scale: float = 1.0,
        bar=None,
    ) -> None:
        """Adam on the network (and proximal steps on the order parameter when ``train_op``).

        Both step sizes shrink by ``decay`` whenever the objective stops improving for ``patience`` steps; the phase
        ends after ``max_decays`` such shrinks, when the loss falls below ``converged_loss``, or after ``steps``.
        Shrinking removes the jitter that constant-step Adam keeps at a minimum, and lets the order parameter
        settle, so the state the phase ends in is as good as the best loss it recorded. A phase with a ``goal`` (a
        loss it must reach to count) also ends when its pace says it cannot reach it (``SearchConfig.pace_window``).
        """
        cfg = self.config
        op = self.order_parameter
        opt = self._optimizer(cfg.model_lr * lr_scale)
        op_lr = cfg.op_lr * lr_scale
        plateau = _Plateau(cfg.patience, cfg.rel_tol)
        pace = _Pace(cfg.pace_window, goal)
        max_decays = cfg.max_decays if decays is None else decays
        decays = 0
        op.theta.requires_grad_(train_op)
        try:
            for step in range(steps):
                opt.zero_grad(set_to_none=True)
                op.theta.grad = None
                loss = self._loss()
                loss.backward()
                loss_value = loss.item()
                penalty = op.penalty().item() if train_op else 0.0
                history.append({"step": len(history), "phase": phase, "loss": loss_value, "penalty": penalty})
                if self._callback is not None:
                    self._callback(self, history[-1])
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(f"{phase} loss {loss_value:.2e}", refresh=False)
                if loss_value < (cfg.converged_loss if stop_loss is None else stop_loss):
                    break
                opt.step()
                if train_op:
                    op.proximal_step(op_lr, penalise=penalise)
                if pace.hopeless(loss_value, steps - step - 1):
                    break
                if plateau.update(loss_value):
                    if decays >= max_decays:
                        break
                    decays += 1
                    op_lr *= cfg.decay
                    for group in opt.param_groups:
                        group["lr"] *= cfg.decay
                    plateau = _Plateau(cfg.patience, cfg.rel_tol)
        finally:
            op.theta.requires_grad_(True)

    def _grow(self, history: list, bar=None, prefix: str = "") -> None:
        """Let the order parameter grow, unlocking candidate irreps in order of increasing L.

        At each stage only components with L <= k may be nonzero (the penalty that grows with L, taken to its
        steep limit); growth is unpenalised, because at zero an L1 penalty larger than the data gradient would hold
        the order parameter there. The data gradient itself carries the symmetry of the residual (paper Eqs. 8-10),
        so components of the wrong symmetry are not pushed. The first stage whose loss reaches ``stage_loss`` ends
        the growth; its network and order parameter are the warm start of the penalised search. A stage that cannot
        reach ``stage_loss`` ends early by its pace (``SearchConfig.pace_window``), except in the growth of the
        wave-vector steering (``_steering``): its result must pass a prune's test, and a+b-b- steered passed it only
        after the full stage (k-search loss 8.6e-5 against 8.3e-4 after a stage cut at 108 steps).
        """
        cfg = self.config
        op = self.order_parameter
        allowed = np.diag(op.base_projector) > 0
        levels = sorted({int(l) for l in op.component_l[allowed]})
        for k in levels:
            op.limit_l_(k)

            def grow(steps: int, k: int = k) -> None:
                self._optimise(
                    steps, history, f"{prefix}grow-L{k}", train_op=True, penalise=False, decays=0,
                    stop_loss=cfg.stage_loss, goal=None if self._steering else cfg.stage_loss, bar=bar,
                )  # fmt: skip

            if cfg.span_steps > 0:
                # the first steps of each stage record the gradients whose span the order parameter is locked to
                op.start_recording()
                with self._in_float64():
                    grow(cfg.span_steps)
                op.lock_span_(cfg.span_tol)
                if self._steering:  # keep the span off the secondary wave vectors (see _steer_kvectors)
                    kcut = self._kvector_cut(must_pay=False)
                    if kcut is not None:
                        op.restrict_groups_(kcut[0], cfg.span_tol)
                        self._pruned_kvectors = sorted({*map(tuple, self._pruned_kvectors), *map(tuple, kcut[1])})
            grow(cfg.max_steps)
            if self._current_loss() <= cfg.stage_loss:
                break

    @contextlib.contextmanager
    def _in_float64(self):
        """Run the enclosed steps in float64 (network, geometry, inputs and target), then return to the search's
        dtype. Used where rounding noise would be locked in for good (the gradients whose span confines the order
        parameter, see :meth:`_grow`) and for the final prediction."""
        if self.dtype == torch.float64:
            yield
            return
        saved = self.dtype, self.geometry, self.fixed_features, self.target_signal
        if self._geometry64 is None:  # built once; its dense operators are cached on it
            graph, config = self.problem.graph, self.network.config
            self._geometry64 = EdgeGeometry.from_graph(
                graph, config, dtype=torch.float64, device=self.device, node_attr=self.node_attr
            )
        self.network.to(torch.float64)
        self.dtype, self.geometry = torch.float64, self._geometry64
        self.fixed_features, self.target_signal = self.fixed_features.double(), self.target_signal.double()
        try:
            yield
        finally:
            self.dtype, self.geometry, self.fixed_features, self.target_signal = saved
            self.network.to(self.dtype)

    def _nothing_to_find(self) -> bool:
        still = float(np.abs(self.problem.displacements).max(initial=0.0)) <= self.config.nothing_tol
        return still and self.strain_term is None

    @torch.no_grad()
    def _current_loss(self) -> float:
        return self._loss().item()

    def _sparsify(self, history: list, phase: str, bar=None, goal: float | None = None) -> None:
        """Penalised joint search (network and order parameter), within the search budget."""
        cfg = self.config
        self._optimise(
            min(cfg.max_steps, cfg.search_steps), history, phase, train_op=True, stop_loss=cfg.search_loss,
            goal=goal, bar=bar,
        )  # fmt: skip

    def _prune(self, history: list, bar=None) -> None:
        """Backward elimination: zero the weakest irrep blocks, refit, keep the cut if the fit survives.

        The L1 penalty ranks components; the data decide. Irrep blocks (one copy of an irrep, all its components)
        whose share of the squared norm is below ``prune_share`` are forced to zero and the search continues; if the
        loss then ends above ``max(prune_tolerance * loss_before, converged_prune_loss)``, everything is restored.
        Whole blocks, because a block's norm does not depend on the frame and its components do: cutting single
        weak components broke the target's symmetry in frames whose axes are not the crystal's (monoclinic HfO2 on
        a fluorite parent as a CIF reader orients it: largest deviation from P2_1/c 7.3e-5 Å with component cuts,
        1.5e-5 Å with block cuts; ``examples/fluorite_monoclinic.py``).
        """
        cfg = self.config
        op = self.order_parameter
        shares = op.component_shares()
        blocks = op.blocks()
        block_shares = np.array([shares[b].sum() for b in blocks])
        weak_blocks = np.flatnonzero((block_shares > 0) & (block_shares < cfg.prune_share))
        if len(weak_blocks) == 0:
            return
        weak = np.concatenate([blocks[k] for k in weak_blocks])
        before = self._current_loss()
        saved = {k: v.clone() for k, v in self.network.state_dict().items()}
        saved_theta, saved_projector = op.theta.detach().clone(), op.projector.clone()
        op.restrict_(weak)
        op.renormalise_()
        accept = max(cfg.prune_tolerance * before, cfg.prune_loss)
        self._sparsify(history, "prune", bar, goal=accept)
        after = self._current_loss()
        if after > accept:
            self.network.load_state_dict(saved)
            with torch.no_grad():
                op.theta.copy_(saved_theta)
                op.projector.copy_(saved_projector)
            history.append({"step": len(history), "phase": "prune-reverted", "loss": before, "penalty": 0.0})

    def _steer_kvectors(self, history: list, fit_state: dict, bar=None) -> None:
        """Search again with the order parameter kept off its secondary wave vectors, if it carries them.

        Where the order parameter found carries at least ``prune_share`` of its squared norm on secondary wave
        vectors (:meth:`_kvector_cut`), the growth and the penalised search are run again from the Curie fit's
        network, with those wave vectors projected out of the span at every lock. Cutting them from the finished
        order parameter and refitting does not work: a network that has learned to read the secondary content
        from its input does not learn to form it from the primary ones within a prune's budget (a+b-b-, 1e on Ti:
        the refit stalled at loss 1e-3, the displacements' X share, for 300 steps), while one grown without it from
        the start does (final loss 2e-5). The result is kept only if its loss ends at most ``prune_tolerance``
        times the first search's (or below ``prune_loss``), as for a prune; otherwise the first is restored and its
        secondary content halved while the fit allows (:meth:`_shrink_kvectors`). Where
        the search ends above that, the network is refitted first (``polish_steps``, order parameter frozen, phase
        ``k-polish``): the order parameter moves until the search's last step (a+a+c- with tilts 6, 6, 7 degrees:
        2.0e-4 at the end of the search, 8.6e-5 after the refit, against max(2 x 3.0e-5, 1e-4)).
        """
        cfg = self.config
        op = self.order_parameter
        cut = self._kvector_cut(must_pay=True)
        if cut is None:
            return
        before = self._current_loss()
        saved = {k: v.clone() for k, v in self.network.state_dict().items()}
        saved_theta, saved_projector, saved_span = op.theta.detach().clone(), op.projector.clone(), op.span
        self.network.load_state_dict(fit_state)
        with torch.no_grad():
            op.theta.zero_()
        op.span = None
        self._steering = True
        try:
            self._grow(history, bar, prefix="k-")
            self._sparsify(history, "k-search", bar)
        finally:
            self._steering = False
        accept = max(cfg.prune_tolerance * before, cfg.prune_loss)
        if self._current_loss() > accept:
            # the order parameter moved until the search's last step; the network has not caught up with it yet
            self._optimise(cfg.polish_steps, history, "k-polish", train_op=False, lr_scale=cfg.decay, bar=bar)
        if self._current_loss() > accept:
            self.network.load_state_dict(saved)
            with torch.no_grad():
                op.theta.copy_(saved_theta)
                op.projector.copy_(saved_projector)
            op.span = saved_span
            self._pruned_kvectors = []
            history.append({"step": len(history), "phase": "k-reverted", "loss": before, "penalty": 0.0})
            self._shrink_kvectors(history, cut[0], accept, bar)

    def _shrink_kvectors(self, history: list, q: np.ndarray, accept: float, bar=None) -> None:
        """Where the steered search misses, halve the first result's secondary content while the fit survives.

        The network uses the secondary content of its input as a marker more than as an amount: a+b+c- (tilts 5,
        6, 7 degrees), whose steered search stalls at loss 2.3e-3 without it, refits to 3.9e-5 (first search
        4.6e-5) with it scaled by 0.46 and to 1.1e-4 by 0.3, the network alone refitted (300 steps), against 7.9e-3
        without it. So the secondary part ``(1 - Q) theta`` is halved, the network refitted (``max_steps``, order
        parameter frozen, phase ``k-shrink``), and the halving kept if the loss passes the prune test ``accept``; at
        most ``_KSHRINK_HALVINGS`` times (a+b+c-: X5- 0.166 -> 0.012, final loss 5.4e-5 against 1.8e-5, 630 more
        steps; a third halving refitted to 1.8e-6 but the float64 polish then ended at 2.4e-4; with seed 2 the two
        halvings are kept too, X5- 0.285 -> 0.024, but the float64 polish ends at 4.8e-3 against 2.8e-4 unhalved:
        its order-parameter steps move the small secondary part, which the network now amplifies). The span is kept: the
        secondary part lies in it (a+b+c-: to 0.7 % of its norm), so it holds the halved order parameter.
        """
        cfg = self.config
        op = self.order_parameter
        q = torch.as_tensor(np.asarray(q), dtype=op.theta.dtype, device=op.theta.device)
        for _ in range(_KSHRINK_HALVINGS):
            saved = {k: v.clone() for k, v in self.network.state_dict().items()}
            saved_theta = op.theta.detach().clone()
            with torch.no_grad():
                primary = q @ op.theta
                op.theta.copy_(primary + 0.5 * (op.theta - primary))
            self._optimise(cfg.max_steps, history, "k-shrink", train_op=False, lr_scale=cfg.decay, bar=bar)
            if self._current_loss() > accept:
                self.network.load_state_dict(saved)
                with torch.no_grad():
                    op.theta.copy_(saved_theta)
                loss = self._current_loss()
                history.append({"step": len(history), "phase": "k-shrink-reverted", "loss": loss, "penalty": 0.0})
                return

    def _cell_translations(self):
        """The search cell's parent translations (:func:`matsym.kvectors.cell_translations`), found once.

        :meth:`run` finds them before it enters :meth:`runtime`: with subnormal floats flushed to zero, scipy's
        ``cKDTree`` (the translation tests of :mod:`matsym.periodicity`) crashed the interpreter with a segmentation
        fault on the 320-site antiphase search cell.
        """
        if self._translations is None:
            from matsym.kvectors import cell_translations

            self._translations = (cell_translations(self.problem.parent, self.config.reduce_tol),)
        return self._translations[0]

    def _kvector_cut(self, *, must_pay: bool):
        """The order parameter's secondary wave vectors, to be cut: ``(Q, k-vectors)`` or None.

        The order parameter is analysed over the parent lattice translations of the search cell
        (:mod:`matsym.kvectors`, translation tests on the search cell's parent; None for finite point clouds or a
        cell that is the parent's own). A wave-vector pair is secondary if it couples with two other pairs
        that the order parameter carries (``k1 + k2 + k3 = 0``) and the target's displacements have clearly less
        content there than at both (they decide, not the order parameter: the unsteered search left as much X as
        M content in a+b-c-, while the displacements' X content is second order in the tilt angles). The network
        forms the product of the other two from its input. ``Q`` is the projector over the order parameter's
        groups onto fields without those pairs (its span, where it is locked). With ``must_pay`` (the cut costs a
        search of its own) the cut pairs must carry at least ``prune_share`` of the order parameter as it is now.
        """
        cfg = self.config
        op = self.order_parameter
        if not cfg.prune_kvectors or len(self.problem.species) > _KCUT_MAX_SITES:
            return None
        cells = self._cell_translations()
        if cells is None:
            return None
        sites = np.zeros((len(self.problem.species), op.num_groups))
        sites[op.sites, op.groups] = 1.0
        op_shares = cells.shares(op.standard().detach().cpu().numpy())
        # the pairs the order parameter may carry: those of its span (all of it, not just today's value)
        if op.span is None:
            allowed = op_shares > 0
        else:
            rows = op.span.detach().cpu().numpy().reshape(len(op.span), op.num_groups, op.dim)
            allowed = cells.shares(np.einsum("ng,sgd->nsd", sites, rows)) > 1e-8
        data_shares = np.where(allowed, cells.shares(self.problem.displacements), 0.0)
        from matsym.kvectors import coupled_weakest

        cut = coupled_weakest(data_shares, cells.pair_kvectors())
        if not cut or (must_pay and float(op_shares[cut].sum()) < cfg.prune_share):
            return None
        _, sv, vt = np.linalg.svd(cells.projector(cut) @ sites)
        rank = int((sv > 1e-9 * max(float(sv[0]), 1.0)).sum()) if len(sv) else 0
        null = vt[rank:].T
        if null.shape[1] == 0:
            return None
        return null @ null.T, np.round(cells.pair_kvectors()[cut] @ cells.reciprocal, 6).tolist()

    # ------------------------------------------------------------------ public
    def curie(self, *, progress: bool = False) -> CurieReport:
        """Fit with the order parameter at zero and report whether the target is reachable."""
        history: list = []
        if self._nothing_to_find():
            return self._curie_report(history)
        with self.runtime(), _progress(progress, self.config.fit_steps, "curie") as bar:
            self._optimise(self.config.fit_steps, history, "fit", train_op=False, decays=1, bar=bar)
        report = self._curie_report(history)
        return report if self.reduction is None else self.reduction.expand_curie(report)

    def _curie_report(self, history) -> CurieReport:
        if self._nothing_to_find():
            return CurieReport(
                True, 0.0, 0.0, (), "compatible: the target equals the parent; there is nothing to find."
            )
        _, decoded = self._predict()
        err = self._fit_error(decoded.vectors, self._predict_strain())
        loss = history[-1]["loss"] if history else float("nan")
        degenerate = tuple(int(i) for i in np.flatnonzero(decoded.degenerate))
        compatible = err <= self.config.compatible_error
        if compatible:
            verdict = (
                f"compatible: the network reaches the target without an order parameter (decoded displacements "
                f"{'and strain ' if self.strain_term is not None else ''}within {100 * err:.2g}% RMS)."
            )
        else:
            verdict = (
                "incompatible: the input is more symmetric than the target, so by Curie's principle no equivariant "
                f"model can reach it (decoded-displacement{' and strain' if self.strain_term is not None else ''} "
                f"error {100 * err:.0f}% RMS"
                + (
                    f"; {len(degenerate)} site(s) with degenerate signals, e.g. {list(degenerate[:6])}"
                    if degenerate
                    else ""
                )
                + "). A symmetry-breaking order parameter is missing."
            )
        return CurieReport(compatible, float(loss), float(err), degenerate, verdict)

    @torch.no_grad()
    def _predict(self):
        from matsym.signals import decode

        with self._in_float64():
            pred = self.network(self._features(), self.geometry).detach().cpu().numpy()
        decoded = decode(pred * (self.length_scale * self.signal_scale), self.config.signal_lmax)
        return pred, decoded

    @torch.no_grad()
    def _predict_strain(self) -> np.ndarray | None:
        """Predicted strain (parent's Cartesian frame, float64 evaluation), or None without a strain target."""
        if self.strain_term is None:
            return None
        with self._in_float64():
            z = self.network.strain_head(self._features())
        return self.strain_term.to_strain(z)

    def _fit_error(self, vectors: np.ndarray, strain: np.ndarray | None) -> float:
        """RMS error of the decoded displacements (and of the strain, as a displacement) / RMS of the target."""
        if self.strain_term is None:
            return _error_ratio(vectors, self.problem.displacements)
        disp_sq = float(((vectors - self.problem.displacements) ** 2).sum(axis=1).mean())
        return math.sqrt(disp_sq + self.strain_term.error_sq(strain)) / self.strain_term.scale

    def predicted_signals(self) -> np.ndarray:
        """Predicted spherical signal of every site (e3nn basis, in Å, like :func:`matsym.signals.encode`).

        Returns:
            [n, (signal_lmax + 1)^2] array; decode it with :func:`matsym.signals.decode`.
        """
        pred, _ = self._predict()
        pred = np.asarray(pred) * (self.length_scale * self.signal_scale)
        return pred if self.reduction is None else self.reduction.expand_sites(pred)

    def runtime(self):
        """Context manager with the search's runtime settings: ``config.threads`` torch threads, subnormals flushed.

        :meth:`run` and :meth:`curie` enter it; enter it yourself to time or drive single steps as
        the search does.
        """
        return _runtime(self.threads)

    @property
    def threads(self) -> int | None:
        """Torch threads of this search: ``config.threads``, with ``"auto"`` resolved by the size of the graph
        (1 below :data:`AUTO_THREADS_EDGES` edges, else torch's own thread count, which follows
        ``OMP_NUM_THREADS`` where it is set)."""
        threads = self.config.threads
        if threads != "auto":
            return threads
        return 1 if self.problem.graph.num_edges < AUTO_THREADS_EDGES else max(1, torch.get_num_threads())

    def run(self, *, progress: bool = False, callback=None) -> OrderParameterResult:
        """Run the Curie fit, the joint search and the polish; return an :class:`OrderParameterResult`.

        Args:
            progress: show a tqdm progress bar on stderr.
            callback: called as ``callback(search, record)`` after every step, ``record`` being the new entry of
                the loss history (``step``, ``phase``, ``loss``, ``penalty``); e.g. to snapshot
                ``search.order_parameter.standard()`` during the search (the paper's Fig. 2).
        """
        self._callback = callback
        cfg = self.config
        start = time.perf_counter()
        history: list = []
        if self._nothing_to_find():
            return self._result(history, self._curie_report(history), start, nothing=True)
        total = cfg.fit_steps + cfg.max_steps + cfg.polish_steps
        if cfg.prune_kvectors and len(self.problem.species) <= _KCUT_MAX_SITES:
            self._cell_translations()  # before runtime() flushes subnormals (see _cell_translations)
        with self.runtime(), _progress(progress, total, "search") as bar:
            self._optimise(cfg.fit_steps, history, "fit", train_op=False, decays=1, bar=bar)
            curie = self._curie_report(history)
            if not curie.compatible:
                fit_state = {k: v.clone() for k, v in self.network.state_dict().items()} if cfg.prune_kvectors else {}
                self._grow(history, bar)
                self._sparsify(history, "search", bar)
                if cfg.prune_kvectors:
                    self._steer_kvectors(history, fit_state, bar)
                self._prune(history, bar)
                # a fresh Adam at full step size would first kick the converged network: start smaller
                self._optimise(cfg.polish_steps, history, "polish", train_op=False, lr_scale=cfg.decay, bar=bar)
                self._polish_float64(history, bar)
        return self._result(history, curie, start)

    def _polish_float64(self, history: list, bar=None) -> None:
        """Last steps in float64 (see ``SearchConfig.precision_steps``).

        Unpenalised steps may lift exact zeros to rounding level (1e-10 of the largest component was seen); those are
        set back to zero. Zeros are not simply restored: a component the soft threshold cut on one site but not on
        its symmetry-equivalent is one the float64 steps must be free to grow.
        """
        cfg = self.config
        if cfg.precision_steps <= 0:
            return
        op = self.order_parameter
        with self._in_float64():
            self._optimise(
                cfg.precision_steps, history, "polish64", train_op=True, penalise=False, lr_scale=cfg.precision_lr,
                bar=bar,
            )  # fmt: skip
        with torch.no_grad():
            theta = op.theta
            theta.masked_fill_(theta.abs() <= 1e-8 * float(theta.abs().max()), 0.0)

    def _result(self, history, curie, start, *, nothing: bool = False) -> OrderParameterResult:
        op = self.order_parameter
        standard = op.standard().detach().cpu().numpy().copy()
        names = [str(ir) for mul, ir in op.irreps for _ in range(mul)]
        weights = np.stack([(standard[:, b] ** 2).sum(axis=1) for b in op.blocks()], axis=1)
        pred, decoded = self._predict()
        vectors = np.zeros_like(self.problem.displacements) if nothing else decoded.vectors
        predicted = _displaced(self.problem.parent, vectors)
        loss = float(((pred - self.target_signal.double().cpu().numpy()) ** 2).mean())
        strain = self._predict_strain()
        term = self.strain_term
        if term is not None:
            from matsym.strain import strained

            loss += term.error_sq(strain) / term.scale**2
            predicted = strained(predicted, strain)
        disp_error = _error_ratio(vectors, self.problem.displacements)
        if term is not None and not np.isfinite(disp_error):  # strain only: relative to the strain's size
            disp_error = float(np.sqrt((vectors**2).sum(axis=1).mean())) / term.scale
        metrics = {
            "loss_ratio": loss / self.target_scale,
            "displacement_error_ratio": disp_error,
            "rms_target_displacement": float(np.sqrt((self.problem.displacements**2).sum(1).mean())),
            "steps": len(history),
            "seconds": time.perf_counter() - start,
            "registration_seconds": float((self.problem.registration or {}).get("timings", {}).get("seconds", 0.0)),
            "num_parameters": self.network.num_parameters,
            "num_edges": int(self.problem.graph.num_edges),
            "cutoff": float(self.problem.graph.cutoff),
        }
        if self._pruned_kvectors:
            metrics["pruned_kvectors"] = [list(k) for k in self._pruned_kvectors]  # Cartesian, 1/Å (no 2 pi)
        if term is not None:
            metrics.update(
                {
                    "strain_share": term.share,
                    "strain_error_ratio": term.error(strain),
                    "fit_error_ratio": self._fit_error(vectors, strain),
                    "strain_weight": term.weight,
                    "strain_spacing": term.spacing,
                }
            )
        # a fit that misses the target is an outcome of its own (CLI exit status 3), not a result to trust
        fitted = nothing or (curie is not None and curie.compatible)
        error = metrics.get("fit_error_ratio", metrics["displacement_error_ratio"])  # with the strain where fitted
        metrics["fit_failed"] = bool(not fitted and not error <= FIT_FAILED_ERROR)
        metrics["fit_failed_above"] = FIT_FAILED_ERROR
        settings = {
            "spec": self.spec.as_dict(),
            "config": self.config.as_dict(),
            "network": self.network.config.as_dict(),
            "irreps_in": str(self.network.irreps_in),
            "irreps_out": str(self.network.irreps_out),
        }
        from matsym.modes import attach_modes  # reporting after the search, like the spglib verification

        # modes on the search cell: the same distortion as on the user's repeated cell, at a fraction of the cost
        result = attach_modes(OrderParameterResult(
            parent=self.problem.parent,
            target=self.problem.target,
            predicted_structure=predicted,
            irreps=str(op.irreps),
            components=tuple(op.labels),
            irrep_names=tuple(names),
            sites=np.asarray(op.sites),
            groups=np.asarray(op.groups),
            order_parameter=standard,
            irrep_weights=weights,
            predicted_displacements=vectors,
            target_displacements=self.problem.displacements.copy(),
            degenerate=np.asarray(decoded.degenerate, dtype=bool),
            loss_history=tuple(history),
            metrics=metrics,
            curie=curie,
            settings=settings,
            registration=dict(self.problem.registration),
            nothing_to_find=nothing,
            predicted_strain=strain,
            target_strain=None if term is None else term.strain.copy(),
            notes=tuple(self.problem.notes),
        ))
        return result if self.reduction is None else self.reduction.expand_result(result)

    def save_weights(self, path) -> None:
        """Save the network weights with safetensors (no pickle)."""
        from safetensors.torch import save_file

        # copies: the optimiser keeps the parameters as views of one flat tensor, and safetensors refuses shared memory
        state = {k: v.detach().cpu().clone() for k, v in self.network.state_dict().items()}
        state["order_parameter.theta"] = self.order_parameter.theta.detach().cpu().clone()
        save_file(state, str(path))

    def load_weights(self, path) -> None:
        """Load weights written by :meth:`save_weights` (safetensors: reading executes no code)."""
        from safetensors.torch import load

        from matsym.safejson import read_regular_file

        data = read_regular_file(path, what="weights")  # a regular file of bounded size
        try:
            state = load(data)
        except Exception as exc:  # safetensors raises its own SafetensorError for a malformed header
            reason = " ".join(str(exc).split())
            raise ResultError(f"cannot read weights {path}: not a safetensors file ({reason})") from None
        theta = state.pop("order_parameter.theta", None)
        if theta is None or tuple(theta.shape) != tuple(self.order_parameter.theta.shape):
            shape = None if theta is None else list(theta.shape)
            raise ResultError(
                f"cannot load weights {path}: expected order_parameter.theta of shape "
                f"{list(self.order_parameter.theta.shape)}, got {shape} (weights of another search?)"
            )
        try:
            self.network.load_state_dict(state)
        except (RuntimeError, ValueError, TypeError) as exc:
            first = str(exc).strip().splitlines()
            raise ResultError(
                f"cannot load weights {path}: they do not fit this search's network ({first[0] if first else exc})"
            ) from None
        with torch.no_grad():
            self.order_parameter.theta.copy_(theta)


def search_arguments(sites, irreps, tie, mask, search_kwargs: dict | None) -> dict:
    """Keyword arguments of :class:`OrderParameterSearch` from stored (JSON-friendly) settings.

    ``irreps=None`` keeps the search's default; a ``config`` given as a dict becomes a :class:`SearchConfig`.
    """
    kwargs = {"sites": sites, "tie": tie, "mask": mask}
    if irreps is not None:
        kwargs["irreps"] = irreps
    extra = dict(search_kwargs or {})
    if isinstance(extra.get("config"), dict):
        extra["config"] = SearchConfig.from_dict(extra["config"])
    return {**kwargs, **extra}


def curie_check(parent, target, **kwargs) -> CurieReport:
    """Curie compatibility of a parent/target pair: can an equivariant network map one onto the other?"""
    return OrderParameterSearch(parent, target, **kwargs).curie()


# ---------------------------------------------------------------------- helpers
def _error_ratio(pred: np.ndarray, target: np.ndarray) -> float:
    rms_t = float(np.sqrt((target**2).sum(axis=1).mean()))
    rms_e = float(np.sqrt(((pred - target) ** 2).sum(axis=1).mean()))
    return rms_e / rms_t if rms_t > 0 else (0.0 if rms_e == 0 else math.inf)


def _displaced(structure, vectors: np.ndarray):
    from pymatgen.core import Molecule

    if isinstance(structure, Molecule):
        return Molecule([s.species_string for s in structure], np.asarray(structure.cart_coords) + vectors)
    out = structure.copy()
    for i in range(len(out)):
        out.translate_sites([i], vectors[i], frac_coords=False, to_unit_cell=True)
    return out


def _reduce(parent, target, sites, tie, config: SearchConfig):
    """The pair on the target's smallest repeating cell (:mod:`matsym.reduction`), or None.

    Only where the settings mean the same on the small cell: sites chosen by species (or all), no tie or one tie.
    """
    by_species = (
        sites is None
        or isinstance(sites, str)
        or (isinstance(sites, list | tuple) and all(isinstance(s, str) for s in sites))
    )
    if not (config.reduce_cell and by_species and isinstance(tie, str) and tie in ("none", "all")):
        return None
    from matsym.reduction import reduce_pair

    return reduce_pair(parent, target, tol=config.reduce_tol)


def _is_atoms(obj) -> bool:
    return type(obj).__name__ == "Atoms" and type(obj).__module__.startswith("ase")


@contextlib.contextmanager
def _progress(enabled: bool, total: int, desc: str):
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="step", leave=False)
    try:
        yield bar
    finally:
        bar.close()

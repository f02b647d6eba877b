"""Learnable per-site order parameters with site-equivalence constraints.

An order parameter is a per-site input feature in candidate irreps (e.g. ``1e`` pseudovectors for octahedral
tilts, ``1o`` vectors for polar distortions, ``2e`` for Jahn-Teller), learned by gradient descent together with
the network. It lives in the standard real spherical-harmonic basis with z polar (the basis users read, and the one
in which sparsity is meaningful: see ``DESIGN.md``), and is converted to e3nn's basis only when fed to the network.

Constraints:
    * ``sites``: which sites carry an order parameter (species, indices, or all); the others get zeros.
    * ``tie``: sites that must share one order parameter: ``"none"``, ``"all"``, explicit groups of indices, or a
      lattice translation (fractional) mapping tied sites onto each other.
    * ``mask``: components forced to zero: a whole irrep (``"1e"``), one standard component (``"2e m=2"``), or the
      part of an L=1 irrep along a Cartesian direction (``("1e", (0, 0, 1))`` or ``"1e@0,0,1"``).
    * penalties: a soft-threshold (proximal L1) step with per-component weight ``sparsity + l_penalty * L``; L=0 is
      weighted too, because a uniform scalar breaks nothing and so should cost something.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from matsym.basis import component_labels, irreps_change_of_basis
from matsym.errors import SearchError
from matsym.model import parse_irreps

__all__ = [
    "DEFAULT_IRREPS",
    "OrderParameter",
    "OrderParameterSpec",
    "parse_mask",
    "resolve_sites",
    "resolve_tie",
]

DEFAULT_IRREPS = "+".join(f"1x{l}{p}" for l in range(5) for p in "eo")


def resolve_sites(species: Sequence[str], sites) -> np.ndarray:
    """Indices of the sites that carry an order parameter.

    Args:
        species: element symbol of every site, in the user's order.
        sites: ``None`` or ``"all"`` for every site; an element symbol (``"Ti"``) or a list of symbols; a list of
            integer indices.

    Raises:
        SearchError: unknown species, index out of range, duplicates, or no site selected.
    """
    n = len(species)
    if sites is None or (isinstance(sites, str) and sites.lower() == "all"):
        return np.arange(n)
    if isinstance(sites, str):
        sites = [s.strip() for s in sites.split(",") if s.strip()]
    sites = list(sites)
    if not sites:
        raise SearchError("sites: expected a species, a list of species or of indices, got an empty list")
    if all(isinstance(s, str) and not s.lstrip("-").isdigit() for s in sites):
        unknown = sorted(set(sites) - set(species))
        if unknown:
            raise SearchError(f"sites: species {unknown} not in the structure, which has {sorted(set(species))}")
        return np.array([i for i, sp in enumerate(species) if sp in set(sites)], dtype=np.int64)
    try:
        idx = np.array([int(s) for s in sites], dtype=np.int64)
    except (TypeError, ValueError):
        raise SearchError(f"sites: expected species symbols or integer indices, got {sites!r}") from None
    if (idx < 0).any() or (idx >= n).any():
        raise SearchError(f"sites: indices must lie in 0..{n - 1}, got {idx.tolist()}")
    if len(set(idx.tolist())) != len(idx):
        raise SearchError(f"sites: duplicate indices in {idx.tolist()}")
    return np.sort(idx)


def _translation_groups(frac_coords: np.ndarray, species: Sequence[str], sites: np.ndarray, t, tol: float):
    t = np.asarray(t, dtype=np.float64)
    if t.shape != (3,) or not np.isfinite(t).all():
        raise SearchError(f"tie translation: expected 3 fractional coordinates, got {t.tolist()}")
    parent = {int(i): int(i) for i in sites}

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    site_set = set(parent)
    for i in sites:
        moved = frac_coords[i] + t
        diff = frac_coords - moved
        diff -= np.round(diff)
        hits = np.flatnonzero((np.abs(diff) < tol).all(axis=1))
        hits = [int(j) for j in hits if species[j] == species[i]]
        if not hits:
            raise SearchError(
                f"tie translation {t.tolist()} maps site {i} ({species[i]}) onto no site of the same species "
                f"(tolerance {tol} in fractional coordinates): it is not a translation of this structure"
            )
        j = hits[0]
        if j not in site_set:
            raise SearchError(
                f"tie translation {t.tolist()} maps order-parameter site {i} onto site {j} ({species[j]}), "
                "which carries no order parameter"
            )
        parent[find(i)] = find(j)
    return [find(int(i)) for i in sites]


def resolve_tie(tie, sites: np.ndarray, species: Sequence[str], frac_coords=None, *, tol: float = 1e-3):
    """Group index (0..n_groups-1) of every order-parameter site.

    Args:
        tie: ``"none"`` (each site its own), ``"all"`` (one global order parameter), a list of groups of site
            indices (sites not listed stay alone), or ``{"translation": [fa, fb, fc]}`` / ``"translation:fa,fb,fc"``
            (fractional lattice translation under which tied sites map onto each other).
        sites: indices of the order-parameter sites.
        species: element symbol of every site.
        frac_coords: fractional coordinates of every site (needed for translations).

    Returns:
        int array, one group label per entry of ``sites``.
    """
    sites = np.asarray(sites, dtype=np.int64)
    if tie is None or (isinstance(tie, str) and tie.lower() == "none"):
        return np.arange(len(sites))
    if isinstance(tie, str) and tie.lower() == "all":
        return np.zeros(len(sites), dtype=np.int64)
    if isinstance(tie, str) and tie.lower().startswith("translation"):
        try:
            tie = {"translation": [float(v) for v in tie.split(":", 1)[1].split(",")]}
        except (IndexError, ValueError):
            raise SearchError(f"tie: expected 'translation:fa,fb,fc', got {tie!r}") from None
    if isinstance(tie, dict):
        if set(tie) != {"translation"}:
            raise SearchError(f"tie: a dict must be {{'translation': [fa, fb, fc]}}, got keys {sorted(tie)}")
        if frac_coords is None:
            raise SearchError("tie by translation needs a periodic structure (fractional coordinates)")
        labels = _translation_groups(np.asarray(frac_coords), species, sites, tie["translation"], tol)
    elif isinstance(tie, str):
        raise SearchError(f"tie: expected 'none', 'all', 'translation:fa,fb,fc' or groups of indices, got {tie!r}")
    else:
        try:
            groups = [[int(i) for i in g] for g in tie]
        except (TypeError, ValueError):
            raise SearchError(f"tie: expected groups of site indices, got {tie!r}") from None
        position = {int(s): k for k, s in enumerate(sites)}
        labels = list(range(len(sites)))
        seen: set[int] = set()
        for g in groups:
            for i in g:
                if i not in position:
                    raise SearchError(
                        f"tie: site {i} is in a group but carries no order parameter (sites {sites.tolist()})"
                    )
                if i in seen:
                    raise SearchError(f"tie: site {i} appears in more than one group")
                seen.add(i)
            for i in g:
                labels[position[i]] = position[g[0]]
        labels = [int(sites[label]) for label in labels]
    _, inverse = np.unique(np.asarray(labels), return_inverse=True)
    return inverse.astype(np.int64)


_COMPONENT = re.compile(r"^\s*(\d+[eo])\s*m\s*=\s*([+-]?\d+)\s*$")


def parse_mask(mask, irreps) -> np.ndarray:
    """Projector (standard basis) that removes the masked components of one site's order parameter.

    Args:
        mask: ``None``; or one item or a list of items, each ``"1e"`` (every copy of that irrep),
            ``"2e m=2"`` (one standard component), ``("1e", (x, y, z))`` or ``"1e@x,y,z"`` (the part of an L=1
            irrep along a Cartesian direction).
        irreps: candidate irreps of the order parameter.

    Returns:
        symmetric projector ``P`` [dim, dim]; an allowed order parameter ``x`` satisfies ``x @ P == x``.
    """
    irreps = parse_irreps(irreps, "order-parameter irreps")
    dim = irreps.dim
    keep = np.eye(dim)
    if mask is None:
        return keep
    items = [mask] if isinstance(mask, (str, tuple)) or _is_direction_item(mask) else list(mask)
    # JSON turns ("1e", (0, 0, 1)) into ["1e", [0, 0, 1]]: read such pairs back as (irrep, direction)
    items = [tuple(item) if _is_direction_item(item) else item for item in items]
    slices = []
    offset = 0
    for mul, ir in irreps:
        for _ in range(mul):
            slices.append((str(ir), ir.l, slice(offset, offset + ir.dim)))
            offset += ir.dim
    removed = []
    for item in items:
        direction = None
        if isinstance(item, tuple):
            if len(item) != 2:
                raise SearchError(f"mask: expected (irrep, direction), got {item!r}")
            name, direction = item
        elif isinstance(item, str) and "@" in item:
            name, _, vec = item.partition("@")
            try:
                direction = [float(v) for v in vec.split(",")]
            except ValueError:
                raise SearchError(f"mask: expected 'irrep@x,y,z', got {item!r}") from None
        elif isinstance(item, str):
            name = item
        else:
            raise SearchError(f"mask: expected a string or (irrep, direction) tuple, got {item!r}")
        name = name.strip()
        match = _COMPONENT.match(name)
        if match:
            ir_name, m = match.group(1), int(match.group(2))
            hits = [(l, s) for n, l, s in slices if n == ir_name]
            if not hits or abs(m) > hits[0][0]:
                raise SearchError(f"mask: no component {name!r} among the candidate irreps {irreps}")
            for l, s in hits:
                removed.append(np.eye(dim)[s.start + l + m])
            continue
        hits = [(l, s) for n, l, s in slices if n == name]
        if not hits:
            raise SearchError(f"mask: irrep {name!r} is not among the candidate irreps {irreps}")
        if direction is None:
            for _, s in hits:
                removed.extend(np.eye(dim)[s])
            continue
        d = np.asarray(direction, dtype=np.float64)
        if d.shape != (3,) or not np.isfinite(d).all() or np.linalg.norm(d) == 0:
            raise SearchError(f"mask: direction must be a nonzero 3-vector, got {direction!r}")
        if hits[0][0] != 1:
            raise SearchError(f"mask: a direction applies to L=1 irreps only, got {name!r}")
        d = d / np.linalg.norm(d)
        for _, s in hits:
            v = np.zeros(dim)
            v[s] = [d[1], d[2], d[0]]  # standard L=1 order: m=-1 (y), m=0 (z), m=1 (x)
            removed.append(v)
    if removed:
        basis = np.linalg.qr(np.array(removed).T)[0]
        keep = keep - basis @ basis.T
    return keep


def _is_direction_item(item) -> bool:
    return (
        isinstance(item, (list, tuple))
        and len(item) == 2
        and isinstance(item[0], str)
        and isinstance(item[1], (list, tuple, np.ndarray))
    )


@dataclass(frozen=True)
class OrderParameterSpec:
    """What the user asks for; serialisable.

    Attributes:
        irreps: candidate irreps (e3nn string).
        sites: species, indices, or None for all.
        tie: see :func:`resolve_tie`.
        mask: see :func:`parse_mask`.
        sparsity: L1 weight on every component.
        l_penalty: extra L1 weight per unit of L.
    """

    irreps: str = DEFAULT_IRREPS
    sites: object = None
    tie: object = "none"
    mask: object = None
    sparsity: float = 1e-2
    l_penalty: float = 1e-2

    def as_dict(self) -> dict:
        def plain(v):
            if isinstance(v, np.ndarray):
                return v.tolist()
            if isinstance(v, (list, tuple)):
                return [plain(x) for x in v]
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            return v

        return {k: plain(getattr(self, k)) for k in ("irreps", "sites", "tie", "mask", "sparsity", "l_penalty")}


class OrderParameter(torch.nn.Module):
    """The learnable order-parameter field of one structure.

    Args:
        species: element symbol of every site.
        spec: what to learn (:class:`OrderParameterSpec`).
        frac_coords: fractional coordinates (needed to tie by translation).
        norm: largest RMS (over order-parameter sites) of the order parameter, or None.
            The network can absorb any overall scale of its input, so only the direction of the order parameter is
            meaningful; capping its size gives the L1 penalty real teeth (once at the cap, it trades components
            against each other instead of shrinking all of them while the network's weights grow to compensate).
    """

    def __init__(
        self, species: Sequence[str], spec: OrderParameterSpec, frac_coords=None, *, norm: float | None = 1.0
    ) -> None:
        super().__init__()
        self.spec = spec
        self.norm = norm
        self.irreps = parse_irreps(spec.irreps, "order-parameter irreps")
        if self.irreps.dim == 0:
            raise SearchError("order-parameter irreps are empty")
        if spec.sparsity < 0 or spec.l_penalty < 0:
            raise SearchError(f"penalties must be >= 0, got sparsity={spec.sparsity}, l_penalty={spec.l_penalty}")
        self.num_nodes = len(species)
        self.sites = resolve_sites(species, spec.sites)
        self.groups = resolve_tie(spec.tie, self.sites, species, frac_coords)
        self.num_groups = int(self.groups.max()) + 1
        self.labels = component_labels(self.irreps)
        projector = parse_mask(spec.mask, self.irreps)
        ls = np.concatenate([[ir.l] * ir.dim for mul, ir in self.irreps for _ in range(mul)])
        weights = spec.sparsity + spec.l_penalty * ls
        cob = irreps_change_of_basis(self.irreps)  # standard = cob @ e3nn
        self.register_buffer("projector", torch.as_tensor(np.array(projector)))
        self.base_projector = np.array(projector)  # the user's mask; stages and pruning restrict it further
        self.component_l = ls.astype(np.int64)
        self.register_buffer("to_e3nn", torch.as_tensor(np.array(cob)))  # row vectors: e3nn = standard @ cob
        self.register_buffer("penalty_weights", torch.as_tensor(weights, dtype=torch.float64))
        self.register_buffer("site_index", torch.as_tensor(self.sites))
        self.register_buffer("group_index", torch.as_tensor(self.groups))
        # a group's penalty counts once per site it covers, divided like the data loss by the number of sites
        share = np.bincount(self.groups, minlength=self.num_groups) / self.num_nodes
        self.register_buffer("group_share", torch.as_tensor(share, dtype=torch.float64)[:, None])
        self._share_total = float(np.sum(share))
        self.theta = torch.nn.Parameter(torch.zeros(self.num_groups, self.irreps.dim, dtype=torch.float64))
        self.recording: list[torch.Tensor] | None = None
        self.span: torch.Tensor | None = None  # [k, num_groups * dim] orthonormal rows, or None (no restriction)

    @property
    def dim(self) -> int:
        return self.irreps.dim

    def standard(self) -> torch.Tensor:
        """Order parameter of every site, standard basis, zeros where no order parameter.  # [n, dim]"""
        out = self.theta.new_zeros(self.num_nodes, self.dim)
        return out.index_copy(0, self.site_index, self.theta[self.group_index])

    def features(self, dtype: torch.dtype) -> torch.Tensor:
        """Order parameter of every site in e3nn's basis, as network input.  # [n, dim]"""
        return (self.standard() @ self.to_e3nn).to(dtype)

    def penalty(self) -> torch.Tensor:
        """Value of the L1 penalty (reported; minimised by :meth:`proximal_step`)."""
        return (self.theta.abs() * self.penalty_weights * self.group_share).sum()

    def component_shares(self) -> np.ndarray:
        """Share of the squared norm of the order parameter carried by each standard component, over all sites."""
        sq = (self.theta.detach() ** 2 * self.group_share).sum(dim=0).cpu().numpy()
        total = float(sq.sum())
        return sq / total if total > 0 else np.zeros_like(sq)

    def blocks(self) -> list[np.ndarray]:
        """Component indices of each irrep block (one block per copy of an irrep)."""
        out, offset = [], 0
        for mul, ir in self.irreps:
            for _ in range(mul):
                out.append(np.arange(offset, offset + ir.dim))
                offset += ir.dim
        return out

    @torch.no_grad()
    def restrict_(self, components) -> None:
        """Force more standard components to zero: the allowed subspace becomes its intersection with them = 0."""
        components = np.asarray(list(components), dtype=np.int64)
        if len(components) == 0:
            return
        self._restrict_from(self.projector.cpu().numpy(), components)

    @torch.no_grad()
    def limit_l_(self, lmax: int) -> None:
        """Allow only components with L <= lmax (within the user's mask); the others are set to zero."""
        self._restrict_from(self.base_projector, np.flatnonzero(self.component_l > lmax))

    def _restrict_from(self, p: np.ndarray, components: np.ndarray) -> None:
        rows = np.vstack([np.eye(self.dim) - p, np.eye(self.dim)[components]])
        _, sv, vt = np.linalg.svd(rows)
        rank = int((sv > 1e-9).sum())
        null = vt[rank:].T  # [dim, k] orthonormal basis of the allowed subspace
        projector = null @ null.T
        # exact zeros and ones where they belong, so that masked components stay exactly zero
        projector[np.abs(projector) < 1e-12] = 0.0
        projector[np.abs(projector - 1.0) < 1e-12] = 1.0
        self.projector.copy_(torch.as_tensor(projector))
        self.theta.copy_(self.theta @ self.projector)

    @torch.no_grad()
    def set_(self, values) -> None:
        """Set the group values (standard basis) and project them onto the allowed subspace."""
        self.theta.copy_(torch.as_tensor(values, dtype=torch.float64, device=self.projector.device) @ self.projector)

    @torch.no_grad()
    def proximal_step(self, lr: float, max_scale: float = 1.0, *, penalise: bool = True) -> float:
        """One proximal gradient step; returns the step size used.

        The data-loss gradient (preconditioned by each group's share of the sites, so that steps do not shrink with
        the cell size) is scaled so that the order parameter moves by at most ``lr`` (Euclidean norm over all
        groups), then soft-thresholded with weights ``step * penalty_weights``: unused components end at exactly
        zero, and the fixed point (data gradient balanced by the penalty) does not depend on the step size. The
        step is a global scalar, so it never favours one component over another: symmetry is preserved.
        """
        if self.theta.grad is None:
            return 0.0
        grad = self.theta.grad / self.group_share
        norm = float(grad.norm())
        if not math.isfinite(norm):
            raise FloatingPointError("non-finite order-parameter gradient")
        if self.recording is not None:
            self.recording.append((grad @ self.projector).reshape(-1).clone())
        step = min(lr / norm, max_scale * lr) if norm > 0 else max_scale * lr
        theta = torch.add(self.theta, grad, alpha=-step)
        if self.span is not None:
            theta = (self.span.T @ (self.span @ theta.reshape(-1))).reshape(theta.shape)
        # soft-thresholding last, so that unused components end at exactly zero:
        # sign(t) max(|t| - c, 0) = t - clamp(t, -c, c), exactly
        if penalise:
            threshold = step * self.penalty_weights
            theta = theta - torch.clamp(theta, min=-threshold, max=threshold)
        self.theta.copy_(theta @ self.projector)
        self.renormalise_()
        return step

    def start_recording(self) -> None:
        """Keep the (preconditioned, projected) gradients of the next proximal steps."""
        self.recording = []

    @torch.no_grad()
    def lock_span_(self, rel_tol: float = 1e-4) -> int:
        """Restrict the order parameter to the span of the gradients recorded since :meth:`start_recording`.

        Gradients of an invariant loss carry the symmetry of the residual (paper Eqs. 8-10): while the order
        parameter is small they are, to rounding, symmetric under every operation that the parent and the target
        share. Their span is therefore a subspace of the symmetry-allowed order parameters, learned without any
        symmetry table. Locking the order parameter into it stops the later optimisation from drifting into
        order parameters that break more symmetry than the target needs (a finite network can fit slightly better
        with them). Directions whose singular value is below ``rel_tol`` times the largest (rounding noise) are
        dropped. The span only grows: earlier directions are kept. Returns the dimension of the span.
        """
        rows = list(self.recording or [])
        self.recording = None
        if self.span is not None:
            rows.extend(self.span)
        if not rows:
            return 0 if self.span is None else int(self.span.shape[0])
        stacked = torch.stack([r / r.norm() if r.norm() > 0 else r for r in rows])
        _, sv, vt = torch.linalg.svd(stacked, full_matrices=False)
        if len(sv) == 0 or float(sv[0]) == 0.0:
            return 0 if self.span is None else int(self.span.shape[0])
        keep = sv > rel_tol * sv[0]
        self.span = vt[keep].clone()
        flat = self.theta.reshape(-1)
        self.theta.copy_((self.span.T @ (self.span @ flat)).reshape(self.theta.shape))
        return int(keep.sum())

    @torch.no_grad()
    def restrict_groups_(self, q: np.ndarray, rel_tol: float = 1e-4) -> None:
        """Restrict the order parameter to ``theta = Q theta``, for a symmetric projector ``Q`` over the groups.

        ``Q`` acts across sites (e.g. it keeps some wave vectors, :mod:`matsym.kvectors`) and so commutes with the
        per-site ``projector``. It is folded into the span: the span becomes the projection of the current span onto
        the range of ``Q`` (or that range, without a span), and the order parameter is projected onto it. Span
        directions that keep less than ``rel_tol`` of their length (rounding noise once projected) are dropped.
        """
        q = torch.as_tensor(np.asarray(q), dtype=self.theta.dtype, device=self.theta.device)
        g, d = self.theta.shape
        if self.span is None:
            rows = torch.kron(q, torch.eye(d, dtype=q.dtype, device=q.device))
        else:
            rows = torch.einsum("gh,shd->sgd", q, self.span.reshape(-1, g, d)).reshape(-1, g * d)
        _, sv, vt = torch.linalg.svd(rows, full_matrices=False)
        keep = sv > rel_tol
        self.span = vt[keep].clone()
        flat = self.theta.reshape(-1)
        self.theta.copy_((self.span.T @ (self.span @ flat)).reshape(g, d) @ self.projector)

    @torch.no_grad()
    def renormalise_(self) -> None:
        """Scale the order parameter down to RMS ``norm`` over its sites if it is larger (no-op for None)."""
        if self.norm is None:
            return
        ms = float((self.theta.square() * self.group_share).sum()) / self._share_total
        if ms > self.norm**2:
            self.theta.mul_(self.norm / ms**0.5)

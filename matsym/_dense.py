"""Dense evaluation of matsym's e3nn modules: the same parameters and the same function, far fewer operations.

e3nn evaluates a tensor product path by path, with a dozen small tensor operations per path and as many again in
the backward pass. On the small graphs of a search (tens of atoms) that per-operation overhead is nearly all of
the cost: about 20,000 operations per step for matsym's default network. Here every tensor product is rewritten
as a handful of dense operations:

- a tensor product with shared weights (e3nn's ``FullyConnectedTensorProduct``: the species-dependent linear
  maps and the node-wise squares) becomes one dense tensor ``T[i, j, k]`` built from the weights by a single
  ``index_add`` (fixed indices and Clebsch-Gordan coefficients computed once), then one matrix product;
- a convolution's tensor product with the edges' spherical harmonics becomes, per input irrep, one batched matrix
  product with a per-edge matrix ``G[e, m1, (path, m3)]`` that contracts the Clebsch-Gordan coefficients with the
  edge's spherical harmonics. ``G`` depends only on the geometry, so it is computed once per graph and cached on
  the :class:`~matsym.model.EdgeGeometry`; the per-edge radial weights are then applied by one gather and one
  product.

On the high-symmetry graphs a search starts from (a parent structure), two more savings apply, both exact up to
rounding: edges of one length share their radial weights, so messages are summed per (receiving node, length)
before they are weighted (:func:`edge_classes`); and edges of one direction share their operator ``G``, so each
group's products run as a few large matrix products, one per direction, instead of one tiny product per edge
(:func:`edge_directions`). Graphs without such repeats (a distorted parent) take the per-edge path.

The operators are read from the e3nn modules' own instructions (``path_weight`` and :func:`e3nn.o3.wigner_3j`),
and the tests compare both evaluations to 1e-12 in float64. The parameters stay in the e3nn modules, so saved
weights are unchanged.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from e3nn import o3

__all__ = ["DenseConvolution", "DenseGate", "DenseProduct", "edge_classes", "gate_input_map", "species_index"]

_ZERO = 1e-13  # |Clebsch-Gordan coefficient| below this counts as an exact zero


@functools.cache
def _wigner(l1: int, l2: int, l3: int) -> np.ndarray:
    """e3nn's Wigner 3j symbol in float64, read-only; memoised (a 40-atom search asks 192 times for 25 distinct
    ones while it builds its network and operators)."""
    w3j = o3.wigner_3j(l1, l2, l3, dtype=torch.float64).numpy()
    w3j.flags.writeable = False
    return w3j


def _shared_weight_operator(
    tp: o3.TensorProduct, row_map: np.ndarray | None = None, col_map: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices and coefficients with ``T.flat[tidx] += weight[widx] * coef`` for a shared-weight product.

    ``T`` has shape ``[dim_in1, dim_in2, dim_out]``; ``row_map`` / ``col_map`` renumber the ``in1`` / ``out``
    components (``new = map[old]``).
    """
    d2, d3 = tp.irreps_in2.dim, tp.irreps_out.dim
    s1, s2, s3 = tp.irreps_in1.slices(), tp.irreps_in2.slices(), tp.irreps_out.slices()
    tidx, widx, coef = [], [], []
    offset = 0
    for ins in tp.instructions:
        if ins.connection_mode != "uvw" or not ins.has_weight:
            raise NotImplementedError(f"dense evaluation needs weighted 'uvw' paths, got {ins.connection_mode!r}")
        mul1, ir1 = tp.irreps_in1[ins.i_in1]
        mul2, ir2 = tp.irreps_in2[ins.i_in2]
        mul3, ir3 = tp.irreps_out[ins.i_out]
        w3j = _wigner(ir1.l, ir2.l, ir3.l)
        i, j, k = np.nonzero(np.abs(w3j) > _ZERO)
        val = w3j[i, j, k] * ins.path_weight
        u, v, w = (a.ravel() for a in np.meshgrid(np.arange(mul1), np.arange(mul2), np.arange(mul3), indexing="ij"))
        weight = offset + (u * mul2 + v) * mul3 + w  # e3nn's row-major view of the path's weights
        rows = s1[ins.i_in1].start + u[:, None] * ir1.dim + i[None, :]
        cols = s2[ins.i_in2].start + v[:, None] * ir2.dim + j[None, :]
        outs = s3[ins.i_out].start + w[:, None] * ir3.dim + k[None, :]
        if row_map is not None:
            rows = row_map[rows]
        if col_map is not None:
            outs = col_map[outs]
        tidx.append(((rows * d2 + cols) * d3 + outs).ravel())
        widx.append(np.broadcast_to(weight[:, None], rows.shape).ravel())
        coef.append(np.broadcast_to(val[None, :], rows.shape).ravel())
        offset += mul1 * mul2 * mul3
    if offset != tp.weight_numel:
        raise AssertionError(f"weights counted {offset}, e3nn has {tp.weight_numel}")
    cat = np.concatenate
    return cat(tidx).astype(np.int64), cat(widx).astype(np.int64), cat(coef)


class DenseProduct(torch.nn.Module):
    """A shared-weight e3nn tensor product (``FullyConnectedTensorProduct``) evaluated densely.

    Several products with the same second input and output can be stacked along the first input (``tps`` a
    list): ``forward`` then takes their first inputs concatenated and returns the sum of their outputs, from one
    matrix product. ``species=True`` is for products with a one-hot species as second input (the species-dependent
    linear maps): ``forward(x, index)`` then picks each node's species with ``index`` from :func:`species_index`.
    ``row_maps`` (one per product, or None) and ``col_map`` renumber first-input and output components.
    ``square=True`` is for a product of a feature with itself (``forward(x, x)``): ``T[i, j] + T[j, i]`` is kept
    for ``i <= j`` only, and multiplies ``x[i] x[j]`` for those pairs (half the tensor and half the product).
    """

    def __init__(self, tps, *, species: bool = False, row_maps=None, col_map=None, square: bool = False) -> None:
        super().__init__()
        tps = list(tps) if isinstance(tps, (list, tuple)) else [tps]
        object.__setattr__(self, "tps", tps)  # not submodules: the weights stay where they are saved
        d2, d3 = tps[0].irreps_in2.dim, tps[0].irreps_out.dim
        if any(tp.irreps_in2.dim != d2 or tp.irreps_out.dim != d3 for tp in tps):
            raise ValueError("stacked products need the same second input and output")
        self.shape = (sum(tp.irreps_in1.dim for tp in tps), d2, d3)
        self.species = species
        row_maps = row_maps if row_maps is not None else [None] * len(tps)
        parts, rows, weights = [], 0, 0
        for tp, row_map in zip(tps, row_maps, strict=True):
            tidx, widx, coef = _shared_weight_operator(tp, row_map, col_map)
            parts.append((tidx + rows * d2 * d3, widx + weights, coef))
            rows += tp.irreps_in1.dim
            weights += tp.weight_numel
        tidx, widx, coef = (np.concatenate(column) for column in zip(*parts, strict=True))
        self.square = square
        if square:
            if species or len(tps) != 1 or tps[0].irreps_in1 != tps[0].irreps_in2:
                raise ValueError("a square product needs one product of a feature with itself")
            d1 = self.shape[0]
            first, second = np.triu_indices(d1)  # the pairs i <= j, row by row
            pair = np.full((d1, d1), -1, dtype=np.int64)
            pair[first, second] = np.arange(len(first))
            i, j, k = np.unravel_index(tidx, self.shape)
            tidx = pair[np.minimum(i, j), np.maximum(i, j)] * d3 + k
            self.shape = (len(first), 1, d3)
            self.register_buffer("first", torch.from_numpy(first.astype(np.int64)), persistent=False)
            self.register_buffer("second", torch.from_numpy(second.astype(np.int64)), persistent=False)
        self.register_buffer("tidx", torch.from_numpy(tidx), persistent=False)
        self.register_buffer("widx", torch.from_numpy(widx), persistent=False)
        self._coef64 = torch.from_numpy(coef)  # float64, not a buffer: casting the module leaves it exact
        self._coef: dict = {}

    def coef(self, like: torch.Tensor) -> torch.Tensor:
        key = (like.dtype, like.device)
        if key not in self._coef:
            self._coef[key] = self._coef64.to(dtype=like.dtype, device=like.device)
        return self._coef[key]

    def tensor(self) -> torch.Tensor:
        """The dense ``T[i, j, k]`` of the current weights."""
        weight = self.tps[0].weight if len(self.tps) == 1 else torch.cat([tp.weight for tp in self.tps])
        flat = weight.new_zeros(self.shape[0] * self.shape[1] * self.shape[2])
        flat.index_add_(0, self.tidx, weight.index_select(0, self.widx) * self.coef(weight))  # in place: no copy
        return flat.view(self.shape)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        d1, d2, d3 = self.shape
        t = self.tensor()
        if self.species:  # x2: flat index n * num_species + species(n)
            if d2 == 1:
                return x1 @ t.view(d1, d3)
            return (x1 @ t.view(d1, d2 * d3)).view(-1, d3).index_select(0, x2)
        if self.square:
            if x2 is not x1:
                raise ValueError("a square product multiplies a feature with itself: call it as forward(x, x)")
            return (x1.index_select(1, self.first) * x1.index_select(1, self.second)) @ t.view(d1, d3)
        outer = (x1.unsqueeze(2) * x2.unsqueeze(1)).reshape(x1.shape[0], d1 * d2)
        return outer @ t.view(d1 * d2, d3)


def species_index(geometry) -> torch.Tensor:
    """``n * num_species + species(n)`` per node (cached on the geometry), for :class:`DenseProduct`."""
    key = ("species_index",)
    cached = geometry.cache.get(key)
    if cached is None:
        attr = geometry.node_attr
        n = geometry.num_nodes
        if attr is None:
            cached = torch.arange(n, device=geometry.edge_src.device)
        else:
            cached = torch.arange(n, device=attr.device) * attr.shape[1] + attr.argmax(dim=1)
        geometry.cache[key] = cached
    return cached


CLASS_TOL = 1e-9  # edge_classes: radial-basis rows equal to this share their radial weights


def _equal_rows(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Group index of each row of ``t`` (rows equal to ``CLASS_TOL`` share one) and the size of each group."""
    quantised = torch.round(t.to(torch.float64) / CLASS_TOL).to(torch.int64)
    _, group, counts = torch.unique(quantised, dim=0, return_inverse=True, return_counts=True)
    return group, counts


def edge_classes(geometry) -> dict | None:
    """Edges grouped by their radial input, for :class:`DenseConvolution` (cached on the geometry).

    The radial weights of an edge depend only on its row of ``edge_radial`` (its length), and a high-symmetry
    parent has few distinct lengths. Messages arriving at node ``n`` from edges of one class share their weights,
    so they can be summed first and weighted once per (node, class) pair:
    ``sum_e w[r(e)] z[e] = sum_k w[r(k)] (sum_{e in k} z[e])``. Returns the classes (``rep``: one edge per class;
    ``key``: the (node, class) pair of each edge; ``node`` / ``cls``: the node and class of each pair), or None when
    the pairs are not fewer than half the edges (a low-symmetry graph), where weighting every edge is cheaper.

    Rows that agree to ``CLASS_TOL`` (the radial basis is of order 1) form a class, weighted with its first edge's
    row: symmetry-equivalent edges differ by rounding (~1e-16), which bitwise grouping would split (19 classes
    instead of 5 lengths in a 2x1x1 cubic perovskite at 4.5 A).
    """
    key = ("edge_classes",)
    if key in geometry.cache:
        return geometry.cache[key]
    radial, dst = geometry.edge_radial, geometry.edge_dst
    e = radial.shape[0]
    classes = None
    if e:
        r, counts = _equal_rows(radial)
        n_cls = len(counts)
        pairs, pair_of_edge = torch.unique(dst * n_cls + r, return_inverse=True)
        if 2 * len(pairs) <= e:
            first = torch.full((n_cls,), e, dtype=torch.long, device=radial.device)
            rep = first.scatter_reduce(0, r, torch.arange(e, device=radial.device), reduce="amin")
            classes = {"rep": rep, "key": pair_of_edge, "node": pairs // n_cls, "cls": pairs % n_cls}
    geometry.cache[key] = classes
    return classes


def edge_directions(geometry) -> dict | None:
    """Edges grouped by direction, for :class:`DenseConvolution` (cached on the geometry).

    An edge's operator ``G`` depends only on its direction (its spherical harmonics), and a high-symmetry parent
    has few: 26 in the 20-atom Pnma cell of a cubic perovskite (304 edges; 19,456 in its 4x4x4 supercell). Edges
    of one direction then share one operator: ``D`` products of many rows replace ``E`` products of a few, which
    BLAS runs far faster. Returns ``rep`` (one edge per direction), ``slots`` (``D * C`` entries: the edges of
    each direction, padded with -1 to the largest count ``C``) and ``D``, ``C``; or None when the directions are
    not few (fewer than 4 edges each on average) or padding would add more than half the edges. Directions
    agree to ``CLASS_TOL``, as in :func:`edge_classes`.
    """
    key = ("edge_directions",)
    if key in geometry.cache:
        return geometry.cache[key]
    sh = geometry.edge_sh
    e = sh.shape[0]
    found = None
    if e:
        d, counts = _equal_rows(sh)
        n_dir, per = len(counts), int(counts.max())
        if 4 * n_dir <= e and 2 * n_dir * per <= 3 * e:
            order = torch.argsort(d, stable=True)  # edges direction by direction
            starts = torch.cumsum(counts, 0) - counts
            rank = torch.arange(e, device=sh.device) - starts[d[order]]  # position within its direction
            slots = torch.full((n_dir * per,), -1, dtype=torch.long, device=sh.device)
            slots[d[order] * per + rank] = order
            found = {"rep": order[starts], "slots": slots, "D": n_dir, "C": per}
    geometry.cache[key] = found
    return found


def _batched_edges(geometry, classes: dict) -> dict | None:
    """Sources and (node, class) keys of :func:`edge_directions`' padded slots (padding: source 0, an extra key
    after the real ones, whose row is dropped). Cached on the geometry."""
    cache_key = ("batched_edges",)
    if cache_key in geometry.cache:
        return geometry.cache[cache_key]
    directions = edge_directions(geometry)
    batched = None
    if directions is not None:
        slots = directions["slots"]
        real = slots >= 0
        edge = torch.where(real, slots, torch.zeros_like(slots))
        src = torch.where(real, geometry.edge_src[edge], torch.zeros_like(slots))
        key = torch.where(real, classes["key"][edge], torch.full_like(slots, len(classes["node"])))
        batched = {"directions": directions, "src": src, "key": key}
    geometry.cache[cache_key] = batched
    return batched


# PyTorch's CPU bmm runs a product whose rows x columns x contraction is below this through a scalar loop
# (aten baddbmm_cpu_kernel) instead of BLAS: 80-270 us for the default network's [304, 4, 3] x [304, 3, 24]-like
# products against ~22 us for the same product through BLAS with the contraction padded by zeros to reach it.
_BMM_SCALAR_LOOP = 400


def _edge_operator_forms(g: torch.Tensor, mul: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The forms of a group's edge operator ``g`` ([E, dim, width]) used by :class:`_EdgeProducts`.

    Returns ``(forward, backward, pad)``: ``forward`` is ``g`` with ``pad`` zero rows appended (CPU products that
    would otherwise take PyTorch's scalar loop, see ``_BMM_SCALAR_LOOP``); ``backward`` is ``g`` transposed
    ([E, width, dim]): a view where the backward product is small enough for the scalar loop (which reads it
    faster than a copy), a contiguous copy where BLAS takes it.
    """
    _, dim, width = g.shape
    scalar_loop = mul * dim * width < _BMM_SCALAR_LOOP
    pad = 0
    if scalar_loop and dim > 1 and g.device.type == "cpu":
        pad = -(-_BMM_SCALAR_LOOP // (mul * width)) - dim  # >= 1: the padded product reaches BLAS
    forward = torch.nn.functional.pad(g, (0, 0, 0, pad)) if pad else g
    backward = forward[:, :dim].transpose(1, 2)  # a view of the padded operator (no second copy kept)
    if not scalar_loop:
        backward = backward.contiguous()
    return forward, backward, pad


class _EdgeProducts(torch.autograd.Function):
    """``z[e, u, c] = sum_m x[e, u, m] g[e, m, c]`` for each group of input columns, concatenated over groups;
    or, given ``key`` and ``rows``, these products summed into ``rows`` rows (``out[key[e]] += z[e]``).

    ``layout``: per group ``(start, mul, dim)``, its columns ``x[:, start : start + mul * dim]`` read as
    [E, mul, dim]; ``operators``: per group the forms of :func:`_edge_operator_forms`. One autograd node for all
    groups (in place of a slice, a reshape, a product and a concatenation each), and each product takes the
    faster of PyTorch's CPU kernels in both directions. Summed, no [E, all components] tensor is made in either
    direction: each group's products are summed (or, backwards, gathered) while they are in cache. The operators
    are constants: no gradient for them.

    ``per_operator``: rows of ``x`` that share one operator. With ``per_operator = C``, the rows of ``x`` are
    ``D`` runs of ``C`` edges of one direction each (:func:`edge_directions`), and ``g`` has one operator per run
    ([D, dim, width]): each group is then ``D`` products of ``C * mul`` rows, instead of ``E`` of ``mul``.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, layout, operators, key=None, rows: int = 0, per_operator: int = 1):
        e = x.shape[0]
        n_op = e // per_operator
        parts = []
        for (start, mul, dim), (g, _, pad) in zip(layout, operators, strict=True):
            block = x[:, start : start + mul * dim].reshape(n_op, per_operator * mul, dim)
            if pad:
                block = torch.nn.functional.pad(block, (0, pad))
            # dim 1: an outer product, where broadcasting beats a batched product of 1-column matrices
            z = (block * g if dim == 1 else torch.bmm(block, g)).reshape(e, -1)
            if key is not None:
                z = z.new_zeros(rows, z.shape[1]).index_add_(0, key, z)
            parts.append(z)
        ctx.layout, ctx.operators, ctx.key, ctx.per_operator = layout, operators, key, per_operator
        ctx.width = x.shape[1]
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        e = grad.shape[0] if ctx.key is None else ctx.key.shape[0]
        n_op = e // ctx.per_operator
        pieces, col = [], 0
        for (start, mul, dim), (_, g_t, _) in zip(ctx.layout, ctx.operators, strict=True):
            width = g_t.shape[1]
            gz = grad[:, col : col + mul * width]
            if ctx.key is not None:
                gz = gz.index_select(0, ctx.key)
            col += mul * width
            gz = gz.reshape(n_op, ctx.per_operator * mul, width)
            pieces.append((start, torch.bmm(gz, g_t).reshape(e, mul * dim)))
        tiled = all(start == sum(p.shape[1] for _, p in pieces[:i]) for i, (start, _) in enumerate(pieces))
        if tiled and sum(p.shape[1] for _, p in pieces) == ctx.width:
            grad_x = torch.cat([p for _, p in pieces], dim=1) if len(pieces) > 1 else pieces[0][1]
        else:
            grad_x = grad.new_zeros(e, ctx.width)
            for start, p in pieces:
                grad_x[:, start : start + p.shape[1]] = p
        return grad_x, None, None, None, None, None


class DenseConvolution(torch.nn.Module):
    """:class:`matsym.model._Convolution` evaluated densely (same modules, same parameters).

    ``col_map`` renumbers the output components (used to hand a gate its scalars, gates and gated features in
    three contiguous blocks).
    """

    # see forward(); measured with per-edge weights on Pnma supercells: fused faster at 1,216 edges, even at 2,432.
    # With length classes all groups at once was faster at every size (2,432 to 19,456 edges), so they never group.
    GROUPED_FROM_EDGES = 2000

    def __init__(self, conv, col_map: np.ndarray | None = None) -> None:
        super().__init__()
        object.__setattr__(self, "conv", conv)  # not a submodule: the parameters stay where they are saved
        tp = conv.tp
        self.mode = {ins.connection_mode for ins in tp.instructions}
        if not self.mode <= {"uvu", "uvw"} or len(self.mode) != 1:
            raise NotImplementedError(f"dense convolution needs one of 'uvu', 'uvw', got {self.mode}")
        self.mode = self.mode.pop()
        if any(mul != 1 for mul, _ in tp.irreps_in2):
            raise NotImplementedError("dense convolution needs one copy of each spherical harmonic")
        s1, s3 = tp.irreps_in1.slices(), tp.irreps_out.slices()
        # Groups of paths sharing an input irrep: one batched product each. The messages come out in the layout
        # (group, u, path, m3) for 'uvu' and in e3nn's (path, w, m3) for 'uvw'; mid_map[ours] = e3nn's index.
        # In 'uvu', neighbouring input irreps whose paths have the same operator (same l1, and the same l2, l3 and
        # path weight path by path: e.g. 1e and 1o when the output has both parities) share one group, so one
        # batched product serves both (fewer, larger products: 6 -> 3 in the default network's first layer).
        self.groups: list[dict] = []
        mid_map: list[np.ndarray] = []
        weight_index: list[np.ndarray] = []
        offsets = np.cumsum([0] + [int(np.prod(ins.path_shape)) for ins in tp.instructions])
        for i1, (mul1, ir1) in enumerate(tp.irreps_in1):
            paths = [t for t, ins in enumerate(tp.instructions) if ins.i_in1 == i1]
            if not paths:
                continue
            dims = [tp.irreps_out[tp.instructions[t].i_out].ir.dim for t in paths]
            signature = (
                ir1.l,
                tuple(
                    (tp.irreps_in2[tp.instructions[t].i_in2].ir.l, tp.irreps_out[tp.instructions[t].i_out].ir.l)
                    for t in paths
                ),
                tuple(round(float(tp.instructions[t].path_weight), 12) for t in paths),
            )
            last = self.groups[-1] if self.groups else None
            if (
                self.mode == "uvu"
                and last is not None
                and last["signature"] == signature
                and last["start"] + last["mul"] * last["dim"] == s1[i1].start
            ):
                last["mul"] += mul1
                last["members"].append((mul1, paths))
            else:
                self.groups.append(
                    {
                        "start": s1[i1].start,
                        "mul": mul1,
                        "dim": ir1.dim,
                        "paths": paths,  # the operator's paths (the first member's, the same for all members)
                        "dims": dims,
                        "width": sum(dims),
                        "signature": signature,
                        "members": [(mul1, paths)],
                    }
                )
        self.layout = [(group["start"], group["mul"], group["dim"]) for group in self.groups]  # for _EdgeProducts
        cols = 0
        for group in self.groups:
            group["cols"] = (cols, cols + group["mul"] * group["width"])  # 'uvu': this group's message columns
            cols = group["cols"][1]
            members = group.pop("members")
            del group["signature"]  # only needed while grouping
            if self.mode == "uvu":
                for mul1, paths in members:
                    for u in range(mul1):
                        for t, d in zip(paths, group["dims"], strict=True):
                            out = s3[tp.instructions[t].i_out]
                            mid_map.append(out.start + u * d + np.arange(d))
                            weight_index.append(np.full(d, offsets[t] + u))
        if self.mode == "uvu":
            ours = np.concatenate(mid_map)
            self.register_buffer("widx", torch.from_numpy(np.concatenate(weight_index)), persistent=False)
            row_map = np.empty_like(ours)
            row_map[ours] = np.arange(len(ours))
        else:
            row_map = None
            self.weight_offsets = [int(x) for x in offsets]
        # self-interaction of the node's features and linear map of its messages: one species-dependent product
        self.linear = DenseProduct(
            [conv.self_interaction, conv.linear], species=True, row_maps=[None, row_map], col_map=col_map
        )
        last = conv.radial[-1]
        if last.act is not None:
            raise NotImplementedError("the radial network's last layer must be linear")
        self.radial_scale = 1.0 / float((last.h_in * last.var_in / last.var_out) ** 0.5)  # e3nn's normalisation
        # e3nn's hidden layers compute act(x @ (W / sqrt(h_in var_in))) * sqrt(var_out), act = f(.) * cst: the
        # constant factors move onto x (the first layer's input is the fixed radial basis, scaled once and cached;
        # later ones get a single product after the activation): in_scale, then per layer (f, scale after f)
        hidden = list(conv.radial)[:-1]
        scales = [1.0 / float((layer.h_in * layer.var_in) ** 0.5) for layer in hidden] + [self.radial_scale]
        self.radial_in_scale = scales[0]
        self.radial_layers = []
        for layer, next_scale in zip(hidden, scales[1:], strict=True):
            act = layer.act
            post = float(layer.var_out**0.5) * (1.0 if act._is_id else float(act.cst))
            self.radial_layers.append((act.f, post * next_scale))

    def _edge_operators(self, geometry, dtype: torch.dtype, directions: dict | None = None) -> list[tuple]:
        """Per group, ``G[e, m1, (path, m3)]`` = path weight x CG contracted with the edge's spherical harmonics,
        divided by sqrt(avg_neighbors), in the forms :class:`_EdgeProducts` uses (:func:`_edge_operator_forms`);
        with ``directions`` (:func:`edge_directions`), one per direction. Fixed for a graph: cached on it."""
        key = ("dense_conv", id(self.conv), dtype, directions is not None)
        cached = geometry.cache.get(key)
        if cached is not None:
            return cached
        tp = self.conv.tp
        s2 = tp.irreps_in2.slices()
        sh = geometry.edge_sh if directions is None else geometry.edge_sh.index_select(0, directions["rep"])
        sh = sh.to(torch.float64)
        per_operator = 1 if directions is None else directions["C"]
        norm = 1.0 / np.sqrt(geometry.avg_neighbors)
        operators = []
        for group in self.groups:
            blocks = []
            for t in group["paths"]:
                ins = tp.instructions[t]
                ir1, ir2, ir3 = tp.irreps_in1[ins.i_in1].ir, tp.irreps_in2[ins.i_in2].ir, tp.irreps_out[ins.i_out].ir
                w3j = torch.from_numpy(_wigner(ir1.l, ir2.l, ir3.l).copy()).to(sh.device) * (ins.path_weight * norm)
                y = sh[:, s2[ins.i_in2]]  # [E, d2]
                blocks.append(torch.einsum("ej,ijk->eik", y, w3j))  # [E, d1, d3]
            g = torch.cat(blocks, dim=2).to(dtype).contiguous()
            operators.append(_edge_operator_forms(g, group["mul"] * per_operator))
        geometry.cache[key] = operators
        return operators

    def _radial_hidden(self, geometry, rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The radial network up to its last (linear) layer (for the edges ``rows``, default all), and that layer's
        matrix with e3nn's normalisation."""
        radial = self.conv.radial
        key = ("radial_in", self.radial_in_scale, rows is None)
        h = geometry.cache.get(key)
        if h is None:  # the radial basis of those edges with the first layer's factor: fixed for a graph
            h = geometry.edge_radial if rows is None else geometry.edge_radial.index_select(0, rows)
            h = geometry.cache[key] = h * self.radial_in_scale
        for layer, (f, scale) in zip(list(radial)[:-1], self.radial_layers, strict=True):
            h = f(h @ layer.weight) * scale
        return h, radial[-1].weight

    def forward(self, x: torch.Tensor, geometry, radial_weight: torch.Tensor | None = None) -> torch.Tensor:
        """``radial_weight``: optional, the radial network's output in e3nn's layout ([E, weight_numel]).

        'uvu' messages: where the graph's edges fall into few length classes (:func:`edge_classes`), all groups at
        once, each group's messages summed per (node, class) pair before they are weighted (the radial network
        runs once per class), and, where they also fall into few directions, with one operator per direction
        (:func:`edge_directions`). Otherwise each edge is weighted: on small graphs all groups at once (fewest
        operations); from ``GROUPED_FROM_EDGES`` edges on, group by group (no [E, all components] tensors, whose
        memory traffic dominates on large graphs).
        """
        if self.mode == "uvw":
            operators = self._edge_operators(geometry, x.dtype)
            summed = self._uvw_summed(x.index_select(0, geometry.edge_src), geometry, operators, radial_weight)
            return self.linear(torch.cat([x, summed], dim=1), species_index(geometry))
        classes = edge_classes(geometry)
        rows = None if classes is None else classes["rep"]
        batched = None if classes is None else _batched_edges(geometry, classes)
        if batched is None:
            operators = self._edge_operators(geometry, x.dtype)
            x_src = x.index_select(0, geometry.edge_src)
            key, n_keys, per_operator = (None, 0, 1) if classes is None else (classes["key"], len(classes["node"]), 1)
        else:  # edges in runs of one direction (see edge_directions), padded slots summed into an extra key
            operators = self._edge_operators(geometry, x.dtype, batched["directions"])
            x_src = x.index_select(0, batched["src"])
            key, n_keys, per_operator = batched["key"], len(classes["node"]) + 1, batched["directions"]["C"]
        if radial_weight is None:
            hidden, last = self._radial_hidden(geometry, rows)
        else:
            per_row = radial_weight if rows is None else radial_weight.index_select(0, rows)

        def weights(widx: torch.Tensor) -> torch.Tensor:  # [E or classes, len(widx)]
            if radial_weight is None:
                return hidden @ last.index_select(1, widx)
            return per_row.index_select(1, widx)

        if classes is not None or x_src.shape[0] < self.GROUPED_FROM_EDGES:
            chunks = [(x_src, self.layout, operators, self.widx)]
        else:
            chunks = [
                (
                    x_src[:, group["start"] : group["start"] + group["mul"] * group["dim"]],
                    [(0, group["mul"], group["dim"])],
                    [forms],
                    self.widx[group["cols"][0] : group["cols"][1]],
                )
                for group, forms in zip(self.groups, operators, strict=True)
            ]
        parts = []
        for block, layout, forms, widx in chunks:
            w = weights(widx)
            if classes is None:
                messages = _EdgeProducts.apply(block, layout, forms) * w  # [E, components]
                parts.append(
                    messages.new_zeros(geometry.num_nodes, w.shape[1]).index_add_(0, geometry.edge_dst, messages)
                )
            else:  # sum each (node, class) pair's messages, then weight them once (see edge_classes)
                pair_sums = _EdgeProducts.apply(block, layout, forms, key, n_keys, per_operator)
                if batched is not None:
                    pair_sums = pair_sums[:-1]  # the padded slots' row
                weighted = pair_sums * w.index_select(0, classes["cls"])
                parts.append(
                    weighted.new_zeros(geometry.num_nodes, w.shape[1]).index_add_(0, classes["node"], weighted)
                )
        summed = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        return self.linear(torch.cat([x, summed], dim=1), species_index(geometry))

    def _uvw_summed(self, x_src, geometry, operators, radial_weight) -> torch.Tensor:
        """'uvw' messages (every input channel to every output channel of a path), summed over edges."""
        conv = self.conv
        e = x_src.shape[0]
        if radial_weight is None:
            radial_weight = conv.radial(geometry.edge_radial)
        parts = []
        for group, forms in zip(self.groups, operators, strict=True):
            start, stop = group["start"], group["start"] + group["mul"] * group["dim"]
            z = _EdgeProducts.apply(x_src[:, start:stop], [(0, group["mul"], group["dim"])], [forms])
            z = z.view(e, group["mul"], group["width"])
            col = 0
            for t, d in zip(group["paths"], group["dims"], strict=True):
                mul1, _, mul3 = conv.tp.instructions[t].path_shape
                w = radial_weight[:, self.weight_offsets[t] : self.weight_offsets[t + 1]].view(e, mul1, mul3)
                parts.append(torch.bmm(w.transpose(1, 2), z[:, :, col : col + d]).reshape(e, -1))
                col += d
        messages = self._uvw_layout(parts)
        summed = messages.new_zeros(geometry.num_nodes, messages.shape[1])
        return summed.index_add_(0, geometry.edge_dst, messages)

    def _uvw_layout(self, parts: list[torch.Tensor]) -> torch.Tensor:
        # parts are in group order; e3nn's layout is in instruction order
        order = [t for group in self.groups for t in group["paths"]]
        by_path = dict(zip(order, parts, strict=True))
        return torch.cat([by_path[t] for t in sorted(by_path)], dim=1)


def _activation_groups(activation) -> tuple[list[tuple[int, int, object]], np.ndarray]:
    """Blocks of an e3nn scalar ``Activation`` grouped by function: ``[(start, stop, act)]`` in a new layout,
    and ``new[old]`` for its components."""
    groups: dict[tuple, list[np.ndarray]] = {}
    acts: dict[tuple, object] = {}
    index = 0
    for mul, (l, _), act in activation.paths:
        if l != 0 or act is None:
            raise NotImplementedError("dense gates need an activation on every scalar")
        key = (act.f, float(act.cst), bool(act._is_id))
        groups.setdefault(key, []).append(np.arange(index, index + mul))
        acts[key] = act
        index += mul
    order, spans, start = [], [], 0
    for key, blocks in groups.items():
        members = np.concatenate(blocks)
        order.append(members)
        spans.append((start, start + len(members), acts[key]))
        start += len(members)
    old = np.concatenate(order) if order else np.zeros(0, dtype=np.int64)
    new = np.empty(len(old), dtype=np.int64)
    new[old] = np.arange(len(old))
    return spans, new


def _apply(act, x: torch.Tensor) -> torch.Tensor:
    return act.f(x) if act._is_id else act.f(x) * act.cst


class DenseGate(torch.nn.Module):
    """e3nn's ``Gate``, on the input layout of :meth:`input_map`, with its output put in the order ``order``
    (``out[:, p] = e3nn_out[:, order[p]]``).

    The scalars and the gates are grouped by activation function, so that each function is applied once to a
    contiguous block; each gated component is multiplied by its gate through one gather.
    """

    def __init__(self, gate, order: torch.Tensor | None = None) -> None:
        super().__init__()
        object.__setattr__(self, "gate", gate)  # not a submodule
        self.n_scalars = gate.irreps_scalars.dim
        self.n_gates = gate.irreps_gates.dim
        gated_dim = gate.irreps_gated.dim
        self.scalar_spans, scalar_new = _activation_groups(gate.act_scalars)
        if self.n_gates:
            self.gate_spans, gate_new = _activation_groups(gate.act_gates)
        else:
            self.gate_spans, gate_new = [], np.zeros(0, dtype=np.int64)
        # e3nn multiplies each gated component by one gate (an element-wise product): read which, and the factor,
        # from its instructions (calling it would generate its code: 0.3 s, see matsym._lean_e3nn)
        which, factor = _gate_products(gate.mul) if self.n_gates else (np.zeros(0, dtype=np.int64), np.ones(0))
        if not np.allclose(factor, 1.0, rtol=0, atol=1e-12):
            raise NotImplementedError("dense gates need e3nn's element-wise product to be a plain product")
        gidx = gate_new[which] if self.n_gates else np.zeros(0, dtype=np.int64)
        self.register_buffer("gidx", torch.from_numpy(gidx), persistent=False)
        # input: e3nn's sorted layout -> [scalars by activation | gates by activation | gated]
        split = gate_input_map(gate)  # new[old] into [scalars | gates | gated]
        regroup = np.concatenate(
            [scalar_new, self.n_scalars + gate_new, self.n_scalars + self.n_gates + np.arange(gated_dim)]
        )
        self.input_map = regroup[split]
        # output: ours is [scalars by activation | gated]; e3nn's is [scalars | gated]
        e3nn_to_ours = np.concatenate([scalar_new, self.n_scalars + np.arange(gated_dim)])
        final = np.arange(len(e3nn_to_ours)) if order is None else order.cpu().numpy()
        self.register_buffer("out_index", torch.from_numpy(e3nn_to_ours[final]), persistent=False)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        parts = [_apply(act, y[:, a:b]) for a, b, act in self.scalar_spans]
        if self.n_gates:
            base = self.n_scalars
            gates = [_apply(act, y[:, base + a : base + b]) for a, b, act in self.gate_spans]
            gates = gates[0] if len(gates) == 1 else torch.cat(gates, dim=1)
            parts.append(y[:, self.n_scalars + self.n_gates :] * gates.index_select(1, self.gidx))
        out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        return out.index_select(1, self.out_index)


def _gate_products(mul) -> tuple[np.ndarray, np.ndarray]:
    """For each output component of e3nn's ``ElementwiseTensorProduct`` of gated features with their (scalar)
    gates: the gate component it is multiplied by, and the constant factor (path weight x Wigner 3j), read from
    the instructions. Output components must be the gated ones, in order."""
    s1, s2, s3 = mul.irreps_in1.slices(), mul.irreps_in2.slices(), mul.irreps_out.slices()
    which = np.full(mul.irreps_out.dim, -1, dtype=np.int64)
    factor = np.zeros(mul.irreps_out.dim)
    for ins in mul.instructions:
        (m1, ir1), (_, ir2), (_, ir3) = mul.irreps_in1[ins.i_in1], mul.irreps_in2[ins.i_in2], mul.irreps_out[ins.i_out]
        w3j = _wigner(ir1.l, 0, ir3.l)[:, 0, :]  # [d, d]
        if ins.connection_mode != "uuu" or ir2.l != 0 or ir3.l != ir1.l or s3[ins.i_out] != s1[ins.i_in1]:
            raise NotImplementedError("dense gates need gated features multiplied component-wise by scalar gates")
        if np.abs(w3j - np.diag(np.diagonal(w3j))).max() > _ZERO:
            raise NotImplementedError("dense gates need a diagonal gate product")
        for u in range(m1):
            comps = s3[ins.i_out].start + u * ir3.dim + np.arange(ir3.dim)
            which[comps] = s2[ins.i_in2].start + u
            factor[comps] = ins.path_weight * np.diagonal(w3j)
    if (which < 0).any():
        raise NotImplementedError("a gated component without a gate")
    return which, factor


def gate_input_map(gate) -> np.ndarray:
    """``new[old]``: position of each of the gate's input components in the layout ``[scalars | gates | gated]``."""
    dim = gate.irreps_in.dim
    with torch.no_grad():
        probe = torch.arange(dim, dtype=torch.float64)[None]
        parts = gate.sc(probe)  # e3nn's Extract only slices: no weights, any dtype (and no deepcopy: see DenseGate)
    order = torch.cat([p[0] for p in parts]).round().long().numpy()
    if sorted(order.tolist()) != list(range(dim)):
        raise NotImplementedError("the gate's inputs are not a permutation of scalars, gates and gated features")
    new = np.empty(dim, dtype=np.int64)
    new[order] = np.arange(dim)
    return new

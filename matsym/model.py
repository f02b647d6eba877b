"""E(3)-equivariant gated convolutional network (e3nn) on crystal graphs.

The network maps per-site input features (fixed scalars plus learnable order parameters) to per-site output
features (the spherical signal of each site's displacement). Positions never change during a search, so the edge
geometry (spherical harmonics of the edge directions, radial basis of the edge lengths) is computed once per graph
in :class:`EdgeGeometry` and reused by every layer and every optimisation step.

Each layer is a point convolution (paper Eq. 1): a tensor product of the neighbour's features with the spherical
harmonics of the edge, weighted by a learned radial function, summed over neighbours; plus a self-interaction
(``o3.Linear``) in place of self edges, whose spherical harmonics would be undefined. Hidden layers end in a gated
nonlinearity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from matsym._lean_e3nn import import_o3, lean_construction

import_o3()  # without torch._dynamo and sympy: see matsym._lean_e3nn

from e3nn import o3  # noqa: E402
from e3nn.math import soft_one_hot_linspace  # noqa: E402
from e3nn.nn import FullyConnectedNet, Gate  # noqa: E402

from matsym import _dense  # noqa: E402
from matsym.errors import IrrepsError  # noqa: E402

__all__ = ["EdgeGeometry", "EquivariantNetwork", "NetworkConfig", "parse_irreps"]

# e3nn's own evaluation of the tensor products (generated code) serves only :meth:`EquivariantNetwork.forward_e3nn`,
# the reference that tests the dense evaluation. Optimising its einsums (opt_einsum_fx) took 1.6 s of the 4.7 s that
# building the default search network cost, for nothing matsym runs: leave them as generated (and generate them on
# the first call only, matsym._lean_e3nn).
_E3NN_TP = {"_optimize_einsums": False}


def parse_irreps(irreps: str | o3.Irreps, what: str = "irreps") -> o3.Irreps:
    """Parse an e3nn irreps string, raising :class:`IrrepsError` with the offending text on failure."""
    try:
        parsed = o3.Irreps(irreps)
    except (ValueError, AssertionError, TypeError, IndexError) as exc:
        raise IrrepsError(
            f"{what}: expected an e3nn irreps string such as '1x0e+1x1e+2o', got {irreps!r} ({exc})"
        ) from None
    return parsed


@dataclass(frozen=True)
class NetworkConfig:
    """Sizes of an :class:`EquivariantNetwork`.

    Attributes:
        layers: number of convolutions (the last one maps to the output irreps, the others end in a gate).
        mul: copies of each hidden irrep.
        hidden_lmax: largest L among hidden features (both parities are kept).
        sh_lmax: largest L of the filters' spherical harmonics.
        n_basis: size of the radial basis.
        radial_neurons: hidden widths of the radial MLP (a tuple; empty means a linear map of the basis).
        connection: ``"uvu"`` (each channel of the input keeps its own path: lean, the default) or ``"uvw"``
            (every input channel feeds every output channel, as in the paper's networks; far more weights).
    """

    layers: int = 2
    mul: int = 4
    hidden_lmax: int = 2
    sh_lmax: int = 2
    n_basis: int = 8
    radial_neurons: tuple[int, ...] = (16,)
    connection: str = "uvu"

    @classmethod
    def for_output(cls, irreps_out: str | o3.Irreps, **overrides) -> NetworkConfig:
        """A small configuration whose reach covers ``irreps_out``.

        Filters reach the output's largest L directly (sh_lmax = max(2, lmax_out)), with hidden features up to
        L=2. Measured on the Pm-3m -> Pnma search with lmax-3 signals: filters to L=3 fit to a loss ratio of 2e-5,
        while filters to L=2 (even with twice the channels) stalled at 4e-3.
        """
        lmax_out = parse_irreps(irreps_out).lmax
        values = {"sh_lmax": max(2, lmax_out), "hidden_lmax": 2}
        values.update(overrides)
        return cls(**values)

    @classmethod
    def paper(cls) -> NetworkConfig:
        """The reference size of the paper's notebooks (3 layers, lmax 6, 6 copies, radial MLP 10->100->100->100,
        fully connected ``uvw`` paths)."""
        return cls(
            layers=3,
            mul=6,
            hidden_lmax=6,
            sh_lmax=6,
            n_basis=10,
            radial_neurons=(100, 100, 100),
            connection="uvw",
        )

    def as_dict(self) -> dict:
        return {
            "layers": self.layers,
            "mul": self.mul,
            "hidden_lmax": self.hidden_lmax,
            "sh_lmax": self.sh_lmax,
            "n_basis": self.n_basis,
            "radial_neurons": list(self.radial_neurons),
            "connection": self.connection,
        }

    @classmethod
    def from_dict(cls, d: dict) -> NetworkConfig:
        d = dict(d)
        d["radial_neurons"] = tuple(d.get("radial_neurons", ()))
        return cls(**d)


@dataclass(frozen=True)
class EdgeGeometry:
    """Fixed per-edge inputs of the network, computed once per graph.

    Attributes:
        edge_src: sending node of each edge.  # [E]
        edge_dst: receiving node of each edge.  # [E]
        edge_sh: spherical harmonics of the edge vectors, e3nn basis, 'component' normalisation.  # [E, (sh_lmax+1)^2]
        edge_radial: radial basis of the edge lengths.  # [E, n_basis]
        num_nodes: number of nodes.
        avg_neighbors: mean number of incoming edges per node (message normalisation).
        node_attr: one-hot species of each node; the network's linear maps depend on it.  # [num_nodes, k]
    """

    edge_src: torch.Tensor
    edge_dst: torch.Tensor
    edge_sh: torch.Tensor
    edge_radial: torch.Tensor
    num_nodes: int
    avg_neighbors: float
    node_attr: torch.Tensor | None = None  # [num_nodes, num_species] one-hot species, or None for one species
    # operators that depend only on the geometry (matsym._dense), computed on first use
    cache: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_vectors(
        cls,
        edge_src,
        edge_dst,
        edge_vec,
        num_nodes: int,
        *,
        sh_lmax: int,
        n_basis: int,
        cutoff: float,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        node_attr=None,
    ) -> EdgeGeometry:
        """Geometry from edge index arrays and edge vectors (``pos[dst] - pos[src] + shift @ cell``)."""
        vec = torch.tensor(np.asarray(edge_vec, dtype=np.float64), device=device)  # [E, 3]
        src = torch.tensor(np.asarray(edge_src, dtype=np.int64), device=device)
        dst = torch.tensor(np.asarray(edge_dst, dtype=np.int64), device=device)
        length = vec.norm(dim=-1)
        if len(length) and float(length.min()) <= 0.0:
            raise ValueError("zero-length edge in the graph: self edges have no direction")
        sh = o3.spherical_harmonics(
            o3.Irreps.spherical_harmonics(sh_lmax), vec, normalize=True, normalization="component"
        )
        radial = soft_one_hot_linspace(length, 0.0, cutoff, n_basis, basis="smooth_finite", cutoff=True) * math.sqrt(
            n_basis
        )
        avg = max(len(src) / max(num_nodes, 1), 1.0)
        attr = None if node_attr is None else torch.tensor(np.asarray(node_attr), dtype=dtype, device=device)
        return cls(src, dst, sh.to(dtype), radial.to(dtype), int(num_nodes), float(avg), attr)

    @classmethod
    def from_graph(
        cls, graph, config: NetworkConfig, *, dtype=torch.float32, device=None, node_attr=None
    ) -> EdgeGeometry:
        """Geometry of a :class:`matsym.graph.CrystalGraph` (``node_attr``: optional one-hot species)."""
        return cls.from_vectors(
            graph.edge_src,
            graph.edge_dst,
            graph.edge_vec,
            graph.num_nodes,
            sh_lmax=config.sh_lmax,
            n_basis=config.n_basis,
            cutoff=graph.cutoff,
            dtype=dtype,
            device=device,
            node_attr=node_attr,
        )


def _even_abs(x: torch.Tensor) -> torch.Tensor:
    """Smooth even activation, ~|x| for large |x| (e3nn detects its parity and outputs 0e from 0o)."""
    return x * torch.tanh(x)


def _sorted_layout(irreps: o3.Irreps) -> tuple[o3.Irreps, torch.Tensor]:
    """Irreps sorted and merged, and the feature permutation that takes a tensor to that layout."""
    sorted_irreps, perm, _ = irreps.sort()
    slices = irreps.slices()
    inverse = [0] * len(perm)
    for old, new in enumerate(perm):
        inverse[new] = old
    order = torch.cat([torch.arange(slices[old].start, slices[old].stop) for old in inverse])
    return sorted_irreps.simplify(), order


def _tp_path_exists(irreps_in1: o3.Irreps, irreps_in2: o3.Irreps, ir_out: o3.Irrep) -> bool:
    return any(ir_out in ir1 * ir2 for _, ir1 in irreps_in1 for _, ir2 in irreps_in2)


class _Convolution(torch.nn.Module):
    """Point convolution with radial-MLP weights plus an ``o3.Linear`` self-interaction."""

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_sh: o3.Irreps,
        irreps_out: o3.Irreps,
        n_basis: int,
        radial_neurons: tuple[int, ...],
        num_species: int,
        connection: str = "uvu",
    ) -> None:
        super().__init__()
        self.irreps_in = irreps_in
        self.irreps_out = irreps_out
        # species-dependent linear maps (a tensor product with the one-hot species): messages arriving at two sites
        # from equal distances can be treated differently when the receiving species differ
        irreps_attr = o3.Irreps(f"{num_species}x0e")
        self.self_interaction = o3.FullyConnectedTensorProduct(irreps_in, irreps_attr, irreps_out, **_E3NN_TP)
        irreps_mid = []
        instructions = []
        for i, (mul, ir_in) in enumerate(irreps_in):
            for j, (_, ir_sh) in enumerate(irreps_sh):
                for ir_out in ir_in * ir_sh:
                    if ir_out in irreps_out:
                        k = len(irreps_mid)
                        if connection == "uvu":
                            irreps_mid.append((mul, ir_out))
                        else:
                            irreps_mid.append((max(m for m, ir in irreps_out if ir == ir_out), ir_out))
                        instructions.append((i, j, k, connection, True))
        irreps_mid = o3.Irreps(irreps_mid)
        self.tp = o3.TensorProduct(
            irreps_in,
            irreps_sh,
            irreps_mid,
            instructions,
            shared_weights=False,
            internal_weights=False,
            **_E3NN_TP,
        )
        self.radial = FullyConnectedNet([n_basis, *radial_neurons, self.tp.weight_numel], torch.nn.functional.silu)
        self.linear = o3.FullyConnectedTensorProduct(irreps_mid, irreps_attr, irreps_out, **_E3NN_TP)

    def forward(self, x: torch.Tensor, geometry: EdgeGeometry, radial_weight=None) -> torch.Tensor:
        if radial_weight is None:
            radial_weight = self.radial(geometry.edge_radial)  # [E, weight_numel]
        messages = self.tp(x[geometry.edge_src], geometry.edge_sh, radial_weight)  # [E, dim_mid]
        summed = messages.new_zeros(geometry.num_nodes, messages.shape[1])
        summed.index_add_(0, geometry.edge_dst, messages)
        summed = summed / math.sqrt(geometry.avg_neighbors)
        attr = geometry.node_attr
        if attr is None:
            attr = x.new_ones(x.shape[0], 1)
        return self.self_interaction(x, attr) + self.linear(summed, attr)


class EquivariantNetwork(torch.nn.Module):
    """Gated E(3)-equivariant convolutional network.

    Args:
        irreps_in: irreps of the per-node input (fixed scalars and order parameters), e3nn basis.
        irreps_out: irreps of the per-node output (e.g. ``signal_irreps(lmax)``).
        config: sizes; by default :meth:`NetworkConfig.for_output`.

    Example:
        >>> net = EquivariantNetwork("3x0e+1x1e", "0e+1o+2e", NetworkConfig(layers=2))
        >>> geometry = EdgeGeometry.from_graph(graph, net.config)
        >>> out = net(features, geometry)  # [num_nodes, irreps_out.dim]
    """

    def __init__(
        self,
        irreps_in,
        irreps_out,
        config: NetworkConfig | None = None,
        *,
        num_species: int = 1,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        # e3nn computes its Clebsch-Gordan constants in the default dtype: build in float64 so that they are exact
        # to double precision, then cast
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            self.num_species = int(num_species)
            with lean_construction():  # e3nn's own forward code generated on first use only
                self._build(irreps_in, irreps_out, config)
        finally:
            torch.set_default_dtype(previous)
        self.to(dtype)

    def _build(self, irreps_in, irreps_out, config: NetworkConfig | None) -> None:
        self.irreps_in = parse_irreps(irreps_in, "input irreps").simplify()
        self.irreps_out = parse_irreps(irreps_out, "output irreps")
        self.config = config if config is not None else NetworkConfig.for_output(self.irreps_out)
        if self.config.connection not in ("uvu", "uvw"):
            raise IrrepsError(f"connection must be 'uvu' or 'uvw', got {self.config.connection!r}")
        if self.config.layers < 1:
            raise ValueError(f"a network needs at least one layer, got layers={self.config.layers}")
        irreps_sh = o3.Irreps.spherical_harmonics(self.config.sh_lmax)
        hidden = o3.Irreps([(self.config.mul, (l, p)) for l in range(self.config.hidden_lmax + 1) for p in (1, -1)])
        # pseudoscalars go through an EVEN activation (x tanh x ~ |x|), which makes them scalars: without it every
        # feature stays odd in an odd order parameter (a pseudovector enters only through linear tensor products
        # and odd activations), and the even parts of a displacement signal (|d|, the L=2 shape) are unreachable
        act = {1: torch.nn.functional.silu, -1: _even_abs}
        act_gates = {1: torch.sigmoid, -1: torch.tanh}

        self.layers = torch.nn.ModuleList()
        irreps = self.irreps_in
        for _ in range(self.config.layers - 1):
            scalars = o3.Irreps(
                [(m, ir) for m, ir in hidden if ir.l == 0 and _tp_path_exists(irreps, irreps_sh, ir)]
            ).simplify()
            # gate half of each irrep's copies with scalars and half with pseudoscalars: a pseudoscalar gate that
            # depends on an odd order parameter times a feature odd in it gives an even feature of any L (e.g. the
            # L=2 shape |d| Y2(d) of a signal); scalar gates alone leave features linear in the order parameter
            gated_list, gates_list = [], []
            for m, ir in hidden:
                if ir.l == 0 or not _tp_path_exists(irreps, irreps_sh, ir):
                    continue
                for gate_ir, mg in (("0e", m - m // 2), ("0o", m // 2)):
                    if mg and _tp_path_exists(irreps, irreps_sh, o3.Irrep(gate_ir)):
                        gated_list.append((mg, ir))
                        gates_list.append((mg, gate_ir))
            gated = o3.Irreps(gated_list)
            gates = o3.Irreps(gates_list)
            gate = Gate(scalars, [act[ir.p] for _, ir in scalars], gates, [act_gates[ir.p] for _, ir in gates], gated)
            conv = _Convolution(
                irreps,
                irreps_sh,
                gate.irreps_in,
                self.config.n_basis,
                self.config.radial_neurons,
                self.num_species,
                self.config.connection,
            )
            self.layers.append(torch.nn.ModuleDict({"conv": conv, "gate": gate}))
            # sort and merge the gate's output (e.g. 2x1e from scalar gates and 2x1e from pseudoscalar-gated 1o):
            # fewer, larger irrep blocks mean fewer tensor-product paths in the next layer
            irreps, order = _sorted_layout(gate.irreps_out)
            self.register_buffer(f"_order{len(self.layers) - 1}", order)
            # products of a node's own features (x ⊗ x on the L <= 1 part), see the output square below
            low = o3.Irreps([(m, ir) for m, ir in irreps if ir.l <= 1])
            self.layers[-1]["square"] = o3.FullyConnectedTensorProduct(low, low, irreps, **_E3NN_TP)
            self.layers[-1].low_dim = low.dim
        self.output = _Convolution(
            irreps,
            irreps_sh,
            self.irreps_out,
            self.config.n_basis,
            self.config.radial_neurons,
            self.num_species,
            self.config.connection,
        )
        # the output also sees products of the last hidden features with their own L <= 1 part. Message passing
        # is linear in the neighbours' features, and a uniform order parameter summed over a centrosymmetric shell
        # cancels: without these products a polar 1o order parameter never reaches the even parts (|d|, L=2) nor
        # the L=3 part of a signal (measured: loss ratio 0.36 -> 1e-6 on polar [001]). Sites without an order
        # parameter of their own (O and Sr when only Ti carries one) need the hidden square too, for the cubic terms
        # of the L=3 part: polar [111] with Ti-only order parameters stalls at 27% error without it, 20% faster.
        if self.layers:
            low = o3.Irreps([(m, ir) for m, ir in irreps if ir.l <= 1])
            self.output_square = o3.FullyConnectedTensorProduct(irreps, low, self.irreps_out, **_E3NN_TP)
            self.output_low_dim = low.dim
        missing = [
            str(ir)
            for _, ir in self.irreps_out
            if ir not in self.output.irreps_out or not any(ir in i1 * i2 for _, i1 in irreps for _, i2 in irreps_sh)
        ]
        if missing:
            raise IrrepsError(
                f"the network cannot reach output irreps {missing} from hidden {irreps} with filters up to "
                f"l={self.config.sh_lmax}; raise hidden_lmax or sh_lmax"
            )
        # the same modules evaluated densely (matsym._dense): what forward() runs
        self._dense_layers = torch.nn.ModuleList()
        for i, layer in enumerate(self.layers):
            gate = _dense.DenseGate(layer["gate"], order=getattr(self, f"_order{i}"))
            dense = torch.nn.ModuleDict(
                {
                    "conv": _dense.DenseConvolution(layer["conv"], col_map=gate.input_map),
                    "gate": gate,
                    "square": _dense.DenseProduct(layer["square"], square=True),
                }
            )
            self._dense_layers.append(dense)
        self._dense_output = _dense.DenseConvolution(self.output)
        if self.layers:
            self._dense_output_square = _dense.DenseProduct(self.output_square)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """``torch.nn.Module.load_state_dict``, ignoring the constants of e3nn's generated code (keys with
        ``._compiled_main_``: Wigner 3j symbols, not weights), which weights saved before that code was generated
        lazily (:mod:`matsym._lean_e3nn`) contain. Modules built with e3nn's generated code (the strain head of
        :mod:`matsym.strain`) keep those constants as buffers: theirs are loaded as usual."""
        own = self.state_dict(keep_vars=True)
        state = {k: v for k, v in state_dict.items() if "._compiled_main_" not in k or k in own}
        return super().load_state_dict(state, strict=strict, assign=assign)

    @property
    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters())

    def radial_weights(self, geometry: EdgeGeometry) -> list[torch.Tensor]:
        """Per-edge tensor-product weights of every convolution (constant while the network is frozen)."""
        convs = [layer["conv"] for layer in self.layers] + [self.output]
        return [conv.radial(geometry.edge_radial) for conv in convs]

    def forward(self, x: torch.Tensor, geometry: EdgeGeometry, radial_weights=None) -> torch.Tensor:
        """Per-node output features.

        Evaluated densely (:mod:`matsym._dense`): the same function as :meth:`forward_e3nn`, with far fewer
        tensor operations.

        Args:
            x: node features in ``irreps_in`` (e3nn basis).  # [num_nodes, irreps_in.dim]
            geometry: the graph's :class:`EdgeGeometry`.
            radial_weights: optional cached result of :meth:`radial_weights` (valid while the weights are fixed).
        """
        for i, dense in enumerate(self._dense_layers):
            w = None if radial_weights is None else radial_weights[i]
            x = dense["gate"](dense["conv"](x, geometry, w))  # already in the sorted layout
            low = x[:, : self.layers[i].low_dim]
            x = x + dense["square"](low, low)
        w = None if radial_weights is None else radial_weights[-1]
        out = self._dense_output(x, geometry, w)  # [num_nodes, irreps_out.dim]
        if self.layers:
            out = out + self._dense_output_square(x, x[:, : self.output_low_dim])
        return out

    def forward_e3nn(self, x: torch.Tensor, geometry: EdgeGeometry, radial_weights=None) -> torch.Tensor:
        """:meth:`forward` evaluated by the e3nn modules themselves, path by path (the reference for tests)."""
        for i, layer in enumerate(self.layers):
            w = None if radial_weights is None else radial_weights[i]
            x = layer["gate"](layer["conv"](x, geometry, w))
            x = x.index_select(1, getattr(self, f"_order{i}"))
            low = x[:, : layer.low_dim]
            x = x + layer["square"](low, low)
        w = None if radial_weights is None else radial_weights[-1]
        out = self.output(x, geometry, w)  # [num_nodes, irreps_out.dim]
        if self.layers:
            out = out + self.output_square(x, x[:, : self.output_low_dim])
        return out

"""Periodic crystal graphs: every pair of atoms closer than a cutoff, periodic images included.

Edge convention (the same as ``ase.neighborlist.neighbor_list("ijS")`` with ``i = src``, ``j = dst``)::

    edge_vec[e] = positions[edge_dst[e]] - positions[edge_src[e]] + shifts[e] @ cell

so ``edge_vec`` points from the neighbour ``src`` (its image at ``-shift``) to the centre ``dst`` that
receives the message. The edge set is closed under reversal: ``(src, dst, shift)`` is present iff
``(dst, src, -shift)`` is, with the opposite vector. An atom's own periodic images are edges (``src == dst``,
non-zero shift) when the cell is shorter than the cutoff; zero-length self edges are never made unless
``self_interaction=True``.

Periodic neighbour lists come from vesin (a dependency; the fastest library measured by
``benchmarks/bench_graph.py``), or, where vesin is missing, from pymatgen's ``Structure.get_neighbor_list``
(compiled code). Both give the same edge set; the tests compare each with
``ase.neighborlist.neighbor_list``. Finite point clouds use a k-d tree
(``scipy.spatial.cKDTree``), which gives exactly the pairs with distance <= cutoff. Edge vectors are always
recomputed in float64 from the positions and integer shifts rather than taken from the library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from matsym.errors import CutoffError, StructureError
from matsym.io import load_structure

__all__ = ["CrystalGraph", "build_graph", "nearest_neighbor_distances"]

_MAX_SEARCH_RADIUS = 1e4  # Å, bound on the search for the cutoff that would connect every atom


@dataclass(frozen=True, eq=False)
class CrystalGraph:
    """A directed graph of a structure's neighbours within a cutoff.

    Arrays are float64 / int64 and read-only.

    Attributes:
        positions: Cartesian positions in Å, in the input's site order. # [n, 3]
        cell: Lattice vectors as rows in Å, or None for a finite point cloud. # [3, 3]
        pbc: Periodicity along each lattice vector; all False for a finite point cloud.
        species: Element (or dummy ``X``) symbol of each site.
        edge_src: Index of the neighbour that sends the message. # [E]
        edge_dst: Index of the centre that receives it. # [E]
        shifts: Integer lattice shift of each edge (zeros for finite clouds). # [E, 3]
        edge_vec: ``positions[dst] - positions[src] + shifts @ cell`` in Å. # [E, 3]
        cutoff: Neighbour cutoff in Å; edges have length <= cutoff.
    """

    positions: np.ndarray
    cell: np.ndarray | None
    pbc: tuple[bool, bool, bool]
    species: list[str]
    edge_src: np.ndarray
    edge_dst: np.ndarray
    shifts: np.ndarray
    edge_vec: np.ndarray
    cutoff: float

    def __post_init__(self) -> None:
        def frozen(a: Any, dtype: type, shape: tuple[int | None, ...], name: str) -> np.ndarray:
            arr = np.array(a, dtype=dtype, copy=True)
            if arr.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, arr.shape, strict=False)):
                want = "[" + ", ".join("?" if s is None else str(s) for s in shape) + "]"
                raise StructureError(f"CrystalGraph.{name} must have shape {want}, got {arr.shape}")
            arr.setflags(write=False)
            return arr

        positions = frozen(self.positions, np.float64, (None, 3), "positions")
        n = len(positions)
        cell = None if self.cell is None else frozen(self.cell, np.float64, (3, 3), "cell")
        src = frozen(self.edge_src, np.int64, (None,), "edge_src")
        e = len(src)
        dst = frozen(self.edge_dst, np.int64, (e,), "edge_dst")
        shifts = frozen(np.reshape(self.shifts, (-1, 3)), np.int64, (e, 3), "shifts")
        vec = frozen(np.reshape(self.edge_vec, (-1, 3)), np.float64, (e, 3), "edge_vec")
        if len(self.species) != n:
            raise StructureError(f"CrystalGraph.species must have {n} entries (one per site), got {len(self.species)}")
        if e and (src.min() < 0 or dst.min() < 0 or src.max() >= n or dst.max() >= n):
            raise StructureError(f"CrystalGraph edge indices must lie in [0, {n}), got a value outside")
        if cell is None and np.any(shifts):
            raise StructureError("CrystalGraph without a cell must have zero shifts")
        pbc = tuple(bool(p) for p in self.pbc)
        if len(pbc) != 3:
            raise StructureError(f"CrystalGraph.pbc must have 3 entries, got {len(pbc)}")
        object.__setattr__(self, "positions", positions)
        object.__setattr__(self, "cell", cell)
        object.__setattr__(self, "pbc", pbc)
        object.__setattr__(self, "species", [str(x) for x in self.species])
        object.__setattr__(self, "edge_src", src)
        object.__setattr__(self, "edge_dst", dst)
        object.__setattr__(self, "shifts", shifts)
        object.__setattr__(self, "edge_vec", vec)
        object.__setattr__(self, "cutoff", float(self.cutoff))

    @classmethod
    def _trusted(cls, **fields: Any) -> CrystalGraph:
        """Construction from arrays :func:`build_graph` has just made (right dtypes and shapes, owned): no copies
        or checks, only made read-only."""
        graph = object.__new__(cls)
        for name, value in fields.items():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
            object.__setattr__(graph, name, value)
        return graph

    @property
    def num_nodes(self) -> int:
        """Number of sites."""
        return len(self.positions)

    @property
    def num_edges(self) -> int:
        """Number of directed edges."""
        return len(self.edge_src)

    @property
    def edge_length(self) -> np.ndarray:
        """Length of each edge in Å. # [E]"""
        return np.linalg.norm(self.edge_vec, axis=1)

    def neighbor_counts(self) -> np.ndarray:
        """Number of edges arriving at each site (its neighbours within the cutoff, images counted). # [n]"""
        return np.bincount(self.edge_dst, minlength=self.num_nodes).astype(np.int64)

    def __repr__(self) -> str:
        kind = "finite" if self.cell is None else f"pbc={self.pbc}"
        sizes = f"num_nodes={self.num_nodes}, num_edges={self.num_edges}"
        return f"CrystalGraph({sizes}, cutoff={self.cutoff:g}, {kind})"


def _check_cutoff(cutoff: Any) -> float:
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float, np.integer, np.floating)):
        raise CutoffError(f"cutoff must be a finite number > 0 (Å), got {cutoff!r} ({type(cutoff).__name__})")
    value = float(cutoff)
    if not math.isfinite(value) or value <= 0:
        raise CutoffError(f"cutoff must be a finite number > 0 (Å), got {cutoff!r}")
    return value


def build_graph(obj: Any, cutoff: float, *, self_interaction: bool = False, min_distance: float = 0.5) -> CrystalGraph:
    """Build the neighbour graph of a structure.

    Args:
        obj: Anything :func:`matsym.io.load_structure` takes (Structure, Molecule, Atoms, [n, 3] array, path);
            it is validated.
        cutoff: Neighbour cutoff in Å (edges have length <= cutoff). May exceed the cell: an atom then has
            many images of the same neighbour, and images of itself.
        self_interaction: Also add a zero-length edge ``(i, i, 0)`` per site. Off by default: spherical
            harmonics of a zero vector are undefined, so equivariant convolutions must not see them.
        min_distance: Passed to validation: smallest allowed interatomic distance in Å.

    Returns:
        The graph, edges sorted by ``dst``, then ``src``, then shift.

    Raises:
        CutoffError: ``cutoff`` is not a finite positive number, or leaves an atom without any neighbour (the
            message names the first such atoms and the smallest cutoff that would connect every atom).
        StructureError, DisorderError, FileFormatError: from loading and validating ``obj``.
    """
    from pymatgen.core import IMolecule, IStructure

    from matsym.io import validate_structure

    rc = _check_cutoff(cutoff)
    # pymatgen objects are only read here: no copy. The close-contact check reuses the edges found below.
    s = obj if isinstance(obj, (IStructure, IMolecule)) else load_structure(obj, validate=False)
    validate_structure(s, min_distance=0.0 if min_distance <= rc else min_distance, check_order=False)
    positions = np.array(s.cart_coords, dtype=np.float64)  # [n, 3], our own copy (made read-only below)
    try:
        species = [site.specie.symbol for site in s]  # pymatgen raises AttributeError on a disordered site
    except AttributeError:
        validate_structure(s, min_distance=0.0)  # raises DisorderError naming the site
        raise
    n = len(positions)

    if isinstance(s, IStructure):
        cell = np.array(s.lattice.matrix, dtype=np.float64)  # [3, 3]
        pbc = tuple(bool(p) for p in s.lattice.pbc)
        src, dst, shifts = _periodic_pairs(s, positions, cell, pbc, rc)
    else:
        cell = None
        pbc = (False, False, False)
        src, dst = _finite_pairs(positions, rc)
        shifts = np.zeros((len(src), 3), dtype=np.int64)

    vec = _edge_vectors(positions, cell, src, dst, shifts)  # [E, 3]
    length = np.sqrt(np.einsum("ij,ij->i", vec, vec))
    keep = (length <= rc) & ~((src == dst) & ~shifts.any(axis=1))
    if not keep.all():
        src, dst, shifts, vec, length = src[keep], dst[keep], shifts[keep], vec[keep], length[keep]
    if 0 < min_distance <= rc and len(length) and float(length.min()) < min_distance:
        validate_structure(s, min_distance=min_distance)  # raises with the full message

    counts = np.bincount(dst, minlength=n)
    if np.any(counts == 0):
        _raise_isolated(s, positions, rc, np.flatnonzero(counts == 0), species)

    if self_interaction:
        idx = np.arange(n, dtype=np.int64)
        src = np.concatenate([src, idx])
        dst = np.concatenate([dst, idx])
        shifts = np.concatenate([shifts, np.zeros((n, 3), dtype=np.int64)])
        vec = np.concatenate([vec, np.zeros((n, 3))])

    # a canonical edge order (not the neighbour library's): results do not depend on the library or on how the
    # input was rotated or translated, at the price of a sort (about as long as vesin's search at 10^6 edges)
    lo = shifts.min(initial=0)
    base = int(shifts.max(initial=0)) - int(lo) + 1
    shift_code = ((shifts[:, 0] - lo) * base + (shifts[:, 1] - lo)) * base + (shifts[:, 2] - lo)
    key = (dst * n + src) * (base**3) + shift_code  # dst, then src, then shift (lexicographic)
    order = np.argsort(key, kind="stable")
    return CrystalGraph._trusted(
        positions=positions,
        cell=cell,
        pbc=pbc,
        species=species,
        edge_src=src[order],
        edge_dst=dst[order],
        shifts=shifts[order],
        edge_vec=vec[order],
        cutoff=rc,
    )


def _periodic_pairs(s, positions, cell, pbc, rc):
    """Directed pairs ``(src, dst, shift)`` within ``rc``: vesin when installed (fastest measured), else pymatgen."""
    try:
        from vesin import NeighborList
    except ImportError:
        NeighborList = None
    if NeighborList is not None:
        i, j, shifts = NeighborList(cutoff=rc, full_list=True).compute(
            points=positions, box=cell, periodic=list(pbc), quantities="ijS"
        )
        # vesin: D = pos[j] - pos[i] + S @ box, i.e. src = i, dst = j
        return np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64), np.asarray(shifts, dtype=np.int64)
    centers, points, offsets, _ = s.get_neighbor_list(r=rc, numerical_tol=1e-8, exclude_self=True)
    src = np.asarray(centers, dtype=np.int64)
    dst = np.asarray(points, dtype=np.int64)
    shifts = np.rint(np.asarray(offsets, dtype=np.float64)).astype(np.int64).reshape(-1, 3)
    return src, dst, shifts


def nearest_neighbor_distances(obj: Any, *, min_distance: float = 0.5) -> np.ndarray:
    """Distance from each atom to its nearest other atom, periodic images (its own included) counted.

    The largest entry is the smallest cutoff for which :func:`build_graph` gives every atom a neighbour.

    Args:
        obj: Anything :func:`matsym.io.load_structure` takes; it is validated.
        min_distance: Passed to validation.

    Returns:
        Distances in Å, in site order; inf for an atom with no neighbour at any distance (a lone atom of a
        finite cloud). # [n]
    """
    s = load_structure(obj, validate=True, min_distance=min_distance)
    positions = np.asarray(s.cart_coords, dtype=np.float64)
    return _nearest_distances(s, positions, np.arange(len(s)), 1.0)


def _edge_vectors(
    positions: np.ndarray, cell: np.ndarray | None, src: np.ndarray, dst: np.ndarray, shifts: np.ndarray
) -> np.ndarray:
    vec = positions[dst] - positions[src]  # [E, 3]
    if cell is not None:
        vec = vec + shifts.astype(np.float64) @ cell
    return vec


def _finite_pairs(positions: np.ndarray, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """All ordered pairs ``(i, j)``, ``i != j``, with ``|r_j - r_i| <= cutoff``."""
    from scipy.spatial import cKDTree

    pairs = cKDTree(positions).query_pairs(cutoff, output_type="ndarray").astype(np.int64)  # [P, 2], i < j
    src = np.concatenate([pairs[:, 0], pairs[:, 1]])
    dst = np.concatenate([pairs[:, 1], pairs[:, 0]])
    return src, dst


def _nearest_distances(s: Any, positions: np.ndarray, idx: np.ndarray, start: float) -> np.ndarray:
    """Distance from each site in ``idx`` to its nearest other atom or image (inf if there is none)."""
    from pymatgen.core import IStructure

    nearest = np.full(len(idx), np.inf)
    if not isinstance(s, IStructure):
        if len(positions) > 1:
            from scipy.spatial import cKDTree

            d, _ = cKDTree(positions).query(positions[idx], k=2)
            nearest = d[:, 1]
        return nearest
    r = max(start, 1.0)
    sites = [s[int(i)] for i in idx]
    while r <= _MAX_SEARCH_RADIUS:
        r *= 2.0
        centers, _, _, dist = s.get_neighbor_list(r=r, sites=sites, numerical_tol=1e-8, exclude_self=False)
        found = dist > 1e-8  # the site itself at zero shift
        np.minimum.at(nearest, centers[found], dist[found])
        if np.all(np.isfinite(nearest)):
            break
    return nearest


def _raise_isolated(s: Any, positions: np.ndarray, cutoff: float, isolated: np.ndarray, species: list[str]) -> None:
    shown = ", ".join(f"{int(i)} ({species[int(i)]})" for i in isolated[:5])
    more = f", ... ({len(isolated)} in all)" if len(isolated) > 5 else ""
    nearest = _nearest_distances(s, positions, isolated, cutoff)
    if np.all(np.isfinite(nearest)):
        need = math.ceil(float(nearest.max()) * 1e4) / 1e4
        hint = f"the smallest cutoff that gives every atom a neighbour is {need:.4f} Å"
    else:
        hint = "some of them have no neighbour at any distance (a lone atom without periodic images)"
    raise CutoffError(f"cutoff {cutoff:g} Å leaves atom(s) without a neighbour: {shown}{more}; {hint}")

"""Periodic crystal graphs: every pair of atoms closer than a cutoff, periodic images included.

Edge convention (the same as ``ase.neighborlist.neighbor_list("ijS")`` with ``i = src``, ``j = dst``)::

    edge_vec[e] = positions[edge_dst[e]] - positions[edge_src[e]] + shifts[e] @ cell

so ``edge_vec`` points from the neighbour ``src`` (its image at ``-shift``) to the centre ``dst`` that
receives the message. The edge set is closed under reversal: ``(src, dst, shift)`` is present iff
``(dst, src, -shift)`` is, with the opposite vector. An atom's own periodic images are edges (``src == dst``,
non-zero shift) when the cell is shorter than the cutoff; zero-length self edges are never made unless
``self_interaction=True``.

Periodic neighbour lists come from vesin (a dependency; the fastest library measured by
``benchmarks/bench_graph.py`` once the cell is two cutoffs wide), or, in smaller cells and where vesin is missing,
from pymatgen's compiled ``find_points_in_spheres``. Both give the same edge set; the tests compare each with
``ase.neighborlist.neighbor_list``. Finite point clouds use a k-d tree
(``scipy.spatial.cKDTree``), which gives exactly the pairs with distance <= cutoff. Edge vectors are always
recomputed in float64 from the positions and integer shifts rather than taken from the library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from matsym.errors import CutoffError, DisorderError, InputError, StructureError
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


BACKENDS = ("auto", "vesin", "pymatgen", "torch-cluster")


def build_graph(
    obj: Any, cutoff: float, *, self_interaction: bool = False, min_distance: float = 0.5, backend: str = "auto"
) -> CrystalGraph:
    """Build the neighbour graph of a structure.

    Args:
        obj: Anything :func:`matsym.io.load_structure` takes (Structure, Molecule, Atoms, [n, 3] array, path);
            it is validated.
        cutoff: Neighbour cutoff in Å (edges have length <= cutoff). May exceed the cell: an atom then has
            many images of the same neighbour, and images of itself.
        self_interaction: Also add a zero-length edge ``(i, i, 0)`` per site. Off by default: spherical
            harmonics of a zero vector are undefined, so equivariant convolutions must not see them.
        min_distance: Passed to validation: smallest allowed interatomic distance in Å.
        backend: Neighbour library: ``"auto"`` (vesin, or pymatgen in cells narrower than two cutoffs; a k-d tree
            for finite clouds), ``"vesin"``, ``"pymatgen"``, or ``"torch-cluster"`` (the ``cluster`` extra,
            :mod:`matsym.graph_torch_cluster`). Every backend gives the same graph.

    Returns:
        The graph, edges sorted by ``dst``, then ``src``, then shift.

    Raises:
        CutoffError: ``cutoff`` is not a finite positive number, or leaves an atom without any neighbour (the
            message names the first such atoms and the smallest cutoff that would connect every atom).
        StructureError, DisorderError, FileFormatError: from loading and validating ``obj``.
        InputError: unknown ``backend``, or one that is not installed.
    """
    from pymatgen.core import IMolecule, IStructure

    if backend not in BACKENDS:
        raise InputError(f"graph backend must be one of {', '.join(BACKENDS)}; got {backend!r}")

    from matsym.io import _validated_positions, site_symbols, validate_structure

    rc = _check_cutoff(cutoff)
    # pymatgen objects are only read here: no copy. The close-contact check reuses the edges found below.
    s = obj if isinstance(obj, (IStructure, IMolecule)) else load_structure(obj, validate=False)
    # [n, 3], our own copy (made read-only below)
    positions = _validated_positions(s, min_distance=0.0 if min_distance <= rc else min_distance, check_order=False)
    species = site_symbols(s)
    if species is None:
        validate_structure(s, min_distance=0.0)  # raises DisorderError naming the site
        raise DisorderError("structure has a disordered site: expected one element of occupancy 1 per site")
    n = len(positions)

    if isinstance(s, IStructure):
        cell = np.array(s.lattice.matrix, dtype=np.float64)  # [3, 3]
        pbc = tuple(bool(p) for p in s.lattice.pbc)
        src, dst, shifts, half = _periodic_pairs(positions, cell, pbc, rc, backend)
    else:
        half = False
        cell = None
        pbc = (False, False, False)
        if backend == "torch-cluster":
            from matsym.graph_torch_cluster import pairs

            src, dst, shifts = pairs(positions, None, pbc, rc)
        else:
            src, dst = _finite_pairs(positions, rc)
            shifts = np.zeros((len(src), 3), dtype=np.int64)

    if self_interaction:
        if half:  # an (i, i, 0) edge is its own reverse: complete the list first
            src, dst, shifts = np.concatenate([src, dst]), np.concatenate([dst, src]), np.concatenate([shifts, -shifts])
            half = False
        idx = np.arange(n, dtype=np.int64)
        src = np.concatenate([src, idx])
        dst = np.concatenate([dst, idx])
        shifts = np.concatenate([shifts, np.zeros((n, 3), dtype=np.int64)])

    # a canonical edge order (not the neighbour library's): results do not depend on the library or on how the
    # input was rotated or translated. The order comes from sorting one packed integer key per edge.
    src, dst, shifts, vec, length2 = _canonical_edges(positions, cell, src, dst, shifts, n, add_reverses=half)
    keep = length2 <= rc * rc  # the libraries admit pairs up to a tolerance beyond the cutoff
    if not keep.all():
        src, dst, shifts, vec, length2 = src[keep], dst[keep], shifts[keep], vec[keep], length2[keep]
    if 0 < min_distance <= rc and len(length2):
        real = length2[length2 > 0.0] if self_interaction else length2
        if len(real) and float(real.min()) < min_distance * min_distance:
            validate_structure(s, min_distance=min_distance)  # raises with the full message

    counts = np.bincount(dst, minlength=n)
    if np.any(counts <= (1 if self_interaction else 0)):
        _raise_isolated(s, positions, rc, np.flatnonzero(counts <= (1 if self_interaction else 0)), species)

    return CrystalGraph._trusted(
        positions=positions,
        cell=cell,
        pbc=pbc,
        species=species,
        edge_src=src,
        edge_dst=dst,
        shifts=shifts,
        edge_vec=vec,
        cutoff=rc,
    )


_KEY_BITS = 63  # bits of the packed sort key (int64); a lexsort takes over beyond


def _canonical_edges(
    positions: np.ndarray,
    cell: np.ndarray | None,
    src: np.ndarray,
    dst: np.ndarray,
    shifts: np.ndarray,
    n: int,
    *,
    add_reverses: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Edges sorted by ``dst``, then ``src``, then shift, with their float64 vectors and squared lengths.

    ``src`` and ``dst`` must be int64 arrays the caller owns and no longer needs: they are overwritten. With
    ``add_reverses``, the pairs are a half list and the reverse ``(dst, src, -shift)`` of each is added.

    ``(dst, src, shift)`` is packed into one int64 per edge and the keys are sorted in place (several times
    faster than an argsort and the four gathers it needs); the sorted keys are then unpacked with bit operations,
    and the vectors computed from the sorted indices, the cell translations coming from a small table of the
    shifts that occur. Falls back to a lexsort where the key would not fit in 63 bits.
    """
    if len(src) == 0:
        return src, dst, np.zeros((0, 3), dtype=np.int64), np.zeros((0, 3)), np.zeros(0)
    reach = int(np.abs(shifts).max())
    lo = -reach  # a range symmetric about 0, so that the packed code of -shift is a constant minus that of shift
    span = 2 * reach + 1
    node_bits = max(1, (n - 1).bit_length())
    shift_bits = max(1, (span - 1).bit_length())
    if 2 * node_bits + 3 * shift_bits > _KEY_BITS or span**3 > 1 << 20:
        if add_reverses:
            src, dst, shifts = np.concatenate([src, dst]), np.concatenate([dst, src]), np.concatenate([shifts, -shifts])
        order = np.lexsort((shifts[:, 2], shifts[:, 1], shifts[:, 0], src, dst))
        src, dst, shifts = src[order], dst[order], shifts[order].astype(np.int64)
        vec = positions[dst] - positions[src]
        if cell is not None:
            vec += shifts.astype(np.float64) @ cell
        return src, dst, shifts, vec, np.einsum("ij,ij->i", vec, vec)
    # Memory is reused wherever it can be: on this kind of machine a fresh large array costs more in page faults
    # than the arithmetic done in it. The gathers are 1-D (numpy gathers rows of an [n, 3] array several times
    # slower than elements of a 1-D one).
    if add_reverses:
        key = np.empty(2 * len(src), dtype=np.int64)
        forward, backward = key[: len(src)], key[len(src) :]
        np.left_shift(dst, node_bits, out=forward)
        forward |= src
        np.left_shift(src, node_bits, out=backward)
        backward |= dst
        code, temp = src, dst  # the caller's arrays, free from here on
        np.subtract(shifts[:, 0], lo, out=code, casting="unsafe")
        for c in (1, 2):
            code <<= shift_bits
            np.subtract(shifts[:, c], lo, out=temp, casting="unsafe")
            code |= temp
        forward <<= 3 * shift_bits
        forward |= code
        # each field of the code of -shift is (span - 1) minus that of shift: no borrows between fields
        np.subtract(((span - 1) << (2 * shift_bits)) | ((span - 1) << shift_bits) | (span - 1), code, out=code)
        backward <<= 3 * shift_bits
        backward |= code
        spare = None
    else:
        key = dst  # the caller's array, overwritten
        key <<= node_bits
        key |= src
        spare = src  # free from here on
        for c in range(3):
            key <<= shift_bits
            np.subtract(shifts[:, c], lo, out=spare, casting="unsafe")
            key |= spare
    e = len(key)
    key.sort()
    shifts = np.empty((e, 3), dtype=np.int64)
    for c in (2, 1, 0):
        np.bitwise_and(key, (1 << shift_bits) - 1, out=shifts[:, c])
        key >>= shift_bits
    src = np.bitwise_and(key, (1 << node_bits) - 1, out=spare)
    key >>= node_bits
    dst = key
    rows = np.empty((3, e), dtype=np.float64)  # the vectors' x, y, z, each contiguous
    scratch = np.empty(e, dtype=np.float64)
    flat = np.empty(e, dtype=np.int64)  # index of each edge's shift in the table below
    np.multiply(shifts[:, 0], span, out=flat)
    flat += shifts[:, 1]
    flat *= span
    flat += shifts[:, 2]
    shifts += lo
    if cell is not None:
        grid = np.arange(lo, lo + span, dtype=np.float64)
        table = (grid[:, None, None, None] * cell[0] + grid[None, :, None, None] * cell[1]).reshape(span, span, 1, 3)
        table = (table + grid[None, None, :, None] * cell[2]).reshape(-1, 3)  # [span^3, 3] Cartesian shifts
    # the indices are in range by construction (decoded from the key): mode="clip" skips the bounds check and the
    # buffering that numpy does with out= in its default mode, about 3x faster per gather
    for c in range(3):
        column = np.ascontiguousarray(positions[:, c])
        row = rows[c]
        np.take(column, dst, out=row, mode="clip")
        row -= np.take(column, src, out=scratch, mode="clip")
        if cell is not None:
            row += np.take(np.ascontiguousarray(table[:, c]), flat, out=scratch, mode="clip")
    length2 = flat.view(np.float64)  # memory already touched, free again
    np.multiply(rows[0], rows[0], out=length2)
    for c in (1, 2):
        length2 += np.multiply(rows[c], rows[c], out=scratch)
    vec = np.ascontiguousarray(rows.T)  # [e, 3]: one interleaving pass instead of strided arithmetic per column
    return src, dst, shifts, vec, length2


def _as_int64(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint64:
        return a.view(np.int64)
    return a.astype(np.int64, copy=False)


def _perpendicular_widths(cell: np.ndarray) -> list[float]:
    """Distance between opposite faces of the cell, along each lattice vector (in plain floats: called on every
    graph, where numpy's per-call overhead on 3-vectors would cost more than the arithmetic)."""
    a, b, c = (tuple(float(x) for x in row) for row in cell)

    def cross(u, v):
        return (u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0])

    faces = (cross(b, c), cross(c, a), cross(a, b))
    volume = abs(sum(x * y for x, y in zip(a, faces[0], strict=True)))
    return [volume / math.sqrt(sum(x * x for x in f)) for f in faces]


def _backend(cell: np.ndarray, pbc: tuple[bool, bool, bool], rc: float) -> str:
    """``"vesin"`` or ``"pymatgen"``: which library finds the pairs of this cell.

    vesin (a cell list) is the fastest library measured once the cell is at least two cutoffs wide along every
    periodic direction; in smaller cells its cell list degenerates and pymatgen's compiled search is up to 5x
    faster (``benchmarks/bench_graph.py``), so that one is used there, and wherever vesin is missing.
    """
    if any(p and w < 2.0 * rc for p, w in zip(pbc, _perpendicular_widths(cell), strict=True)):
        return "pymatgen"
    try:
        import vesin  # noqa: F401
    except ImportError:
        return "pymatgen"
    return "vesin"


def _periodic_pairs(positions, cell, pbc, rc, backend: str = "auto"):
    """Pairs ``(src, dst, shift)`` within ``rc``, unsorted (pairs up to a tolerance beyond it may appear), and
    whether they are a half list (each pair once, its reverse to be added) rather than every directed pair."""
    if backend == "torch-cluster":
        from matsym.graph_torch_cluster import pairs

        return (*pairs(positions, cell, pbc, rc), False)
    if backend == "auto":
        backend = _backend(cell, pbc, rc)
    if backend == "vesin":
        try:
            from vesin import NeighborList
        except ImportError:
            raise InputError("graph backend 'vesin' was asked for, but vesin is not installed") from None

        # a half list (each pair once) costs vesin about half as much; the reverses are added in the sort
        i, j, shifts = NeighborList(cutoff=rc, full_list=False).compute(
            points=positions, box=cell, periodic=list(pbc), quantities="ijS"
        )
        # vesin: D = pos[j] - pos[i] + S @ box, i.e. src = i, dst = j; its uint64 indices viewed as int64 (no copy)
        return _as_int64(i), _as_int64(j), shifts, True
    from pymatgen.optimization.neighbors import find_points_in_spheres

    centers, points, images, distances = find_points_in_spheres(
        positions, positions, r=rc, pbc=np.array(pbc, dtype=np.int64), lattice=cell, tol=1e-8
    )
    # pymatgen: the neighbour is points[k] + images[k] @ lattice around centers[k], i.e. src = centers
    shifts = np.rint(images).astype(np.int64).reshape(-1, 3)
    centers = _as_int64(centers)
    points = _as_int64(points)
    other = (distances > 1e-8) | (centers != points)  # drop each atom paired with itself (at zero shift)
    return centers[other], points[other], shifts[other], False


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

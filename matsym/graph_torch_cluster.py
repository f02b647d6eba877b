"""Neighbour pairs from torch-cluster (the optional ``cluster`` extra): ``build_graph(..., backend="torch-cluster")``.

torch-cluster's ``radius`` finds, for each query point, the points within a radius (on the CPU with a k-d tree,
on a GPU by brute force). It knows nothing of periodicity, so the periodic images of the cell that can lie within
the cutoff are laid out explicitly: along each periodic lattice vector ``k``, shifts up to
``ceil(cutoff / width_k + spread_k)`` (``width_k`` the distance between the cell's opposite faces, ``spread_k``
the range of the sites' fractional coordinates), which bounds ``|shift_k|`` of any pair within the cutoff.
Every directed pair is returned (a full list); :func:`matsym.graph.build_graph` then sorts the pairs, computes
the vectors in float64 and drops those beyond the cutoff, as for the other backends, so the edge set is the same.

Measured against vesin and pymatgen in ``benchmarks/bench_graph.py``; it is used only where asked for.
"""

from __future__ import annotations

import math

import numpy as np

from matsym.errors import InputError

__all__ = ["available", "pairs"]

_EXTRA = 'torch-cluster is not installed: install the extra with pip install "matsym[cluster]"'


def available() -> bool:
    """Whether torch-cluster can be imported."""
    try:
        import torch_cluster  # noqa: F401
    except ImportError:
        return False
    return True


def _import():
    try:
        import torch_cluster
    except ImportError as exc:
        raise InputError(f"graph backend 'torch-cluster' was asked for, but {_EXTRA} ({exc})") from None
    return torch_cluster


def pairs(
    positions: np.ndarray, cell: np.ndarray | None, pbc: tuple[bool, bool, bool], rc: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every directed pair ``(src, dst, shift)`` within ``rc`` (a little beyond it too), ``src`` the query site.

    ``positions[dst] - positions[src] + shift @ cell`` is the pair's vector (shifts are zeros without a cell).
    """
    import torch

    torch_cluster = _import()
    n = len(positions)
    if cell is None or not any(pbc):
        shifts = np.zeros((1, 3), dtype=np.int64)
    else:
        frac = np.linalg.solve(cell.T, positions.T).T  # [n, 3]
        volume = abs(float(np.linalg.det(cell)))
        reach = []
        for k in range(3):
            if not pbc[k]:
                reach.append(0)
                continue
            width = volume / float(np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])))
            spread = float(frac[:, k].max() - frac[:, k].min())
            reach.append(math.ceil(rc / width + spread))
        grids = [np.arange(-r, r + 1) for r in reach]
        shifts = np.stack(np.meshgrid(*grids, indexing="ij"), axis=-1).reshape(-1, 3).astype(np.int64)
    offsets = shifts @ cell if cell is not None else np.zeros((1, 3))  # [S, 3] Cartesian translations
    images = (positions[None, :, :] + offsets[:, None, :]).reshape(-1, 3)  # image s of site i at row s * n + i
    # a hair beyond the cutoff: pairs at the cutoff are kept (build_graph filters to <= rc in float64 afterwards)
    r = rc * (1.0 + 1e-9) + 1e-9
    query = torch.from_numpy(np.ascontiguousarray(positions, dtype=np.float64))
    points = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float64))
    found = torch_cluster.radius(points, query, r, max_num_neighbors=len(images))  # [2, P]: (query, point)
    src = found[0].numpy().astype(np.int64)
    image = found[1].numpy().astype(np.int64)
    dst = image % n
    pair_shifts = shifts[image // n]
    other = (src != dst) | np.any(pair_shifts != 0, axis=1)  # each site paired with itself at zero shift
    return src[other], dst[other], pair_shifts[other]

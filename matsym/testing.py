"""Assertion helpers shared by matsym's tests and usable in users' own tests.

They turn a physics claim into one readable line, e.g. ``assert_equivariant(net, structure, features)``.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["assert_equivariant", "equivariance_error", "random_orthogonal"]


def random_orthogonal(rng: np.random.Generator, *, inversion: bool | None = None) -> np.ndarray:
    """A random element of O(3) as a 3x3 matrix (Haar rotation, times -1 with probability 1/2 or as asked).

    Rotations within 0.5 rad of e3nn's gimbal lock (Euler beta near 0 or pi) are redrawn: there e3nn's
    ``D_from_matrix`` goes through ill-conditioned angles and loses about six digits (measured: 2e-10 instead
    of 1e-14 on an otherwise exact float64 network), which would be blamed on the network under test.
    """
    from e3nn import o3

    while True:
        q, r = np.linalg.qr(rng.normal(size=(3, 3)))
        q = q * np.sign(np.diag(r))
        if np.linalg.det(q) < 0:
            q[:, 0] *= -1
        _, beta, _ = o3.matrix_to_angles(torch.as_tensor(q, dtype=torch.float64))
        if abs(float(torch.sin(beta))) > np.sin(0.5):
            break
    if inversion is None:
        inversion = bool(rng.integers(2))
    return -q if inversion else q


def _wigner(irreps, q: np.ndarray) -> np.ndarray:
    """``irreps.D_from_matrix(q)`` to double precision (e3nn builds it in the default dtype)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return irreps.D_from_matrix(torch.as_tensor(q, dtype=torch.float64)).numpy()
    finally:
        torch.set_default_dtype(previous)


def _outputs(net, positions, cell, pbc, species, features, cutoff, dtype):
    from matsym.graph import build_graph
    from matsym.model import EdgeGeometry

    if cell is None:
        from pymatgen.core import Molecule

        obj = Molecule(species, positions)
    else:
        from pymatgen.core import Lattice, Structure

        obj = Structure(Lattice(cell, pbc=tuple(pbc)), species, positions, coords_are_cartesian=True)
    graph = build_graph(obj, cutoff)
    geometry = EdgeGeometry.from_graph(graph, net.config, dtype=dtype)
    with torch.no_grad():
        return net(torch.as_tensor(features, dtype=dtype), geometry).numpy()


def equivariance_error(
    net,
    structure,
    features,
    *,
    cutoff: float,
    n_trials: int = 4,
    seed: int = 0,
) -> float:
    """Largest deviation from equivariance of ``net`` over random O(3) elements and translations.

    For each trial a random orthogonal matrix Q (proper or improper) and translation t are drawn; positions and
    lattice vectors are transformed, input features are transformed with ``irreps_in.D_from_matrix(Q)`` and the
    output is compared with ``irreps_out.D_from_matrix(Q)`` applied to the untransformed output.

    Args:
        net: an :class:`matsym.model.EquivariantNetwork`.
        structure: pymatgen ``Structure`` (periodic) or ``Molecule`` (finite).
        features: node features in ``net.irreps_in``.  # [n, irreps_in.dim]
        cutoff: neighbour cutoff in Å.

    Returns:
        max |f(g x) - D(g) f(x)| over trials and entries, in the network's dtype (build float64 networks with
        ``EquivariantNetwork(..., dtype=torch.float64)``: casting an e3nn module up does not restore its constants).
    """
    rng = np.random.default_rng(seed)
    # compute in the network's own dtype: casting an e3nn module up from float32 does not restore its constants
    dtype = next(net.parameters()).dtype
    features = np.asarray(features, dtype=np.float64)
    species = [str(site.specie) for site in structure]
    positions = np.asarray(structure.cart_coords, dtype=np.float64)
    cell = np.asarray(structure.lattice.matrix, dtype=np.float64) if hasattr(structure, "lattice") else None
    pbc = structure.lattice.pbc if cell is not None else None
    reference = _outputs(net, positions, cell, pbc, species, features, cutoff, dtype)
    worst = 0.0
    for _ in range(n_trials):
        q = random_orthogonal(rng)
        t = rng.normal(size=3) * 3.0
        d_in, d_out = _wigner(net.irreps_in, q), _wigner(net.irreps_out, q)
        moved = _outputs(
            net,
            positions @ q.T + t,
            None if cell is None else cell @ q.T,
            pbc,
            species,
            features @ d_in.T,
            cutoff,
            dtype,
        )
        worst = max(worst, float(np.abs(moved - reference @ d_out.T).max()))
    return worst


def assert_equivariant(net, structure, features, *, cutoff: float, atol: float = 1e-10, **kwargs) -> None:
    """Assert :func:`equivariance_error` is at most ``atol`` (float64 by default)."""
    err = equivariance_error(net, structure, features, cutoff=cutoff, **kwargs)
    if not err <= atol:
        raise AssertionError(f"network is not equivariant: max error {err:.3e} > atol {atol:.1e}")

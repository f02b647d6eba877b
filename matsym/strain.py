"""Strain as part of the target: the global 0e+2e quantity the search predicts beside the per-site signals.

A target can break the parent's symmetry through its cell alone (fcc -> fct at ideal positions): registration
splits the lattice deformation ``F = R U`` off the displacements, and the symmetric Biot strain ``U - I`` (rotation
removed, in the parent's Cartesian frame) is then as much part of the target as the displacements are. A symmetric
3x3 tensor is the irreps ``0e + 2e`` (trace and traceless part); it is one global quantity, not a per-site one.

:class:`StrainHead` predicts it from the network's inputs (fixed per-site scalars and the order parameters) and the
parent's fixed local geometry, through per-site equivariant maps averaged over the sites (an equivariant readout of
pooled node features). Averaging equivariant functions of a configuration that has the parent's symmetry gives a
tensor with that symmetry, so Curie's principle covers the strain as it covers the signals: a cubic parent with a zero
order parameter can only produce an isotropic strain, and a tetragonal strain needs an order parameter that breaks
the cubic symmetry (a 2e component of 3z²-r² type enters linearly; 1o and 1e order parameters enter quadratically,
as the strain of a polar or tilted perovskite does).

**Relative weight.** A strain ``eps`` counts in the fit like a displacement of ``|eps| * ell`` on every site,
``ell = (V / N)^(1/3)`` the mean interatomic spacing of the parent: the loss is

    ( mean_i |d_i - d_i*|^2  +  w * ell^2 * |eps - eps*|_F^2 ) / ( D^2 + w * ell^2 * |eps*|_F^2 )

with ``D`` the RMS target displacement and ``w`` = ``SearchConfig.strain_weight`` (default 1). The strain's share of
the fit is ``w ell^2 |eps*|^2 / (D^2 + w ell^2 |eps*|^2)``. Without strain (``ell |eps*| <= nothing_tol``) the head
is not built and the search is the per-site search unchanged.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from e3nn import o3

__all__ = ["StrainHead", "StrainTerm", "strain_from_irreps", "strain_to_irreps", "strained"]

STRAIN_IRREPS = "1x0e+1x2e"


@functools.cache
def _change_of_basis() -> np.ndarray:
    """Orthonormal basis of symmetric 3x3 tensors as 0e+2e (e3nn basis, y polar for 2e), float64.  # [6, 3, 3]

    Built under a float64 default dtype: e3nn's change of basis in float32 would put 1e-8 rounding into every strain.
    Built on first use: ``e3nn.io`` imports ``scipy.signal`` (about 1 s), which a search without strain never needs.
    """
    from e3nn.io import CartesianTensor

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        q = CartesianTensor("ij=ji").reduced_tensor_products().change_of_basis
    finally:
        torch.set_default_dtype(previous)
    return np.asarray(q, dtype=np.float64)



def strain_to_irreps(strain: np.ndarray) -> np.ndarray:
    """Symmetric 3x3 strain -> its 0e+2e components (e3nn basis; norm equals the Frobenius norm).  # [6]"""
    eps = np.asarray(strain, dtype=np.float64)
    return np.einsum("kij,ij->k", _change_of_basis(), 0.5 * (eps + eps.T))


def strain_from_irreps(z) -> np.ndarray:
    """0e+2e components (e3nn basis) -> symmetric 3x3 strain.  # [3, 3]"""
    return np.einsum("kij,k->ij", _change_of_basis(), np.asarray(z, dtype=np.float64))


def _local_geometry(geometry, lmax: int = 2) -> tuple[torch.Tensor, o3.Irreps]:
    """Per-site sums of radial basis x spherical harmonics (L <= 2) over incoming edges, float64, in e3nn layout.

    ``K x 0e + K x 1o + K x 2e`` (K radial functions): the fixed local environment of each site, from which a
    non-cubic parent's own anisotropy (e.g. a tetragonal parent's c/a) reaches the strain without an order parameter.
    """
    radial = geometry.edge_radial.double()  # [E, K]
    sh = geometry.edge_sh.double()[:, : (lmax + 1) ** 2]  # [E, 9]
    per_edge = radial[:, :, None] * sh[:, None, :]  # [E, K, 9]
    env = per_edge.new_zeros(geometry.num_nodes, *per_edge.shape[1:])
    env.index_add_(0, geometry.edge_dst, per_edge)
    env = env / geometry.avg_neighbors
    k = radial.shape[1]
    blocks = [env[:, :, l * l : (l + 1) ** 2].reshape(geometry.num_nodes, -1) for l in range(lmax + 1)]
    irreps = o3.Irreps([(k, (l, (-1) ** l)) for l in range(lmax + 1)])
    return torch.cat(blocks, dim=1), irreps


class StrainHead(torch.nn.Module):
    """Equivariant readout of the global strain (0e+2e) from per-site inputs and local geometry, averaged over sites.

    Per site ``h_i = [x_i, g_i]`` (network inputs and fixed local geometry); the site's contribution is a linear map
    of ``h_i`` plus a bilinear map of a small linear mix of ``h_i`` with itself (so that 1o and 1e order parameters
    reach the 2e strain quadratically); the head returns the mean over sites. The result is in units of the search's
    common length scale (see :class:`StrainTerm`).

    Args:
        irreps_in: irreps of the network's per-site input (fixed scalars and order parameters).
        geometry: the search's :class:`matsym.model.EdgeGeometry` (its edge harmonics must reach L = 2).
        mul: copies of each irrep in the mix that enters the bilinear map.
    """

    def __init__(self, irreps_in, geometry, mul: int = 4) -> None:
        super().__init__()
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)  # exact Clebsch-Gordan constants, as the network builds them
        try:
            env, irreps_env = _local_geometry(geometry)
            self.irreps_h = o3.Irreps(irreps_in) + irreps_env
            mix = o3.Irreps([(mul, (l, p)) for l in range(3) for p in (1, -1)])
            mix = o3.Irreps([(m, ir) for m, ir in mix if any(ir == i for _, i in self.irreps_h)])
            self.linear = o3.Linear(self.irreps_h, STRAIN_IRREPS)
            self.mix = o3.Linear(self.irreps_h, mix)
            self.square = o3.FullyConnectedTensorProduct(mix, mix, STRAIN_IRREPS)
        finally:
            torch.set_default_dtype(previous)
        self._env64 = env  # float64 master copy; cast on use, so a float64 evaluation keeps full precision
        self._env: dict = {}

    def _environment(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.dtype, x.device)
        if key not in self._env:
            self._env[key] = self._env64.to(dtype=x.dtype, device=x.device)
        return self._env[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted strain components (0e+2e, e3nn basis) from the per-site network input.  # [6]"""
        h = torch.cat([x, self._environment(x)], dim=1)
        m = self.mix(h)
        return (self.linear(h) + self.square(m, m)).mean(dim=0)


class StrainTerm:
    """The strain part of a search's target and loss (see the module docstring for the weighting).

    Args:
        strain: registered symmetric strain of the target, parent's Cartesian frame.  # [3, 3]
        spacing: ``ell``, the length that turns a strain into a displacement (Å).
        rms_displacement: ``D``, RMS target displacement (Å).
        weight: ``w``, the strain's relative weight.
    """

    def __init__(self, strain: np.ndarray, spacing: float, rms_displacement: float, weight: float) -> None:
        self.strain = np.asarray(strain, dtype=np.float64)
        self.spacing = float(spacing)
        self.weight = float(weight)
        self.rms_displacement = float(rms_displacement)
        z = strain_to_irreps(self.strain)
        strain_sq = self.weight * self.spacing**2 * float((z**2).sum())  # Å^2, displacement-equivalent
        self.scale = math.sqrt(self.rms_displacement**2 + strain_sq)  # the search's common length unit (Å)
        self.share = strain_sq / self.scale**2
        # the head predicts sqrt(w) * ell * z / scale, so the squared error is the weighted term of the loss
        self._factor = math.sqrt(self.weight) * self.spacing / self.scale
        self.target = torch.as_tensor(z * self._factor)  # float64, [6]

    @staticmethod
    def spacing_of(structure) -> float:
        """``ell = (V / N)^(1/3)`` of a periodic structure (Å)."""
        return float((structure.volume / len(structure)) ** (1.0 / 3.0))

    def loss(self, predicted: torch.Tensor) -> torch.Tensor:
        """Weighted squared strain error in the search's relative units (``w ell^2 |d eps|^2 / scale^2``)."""
        target = self.target.to(dtype=predicted.dtype, device=predicted.device)
        return (predicted - target).pow(2).sum()

    def to_strain(self, predicted) -> np.ndarray:
        """Head output -> symmetric strain in the parent's Cartesian frame.  # [3, 3]"""
        z = np.asarray(torch.as_tensor(predicted).detach().cpu().double().numpy()) / self._factor
        return strain_from_irreps(z)

    def error(self, strain: np.ndarray) -> float:
        """Frobenius error of ``strain`` relative to the target strain."""
        norm = float(np.linalg.norm(self.strain))
        return float(np.linalg.norm(np.asarray(strain) - self.strain)) / norm if norm > 0 else 0.0

    def error_sq(self, strain: np.ndarray) -> float:
        """Displacement-equivalent squared error ``w ell^2 |eps - eps*|_F^2`` (Å^2)."""
        return self.weight * self.spacing**2 * float(((np.asarray(strain) - self.strain) ** 2).sum())


def strained(structure, strain: np.ndarray):
    """``structure`` with its lattice and Cartesian positions deformed by ``I + strain`` (Cartesian frame)."""
    from pymatgen.core import Lattice, Structure

    g = np.eye(3) + np.asarray(strain, dtype=np.float64)
    lattice = np.asarray(structure.lattice.matrix, dtype=np.float64) @ g.T  # rows deform as r -> g r
    return Structure(
        Lattice(lattice, pbc=structure.lattice.pbc),
        [site.species for site in structure],
        np.asarray(structure.frac_coords, dtype=np.float64),  # fractional coordinates are unchanged
        site_properties=structure.site_properties or None,
    )

"""Change of basis between e3nn's spherical harmonics and the standard real spherical harmonics.

e3nn 0.6 orders the L = 1 components as (x, y, z) and uses **y as the polar axis** for L >= 2. Users, and the
paper, read components in the standard real spherical harmonics with **z polar**, m = -L..L:

* m > 0: proportional to P_L^m(cos θ) cos(m φ), i.e. Re (x + i y)^m times a polynomial in z;
* m < 0: proportional to P_L^|m|(cos θ) sin(|m| φ), i.e. Im (x + i y)^|m| times the same polynomial;
* m = 0: proportional to P_L(cos θ);

with no Condon-Shortley phase, so that the leading Cartesian polynomial of every component is positive
(L = 1: m = -1, 0, 1 are y, z, x; L = 2, m = 2 is x² - y²). Both bases use e3nn's 'integral' normalisation
(each function has unit norm on the unit sphere), so the change of basis is an orthogonal matrix per L.

The matrices are not hand-written index shuffles: :func:`change_of_basis` evaluates both bases on random
unit vectors (the standard one analytically, in float64) and solves for the matrix, then checks that it is
orthogonal.
Parity does not change the spatial basis, so "1e" and "1o" share one matrix.

Conventions: a coefficient vector ``x_e3nn`` of an irrep block maps to ``x_std = Q @ x_e3nn``; for arrays with
components on the last axis that is ``x_std = x_e3nn @ Q.T``. Because Q is orthogonal the inverse is Q.T.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from matsym.errors import IrrepsError

if TYPE_CHECKING:
    from e3nn import o3

__all__ = [
    "change_of_basis",
    "component_labels",
    "irrep_slices",
    "irreps_change_of_basis",
    "parse_irreps",
    "real_spherical_harmonics",
    "to_e3nn",
    "to_standard",
]

#: Largest L that e3nn 0.6 can evaluate spherical harmonics for.
LMAX_SUPPORTED = 12

_ORTHOGONALITY_TOL = 1e-10

# Cartesian polynomial (up to a positive constant) of each standard real spherical harmonic, L <= 4.
_POLYNOMIAL_NAMES: dict[int, dict[int, str]] = {
    1: {-1: "y", 0: "z", 1: "x"},
    2: {-2: "xy", -1: "yz", 0: "3z²-r²", 1: "xz", 2: "x²-y²"},
    3: {
        -3: "y(3x²-y²)",
        -2: "xyz",
        -1: "y(5z²-r²)",
        0: "z(5z²-3r²)",
        1: "x(5z²-r²)",
        2: "z(x²-y²)",
        3: "x(x²-3y²)",
    },
    4: {
        -4: "xy(x²-y²)",
        -3: "yz(3x²-y²)",
        -2: "xy(7z²-r²)",
        -1: "yz(7z²-3r²)",
        0: "35z⁴-30z²r²+3r⁴",
        1: "xz(7z²-3r²)",
        2: "(x²-y²)(7z²-r²)",
        3: "xz(x²-3y²)",
        4: "x⁴-6x²y²+y⁴",
    },
}


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _check_l(ell: int) -> int:
    if isinstance(ell, bool) or not isinstance(ell, int | np.integer):
        raise IrrepsError(f"Expected an integer degree l, got {ell!r} of type {type(ell).__name__}.")
    ell = int(ell)
    if not 0 <= ell <= LMAX_SUPPORTED:
        raise IrrepsError(f"Expected a degree 0 <= l <= {LMAX_SUPPORTED} (e3nn's limit), got l={ell}.")
    return ell


def parse_irreps(irreps: Any) -> o3.Irreps:
    """Parse an e3nn irreps specification, raising :class:`IrrepsError` on bad input.

    Args:
        irreps: anything ``e3nn.o3.Irreps`` accepts ("2x1e+0o", an ``Irreps`` or ``Irrep``).

    Returns:
        The parsed ``e3nn.o3.Irreps``.
    """
    from e3nn import o3

    try:
        parsed = o3.Irreps(irreps)
    except (ValueError, TypeError, AssertionError, AttributeError) as exc:
        raise IrrepsError(f"Expected an e3nn irreps string such as '1x0e+2x1o', got {irreps!r} ({exc}).") from exc
    for _, ir in parsed:
        if ir.l > LMAX_SUPPORTED:
            raise IrrepsError(f"Irreps {irreps!r} contain l={ir.l}; at most l={LMAX_SUPPORTED} is supported.")
    return parsed


# ------------------------------------------------------------------------------------------------------------
# Standard real spherical harmonics, analytic
# ------------------------------------------------------------------------------------------------------------


def _standard_rsh(ell: int, unit: Any) -> Any:
    """Standard real spherical harmonics of degree ``l`` on unit vectors (numpy or torch, same type out).

    Uses Y_lm = sqrt(2) q_l^|m|(z) Re/Im (x + i y)^|m| (m != 0) and Y_l0 = q_l^0(z), where
    q_l^m(z) sin^m θ = sqrt((2l+1)/(4π) (l-m)!/(l+m)!) P_l^m(z) without Condon-Shortley phase. q is
    computed by the stable recursions for fully normalised associated Legendre functions, so there are no
    factorials and nothing is singular at the poles.
    """
    x, y, z = unit[..., 0], unit[..., 1], unit[..., 2]
    # Re and Im of (x + i y)^m, m = 0..l
    re = [x * 0 + 1]
    im = [x * 0]
    for _ in range(ell):
        re.append(re[-1] * x - im[-1] * y)
        im.append(re[-2] * y + im[-1] * x)
    out = [None] * (2 * ell + 1)
    qmm = 1.0 / math.sqrt(4.0 * math.pi)  # q_m^m, a constant
    for m in range(ell + 1):
        if m > 0:
            qmm *= math.sqrt((2 * m + 1) / (2 * m))
        # upward recursion in degree for fixed m
        q_prev2 = None
        q_prev = z * 0 + qmm  # q_m^m
        q_l = q_prev
        for deg in range(m + 1, ell + 1):
            a = math.sqrt((4 * deg * deg - 1) / (deg * deg - m * m))
            if q_prev2 is None:
                q_l = a * z * q_prev  # q_{m+1}^m = sqrt(2m+3) z q_m^m
            else:
                b = math.sqrt(((deg - 1) ** 2 - m * m) / (4 * (deg - 1) ** 2 - 1))
                q_l = a * (z * q_prev - b * q_prev2)
            q_prev2, q_prev = q_prev, q_l
        if m == 0:
            out[ell] = q_l
        else:
            out[ell + m] = math.sqrt(2.0) * q_l * re[m]
            out[ell - m] = math.sqrt(2.0) * q_l * im[m]
    if _is_torch(unit):
        import torch

        return torch.stack(out, dim=-1)
    return np.stack(out, axis=-1)


def real_spherical_harmonics(l: int, vectors: Any) -> Any:
    """Standard real spherical harmonics (z polar, m = -l..l, 'integral' normalisation) of directions.

    Args:
        l: degree, 0 <= l <= 12.
        vectors: [..., 3] numpy array or torch tensor; only the direction is used (they are normalised).

    Returns:
        [..., 2l+1] values in the standard basis, same array type as ``vectors`` (torch: same dtype/device,
        differentiable; numpy: float64).

    Raises:
        IrrepsError: if ``vectors`` does not have last dimension 3 or contains a zero vector.
    """
    ell = _check_l(l)
    if _is_torch(vectors):
        import torch

        v = vectors if vectors.is_floating_point() else vectors.to(torch.get_default_dtype())
        norm = torch.linalg.norm(v, dim=-1, keepdim=True)
        zero = bool((norm == 0).any())
    else:
        v = np.asarray(vectors, dtype=np.float64)
        norm = np.linalg.norm(v, axis=-1, keepdims=True)
        zero = bool((norm == 0).any())
    if v.ndim == 0 or v.shape[-1] != 3:
        raise IrrepsError(f"Expected vectors of shape [..., 3], got shape {tuple(v.shape)}.")
    if zero:
        raise IrrepsError("Expected non-zero vectors: the direction of a zero vector is undefined.")
    return _standard_rsh(ell, v / norm)


def _e3nn_sh(ell: int, unit: np.ndarray) -> np.ndarray:
    import torch
    from e3nn import o3

    t = torch.as_tensor(unit, dtype=torch.float64)
    return o3.spherical_harmonics(ell, t, normalize=True, normalization="integral").numpy()


# ------------------------------------------------------------------------------------------------------------
# Change of basis
# ------------------------------------------------------------------------------------------------------------


@functools.cache
def _change_of_basis_cached(ell: int) -> np.ndarray:
    dim = 2 * ell + 1
    n_points = max(300, 20 * dim)
    rng = np.random.default_rng(20210101 + ell)
    points = rng.normal(size=(n_points, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    y_e3nn = _e3nn_sh(ell, points)  # [n_points, dim]
    y_std = _standard_rsh(ell, points)  # [n_points, dim]
    # y_std = y_e3nn @ Q.T  ->  least squares for Q.T
    q_t, *_ = np.linalg.lstsq(y_e3nn, y_std, rcond=None)
    q = q_t.T
    # entries that are 0 or ±1 by symmetry come out within ~1e-15 of it; make them exact
    q[np.abs(q) < 1e-13] = 0.0
    unit = np.abs(np.abs(q) - 1.0) < 1e-13
    q[unit] = np.sign(q[unit])
    residual = np.max(np.abs(y_e3nn @ q.T - y_std))
    orth = np.max(np.abs(q @ q.T - np.eye(dim)))
    if not (orth < _ORTHOGONALITY_TOL and residual < 1e-9):
        raise IrrepsError(
            f"Change of basis for l={ell} is not orthogonal (max |Q Q^T - 1| = {orth:.2e}, "
            f"fit residual {residual:.2e}); e3nn's spherical harmonics convention has changed."
        )
    q.setflags(write=False)
    return q


def change_of_basis(l: int) -> np.ndarray:
    """Orthogonal matrix Q_l with ``Y_std = Q_l @ Y_e3nn`` for degree ``l``.

    Args:
        l: degree, 0 <= l <= 12.

    Returns:
        [2l+1, 2l+1] read-only float64 array (cached per l). Rows index the standard basis (m = -l..l),
        columns e3nn's basis.

    Raises:
        IrrepsError: if ``l`` is out of range or the fitted matrix is not orthogonal to 1e-10.
    """
    return _change_of_basis_cached(_check_l(l))


@functools.lru_cache(maxsize=256)
def _irreps_change_of_basis_cached(irreps_str: str) -> np.ndarray:
    irreps = parse_irreps(irreps_str)
    out = np.zeros((irreps.dim, irreps.dim))
    start = 0
    for mul, ir in irreps:
        q = change_of_basis(ir.l)
        d = ir.dim
        for _ in range(mul):
            out[start : start + d, start : start + d] = q
            start += d
    out.setflags(write=False)
    return out


def irreps_change_of_basis(irreps: Any) -> np.ndarray:
    """Block-diagonal change of basis (e3nn -> standard) for a whole irreps specification.

    Args:
        irreps: e3nn irreps ("2x1e+0o", ``Irreps``); multiplicities included, parity ignored.

    Returns:
        [dim, dim] read-only float64 array Q with ``x_std = Q @ x_e3nn``.
    """
    return _irreps_change_of_basis_cached(str(parse_irreps(irreps)))


def _apply(x: Any, matrix: np.ndarray, irreps: Any) -> Any:
    dim = matrix.shape[0]
    if _is_torch(x):
        import torch

        if x.ndim == 0 or x.shape[-1] != dim:
            raise IrrepsError(f"Expected a tensor of shape [..., {dim}] for irreps {irreps!s}, got {tuple(x.shape)}.")
        xf = x if x.is_floating_point() else x.to(torch.get_default_dtype())
        m = torch.tensor(np.array(matrix), dtype=xf.dtype, device=xf.device)
        return xf @ m.T
    arr = np.asarray(x)
    if arr.ndim == 0 or arr.shape[-1] != dim:
        raise IrrepsError(f"Expected an array of shape [..., {dim}] for irreps {irreps!s}, got {arr.shape}.")
    dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float64
    return (arr.astype(np.float64) @ matrix.T).astype(dtype, copy=False)


def to_standard(x_e3nn: Any, irreps: Any) -> Any:
    """Convert coefficients from e3nn's basis to the standard real spherical harmonics basis.

    Args:
        x_e3nn: [..., dim] numpy array or torch tensor (torch: dtype/device kept, differentiable).
        irreps: the irreps of the last axis.

    Returns:
        [..., dim] coefficients in the standard basis, same type as the input.
    """
    return _apply(x_e3nn, irreps_change_of_basis(irreps), irreps)


def to_e3nn(x_std: Any, irreps: Any) -> Any:
    """Convert coefficients from the standard real spherical harmonics basis to e3nn's basis.

    Args:
        x_std: [..., dim] numpy array or torch tensor in the standard basis.
        irreps: the irreps of the last axis.

    Returns:
        [..., dim] coefficients in e3nn's basis, same type as the input.
    """
    return _apply(x_std, irreps_change_of_basis(irreps).T, irreps)


# ------------------------------------------------------------------------------------------------------------
# Labels
# ------------------------------------------------------------------------------------------------------------


def _irrep_name(ir: Any) -> str:
    return f"{ir.l}{'e' if ir.p == 1 else 'o'}"


def irrep_slices(irreps: Any) -> list[tuple[str, slice]]:
    """One ``(label, slice)`` per copy of each irrep, in order.

    Args:
        irreps: e3nn irreps, e.g. "2x1e+0e".

    Returns:
        e.g. ``[("1e[0]", slice(0, 3)), ("1e[1]", slice(3, 6)), ("0e", slice(6, 7))]``; the copy index is
        present only when the multiplicity is larger than one.
    """
    out = []
    start = 0
    for mul, ir in parse_irreps(irreps):
        name = _irrep_name(ir)
        for copy in range(mul):
            label = f"{name}[{copy}]" if mul > 1 else name
            out.append((label, slice(start, start + ir.dim)))
            start += ir.dim
    return out


def component_labels(irreps: Any) -> list[str]:
    """Human-readable label of each component in the standard basis.

    Args:
        irreps: e3nn irreps.

    Returns:
        One label per component, e.g. "0e", "1o m=-1 y", "2e m=2 x²-y²", "5e m=-2" (no polynomial name for
        l >= 5), with a copy index when the multiplicity is larger than one ("1e[0] m=-1 y").
    """
    labels = []
    for (label, _), ell in zip(irrep_slices(irreps), _degrees_per_copy(irreps), strict=True):
        if ell == 0:
            labels.append(label)
            continue
        names = _POLYNOMIAL_NAMES.get(ell, {})
        for m in range(-ell, ell + 1):
            name = names.get(m)
            labels.append(f"{label} m={m} {name}" if name else f"{label} m={m}")
    return labels


def _degrees_per_copy(irreps: Any) -> list[int]:
    return [ir.l for mul, ir in parse_irreps(irreps) for _ in range(mul)]

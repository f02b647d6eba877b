"""Displacement vectors <-> spherical signals (paper Eq. 2), and decoding signals back to vectors.

A displacement ``d`` is encoded as the spherical-harmonic signal

    s(u) = |d| * K(u · d̂),   K = 4π / (lmax+1)² * Σ_l Y_l(u) · Y_l(d̂),

whose coefficients are ``|d| * Y(d̂) * 4π / (lmax+1)²`` (e3nn basis, 'integral' normalisation, irreps
``signal_irreps(lmax)`` = "0e+1o+2e+3o+..."). Since |P_l| <= 1, the signal's unique maximum is at ``d̂``
and its height there is exactly ``|d|``.

Decoding finds the maxima of a signal on the sphere: the signal is evaluated on a Fibonacci grid for many
signals at once (one matrix product), grid points larger than all of their nearest grid neighbours become
candidates, and each candidate is refined by safeguarded Newton steps on the sphere (exact gradient and
Hessian from the polynomial form of the harmonics) to ~1e-12 rad.

**Degenerate signals decode to zero.** If two or more separated maxima (more than ``min_separation_deg``
apart) have heights within ``rel_tol`` of the top one, the signal does not single out a direction: an
equivariant network whose input is more symmetric than its target weighs the symmetry-equivalent displacements
equally (e.g. ``encode(d) + encode(-d)``). Such a signal decodes to an exactly zero vector and is flagged
``degenerate``; its equal maxima are listed in ``peaks``. This is what makes an order parameter at zero on
a cubic parent give exactly zero predicted displacements, instead of an arbitrary pick among the equivalent
ones.
A continuous set of maxima (a ring) is found as many separated maxima, so it is degenerate too.

A signal whose top height is at most ``zero_tol`` (default ``1e-9 * max(1, scale)``, scale = the largest
|value| of that signal on the grid) also decodes to zero. So does an isotropic signal (no direction stands
out): it is flagged ``isotropic``, and ``degenerate`` unless its height is at most ``zero_tol``; it lists no
peaks.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from matsym.basis import LMAX_SUPPORTED
from matsym.errors import IrrepsError

__all__ = [
    "DecodedSignals",
    "Degeneracy",
    "Peak",
    "decode",
    "degeneracy_report",
    "encode",
    "evaluate",
    "fibonacci_sphere",
    "find_peaks",
    "signal_dim",
    "signal_irreps",
]


class Peak(NamedTuple):
    """A local maximum of a spherical signal.

    Attributes:
        direction: [3] unit vector.
        height: value of the signal there.
    """

    direction: np.ndarray
    height: float


class Degeneracy(NamedTuple):
    """Degeneracy of one signal's top maximum.

    Attributes:
        n_equal: number of separated maxima within ``rel_tol`` of the top one (1 = not degenerate; 0 for a
            zero or isotropic signal).
        directions: [n_equal, 3] their directions.
        height: the top height.
        isotropic: the signal has no anisotropic part above ``zero_tol`` (every direction is a maximum).
    """

    n_equal: int
    directions: np.ndarray
    height: float
    isotropic: bool


@dataclass(frozen=True)
class DecodedSignals:
    """Vectors decoded from spherical signals.

    Attributes:
        vectors: [..., 3] height * direction of the top maximum; exactly zero for degenerate, isotropic and
            (near-)zero signals.
        heights: [...] top height of each signal.
        degenerate: [...] True where two or more separated maxima lie within ``rel_tol`` of the top one, or
            the signal is isotropic with a height above ``zero_tol``.
        peaks: one tuple of :class:`Peak` per signal (leading axes flattened in C order): the maxima within
            ``rel_tol`` of the top one, highest first (a single peak for a non-degenerate signal, none for an
            isotropic or zero signal).
        isotropic: [...] True where the signal has no anisotropic part above ``zero_tol``.
    """

    vectors: np.ndarray
    heights: np.ndarray
    degenerate: np.ndarray
    peaks: tuple[tuple[Peak, ...], ...]
    isotropic: np.ndarray


# ------------------------------------------------------------------------------------------------------------
# Encoding
# ------------------------------------------------------------------------------------------------------------


def _check_lmax(lmax: Any) -> int:
    if isinstance(lmax, bool) or not isinstance(lmax, int | np.integer):
        raise IrrepsError(f"Expected an integer lmax, got {lmax!r} of type {type(lmax).__name__}.")
    if not 0 <= int(lmax) <= LMAX_SUPPORTED:
        raise IrrepsError(f"Expected 0 <= lmax <= {LMAX_SUPPORTED}, got lmax={lmax}.")
    return int(lmax)


def signal_irreps(lmax: int):
    """Irreps of a signal: "1x0e+1x1o+1x2e+..." up to ``lmax`` (parity (-1)^l).

    Args:
        lmax: largest degree.

    Returns:
        ``e3nn.o3.Irreps``.
    """
    from e3nn import o3

    return o3.Irreps.spherical_harmonics(_check_lmax(lmax), p=-1)


def signal_dim(lmax: int) -> int:
    """Number of coefficients of a signal, (lmax+1)²."""
    return (_check_lmax(lmax) + 1) ** 2


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def encode(d: Any, lmax: int) -> Any:
    """Spherical signals of displacement vectors: maximum at d̂ with height |d| (paper Eq. 2).

    Args:
        d: [..., 3] displacements (numpy array or torch tensor).
        lmax: largest degree of the signal.

    Returns:
        [..., (lmax+1)²] coefficients in e3nn's basis with irreps ``signal_irreps(lmax)``. Same type as ``d``:
        torch keeps dtype and device and is differentiable; numpy is computed in float64 and returned in the
        input's float dtype (float64 for integer input). A zero displacement gives an exactly zero signal with
        finite gradients (the l = 1 part is the linear map it should be; the others have zero gradient there).

    Raises:
        IrrepsError: if ``d`` does not have last dimension 3 or lmax is out of range.
    """
    import torch

    lmax = _check_lmax(lmax)
    is_torch = _is_torch(d)
    if is_torch:
        t = d if d.is_floating_point() else d.to(torch.get_default_dtype())
        out_dtype = None
    else:
        arr = np.asarray(d)
        out_dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float64
        t = torch.as_tensor(arr.astype(np.float64))
    if t.ndim == 0 or t.shape[-1] != 3:
        raise IrrepsError(f"Expected displacements of shape [..., 3], got shape {tuple(t.shape)}.")
    out = _encode_torch(t, lmax)
    if is_torch:
        return out
    return out.numpy().astype(out_dtype, copy=False)


def _encode_torch(d, lmax: int):
    import torch
    from e3nn import o3

    sq = (d * d).sum(dim=-1, keepdim=True)  # [..., 1]
    is_zero = sq == 0
    # double-where: neither the value nor the gradient sees sqrt(0) or 0/0
    norm_safe = torch.sqrt(torch.where(is_zero, torch.ones_like(sq), sq))
    norm = torch.where(is_zero, torch.zeros_like(sq), norm_safe)
    unit = d / norm_safe  # zero vector stays zero
    scale = 4.0 * math.pi / (lmax + 1) ** 2
    parts = []
    for ell in range(lmax + 1):
        if ell == 1:
            # |d| Y_1(d̂) is linear in d: use the polynomial so the gradient is exact at d = 0 as well
            parts.append(o3.spherical_harmonics(1, d, normalize=False, normalization="integral"))
        else:
            y = o3.spherical_harmonics(ell, unit, normalize=False, normalization="integral")
            parts.append(norm * y)
    return torch.cat(parts, dim=-1) * scale


# ------------------------------------------------------------------------------------------------------------
# Evaluation
# ------------------------------------------------------------------------------------------------------------


def _check_signal_dim(shape: tuple, lmax: int) -> None:
    dim = (lmax + 1) ** 2
    if len(shape) == 0 or shape[-1] != dim:
        raise IrrepsError(
            f"Expected signals of shape [..., {dim}] for lmax={lmax} ((lmax+1)² coefficients), got {tuple(shape)}."
        )


def evaluate(signal: Any, lmax: int, directions: Any) -> Any:
    """Values of signals on given directions.

    Args:
        signal: [..., (lmax+1)²] coefficients (e3nn basis), numpy or torch.
        lmax: largest degree of the signal.
        directions: [n_dir, 3] (or [3]) directions; normalised here.

    Returns:
        [..., n_dir] (or [...] for a single direction) values, same type as ``signal`` (torch: differentiable
        with respect to both arguments).

    Raises:
        IrrepsError: on shape mismatch or zero-length directions.
    """
    import torch
    from e3nn import o3

    lmax = _check_lmax(lmax)
    is_torch = _is_torch(signal)
    s = signal if is_torch else torch.as_tensor(np.asarray(signal, dtype=np.float64))
    if not s.is_floating_point():
        s = s.to(torch.get_default_dtype())
    _check_signal_dim(tuple(s.shape), lmax)
    u = directions if _is_torch(directions) else torch.as_tensor(np.asarray(directions, dtype=np.float64))
    u = u.to(dtype=s.dtype, device=s.device)
    single = u.ndim == 1
    if u.ndim not in (1, 2) or u.shape[-1] != 3:
        raise IrrepsError(f"Expected directions of shape [n_dir, 3] or [3], got {tuple(u.shape)}.")
    norm = torch.linalg.norm(u, dim=-1, keepdim=True)
    if bool((norm == 0).any()):
        raise IrrepsError("Expected non-zero direction vectors.")
    y = o3.spherical_harmonics(list(range(lmax + 1)), u / norm, normalize=False, normalization="integral")
    values = s @ y.T if not single else s @ y
    return values if is_torch else values.numpy()


# ------------------------------------------------------------------------------------------------------------
# Peak finding
# ------------------------------------------------------------------------------------------------------------


def fibonacci_sphere(n: int) -> np.ndarray:
    """Nearly uniform points on the unit sphere (golden-angle spiral).

    Args:
        n: number of points.

    Returns:
        [n, 3] float64 unit vectors.
    """
    i = np.arange(n, dtype=np.float64)
    z = 1.0 - (2.0 * i + 1.0) / n
    r = np.sqrt(np.clip(1.0 - z * z, 0.0, None))
    phi = i * (math.pi * (3.0 - math.sqrt(5.0)))
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def _default_n_grid(lmax: int) -> int:
    return max(2000, 100 * (lmax + 1) ** 2)


@functools.lru_cache(maxsize=16)
def _grid(lmax: int, n_grid: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Grid points [n, 3], e3nn harmonics [n, dim], nearest-neighbour indices [n, k], spacing (rad)."""
    import torch
    from e3nn import o3
    from scipy.spatial import cKDTree

    points = fibonacci_sphere(n_grid)
    y = o3.spherical_harmonics(
        list(range(lmax + 1)), torch.as_tensor(points), normalize=False, normalization="integral"
    ).numpy()
    dist, nbrs = cKDTree(points).query(points, k=7)
    nbrs = np.ascontiguousarray(nbrs[:, 1:])
    for a in (points, y, nbrs):
        a.setflags(write=False)
    # every point of the sphere is within ~this angle of a grid point (a safe over-estimate)
    spacing = 2.0 * math.asin(min(1.0, float(dist[:, 1].max()) / 2.0))
    return points, y, nbrs, spacing


@functools.lru_cache(maxsize=16)
def _monomials(lmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Exponents [n_mono, 3] and M [dim, n_mono] with Y_e3nn(u) = M @ u^exponents on the unit sphere.

    Each Y_l is the restriction of a unique homogeneous polynomial of degree l; the coefficients are fitted on
    random unit vectors and checked.
    """
    import torch
    from e3nn import o3

    exps = [(a, b, ell - a - b) for ell in range(lmax + 1) for a in range(ell, -1, -1) for b in range(ell - a, -1, -1)]
    exps = np.array(exps, dtype=np.int64)
    dim = (lmax + 1) ** 2
    m = np.zeros((dim, len(exps)))
    rng = np.random.default_rng(7)
    pts = rng.normal(size=(max(400, 4 * len(exps)), 3))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    degree = exps.sum(axis=1)
    for ell in range(lmax + 1):
        cols = np.flatnonzero(degree == ell)
        a = np.prod(pts[:, None, :] ** exps[None, cols, :], axis=-1)  # [n_pts, n_l]
        y = o3.spherical_harmonics(ell, torch.as_tensor(pts), normalize=False, normalization="integral").numpy()
        coef, *_ = np.linalg.lstsq(a, y, rcond=None)
        if np.max(np.abs(a @ coef - y)) > 1e-9:
            raise IrrepsError(f"Could not express e3nn's l={ell} harmonics as polynomials (unexpected convention).")
        m[ell * ell : (ell + 1) * (ell + 1), cols] = coef.T
    return exps, m


def _value_grad_hess(coef: np.ndarray, u: np.ndarray, exps: np.ndarray):
    """Value [n], Euclidean gradient [n, 3] and Hessian [n, 3, 3] of sum_k coef[n, k] u^exps[k]."""
    lmax = int(exps.sum(axis=1).max())
    n = u.shape[0]
    pw = np.ones((n, lmax + 1, 3))
    for k in range(1, lmax + 1):
        pw[:, k] = pw[:, k - 1] * u
    e = exps  # [n_mono, 3]
    em1 = np.clip(e - 1, 0, None)
    em2 = np.clip(e - 2, 0, None)
    # P[n, n_mono, 3]: u_i^{e_i}, D1: e_i u_i^{e_i-1}, D2: e_i(e_i-1) u_i^{e_i-2}
    p0 = np.stack([pw[:, e[:, i], i] for i in range(3)], axis=-1)
    p1 = np.stack([e[:, i] * pw[:, em1[:, i], i] for i in range(3)], axis=-1)
    p2 = np.stack([e[:, i] * (e[:, i] - 1) * pw[:, em2[:, i], i] for i in range(3)], axis=-1)
    value = np.einsum("nk,nk->n", coef, p0[..., 0] * p0[..., 1] * p0[..., 2])
    grad = np.empty((n, 3))
    hess = np.empty((n, 3, 3))
    for i in range(3):
        j, k = (i + 1) % 3, (i + 2) % 3
        grad[:, i] = np.einsum("nk,nk->n", coef, p1[..., i] * p0[..., j] * p0[..., k])
        hess[:, i, i] = np.einsum("nk,nk->n", coef, p2[..., i] * p0[..., j] * p0[..., k])
        hij = np.einsum("nk,nk->n", coef, p1[..., i] * p1[..., j] * p0[..., k])
        hess[:, i, j] = hij
        hess[:, j, i] = hij
    return value, grad, hess


def _tangent_basis(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    axis = np.zeros_like(u)
    axis[np.arange(len(u)), np.argmin(np.abs(u), axis=1)] = 1.0
    e1 = np.cross(u, axis)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(u, e1)
    return e1, e2


def _refine(coef: np.ndarray, u: np.ndarray, exps: np.ndarray, scale: np.ndarray, max_iter: int = 40):
    """Maximise each candidate's polynomial on the sphere by safeguarded Riemannian Newton steps.

    Args:
        coef: [n, n_mono] polynomial coefficients of each candidate's signal.
        u: [n, 3] starting unit vectors.
        exps: [n_mono, 3] exponents.
        scale: [n] magnitude of each signal (sets the curvature floor).

    Returns:
        (u [n, 3], value [n]).
    """
    u = u.copy()
    value, grad, hess = _value_grad_hess(coef, u, exps)
    active = np.ones(len(u), dtype=bool)
    mu = 1e-6 * np.maximum(scale, 1e-300)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        ua, va, ga, ha = u[idx], value[idx], grad[idx], hess[idx]
        e1, e2 = _tangent_basis(ua)
        basis = np.stack([e1, e2], axis=1)  # [n, 2, 3]
        radial = np.einsum("ni,ni->n", ua, ga)
        g_t = np.einsum("nai,ni->na", basis, ga)  # [n, 2]
        h_t = np.einsum("nai,nij,nbj->nab", basis, ha, basis) - radial[:, None, None] * np.eye(2)
        converged = np.linalg.norm(g_t, axis=1) <= 1e-12 * scale[idx]
        if converged.any():
            active[idx[converged]] = False
            keep = ~converged
            idx, ua, va, ga, ha = idx[keep], ua[keep], va[keep], ga[keep], ha[keep]
            basis, g_t, h_t = basis[keep], g_t[keep], h_t[keep]
            if idx.size == 0:
                break
        lam, vec = np.linalg.eigh(h_t)  # ascending
        g_eig = np.einsum("nab,na->nb", vec, g_t)
        # Newton where curvature is negative, a gradient step of size g/mu otherwise
        step_eig = g_eig / np.maximum(-lam, mu[idx, None])
        step = np.einsum("nab,nb->na", vec, step_eig)
        length = np.linalg.norm(step, axis=1)
        step *= np.minimum(1.0, 0.2 / np.maximum(length, 1e-300))[:, None]
        # backtracking: accept only steps that do not decrease the value (beyond rounding)
        t = np.ones(len(idx))
        pending = np.ones(len(idx), dtype=bool)
        new_u, new_v, new_g, new_h = ua.copy(), va.copy(), ga.copy(), ha.copy()
        for _ in range(30):
            p = np.flatnonzero(pending)
            if p.size == 0:
                break
            delta = t[p, None] * np.einsum("na,nai->ni", step[p], basis[p])
            cand = ua[p] + delta
            cand /= np.linalg.norm(cand, axis=1, keepdims=True)
            cv, cg, ch = _value_grad_hess(coef[idx[p]], cand, exps)
            ok = cv >= va[p] - 1e-14 * np.maximum(np.abs(va[p]), scale[idx[p]])
            acc = p[ok]
            new_u[acc], new_v[acc], new_g[acc], new_h[acc] = cand[ok], cv[ok], cg[ok], ch[ok]
            pending[acc] = False
            t[p[~ok]] *= 0.5
        moved = t * np.linalg.norm(step, axis=1)
        moved[pending] = 0.0
        u[idx], value[idx], grad[idx], hess[idx] = new_u, new_v, new_g, new_h
        active[idx[moved < 1e-13]] = False
    return u, value


def _as_numpy_signals(signal: Any, lmax: int) -> tuple[np.ndarray, tuple]:
    arr = signal.detach().cpu().double().numpy() if _is_torch(signal) else np.asarray(signal, dtype=np.float64)
    _check_signal_dim(arr.shape, lmax)
    if not np.all(np.isfinite(arr)):
        raise IrrepsError("Expected finite signal coefficients, got NaN or inf.")
    lead = arr.shape[:-1]
    return arr.reshape(-1, arr.shape[-1]), lead


@dataclass(frozen=True)
class _Maxima:
    """All separated local maxima of each signal (internal)."""

    peaks: list[list[Peak]]
    scale: np.ndarray  # [n]
    isotropic: np.ndarray  # [n]
    top: np.ndarray  # [n] top height (grid max for isotropic signals)


def _all_maxima(
    signals: np.ndarray,
    lmax: int,
    min_separation_deg: float,
    n_grid: int | None,
    zero_tol: float | None,
    near_top: float | None,
):
    """All separated maxima; with ``near_top`` only those that can be within near_top * |top| of the top."""
    n = signals.shape[0]
    if min_separation_deg < 0:
        raise IrrepsError(f"Expected min_separation_deg >= 0, got {min_separation_deg}.")
    n_grid = _default_n_grid(lmax) if n_grid is None else int(n_grid)
    if n_grid < 100:
        raise IrrepsError(f"Expected n_grid >= 100, got {n_grid}.")
    points, y, nbrs, spacing = _grid(lmax, n_grid)
    values = signals @ y.T  # [n, n_grid]
    vmax = values.max(axis=1)
    vmin = values.min(axis=1)
    scale = np.maximum(np.abs(vmax), np.abs(vmin))
    tol = 1e-9 * np.maximum(1.0, scale) if zero_tol is None else np.full(n, float(zero_tol))
    isotropic = (vmax - vmin) <= tol
    is_max = np.ones_like(values, dtype=bool)
    for j in range(nbrs.shape[1]):
        is_max &= values >= values[:, nbrs[:, j]]
    is_max[isotropic] = False
    if near_top is not None:
        # A maximum lies within `spacing` of a grid point, and along a great circle a degree-lmax signal is a
        # trigonometric polynomial, so (Bernstein) the grid value is at most 0.5 lmax² max|f| spacing² below
        # the maximum; twice that is a safe margin. Candidates that cannot reach the near-top band are
        # dropped.
        margin = lmax**2 * scale * spacing**2
        floor = vmax - near_top * (np.abs(vmax) + margin) - margin
        is_max &= values >= floor[:, None]
    sig_idx, grid_idx = np.nonzero(is_max)
    exps, mono = _monomials(lmax)
    coef = signals[sig_idx] @ mono  # [n_cand, n_mono]
    u, h = _refine(coef, points[grid_idx], exps, scale[sig_idx])
    cos_sep = math.cos(math.radians(min_separation_deg))
    peaks: list[list[Peak]] = [[] for _ in range(n)]
    order = np.lexsort((-h, sig_idx))  # by signal, then height descending
    bounds = np.searchsorted(sig_idx[order], np.arange(n + 1))
    for s in range(n):
        sel = order[bounds[s] : bounds[s + 1]]
        kept: list[int] = []
        for c in sel:
            if all(float(u[c] @ u[k]) < cos_sep for k in kept):
                kept.append(c)
        peaks[s] = [Peak(u[c].copy(), float(h[c])) for c in kept]
    top = np.array([p[0].height if p else vmax[i] for i, p in enumerate(peaks)])
    return _Maxima(peaks, scale, isotropic, top), tol


def _within(peaks: list[Peak], rel_tol: float) -> list[Peak]:
    if not peaks:
        return []
    top = peaks[0].height
    return [p for p in peaks if top - p.height <= rel_tol * abs(top)]


def find_peaks(
    signal: Any,
    lmax: int,
    *,
    rel_tol: float = 1e-3,
    min_separation_deg: float = 10.0,
    all_maxima: bool = False,
    n_grid: int | None = None,
) -> list[list[Peak]]:
    """Maxima of spherical signals, by dense grid search and Newton refinement.

    Args:
        signal: [..., (lmax+1)²] coefficients (e3nn basis), numpy or torch (detached).
        lmax: largest degree of the signals.
        rel_tol: keep maxima whose height is within ``rel_tol * |top|`` of the top one (ignored if
            ``all_maxima``).
        min_separation_deg: maxima closer than this to a higher one are the same maximum.
        all_maxima: return every separated local maximum instead of the near-top ones.
        n_grid: grid size (default max(2000, 100 (lmax+1)²)).

    Returns:
        One list of :class:`Peak` per signal (leading axes flattened in C order), highest first. Isotropic
        signals (no anisotropic part) have no peaks.
    """
    lmax = _check_lmax(lmax)
    signals, _ = _as_numpy_signals(signal, lmax)
    maxima, _ = _all_maxima(signals, lmax, min_separation_deg, n_grid, None, None if all_maxima else rel_tol)
    if all_maxima:
        return maxima.peaks
    return [_within(p, rel_tol) for p in maxima.peaks]


def decode(
    signal: Any,
    lmax: int,
    *,
    rel_tol: float = 1e-3,
    zero_tol: float | None = None,
    min_separation_deg: float = 10.0,
    n_grid: int | None = None,
) -> DecodedSignals:
    """Decode spherical signals into vectors: height * direction of the top maximum, or zero if degenerate.

    See the module docstring for why degenerate signals decode to exactly zero.

    Args:
        signal: [..., (lmax+1)²] coefficients (e3nn basis), numpy or torch (detached).
        lmax: largest degree of the signals.
        rel_tol: maxima within ``rel_tol * |top|`` of the top height count as equal.
        zero_tol: signals whose top height is at most this decode to zero (default 1e-9 * max(1, scale), scale
            the largest |value| of that signal on the grid).
        min_separation_deg: maxima closer than this are one maximum.
        n_grid: grid size (default max(2000, 100 (lmax+1)²)).

    Returns:
        :class:`DecodedSignals` with arrays shaped like the signals' leading axes.
    """
    lmax = _check_lmax(lmax)
    if rel_tol < 0:
        raise IrrepsError(f"Expected rel_tol >= 0, got {rel_tol}.")
    signals, lead = _as_numpy_signals(signal, lmax)
    maxima, tol = _all_maxima(signals, lmax, min_separation_deg, n_grid, zero_tol, rel_tol)
    n = signals.shape[0]
    vectors = np.zeros((n, 3))
    degenerate = np.zeros(n, dtype=bool)
    kept_peaks = []
    for i, peaks in enumerate(maxima.peaks):
        near = _within(peaks, rel_tol)
        kept_peaks.append(tuple(near))
        top = maxima.top[i]
        if maxima.isotropic[i]:
            degenerate[i] = top > tol[i]
            continue
        degenerate[i] = len(near) >= 2
        if near and not degenerate[i] and top > tol[i]:
            vectors[i] = top * near[0].direction
    return DecodedSignals(
        vectors=vectors.reshape(*lead, 3),
        heights=maxima.top.reshape(lead),
        degenerate=degenerate.reshape(lead),
        peaks=tuple(kept_peaks),
        isotropic=maxima.isotropic.reshape(lead),
    )


def degeneracy_report(
    signal: Any, lmax: int, *, rel_tol: float = 1e-3, min_separation_deg: float = 10.0
) -> list[Degeneracy]:
    """Number and directions of the equal top maxima of each signal.

    Args:
        signal: [..., (lmax+1)²] coefficients (e3nn basis).
        lmax: largest degree of the signals.
        rel_tol: maxima within ``rel_tol * |top|`` of the top height count as equal.
        min_separation_deg: maxima closer than this are one maximum.

    Returns:
        One :class:`Degeneracy` per signal (leading axes flattened in C order).
    """
    decoded = decode(signal, lmax, rel_tol=rel_tol, min_separation_deg=min_separation_deg)
    heights = np.atleast_1d(decoded.heights).reshape(-1)
    isotropic = np.atleast_1d(decoded.isotropic).reshape(-1)
    out = []
    for peaks, h, iso in zip(decoded.peaks, heights, isotropic, strict=True):
        dirs = np.array([p.direction for p in peaks]).reshape(-1, 3)
        out.append(Degeneracy(len(peaks), dirs, float(h), bool(iso)))
    return out

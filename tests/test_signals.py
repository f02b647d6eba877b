"""Tests of matsym.signals: encoding displacements as spherical signals and decoding them back."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from e3nn import o3

from matsym.errors import IrrepsError
from matsym.signals import (
    decode,
    degeneracy_report,
    encode,
    evaluate,
    fibonacci_sphere,
    find_peaks,
    signal_dim,
    signal_irreps,
)


@pytest.fixture
def float64_default():
    """e3nn's D_from_matrix is only float32-accurate (~1e-7) unless the default dtype is float64."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _random_displacements(rng: np.random.Generator, n: int) -> np.ndarray:
    d = rng.normal(size=(n, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True) * rng.uniform(0.01, 1.0, size=(n, 1))


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    return float(np.arctan2(np.linalg.norm(np.cross(a, b)), a @ b))


def test_signal_irreps() -> None:
    assert signal_irreps(3) == o3.Irreps("0e+1o+2e+3o")
    assert signal_dim(4) == 25 == signal_irreps(4).dim


@pytest.mark.parametrize("lmax", [2, 3, 4, 5, 6])
def test_encode_decode_round_trip(lmax: int, rng: np.random.Generator) -> None:
    d = _random_displacements(rng, 40)
    decoded = decode(encode(d, lmax), lmax)
    lengths = np.linalg.norm(d, axis=1)
    assert not decoded.degenerate.any()
    assert np.all(np.linalg.norm(decoded.vectors - d, axis=1) <= 1e-6 * lengths)
    np.testing.assert_allclose(decoded.heights, lengths, rtol=1e-6)
    assert decoded.vectors.shape == (40, 3) and len(decoded.peaks) == 40
    assert all(len(p) == 1 for p in decoded.peaks)


@pytest.mark.parametrize("lmax", [1, 3, 6])
def test_encoded_signal_peaks_at_direction_with_height_length(lmax: int, rng: np.random.Generator) -> None:
    d = _random_displacements(rng, 3)
    grid = fibonacci_sphere(20000)
    for vec in d:
        signal = encode(vec, lmax)
        length = np.linalg.norm(vec)
        np.testing.assert_allclose(evaluate(signal, lmax, vec), length, rtol=1e-12)
        values = evaluate(signal, lmax, grid)
        assert values.max() <= length * (1 + 1e-12)
        # grid spacing of 20000 points is ~1.6 degrees
        assert _angle(grid[np.argmax(values)], vec) < math.radians(2.0)


def test_evaluate_matches_expansion(rng: np.random.Generator) -> None:
    lmax = 3
    signal = rng.normal(size=(2, signal_dim(lmax)))
    dirs = rng.normal(size=(5, 3))
    unit = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    y = o3.spherical_harmonics(signal_irreps(lmax), torch.as_tensor(unit), normalize=True).numpy()
    np.testing.assert_allclose(evaluate(signal, lmax, 3.0 * dirs), signal @ y.T, atol=1e-14)
    out = evaluate(torch.as_tensor(signal), lmax, dirs)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 5)


@pytest.mark.parametrize("lmax", [2, 4, 6])
def test_antipodal_pair_is_degenerate_and_decodes_to_zero(lmax: int, rng: np.random.Generator) -> None:
    for d in _random_displacements(rng, 5):
        signal = encode(d, lmax) + encode(-d, lmax)
        decoded = decode(signal, lmax)
        assert bool(decoded.degenerate)
        np.testing.assert_array_equal(decoded.vectors, np.zeros(3))
        peaks = decoded.peaks[0]
        assert len(peaks) == 2
        angles = sorted([_angle(peaks[0].direction, d), _angle(peaks[1].direction, d)])
        assert angles[0] < 1e-4 and abs(angles[1] - math.pi) < 1e-4


@pytest.mark.parametrize("lmax", [2, 4])
def test_square_cases(lmax: int) -> None:
    delta = 0.07
    pair = encode(np.array([delta, -delta, 0.0]), lmax) + encode(np.array([-delta, delta, 0.0]), lmax)
    report = degeneracy_report(pair, lmax)[0]
    assert report.n_equal == 2
    diagonal = np.array([1.0, -1.0, 0.0]) / math.sqrt(2)
    assert min(_angle(v, diagonal) for v in report.directions) < 1e-4
    np.testing.assert_array_equal(decode(pair, lmax).vectors, 0.0)

    square = pair + encode(np.array([delta, delta, 0.0]), lmax) + encode(np.array([-delta, -delta, 0.0]), lmax)
    decoded = decode(square, lmax)
    assert bool(decoded.degenerate)
    np.testing.assert_array_equal(decoded.vectors, 0.0)
    if lmax == 4:  # the four diagonal maxima are resolved (for lmax <= 3 a C4 signal is axial: a ring)
        assert degeneracy_report(square, lmax)[0].n_equal == 4


def test_two_orthogonal_peaks() -> None:
    x, y = np.eye(3)[0], np.eye(3)[1]
    # lmax 4 resolves two peaks near x and y: degenerate
    signal = encode(x, 4) + encode(y, 4)
    decoded = decode(signal, 4)
    assert bool(decoded.degenerate)
    np.testing.assert_array_equal(decoded.vectors, 0.0)
    dirs = [p.direction for p in decoded.peaks[0]]
    assert len(dirs) == 2
    assert min(_angle(v, x) for v in dirs) < math.radians(5) and min(_angle(v, y) for v in dirs) < math.radians(5)
    # lmax 2 blurs them into a single maximum on the diagonal: not degenerate
    decoded2 = decode(encode(x, 2) + encode(y, 2), 2)
    assert not bool(decoded2.degenerate)
    assert _angle(decoded2.vectors, x + y) < 1e-8
    # unequal peaks are not degenerate: the larger one wins
    decoded3 = decode(encode(x, 4) + encode(0.9 * y, 4), 4)
    assert not bool(decoded3.degenerate)
    assert _angle(decoded3.vectors, x) < math.radians(5)


def test_find_peaks_all_maxima(rng: np.random.Generator) -> None:
    lmax = 4
    signals = rng.normal(size=(20, signal_dim(lmax)))
    near = find_peaks(signals, lmax)
    every = find_peaks(signals, lmax, all_maxima=True)
    grid = fibonacci_sphere(20000)
    values = evaluate(signals, lmax, grid)
    for s in range(20):
        heights = [p.height for p in every[s]]
        assert heights == sorted(heights, reverse=True)
        assert near[s][0].height == pytest.approx(heights[0], rel=1e-12)
        assert len(every[s]) >= len(near[s]) >= 1
        # the top peak is the global maximum (dense grid can only be lower) and is a stationary point
        assert values[s].max() <= heights[0] + 1e-12
        assert values[s].max() >= heights[0] - 0.01 * np.abs(values[s]).max()
        for p in every[s]:
            np.testing.assert_allclose(np.linalg.norm(p.direction), 1.0, atol=1e-14)
            np.testing.assert_allclose(evaluate(signals[s], lmax, p.direction), p.height, rtol=1e-12)


def test_peak_refinement_precision(rng: np.random.Generator) -> None:
    # a peak exactly on +y (e3nn's polar axis, where SphericalTensor.find_peaks fails) and a random one
    for d in (np.array([0.0, 0.4, 0.0]), rng.normal(size=3)):
        decoded = decode(encode(d, 5), 5)
        assert _angle(decoded.vectors, d) < 1e-9


def test_zero_displacement_gives_zero_signal() -> None:
    s = encode(np.zeros((2, 3)), 4)
    np.testing.assert_array_equal(s, 0.0)
    decoded = decode(s, 4)
    np.testing.assert_array_equal(decoded.vectors, 0.0)
    assert not decoded.degenerate.any()
    np.testing.assert_array_equal(decoded.heights, 0.0)


def test_encode_gradient_at_zero_is_finite() -> None:
    d = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    jac = torch.autograd.functional.jacobian(lambda v: encode(v, 4), d)
    assert torch.isfinite(jac).all()
    # the l = 1 part is linear in d: its Jacobian is c * identity everywhere, at zero included
    c = 4 * math.pi / 25 * math.sqrt(3 / (4 * math.pi))
    torch.testing.assert_close(jac[1:4], c * torch.eye(3, dtype=torch.float64))


def test_encode_gradcheck() -> None:
    d = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: encode(v, 4), (d,))


def test_encode_keeps_type_and_dtype(dtype: torch.dtype, rng: np.random.Generator) -> None:
    d = _random_displacements(rng, 6)
    ref = encode(d, 3)
    assert isinstance(ref, np.ndarray) and ref.dtype == np.float64 and ref.shape == (6, 16)
    assert encode(d.astype(np.float32), 3).dtype == np.float32
    out = encode(torch.as_tensor(d, dtype=dtype), 3)
    assert isinstance(out, torch.Tensor) and out.dtype == dtype
    np.testing.assert_allclose(out.double().numpy(), ref, atol=1e-6 if dtype == torch.float32 else 1e-14)


@pytest.mark.parametrize("lmax", [1, 3, 6])
def test_encode_is_equivariant(lmax: int, seed: int, float64_default) -> None:
    irreps = signal_irreps(lmax)
    gen = torch.Generator().manual_seed(lmax)
    d = torch.randn(8, 3, generator=gen)
    rots = o3.rand_matrix(4)
    for rot in rots:
        for sign in (1.0, -1.0):  # proper rotation, and rotation combined with inversion
            g = sign * rot
            lhs = encode(d @ g.T, lmax)
            rhs = encode(d, lmax) @ irreps.D_from_matrix(g).T
            torch.testing.assert_close(lhs, rhs, atol=1e-10, rtol=0)
    # inversion alone: the 1o displacement flips, the signal's odd-l parts flip
    inv = -torch.eye(3)
    torch.testing.assert_close(encode(-d, lmax), encode(d, lmax) @ irreps.D_from_matrix(inv).T, atol=1e-12, rtol=0)


def test_decode_is_equivariant(seed: int, float64_default) -> None:
    lmax = 4
    gen = torch.Generator().manual_seed(1)
    d = torch.randn(6, 3, generator=gen)
    signal = encode(d, lmax) + 0.05 * torch.randn(6, signal_dim(lmax), generator=gen)
    rot = o3.rand_matrix()
    rotated = signal @ signal_irreps(lmax).D_from_matrix(rot).T
    np.testing.assert_allclose(decode(rotated, lmax).vectors, decode(signal, lmax).vectors @ rot.numpy().T, atol=1e-9)


def test_decode_is_fast(rng: np.random.Generator) -> None:
    lmax = 4
    signals = rng.normal(size=(1280, signal_dim(lmax)))
    decode(signals[:10], lmax)  # build the cached grid
    start = time.perf_counter()
    decoded = decode(signals, lmax)
    elapsed = time.perf_counter() - start
    print(f"decode of 1280 random lmax-4 signals: {elapsed:.3f} s")
    assert decoded.vectors.shape == (1280, 3)
    assert elapsed < 2.0


def test_isotropic_signal_is_degenerate() -> None:
    signal = np.zeros(signal_dim(3))
    signal[0] = 2.0
    decoded = decode(signal, 3)
    assert bool(decoded.isotropic) and bool(decoded.degenerate)
    np.testing.assert_array_equal(decoded.vectors, 0.0)
    np.testing.assert_allclose(decoded.heights, 2.0 / math.sqrt(4 * math.pi))


def test_errors() -> None:
    with pytest.raises(IrrepsError, match=r"\[\.\.\., 3\]"):
        encode(np.zeros(4), 2)
    with pytest.raises(IrrepsError, match=r"\[\.\.\., 16\]"):
        decode(np.zeros(9), 3)
    with pytest.raises(IrrepsError, match="lmax"):
        encode(np.zeros(3), -1)
    with pytest.raises(IrrepsError, match="non-zero"):
        evaluate(np.zeros(4), 1, np.zeros(3))

"""Tests of matsym.basis against analytic real spherical harmonics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from e3nn import o3
from scipy.special import lpmv

from matsym.basis import (
    change_of_basis,
    component_labels,
    irrep_slices,
    irreps_change_of_basis,
    real_spherical_harmonics,
    to_e3nn,
    to_standard,
)
from matsym.errors import IrrepsError

# Independent Cartesian polynomials of the standard real spherical harmonics (z polar, no Condon-Shortley
# phase), written from the textbook table, with the name each component must carry.
POLYNOMIALS = {
    (1, -1): ("y", lambda x, y, z: y),
    (1, 0): ("z", lambda x, y, z: z),
    (1, 1): ("x", lambda x, y, z: x),
    (2, -2): ("xy", lambda x, y, z: x * y),
    (2, -1): ("yz", lambda x, y, z: y * z),
    (2, 0): ("3z²-r²", lambda x, y, z: 3 * z**2 - 1),
    (2, 1): ("xz", lambda x, y, z: x * z),
    (2, 2): ("x²-y²", lambda x, y, z: x**2 - y**2),
    (3, -3): ("y(3x²-y²)", lambda x, y, z: y * (3 * x**2 - y**2)),
    (3, -2): ("xyz", lambda x, y, z: x * y * z),
    (3, -1): ("y(5z²-r²)", lambda x, y, z: y * (5 * z**2 - 1)),
    (3, 0): ("z(5z²-3r²)", lambda x, y, z: z * (5 * z**2 - 3)),
    (3, 1): ("x(5z²-r²)", lambda x, y, z: x * (5 * z**2 - 1)),
    (3, 2): ("z(x²-y²)", lambda x, y, z: z * (x**2 - y**2)),
    (3, 3): ("x(x²-3y²)", lambda x, y, z: x * (x**2 - 3 * y**2)),
    (4, -4): ("xy(x²-y²)", lambda x, y, z: x * y * (x**2 - y**2)),
    (4, -3): ("yz(3x²-y²)", lambda x, y, z: y * z * (3 * x**2 - y**2)),
    (4, -2): ("xy(7z²-r²)", lambda x, y, z: x * y * (7 * z**2 - 1)),
    (4, -1): ("yz(7z²-3r²)", lambda x, y, z: y * z * (7 * z**2 - 3)),
    (4, 0): ("35z⁴-30z²r²+3r⁴", lambda x, y, z: 35 * z**4 - 30 * z**2 + 3),
    (4, 1): ("xz(7z²-3r²)", lambda x, y, z: x * z * (7 * z**2 - 3)),
    (4, 2): ("(x²-y²)(7z²-r²)", lambda x, y, z: (x**2 - y**2) * (7 * z**2 - 1)),
    (4, 3): ("xz(x²-3y²)", lambda x, y, z: x * z * (x**2 - 3 * y**2)),
    (4, 4): ("x⁴-6x²y²+y⁴", lambda x, y, z: x**4 - 6 * x**2 * y**2 + y**4),
}


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _e3nn_sh(ell: int, v: np.ndarray) -> np.ndarray:
    return o3.spherical_harmonics(ell, torch.as_tensor(v), normalize=True, normalization="integral").numpy()


@pytest.mark.parametrize("ell", range(7))
def test_change_of_basis_is_orthogonal_and_cached(ell: int) -> None:
    q = change_of_basis(ell)
    assert q.shape == (2 * ell + 1, 2 * ell + 1)
    np.testing.assert_allclose(q @ q.T, np.eye(2 * ell + 1), atol=1e-10)
    assert change_of_basis(ell) is q
    assert not q.flags.writeable


@pytest.mark.parametrize("ell", range(7))
def test_change_of_basis_maps_e3nn_harmonics_to_standard(ell: int, rng: np.random.Generator) -> None:
    v = _unit(rng, 200)
    np.testing.assert_allclose(
        to_standard(_e3nn_sh(ell, v), f"{ell}e"), real_spherical_harmonics(ell, v), atol=1e-11, rtol=0
    )


@pytest.mark.parametrize(("lm", "entry"), list(POLYNOMIALS.items()), ids=[f"l{ell}m{m}" for ell, m in POLYNOMIALS])
def test_named_components_are_the_analytic_polynomials(lm, entry, rng: np.random.Generator) -> None:
    (ell, m), (name, poly) = lm, entry
    index = m + ell
    assert component_labels(f"{ell}o")[index] == f"{ell}o m={m} {name}"
    v = _unit(rng, 300)
    expected = poly(v[:, 0], v[:, 1], v[:, 2])
    for got in (
        real_spherical_harmonics(ell, v)[:, index],
        to_standard(_e3nn_sh(ell, v), f"{ell}e")[:, index],
    ):
        # got = c * expected with c > 0
        c = float(got @ expected / (expected @ expected))
        assert c > 0
        np.testing.assert_allclose(got, c * expected, atol=1e-12)


@pytest.mark.parametrize("ell", [0, 3, 5, 6, 8])
def test_standard_harmonics_match_scipy_legendre(ell: int, rng: np.random.Generator) -> None:
    """Independent reference: N P_l^|m|(cos θ) cos/sin(|m| φ), with scipy's Condon-Shortley phase removed."""
    v = _unit(rng, 100)
    theta, phi = np.arccos(v[:, 2]), np.arctan2(v[:, 1], v[:, 0])
    got = real_spherical_harmonics(ell, v)
    for m in range(-ell, ell + 1):
        a = abs(m)
        norm = math.sqrt((2 * ell + 1) / (4 * math.pi) * math.factorial(ell - a) / math.factorial(ell + a))
        legendre = (-1) ** a * lpmv(a, ell, np.cos(theta))
        if m == 0:
            ref = norm * legendre
        elif m > 0:
            ref = math.sqrt(2) * norm * legendre * np.cos(a * phi)
        else:
            ref = math.sqrt(2) * norm * legendre * np.sin(a * phi)
        np.testing.assert_allclose(got[:, m + ell], ref, atol=1e-12)


def test_standard_harmonics_are_orthonormal_on_the_sphere() -> None:
    # Gauss-Legendre in cos θ times a uniform φ grid integrates degree <= 2*6 exactly
    t, w = np.polynomial.legendre.leggauss(16)
    phi = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    ct, ph = np.meshgrid(t, phi, indexing="ij")
    st = np.sqrt(1 - ct**2)
    v = np.stack([st * np.cos(ph), st * np.sin(ph), ct], axis=-1).reshape(-1, 3)
    weights = (w[:, None] * np.full(phi.size, 2 * np.pi / phi.size)).reshape(-1)
    y = np.concatenate([real_spherical_harmonics(ell, v) for ell in range(7)], axis=1)
    gram = y.T @ (weights[:, None] * y)
    np.testing.assert_allclose(gram, np.eye(49), atol=1e-12)


def test_x2_minus_y2_sign() -> None:
    axes = np.eye(3)
    y2 = real_spherical_harmonics(2, axes)  # [3, 5]
    assert y2[0, 4] > 0  # x axis
    assert y2[1, 4] < 0  # y axis
    assert abs(y2[2, 4]) < 1e-15  # z axis
    # same through e3nn and the change of basis
    std = to_standard(_e3nn_sh(2, axes), "2e")
    assert std[0, 4] > 0 and std[1, 4] < 0
    assert component_labels("2e")[4] == "2e m=2 x²-y²"


def test_l1_maps_to_y_z_x(rng: np.random.Generator) -> None:
    v = _unit(rng, 50)
    std = to_standard(_e3nn_sh(1, v), "1o")
    expected = v[:, [1, 2, 0]]
    c = np.sum(std * expected) / np.sum(expected * expected)
    assert c > 0
    np.testing.assert_allclose(std, c * expected, atol=1e-14)
    np.testing.assert_allclose(c, math.sqrt(3 / (4 * math.pi)), rtol=1e-14)


@pytest.fixture
def float64_default():
    """e3nn's D_from_matrix is only float32-accurate (~1e-7) unless the default dtype is float64."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("ell", [1, 2, 3, 4, 6])
def test_change_of_basis_is_equivariant(ell: int, seed: int, float64_default) -> None:
    rots = o3.rand_matrix(5, dtype=torch.float64)
    v = _unit(np.random.default_rng(seed), 5)
    q = change_of_basis(ell)
    ir = o3.Irrep(ell, (-1) ** ell)
    for rot, vec in zip(rots, v, strict=True):
        d_std = q @ ir.D_from_matrix(rot).numpy() @ q.T
        rotated = real_spherical_harmonics(ell, rot.numpy() @ vec)
        np.testing.assert_allclose(rotated, d_std @ real_spherical_harmonics(ell, vec), atol=1e-12)


def test_irreps_change_of_basis_blocks() -> None:
    irreps = "2x1e+0o+1x2o"
    q = irreps_change_of_basis(irreps)
    assert q.shape == (12, 12)
    np.testing.assert_array_equal(q[0:3, 0:3], change_of_basis(1))
    np.testing.assert_array_equal(q[3:6, 3:6], change_of_basis(1))
    np.testing.assert_array_equal(q[6:7, 6:7], [[1.0]])
    np.testing.assert_array_equal(q[7:12, 7:12], change_of_basis(2))
    off = q.copy()
    for s in (slice(0, 3), slice(3, 6), slice(6, 7), slice(7, 12)):
        off[s, s] = 0
    assert not off.any()
    # parity does not change the spatial basis
    np.testing.assert_array_equal(irreps_change_of_basis("1x2e"), irreps_change_of_basis(o3.Irreps("2o")))


def test_round_trip_numpy_and_torch(dtype: torch.dtype, rng: np.random.Generator) -> None:
    irreps = "2x1e+0e+3o+5e"
    x = rng.normal(size=(4, 2, o3.Irreps(irreps).dim))
    np.testing.assert_allclose(to_e3nn(to_standard(x, irreps), irreps), x, atol=1e-13)
    assert to_standard(x.astype(np.float32), irreps).dtype == np.float32
    t = torch.tensor(x, dtype=dtype, requires_grad=True)
    out = to_standard(t, irreps)
    assert out.dtype == dtype and out.shape == t.shape
    np.testing.assert_allclose(out.detach().double().numpy(), to_standard(x, irreps), atol=1e-5)
    out.square().sum().backward()  # norm is basis independent: gradient is 2 t
    torch.testing.assert_close(t.grad, 2 * t.detach())


def test_component_labels_and_slices() -> None:
    labels = component_labels("2x1e+0e+5o+3e")
    assert labels[:6] == [
        "1e[0] m=-1 y",
        "1e[0] m=0 z",
        "1e[0] m=1 x",
        "1e[1] m=-1 y",
        "1e[1] m=0 z",
        "1e[1] m=1 x",
    ]
    assert labels[6] == "0e"
    assert labels[7 + 3] == "5o m=-2"
    assert labels[7 + 11 + 1] == "3e m=-2 xyz"
    assert len(labels) == o3.Irreps("2x1e+0e+5o+3e").dim
    assert irrep_slices("2x1e+0e") == [("1e[0]", slice(0, 3)), ("1e[1]", slice(3, 6)), ("0e", slice(6, 7))]


def test_errors() -> None:
    with pytest.raises(IrrepsError, match="irreps"):
        to_standard(np.zeros(3), "1q")
    with pytest.raises(IrrepsError, match=r"\[\.\.\., 5\]"):
        to_standard(np.zeros(3), "2e")
    with pytest.raises(IrrepsError, match="l=13"):
        change_of_basis(13)
    with pytest.raises(IrrepsError, match="non-zero"):
        real_spherical_harmonics(2, np.zeros(3))
    with pytest.raises(IrrepsError, match=r"\[\.\.\., 3\]"):
        real_spherical_harmonics(2, np.ones(4))

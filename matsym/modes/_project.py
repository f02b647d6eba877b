"""Full-star projectors onto the parent's irreps, applied to Bloch amplitudes, and isotropy subgroups.

For a star ``{k_j}`` with representative ``k`` and a small irrep ``α`` of the little group ``G_k`` (spgrep,
characters ``χ_α``), the projector of the full irrep is ``P_α = Σ_j D(g_j) P^k_α D(g_j)^-1`` with one coset
representative ``g_j`` (``g_j k = k_j``) per arm and

    P^k_α = d_α / |G_k/T| Σ_{h ∈ G_k/T} conj(χ_α(h)) D(h)     (on Bloch waves at k)

the translations having been summed already by taking the Bloch amplitude at ``k``. A real field has
``F_-k = conj(F_k)``: the physically irreducible component is ``P_α f + P_α* f``, the partner being found as the
irrep whose projection is the complex conjugate (same star) or the star of ``-k``.

Isotropy subgroup of a component: the operations ``(W, w + t)`` of the parent (``t`` a lattice vector of the
supercell on which all the component's k are commensurate) that leave every Bloch amplitude unchanged; its type
comes from ``spglib.get_spacegroup_type_from_symmetry``.
"""

from __future__ import annotations

import itertools
import math
import warnings
from fractions import Fraction

import numpy as np

from matsym.kvectors import k_key, reduce_k  # the lattice part, shared with the search's wave-vector analysis
from matsym.modes._group import ParentGroup


def denominator(ks: np.ndarray) -> int:
    return math.lcm(1, *[Fraction(float(x)).limit_denominator(48).denominator for x in np.ravel(ks)])


def k_keys(ks: np.ndarray) -> list[tuple[int, ...]]:
    """:func:`matsym.kvectors.k_key` of each row of ``ks`` [m, 3], in one vectorised pass."""
    r = reduce_k(np.asarray(ks, dtype=np.float64))  # elementwise: the same numbers as row by row
    return [tuple(row) for row in (np.rint(r * 1e6).astype(np.int64) % 1_000_000).tolist()]


def star(group: ParentGroup, k: np.ndarray) -> tuple[list[np.ndarray], list[int]]:
    """Arms (each exactly ``W^-T k`` of its coset representative) and one operation per arm."""
    images = group.k_rotations @ k  # [n_g, 3]
    arms, ops, keys = [], [], set()
    for g, key in enumerate(k_keys(images)):
        if key not in keys:
            keys.add(key)
            arms.append(images[g])
            ops.append(g)
    return arms, ops


_IRREP_CACHE: dict[bytes, tuple[list[np.ndarray], np.ndarray]] = {}


def small_irreps(group: ParentGroup, k: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """spgrep's small irreps at ``k``: matrices [m, d, d] per irrep and the little group's operation indices.

    Cached per (operations, k): spgrep takes 20-70 ms per call, most of a small decomposition's time.
    """
    key = b"".join(
        (
            group.rotations.tobytes(),
            np.round(group.translations, 8).tobytes(),
            np.round(np.asarray(k, float), 10).tobytes(),
        )
    )
    if key not in _IRREP_CACHE:
        if len(_IRREP_CACHE) > 512:
            _IRREP_CACHE.clear()
        _IRREP_CACHE[key] = _small_irreps(group, k)
    return _IRREP_CACHE[key]


def _small_irreps(group: ParentGroup, k: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    from spgrep import get_spacegroup_irreps_from_primitive_symmetry

    with warnings.catch_warnings():
        # spgrep reports "Tighten/Loosen tolerance" UserWarnings when it adjusts its numerical tolerance (seen in
        # the feasibility study, DESIGN.md); the result is still checked here: characters against the tables,
        # projectors for completeness (tests/test_modes.py)
        warnings.filterwarnings("ignore", message=r".*(Tighten|Loosen|tolerance).*", category=UserWarning)
        try:
            irreps, mapping = get_spacegroup_irreps_from_primitive_symmetry(
                group.rotations, group.translations, np.asarray(k, dtype=float)
            )
        except np.linalg.LinAlgError:
            # spgrep 0.8's subgroup chain ("Neto") assumes its own primitive basis for some centred groups
            # (Fd-3m, R-3m, I4_1/amd, ... in the basis reduced from the user's cell); its numerical method
            # ("random", seeded inside spgrep, so the matrices are the same on every run) has no such assumption
            irreps, mapping = get_spacegroup_irreps_from_primitive_symmetry(
                group.rotations, group.translations, np.asarray(k, dtype=float), method="random"
            )
    return [np.asarray(r) for r in irreps], np.asarray(mapping, dtype=np.int64)


def inverse_apply(group: ParentGroup, g: int, amp: np.ndarray, k: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """``D(g)^-1`` on a Bloch amplitude at ``W^-T k``; returns the amplitude at ``k``."""
    kp = group.image_k(g, k)
    phase = np.exp(-2j * np.pi * (group.shifts[g] @ kp))
    return (amp[group.perm[g]] * np.conj(phase)[:, None]) @ rho[g]


def project_star(
    group: ParentGroup,
    k_rep: np.ndarray,
    amps: dict[tuple, np.ndarray],
    rho: np.ndarray,
) -> tuple[list[dict[tuple, np.ndarray]], list[np.ndarray], np.ndarray, list[np.ndarray], np.ndarray]:
    """Project the Bloch amplitudes of one star onto every small irrep at ``k_rep``.

    Args:
        group: the parent.
        k_rep: the star's representative (exact; labels need the table's own vector).
        amps: Bloch amplitude [n_s, D] per arm key (arms absent are zero).
        rho: [n_g, D, D] site-block matrices.

    Returns:
        Per irrep, the component as ``{arm key: amplitude}``; the irreps' characters on the little group; the
        little group's operation indices; the irrep matrices; the amplitudes moved by the little group
        ``[arm, h, n_s, D]`` (for :func:`direction`).
    """
    mats, little = small_irreps(group, k_rep)
    arms, reps = star(group, k_rep)
    moved = _moved(group, k_rep, amps, rho, arms, reps, little)  # [arm, h, n_s, D]
    out, chars = [], []
    for m in mats:
        chi = np.trace(m, axis1=1, axis2=2)  # [|little|]
        chars.append(chi)
        d = m.shape[1]
        comp: dict[tuple, np.ndarray] = {}
        for a, g, mv in zip(arms, reps, moved, strict=True):
            proj = (d / len(little)) * np.einsum("h,hsd->sd", np.conj(chi), mv)
            if np.abs(proj).max() > 0:
                comp[k_key(a)] = group.apply(g, proj, k_rep, rho)
        out.append(comp)
    return out, chars, little, mats, moved


def _moved(group, k_rep, amps, rho, arms, reps, little) -> np.ndarray:
    """[arm, h, n_s, D]: each arm's amplitude pulled back to ``k_rep``, then moved by each ``h`` of ``G_k``.

    Arms without content are zero and are not transformed.
    """
    out = np.zeros((len(arms), len(little), len(group.frac), rho.shape[1]), dtype=complex)
    for j, (a, g) in enumerate(zip(arms, reps, strict=True)):
        amp = amps.get(k_key(a))
        if amp is not None:
            out[j] = group.apply_many(little, inverse_apply(group, g, amp, k_rep, rho), k_rep, rho)
    return out


def direction(
    group: ParentGroup,
    k_rep: np.ndarray,
    amps: dict[tuple, np.ndarray],
    rho: np.ndarray,
    mat: np.ndarray,
    little: np.ndarray,
    moved: np.ndarray | None = None,
) -> np.ndarray:
    """Components of the field along a basis of the full irrep (arms × rows of spgrep's matrices).

    ``moved`` is :func:`project_star`'s ``[arm, h, n_s, D]`` array for the same star and field (computed if None).

    The basis is fixed up to one overall phase by the field itself: its largest row projection ``P_aa`` seeds
    row ``a``, the transfer operators ``P_ba`` give the other rows, the coset representatives the other arms.
    """
    arms, reps = star(group, k_rep)
    zero = np.zeros((len(group.frac), rho.shape[1]), dtype=complex)
    pulled = [inverse_apply(group, g, amps.get(k_key(a), zero), k_rep, rho) for a, g in zip(arms, reps, strict=True)]
    if moved is None:
        moved = _moved(group, k_rep, amps, rho, arms, reps, little)
    d = mat.shape[1]
    scale = d / len(little)

    def transfer(b: int, a: int, mv: np.ndarray) -> np.ndarray:  # mv: [h, n_s, D], the vector moved by each h
        return scale * np.einsum("h,hsd->sd", np.conj(mat[:, b, a]), mv)

    best, seed = -1.0, None
    for j in range(len(pulled)):
        for a in range(d):
            v = transfer(a, a, moved[j])
            n = float(np.linalg.norm(v))
            if n > best:
                best, seed = n, (j, a, v)
    if seed is None or best == 0.0:
        return np.zeros(len(arms) * d)
    _, a0, v0 = seed
    mv0 = group.apply_many(little, v0 / best, k_rep, rho)
    basis = [transfer(b, a0, mv0) for b in range(d)]
    eta = np.array([[np.vdot(e, p) for e in basis] for p in pulled]).ravel()
    big = eta[np.argmax(np.abs(eta))]
    eta = eta * np.conj(big) / abs(big)
    if np.abs(eta.imag).max() > 1e-6 * np.abs(eta).max():
        return np.abs(eta)
    return eta.real


def pattern(vec: np.ndarray, tol: float = 1e-3) -> str:
    """``(a,a,0)``-style pattern: equal magnitudes share a letter, signs kept, zeros shown as 0."""
    top = float(np.abs(vec).max()) if len(vec) else 0.0
    letters: list[float] = []
    parts = []
    for x in vec:
        if top == 0 or abs(x) <= tol * top:
            parts.append("0")
            continue
        hit = next((i for i, v in enumerate(letters) if abs(abs(x) - v) <= tol * top), None)
        if hit is None:
            letters.append(abs(x))
            hit = len(letters) - 1
        name = "abcdefghijklmnopqrstuvwxyz"[hit % 26] if hit < 26 else f"a{hit}"
        parts.append(("-" if x < 0 else "") + name)
    return "(" + ",".join(parts) + ")"


def isotropy_ops(
    group: ParentGroup,
    comp: dict[tuple, np.ndarray],
    kvecs: dict[tuple, np.ndarray],
    rho: np.ndarray,
    d: int,
    strain: np.ndarray | None = None,
    tol: float = 1e-6,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Operations ``(W, (w + t) / d)`` (basis of the ``d``-fold supercell) that leave a component unchanged.

    Returns:
        rotations, translations, and the number of pure lattice translations ``t`` (of ``d**3``) kept.
    """
    norm = max(float(np.abs(a).max()) for a in comp.values()) if comp else 0.0
    grid = np.array(list(itertools.product(range(d), repeat=3)), dtype=np.float64)  # [d^3, 3]
    keys = list(comp)
    ok = np.ones(group.n_ops, dtype=bool)
    if strain is not None:
        r = group.cart_rotations
        images = r @ strain @ np.transpose(r, (0, 2, 1))  # R ε R^T, Biot strain, dimensionless
        ok &= ~(np.abs(images - strain).max(axis=(1, 2)) > 1e-5)
    gs = np.nonzero(ok)[0]
    phases = np.zeros((group.n_ops, len(keys)))
    kps = np.zeros((group.n_ops, len(keys), 3))
    for j, key in enumerate(keys):
        # every operation at once: its image of this arm, and the component's amplitude at the image's k
        img = group.apply_many(gs, comp[key], kvecs[key], rho)  # [m, n_s, D]
        kp = reduce_k(group.k_rotations[gs] @ kvecs[key])  # [m, 3]
        found = np.zeros(len(gs), dtype=bool)
        tgt = np.zeros_like(img)
        for i, kk in enumerate(k_keys(kp)):
            if kk in comp:
                found[i], tgt[i] = True, comp[kk]
        tt = np.einsum("msd,msd->m", np.conj(tgt), tgt).real
        ratio = np.einsum("msd,msd->m", np.conj(tgt), img) / np.where(found, tt, 1.0)
        dev = np.abs(img - ratio[:, None, None] * tgt).max(axis=(1, 2))
        good = found & ~(np.abs(np.abs(ratio) - 1) > 1e-6) & ~(dev > tol * max(norm, 1e-300))
        ok[gs[~good]] = False
        phases[gs, j] = np.angle(ratio) / (2 * np.pi)
        kps[gs, j] = kp
    rots: list[np.ndarray] = []
    trans: list[np.ndarray] = []
    n_pure = 0
    for g in np.nonzero(ok)[0]:
        if keys:
            frac = grid @ kps[g].T - phases[g][None]  # need k'·t ≡ phase (mod 1)
            good = np.all(np.abs(frac - np.rint(frac)) < 1e-6, axis=1)
        else:
            good = np.ones(len(grid), dtype=bool)
        ts = grid[good]  # [m, 3]
        rots.append(np.broadcast_to(group.rotations[g], (len(ts), 3, 3)))
        trans.append(((group.translations[g] + ts) / d) % 1.0)
        if np.array_equal(group.rotations[g], np.eye(3, dtype=np.int64)):
            n_pure = int(good.sum())
    if not rots:
        return np.array([], dtype=np.intc), np.array([]), n_pure
    return np.concatenate(rots).astype(np.intc), np.concatenate(trans), n_pure


def group_type(group: ParentGroup, rots: np.ndarray, trans: np.ndarray, d: int) -> tuple[int, str]:
    """Space-group number and symbol of a set of operations on the ``d``-fold supercell."""
    from matsym.symmetry import _spglib_raising

    with _spglib_raising() as spglib:
        t = spglib.get_spacegroup_type_from_symmetry(rots, trans, lattice=d * group.lattice, symprec=1e-5)
    return int(t.number), str(t.international_short)

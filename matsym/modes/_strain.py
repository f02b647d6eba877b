"""Strain by the irreps of the parent's point group, and the Glazer tilt symbol of a cubic perovskite parent.

Strain is a Γ-point quantity: the (Biot) strain tensor transforms as ``R ε R^T`` under the point group, and is
projected with the characters of the small irreps at k = 0 (GM1+, GM3+, GM5+ for a cubic parent).

The Glazer symbol is read off the displacements of the X anions at M (in-phase tilts: the arm with k_a = 0 tilts
about axis a) and R (anti-phase tilts about each axis): the rotation about axis a is the sum over the anions in the
plane perpendicular to a of ``(a × r)·u / |r|²`` with ``r`` the anion's offset from its B cation. It is the M3+/R4+
content with B at 1a (M2+/R5- with A at 1a), measured in Cartesian axes rather than in the irreps' bases.
"""

from __future__ import annotations

import numpy as np

from matsym.modes._group import ParentGroup
from matsym.modes._result import StrainMode

_STRAIN_ZERO = 1e-6  # strain components below this are rounding in the input files


def strain_modes(group: ParentGroup, setting, strain: np.ndarray) -> tuple[StrainMode, ...]:
    from matsym.modes._decompose import _label
    from matsym.modes._project import small_irreps

    mats, little = small_irreps(group, np.zeros(3))
    r = group.cart_rotations[little]
    images = np.einsum("gij,jk,glk->gil", r, strain, r)  # R ε R^T
    chars = [np.trace(m, axis1=1, axis2=2) for m in mats]
    _, labels = _label(setting, group, np.zeros(3), chars, little)
    out, used = [], set()
    for a, (m, chi) in enumerate(zip(mats, chars, strict=True)):
        if a in used:
            continue
        proj = (m.shape[1] / len(little)) * np.einsum("g,gij->ij", np.conj(chi), images)
        name = labels[a] or f"GM, irrep {a + 1} of {len(mats)}"
        if np.abs(proj.imag).max() > 1e-9:
            proj = 2 * proj.real
            name += "(+conjugate)"
        proj = proj.real
        amp = float(np.linalg.norm(proj))
        if amp > _STRAIN_ZERO:
            out.append(StrainMode(name, int(m.shape[1]), amp, tuple(tuple(float(x) for x in row) for row in proj)))
    return tuple(out)


def glazer(group: ParentGroup, amps: dict, kvec: dict, blocks) -> str | None:
    """Glazer symbol of a cubic perovskite parent from the octahedral rotations at M (in phase) and R (anti-phase)."""
    if group.number != 221 or len(group.frac) != 5 or len(blocks) != 1 or not blocks[0].cartesian:
        return None
    counts = {s: group.species.count(s) for s in group.species}
    x_sites = [i for i, s in enumerate(group.species) if counts[s] == 3]
    others = [i for i in range(5) if i not in x_sites]
    if len(x_sites) != 3:
        return None
    a0 = float(abs(np.linalg.det(group.lattice))) ** (1 / 3)
    cubic = a0 * np.eye(3) @ np.linalg.inv(group.lattice)  # the cubic axes in the primitive basis
    if np.abs(cubic - np.rint(cubic)).max() > 1e-6:
        return None  # cubic axes not along x, y, z

    def vec(i, j):
        d = group.frac[i] - group.frac[j]
        return (d - np.rint(d)) @ group.lattice

    b_site = next(
        (j for j in others if all(abs(np.linalg.norm(vec(i, j)) - a0 / 2) < 1e-3 * a0 for i in x_sites)), None
    )
    if b_site is None:
        return None
    tilt = {"+": np.zeros(3), "-": np.zeros(3)}
    for kk, amp in amps.items():
        k = np.rint(cubic).astype(np.int64) @ kvec[kk]  # components along the cubic axes (units 1/a0)
        k = k - np.floor(k + 1e-9)
        half = np.isclose(k, 0.5)
        if not np.all(half | np.isclose(k, 0.0)):
            continue
        n_half = int(half.sum())
        if n_half == 3:
            phase = "-"
        elif n_half == 2:
            phase = "+"
        else:
            continue
        for ax in range(3):
            if phase == "+" and not np.isclose(k[ax], 0.0):
                continue
            e = np.zeros(3)
            e[ax] = 1.0
            w = 0.0
            for i in x_sites:
                r = vec(i, b_site)
                if abs(r[ax]) > 1e-6:
                    continue
                w += float(np.real(np.cross(e, r) @ amp[i])) / float(r @ r)
            tilt[phase][ax] += abs(w)
    mags = np.maximum(tilt["+"], tilt["-"])
    if mags.max() <= 1e-6:
        return "a0a0a0"
    top = float(mags.max())
    signs = ["0" if m <= 1e-3 * top else "+" if tilt["+"][ax] >= tilt["-"][ax] else "-" for ax, m in enumerate(mags)]
    # axes in the Howard-Stokes order (no tilt, in phase, anti-phase; larger first): the registration may
    # have put the target in any of the cubic orientations
    order = sorted(range(3), key=lambda ax: ("0+-".index(signs[ax]), -round(mags[ax] / top, 3)))
    out = ""
    for pos, ax in enumerate(order):
        same = next(
            i
            for i in range(pos + 1)
            if signs[order[i]] == "0" == signs[ax] or abs(mags[order[i]] - mags[ax]) <= 1e-3 * top
        )
        out += "abc"[same] + signs[ax]
    return out

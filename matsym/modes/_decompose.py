"""Decompose a distortion, or any per-site field on a supercell of the parent, into symmetry modes.

This is reporting after the search (like the spglib verification): the search itself uses no tables.

Normalisation (ISODISTORT): ``amplitude`` As is the root of the summed squared field of a mode over the primitive
cell of the isotropy subgroup of the whole field, ``amplitude_parent`` Ap = As/√s with s that cell's volume over
the parent's primitive volume. Per parent cell the summed squares are ``Σ_k |F_k|²`` (Parseval over the Bloch
amplitudes), so As² = s Σ_arms |C_k|², and the modes' As² add up to the total's.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from matsym.errors import InputError, StructureError
from matsym.kvectors import commensurate_k, k_key, reduce_k
from matsym.modes import _labels as lab
from matsym.modes._group import ParentGroup, field_blocks, parent_group, site_matrices
from matsym.modes._project import (
    denominator,
    direction,
    group_type,
    isotropy_ops,
    pattern,
    project_star,
    star,
)
from matsym.modes._result import Mode, ModeDecomposition
from matsym.modes._strain import glazer, strain_modes

__all__ = ["decompose", "decompose_field"]

_ZERO = 1e-9  # relative: components below this share of the field are dropped
_PAIR_TOL = 1e-7


def _shifted(parent: Any, origin: Any) -> tuple[Any, np.ndarray]:
    from matsym.symmetry import _to_structure

    p = _to_structure(parent).copy()
    if origin is None:
        return p, np.zeros(3)
    o = np.asarray(origin, dtype=np.float64)
    if o.shape != (3,) or not np.all(np.isfinite(o)):
        raise InputError(f"origin must be three fractional coordinates of the parent cell, got {origin!r}")
    p.translate_sites(list(range(len(p))), -o, frac_coords=True, to_unit_cell=True)
    return p, o


def decompose(parent: Any, target: Any, *, origin: Any = None, symprec: float = 1e-3, **register_kwargs: Any):
    """Symmetry modes of the distortion that takes ``parent`` to ``target``.

    Args:
        parent: the high-symmetry structure (pymatgen Structure, ASE Atoms or a file path).
        target: the distorted structure, registered onto the parent exactly as ``matsym find`` does.
        origin: fractional coordinates (parent cell) of the point to use as the parent's origin, e.g.
            ``(0.5, 0.5, 0.5)`` to put the A cation of a perovskite at 1a when the B cation was there.
        symprec: spglib tolerance for the parent's symmetry.
        **register_kwargs: passed to :func:`matsym.registration.register`.

    Returns:
        The :class:`ModeDecomposition` (amplitudes in Å, strain by the point group's irreps).
    """
    from matsym.registration import register

    p, o = _shifted(parent, origin)
    reg = register(p, target, **register_kwargs)
    frac = np.asarray(reg.parent.frac_coords) + np.asarray(reg.origin_shift)
    return _decompose(
        p,
        o,
        np.asarray(reg.parent.lattice.matrix),
        frac,
        np.asarray(reg.displacements),
        None,
        species=[site.species_string for site in reg.parent],
        strain=np.asarray(reg.strain),
        kind="displacement",
        symprec=symprec,
    )


def decompose_field(
    parent: Any,
    supercell: Any,
    field: Any,
    *,
    irreps: str | None = None,
    origin: Any = None,
    kind: str = "order_parameter",
    symprec: float = 1e-3,
) -> ModeDecomposition:
    """Symmetry modes of a per-site field on a supercell of the parent.

    Args:
        parent: the parent structure.
        supercell: a structure whose sites are the parent's sites on a supercell (same frame and origin as
            ``parent``); ``field[j]`` belongs to its site ``j``.
        field: [n, D] values: Cartesian displacements when ``irreps`` is None, else components in matsym's
            standard real spherical-harmonic basis (:mod:`matsym.basis`) of the e3nn irreps string ``irreps``
            (1e pseudovectors transform with det R, L ≥ 2 with Wigner matrices).
        irreps: the field's irreps, or None for displacements.
        origin: as in :func:`decompose`.
        kind: ``"displacement"`` (amplitudes in the field's unit) or ``"order_parameter"`` (shares of the
            squared norm).
        symprec: spglib tolerance.
    """
    from matsym.symmetry import _to_structure

    p, o = _shifted(parent, origin)
    sc = _to_structure(supercell)
    lat = np.asarray(sc.lattice.matrix)
    frac = np.asarray(sc.frac_coords) - o @ np.asarray(p.lattice.matrix) @ np.linalg.inv(lat)
    values = np.asarray(field, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != len(sc):
        raise InputError(f"field must be [n_sites={len(sc)}, D], got shape {values.shape}")
    if kind not in ("displacement", "order_parameter"):
        raise InputError(f"kind must be 'displacement' or 'order_parameter', got {kind!r}")
    species = [site.species_string for site in sc]
    return _decompose(p, o, lat, frac, values, irreps, species=species, strain=None, kind=kind, symprec=symprec)


# ------------------------------------------------------------------------------------------------------------


def _site_cells(group: ParentGroup, lat: np.ndarray, frac: np.ndarray, species: list[str]):
    m = lat @ np.linalg.inv(group.lattice)
    m_int = np.rint(m).astype(np.int64)
    if np.abs(m - m_int).max() > 1e-3 or round(abs(np.linalg.det(m_int))) == 0:
        raise StructureError(
            f"the field's cell is not a supercell of the parent's primitive cell: M = {np.round(m, 4)}"
        )
    y = frac @ lat @ np.linalg.inv(group.lattice)
    s_idx = np.empty(len(y), dtype=np.int64)
    cells = np.empty((len(y), 3), dtype=np.int64)
    for j, v in enumerate(y):
        d = v[None] - group.frac
        hit = np.nonzero(np.all(np.abs(d - np.rint(d)) < 1e-3, axis=1))[0]
        hit = [h for h in hit if group.species[h] == species[j]]
        if len(hit) != 1:
            raise StructureError(f"site {j} ({species[j]}) of the field's cell is not on a site of the parent")
        s_idx[j], cells[j] = hit[0], np.rint(d[hit[0]])
    return m_int, s_idx, cells


class _Setting:
    """The tables' standard setting for the parent, and where the origin is."""

    def __init__(self, group: ParentGroup, symprec: float, want_labels: bool):
        self.table = lab.load_table(group.number) if want_labels else None
        self.p_mat = np.eye(3)
        self.p_shift = np.zeros(3)
        self.wyckoffs: list[str] | None = None
        self.moved = False
        if self.table is None:
            return
        from matsym.symmetry import _spglib_raising

        numbers = [sorted(set(group.species)).index(s) for s in group.species]
        with _spglib_raising() as spglib:
            ds = spglib.get_symmetry_dataset(
                (group.lattice, group.frac, numbers), symprec=symprec, hall_number=lab.table_hall_number(group.number)
            )
        self.p_mat = np.asarray(ds.transformation_matrix, dtype=np.float64)
        shift = np.asarray(ds.origin_shift, dtype=np.float64)
        # keep the user's origin when it is a standard origin as well (normaliser shift), else spglib's
        if self._valid(group, np.zeros(3)):
            self.moved = not np.allclose(shift - np.rint(shift), 0, atol=1e-6)
            self.p_shift = np.zeros(3)
            self.wyckoffs = None if self.moved else list(ds.wyckoffs)
        else:
            self.p_shift, self.moved, self.wyckoffs = shift, True, list(ds.wyckoffs)

    def std_ops(self, group: ParentGroup, shift: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        p = self.p_shift if shift is None else shift
        pinv = np.linalg.inv(self.p_mat)
        w = np.rint(np.einsum("ij,gjk,kl->gil", self.p_mat, group.rotations, pinv)).astype(np.int64)
        t = group.translations @ self.p_mat.T + p[None] - np.einsum("gij,j->gi", w, p)
        return w, t

    def _valid(self, group: ParentGroup, shift: np.ndarray) -> bool:
        from matsym.symmetry import _spglib_raising

        w, t = self.std_ops(group, shift)
        with _spglib_raising() as spglib:
            db = spglib.get_symmetry_from_database(lab.table_hall_number(group.number))
        db_r, db_t = np.asarray(db["rotations"]), np.asarray(db["translations"])
        same_r = np.all(w[:, None] == db_r[None], axis=(2, 3))  # [n_ops, n_db]
        d = t[:, None] - db_t[None]
        same_t = np.abs(d - np.rint(d)).max(axis=-1) < 1e-5
        return bool(np.all(np.any(same_r & same_t, axis=1)))  # every operation is one of the database's

    def k_std(self, k_prim: np.ndarray) -> np.ndarray:
        return np.linalg.inv(self.p_mat).T @ k_prim

    def k_prim(self, k_std: np.ndarray) -> np.ndarray:
        return self.p_mat.T @ k_std


def _orbits(group: ParentGroup) -> list[list[int]]:
    seen: set[int] = set()
    out = []
    for s in range(len(group.frac)):
        if s not in seen:
            orb = sorted(set(group.perm[:, s].tolist()))
            seen.update(orb)
            out.append(orb)
    return out


class _Parent:
    """What a decomposition needs of the parent alone: its group, Wyckoff orbits, table setting, site matrices.

    Kept between decompositions on the same parent (a search result reports two fields, the learned order
    parameter and the decoded displacements): building it takes two spglib datasets for the group, one for the
    setting and the site matrices; built for each field, they were about a third of the report's time in a
    ``matsym find`` run (cProfile: 0.08 of 0.24 s). Its arrays are read-only.
    """

    def __init__(self, group: ParentGroup, symprec: float):
        _ = group.k_rotations  # a cached property: computed now, so that it is made read-only with the rest
        for value in vars(group).values():
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
        self.group = group
        self.symprec = symprec
        self.orbits = _orbits(group)
        self._setting: _Setting | None = None
        self._rho: dict[tuple, np.ndarray] = {}

    def setting(self) -> _Setting:
        """The tables' setting; rebuilt when the tables change (installed, removed, reloaded)."""
        if self._setting is None or self._setting.table is not lab.load_table(self.group.number):
            self._setting = _Setting(self.group, self.symprec, want_labels=True)
        return self._setting

    def rho(self, blocks: tuple) -> np.ndarray:
        """[n_g, D, D] site-block matrices of a field's blocks."""
        if blocks not in self._rho:
            rho = site_matrices(self.group, blocks)
            rho.flags.writeable = False
            self._rho[blocks] = rho
        return self._rho[blocks]


_PARENTS: dict[tuple, _Parent] = {}
_PARENTS_MAX = 16
_PARENTS_LOCK = threading.Lock()  # screens may decompose in threads; building happens outside the lock


def _parent(p: Any, symprec: float) -> _Parent:
    """The :class:`_Parent` of a structure (the same object for the same lattice, sites, species and symprec)."""
    key = (
        np.asarray(p.lattice.matrix, dtype=np.float64).tobytes(),
        np.asarray(p.frac_coords, dtype=np.float64).tobytes(),
        tuple(site.species_string for site in p),
        float(symprec),
    )
    with _PARENTS_LOCK:
        hit = _PARENTS.pop(key, None)
    if hit is None:
        hit = _Parent(parent_group(p, symprec=symprec), symprec)
    with _PARENTS_LOCK:
        _PARENTS[key] = hit  # most recently used last
        while len(_PARENTS) > _PARENTS_MAX:
            del _PARENTS[next(iter(_PARENTS))]
    return hit


def _decompose(p, origin, lat, frac, values, irreps, *, species, strain, kind, symprec, fields=None):
    cached = _parent(p, symprec)
    group = cached.group
    blocks = field_blocks(irreps)
    dim = sum(b.dim for b in blocks)
    if values.shape[1] != dim:
        raise InputError(f"field has {values.shape[1]} components per site, its irreps {irreps!r} need {dim}")
    m_int, s_idx, cells = _site_cells(group, lat, frac, species)
    n_cells = round(abs(np.linalg.det(m_int)))
    ks = commensurate_k(m_int)  # k·t integer for every supercell vector t (the rows of M)
    phases = np.exp(-2j * np.pi * cells @ ks.T) / n_cells  # [n, n_k]
    onehot = np.zeros((len(values), len(group.frac)))
    onehot[np.arange(len(values)), s_idx] = 1.0
    bloch = np.einsum("jk,js,jd->ksd", phases, onehot, values)  # [n_k, n_s, D]
    norms = np.einsum("ksd,ksd->k", bloch, np.conj(bloch)).real
    total2 = float(norms.sum())
    setting = cached.setting()
    rho = cached.rho(blocks)
    keep = norms > _ZERO * max(total2, 1e-300)
    amps = {k_key(k): b for k, b, ok in zip(ks, bloch, keep, strict=True) if ok}
    kvec = {k_key(k): k for k, ok in zip(ks, keep, strict=True) if ok}
    d = denominator(np.array(list(kvec.values())) if kvec else np.zeros((1, 3)))
    if total2 == 0.0:
        rots, trans, n_pure = isotropy_ops(group, {}, {}, rho, 1, strain)
        d = 1
    else:
        rots, trans, n_pure = isotropy_ops(group, amps, kvec, rho, d, strain)
    whole = group_type(group, rots, trans, d)
    s_size = d**3 / max(n_pure, 1)
    modes = _modes(group, setting, amps, kvec, rho, blocks, d, s_size, total2, kind, strain, fields, cached.orbits)
    if fields is not None:  # real-space fields of the components on the given cell, for checks
        fields[:] = [(name, _real_space(full, kfull, s_idx, cells)) for name, full, kfull in fields]
    total = float(np.sqrt(s_size * total2))
    if kind == "order_parameter":
        total = 1.0 if total2 > 0 else 0.0
    return ModeDecomposition(
        parent={
            "space_group": {"number": group.number, "symbol": group.symbol},
            "origin": _origin(setting, origin, group, cached.orbits),
        },
        subgroup={"number": whole[0], "symbol": whole[1]},
        kind=kind,
        modes=tuple(sorted(modes, key=lambda m: -m.amplitude)),
        strain=strain_modes(group, setting, strain) if strain is not None else (),
        total=total,
        supercell_size=float(s_size),
        glazer=glazer(group, amps, kvec, blocks),
        labels="bilbao" if setting.table is not None else "index",
    )


def _origin(setting: _Setting, origin: np.ndarray, group: ParentGroup, orbits: list[list[int]]) -> dict[str, Any]:
    shift = [float(x) for x in origin]
    if setting.table is None:
        text = "origin as given" if not any(shift) else f"origin shifted to {shift} (parent fractional)"
        text += "; labels without the tables (pip install matsym[labels] for CDML labels)"
    elif setting.moved and setting.wyckoffs is not None:
        text = f"origin moved to spglib's standard origin {np.round(setting.p_shift, 4).tolist()} (standard cell)"
    else:
        text = "origin as given" if not any(shift) else f"origin shifted to {shift} (parent fractional)"
        text += ", ITA standard setting (origin choice 2 where there are two)"
    if setting.wyckoffs is not None:
        text += "; sites " + ", ".join(
            f"{group.species[orb[0]]} {len(orb)}{setting.wyckoffs[orb[0]]}" for orb in orbits
        )
    return {"shift": shift, "description": text}


def _label(setting: _Setting, group: ParentGroup, k_rep: np.ndarray, chars, little) -> tuple[str, list[str | None]]:
    if setting.table is None:
        return "k", [None] * len(chars)
    ks = setting.k_std(k_rep)
    for tk in setting.table.kpoints:
        if np.allclose(tk.k, ks, atol=1e-6):
            w, t = setting.std_ops(group)
            idx = lab.match_characters(tk, setting.table, w[little], t[little], np.array(chars))
            return tk.name, [tk.labels[i] if i is not None else None for i in idx]
    return "k", [None] * len(chars)


def _representative(group: ParentGroup, setting: _Setting, k: np.ndarray) -> np.ndarray:
    if setting.table is None:
        return k
    arms = {k_key(a) for a in star(group, k)[0]}
    for tk in setting.table.kpoints:
        kp = setting.k_prim(tk.k)
        if k_key(kp) in arms:
            return kp
    return k


def _modes(group, setting, amps, kvec, rho, blocks, d, s_size, total2, kind, strain, fields, orbits) -> list[Mode]:
    done: set[tuple] = set()
    out: list[Mode] = []
    for key in sorted(amps):
        if key in done:
            continue
        k_rep = _representative(group, setting, kvec[key])
        arms = star(group, k_rep)[0]
        arm_keys = {k_key(a) for a in arms}
        minus = {k_key(-a) for a in arms}
        separate = not (minus & arm_keys)
        done |= arm_keys | (minus if separate else set())
        comps, chars, little, mats, moved = project_star(group, k_rep, amps, rho)
        k_name, labels = _label(setting, group, k_rep, chars, little)
        used: set[int] = set()
        for a, comp in enumerate(comps):
            if a in used or not comp:
                continue
            n2 = sum(float(np.vdot(c, c).real) for c in comp.values())
            if n2 <= _ZERO * total2:
                continue
            full = dict(comp)
            names = [labels[a] or f"{k_name}, irrep {a + 1} of {len(comps)}"]
            factor = 1
            if separate:
                for kk, c in comp.items():
                    full[k_key(-kvec_or(kvec, kk, arms))] = np.conj(c)
                factor = 2
            elif not _self_conjugate(comp):
                partner = next((b for b in range(len(comps)) if b != a and _conjugates(comp, comps[b])), None)
                if partner is not None:
                    used.add(partner)
                    for kk, c in comps[partner].items():
                        full[kk] = full.get(kk, 0) + c
                    names.append(labels[partner] or f"irrep {partner + 1}")
                    factor = 2
            used.add(a)
            kfull = {kk: kvec_or(kvec, kk, arms, minus_ok=True) for kk in full}
            if fields is not None:  # the components only (checks): no subgroups, no directions
                fields.append((names[0], full, kfull))
                continue
            rots, trans, _ = isotropy_ops(group, full, kfull, rho, d)
            sub = group_type(group, rots, trans, d)
            amp2 = s_size * factor * n2
            sites = []
            for orb in orbits:
                for b in blocks:
                    sl = slice(b.start, b.start + b.dim)
                    v = factor * sum(float(np.vdot(c[orb, sl], c[orb, sl]).real) for c in comp.values())
                    if v > _ZERO * n2:
                        sites.append(
                            {
                                "species": group.species[orb[0]],
                                "wyckoff": f"{len(orb)}{setting.wyckoffs[orb[0]]}" if setting.wyckoffs else None,
                                "block": b.name,
                                "amplitude": _scaled(s_size * v, total2 * s_size, kind),
                            }
                        )
            vec = direction(group, k_rep, amps, rho, mats[a], little, moved)
            if np.linalg.norm(vec) > 0:
                vec = vec / np.linalg.norm(vec)
            amp = _scaled(amp2, total2 * s_size, kind)
            out.append(
                Mode(
                    irrep="".join(names) if labels[a] else " + ".join(names),
                    k=tuple(float(x) for x in (setting.k_std(k_rep) if setting.table is not None else k_rep)),
                    k_name=k_name,
                    star=len(arms) * (2 if separate else 1),
                    dimension=len(arms) * mats[a].shape[1] * factor,
                    amplitude=amp,
                    amplitude_parent=amp if kind == "order_parameter" else amp / float(np.sqrt(s_size)),
                    direction=tuple(float(x) for x in vec),
                    pattern=pattern(vec),
                    subgroup={"number": sub[0], "symbol": sub[1]},
                    sites=tuple(sites),
                )
            )
    return out


def _real_space(full: dict, kfull: dict, s_idx: np.ndarray, cells: np.ndarray) -> np.ndarray:
    out = 0
    for kk, c in full.items():
        out = out + np.exp(2j * np.pi * cells @ kfull[kk])[:, None] * c[s_idx]
    return np.asarray(out)


def mode_fields(parent: Any, supercell: Any, field: Any, *, irreps: str | None = None, origin: Any = None):
    """The field's components on the supercell's sites, one per reported mode: ``[(label, [n, D] complex)]``.

    For checks (projectors real, idempotent, orthogonal, complete); :func:`decompose_field` reports them.
    """
    from matsym.symmetry import _to_structure

    p, o = _shifted(parent, origin)
    sc = _to_structure(supercell)
    lat = np.asarray(sc.lattice.matrix)
    frac = np.asarray(sc.frac_coords) - o @ np.asarray(p.lattice.matrix) @ np.linalg.inv(lat)
    fields: list = []
    _decompose(
        p,
        o,
        lat,
        frac,
        np.asarray(field, dtype=np.float64),
        irreps,
        species=[x.species_string for x in sc],
        strain=None,
        kind="displacement",
        symprec=1e-3,
        fields=fields,
    )
    return fields


def kvec_or(kvec: dict, kk: tuple, arms: list[np.ndarray], minus_ok: bool = False) -> np.ndarray:
    """The k-vector of an arm key (from the field's vectors, the star, or its negatives)."""
    if kk in kvec:
        return kvec[kk]
    for a in arms:
        if k_key(a) == kk:
            return reduce_k(a)
        if minus_ok and k_key(-a) == kk:
            return reduce_k(-a)
    raise KeyError(kk)


def _scaled(amp2: float, total2: float, kind: str) -> float:
    if kind == "order_parameter":
        return amp2 / total2 if total2 > 0 else 0.0
    return float(np.sqrt(amp2))


def _self_conjugate(comp: dict[tuple, np.ndarray]) -> bool:
    return _conjugates(comp, comp)


def _conjugates(a: dict[tuple, np.ndarray], b: dict[tuple, np.ndarray]) -> bool:
    scale = max(float(np.abs(v).max()) for v in a.values())
    for kk, c in a.items():
        minus = tuple((-x) % 1_000_000 for x in kk)
        other = b.get(minus)
        if other is None or np.abs(other - np.conj(c)).max() > _PAIR_TOL * max(scale, 1e-300) + 1e-12:
            return False
    return True

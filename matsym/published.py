"""Published crystal structures of the fluorite family, with their sources, and ideal fluorite parents.

Used by the registration tests and benchmarks (large monoclinic shears, conventional parents). Coordinates are
the published asymmetric units expanded by the space group's general positions written out here (no symmetry
tables are read); :func:`matsym.symmetry.space_group` confirms each group in the tests. The values were entered
from the papers as cited; the papers themselves could not be consulted where this module was written, so the HfO2
oxygen coordinates and the tetragonal z(O) in particular should be checked against ICSD before they are used as
reference data (the registration tests do not depend on their last digits: any coordinates on these orbits give
the same space groups and supercell relations).

- Baddeleyite ZrO2, P2₁/c (No. 14, unique axis b), neutron powder diffraction at room temperature:
  C. J. Howard, R. J. Hill and B. E. Reichert, Acta Cryst. B44, 116-120 (1988). a = 5.1505, b = 5.2116,
  c = 5.3173 Å, β = 99.230°; Zr 4e (0.2754, 0.0395, 0.2083), O1 4e (0.0700, 0.3317, 0.3447),
  O2 4e (0.4496, 0.7569, 0.4792).
- Monoclinic HfO2, P2₁/c, X-ray powder diffraction: R. E. Hann, P. R. Suitch and J. L. Pentecost,
  J. Am. Ceram. Soc. 68, C285-C286 (1985). a = 5.1170, b = 5.1754, c = 5.2915 Å, β = 99.216°;
  Hf 4e (0.2759, 0.0412, 0.2078), O1 4e (0.0743, 0.3316, 0.3460), O2 4e (0.4490, 0.7589, 0.4803).
- Tetragonal ZrO2, P4₂/nmc (No. 137), at 1250 °C: G. Teufer, Acta Cryst. 15, 1187 (1962). a = 3.64,
  c = 5.27 Å; Zr 2a, O 4d with z(O) = 0.185 (origin at Zr; the ideal fluorite value is 1/4).
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice, Structure

__all__ = [
    "baddeleyite_hfo2",
    "baddeleyite_zro2",
    "fluorite_conventional",
    "fluorite_primitive",
    "tetragonal_zro2",
]

_P21C = (  # general position 4e of P 1 21/c 1
    lambda x, y, z: (x, y, z),
    lambda x, y, z: (-x, y + 0.5, -z + 0.5),
    lambda x, y, z: (-x, -y, -z),
    lambda x, y, z: (x, -y + 0.5, z + 0.5),
)


def _monoclinic(
    metal: str, abc: tuple[float, float, float], beta: float, sites: dict[str, tuple[float, float, float]]
) -> Structure:
    lattice = Lattice.monoclinic(*abc, beta)
    species, coords = [], []
    for label, xyz in sites.items():
        for op in _P21C:
            species.append(metal if label == "M" else "O")
            coords.append(np.mod(op(*xyz), 1.0))
    return Structure(lattice, species, coords)


def baddeleyite_zro2() -> Structure:
    """Monoclinic ZrO2 (baddeleyite, P2₁/c, 12 sites), Howard, Hill & Reichert, Acta Cryst. B44, 116 (1988)."""
    return _monoclinic(
        "Zr",
        (5.1505, 5.2116, 5.3173),
        99.230,
        {"M": (0.2754, 0.0395, 0.2083), "O1": (0.0700, 0.3317, 0.3447), "O2": (0.4496, 0.7569, 0.4792)},
    )


def baddeleyite_hfo2() -> Structure:
    """Monoclinic HfO2 (P2₁/c, 12 sites), Hann, Suitch & Pentecost, J. Am. Ceram. Soc. 68, C285 (1985)."""
    return _monoclinic(
        "Hf",
        (5.1170, 5.1754, 5.2915),
        99.216,
        {"M": (0.2759, 0.0412, 0.2078), "O1": (0.0743, 0.3316, 0.3460), "O2": (0.4490, 0.7589, 0.4803)},
    )


def tetragonal_zro2() -> Structure:
    """Tetragonal ZrO2 (P4₂/nmc, 6 sites), Teufer, Acta Cryst. 15, 1187 (1962); origin at Zr."""
    z = 0.185
    coords = [(0, 0, 0), (0.5, 0.5, 0.5), (0, 0.5, z), (0, 0.5, z + 0.5), (0.5, 0, -z), (0.5, 0, 0.5 - z)]
    return Structure(Lattice.tetragonal(3.64, 5.27), ["Zr", "Zr", "O", "O", "O", "O"], np.mod(coords, 1.0))


def _cubic_a(volume_per_formula_unit: float) -> float:
    return float((4.0 * volume_per_formula_unit) ** (1.0 / 3.0))


def fluorite_primitive(metal: str = "Zr", volume_per_formula_unit: float | None = None, a: float = 5.07) -> Structure:
    """Ideal fluorite MO2 on its primitive fcc cell (3 sites).

    Args:
        metal: the cation.
        volume_per_formula_unit: Å³; sets the cubic lattice parameter ``a = (4 V)^(1/3)`` (e.g. the target's).
        a: cubic lattice parameter (Å) when no volume is given.
    """
    a = _cubic_a(volume_per_formula_unit) if volume_per_formula_unit is not None else float(a)
    lattice = Lattice(0.5 * a * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=float))
    return Structure(lattice, [metal, "O", "O"], [(0, 0, 0), (0.25, 0.25, 0.25), (0.75, 0.75, 0.75)])


def fluorite_conventional(
    metal: str = "Zr", volume_per_formula_unit: float | None = None, a: float = 5.07
) -> Structure:
    """Ideal fluorite MO2 on its conventional cubic cell (12 sites: 4 cations on the fcc lattice, 8 anions)."""
    a = _cubic_a(volume_per_formula_unit) if volume_per_formula_unit is not None else float(a)
    fcc = [(0, 0, 0), (0, 0.5, 0.5), (0.5, 0, 0.5), (0.5, 0.5, 0)]
    anions = [(x, y, z) for x in (0.25, 0.75) for y in (0.25, 0.75) for z in (0.25, 0.75)]
    return Structure(Lattice.cubic(a), [metal] * 4 + ["O"] * 8, fcc + anions)

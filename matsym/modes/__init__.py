"""Symmetry modes: per-site fields decomposed onto the irreps of the parent's space group (reporting only).

``decompose(parent, target)`` is the AMPLIMODES/ISODISTORT job (amplitudes in Å, labels, isotropy subgroups);
``decompose_field(parent, supercell, field, irreps=...)`` does the same for a learned order parameter.
"""

from matsym.modes._decompose import decompose, decompose_field
from matsym.modes._labels import labels_available
from matsym.modes._result import Mode, ModeDecomposition, StrainMode
from matsym.modes._search import attach_modes, result_modes

__all__ = [
    "Mode",
    "ModeDecomposition",
    "StrainMode",
    "attach_modes",
    "decompose",
    "decompose_field",
    "labels_available",
    "result_modes",
]

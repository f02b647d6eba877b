"""matsym: symmetry-breaking order parameters of crystals with E(3)-equivariant networks.

Implements Smidt, Geiger & Miller, "Finding symmetry breaking order parameters with Euclidean neural networks",
Phys. Rev. Research 3, L012002 (2021), as a pymatgen/ASE plugin.

Public names are imported lazily, so that ``import matsym`` (and the command line) stays fast.
"""

from __future__ import annotations

import importlib

from matsym.errors import (
    CutoffError,
    DisorderError,
    FileFormatError,
    InputError,
    IrrepsError,
    MatsymError,
    RegistrationError,
    ResultError,
    SearchError,
    StructureError,
    SymmetryMismatchError,
)

__version__ = "0.1.0"

_LAZY = {
    "OrderParameterSearch": "matsym.search",
    "SearchConfig": "matsym.search",
    "curie_check": "matsym.search",
    "OrderParameterResult": "matsym.result",
    "CurieReport": "matsym.result",
    "OrderParameterTransformation": "matsym.transformations",
    "OrderParameterSearchTransformation": "matsym.transformations",
    "verify_space_group": "matsym.symmetry",
    "space_group": "matsym.symmetry",
    "register": "matsym.registration",
    "Registration": "matsym.registration",
    "build_graph": "matsym.graph",
    "CrystalGraph": "matsym.graph",
    "load_structure": "matsym.io",
    "write_structure": "matsym.io",
    "EquivariantNetwork": "matsym.model",
    "NetworkConfig": "matsym.model",
    "encode": "matsym.signals",
    "decode": "matsym.signals",
}

__all__ = [
    "CutoffError",
    "DisorderError",
    "FileFormatError",
    "InputError",
    "IrrepsError",
    "MatsymError",
    "RegistrationError",
    "ResultError",
    "SearchError",
    "StructureError",
    "SymmetryMismatchError",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'matsym' has no attribute {name!r}")

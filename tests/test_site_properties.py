"""Site properties of inputs: magnetic moments from a magnetic CIF, and properties JSON cannot hold.

``tests/data/MnF2.mcif`` is antiferromagnetic MnF2 written in the layout of a MAGNDATA .mcif file (magnetic space
group P4_2'/mnm', BNS 136.499): cell and F position of rutile-type MnF2 from Baur, Acta Cryst. 11, 488 (1958),
moments of 4.6 μB along c, antiparallel on the two Mn (Erickson, Phys. Rev. 90, 779 (1953)).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from matsym import OrderParameterSearch
from matsym.result import OrderParameterResult
from matsym.site_properties import plain_site_properties

MCIF = Path(__file__).parent / "data" / "MnF2.mcif"


def _rutile_parent() -> Structure:
    """Paramagnetic MnF2 with an idealised F position (x = 0.30) and a slightly different cell: a real distortion."""
    x = 0.30
    frac = [[0, 0, 0], [0.5, 0.5, 0.5], [x, x, 0], [1 - x, 1 - x, 0], [0.5 - x, 0.5 + x, 0.5], [0.5 + x, 0.5 - x, 0.5]]
    return Structure(Lattice.tetragonal(4.85, 3.33), ["Mn", "Mn", "F", "F", "F", "F"], frac)


def test_magnetic_cif_target_runs_to_the_end_and_reports_its_moments(tmp_path):
    result = OrderParameterSearch(_rutile_parent(), MCIF, irreps="0e+1o+1e+2e").run()
    path = result.to_json(tmp_path / "result.json")
    back = OrderParameterResult.from_json(path)
    assert any("magnetic moments read on 2 of 6 sites" in note and "not fitted" in note for note in back.notes)
    assert "Note: target: magnetic moments" in back.summary()
    # the moments are kept, as plain numbers, with the target as given (antiparallel along c)
    moments = np.array(json.loads(path.read_text())["registration"]["target"]["sites"][0]["properties"]["magmom"])
    np.testing.assert_allclose(moments, [0.0, 0.0, 4.6])
    # the displacements and the strain keep the tetragonal symmetry: the parent reaches them on its own
    assert back.curie.compatible, back.curie.verdict
    assert back.target_strain is not None and abs(back.target_strain[2, 2] - (3.3099 / 3.33 - 1)) < 1e-9


def test_a_property_json_cannot_hold_is_dropped_with_a_warning():
    s = _rutile_parent()
    s.add_site_property("charge", np.arange(len(s), dtype=np.float32))  # numpy scalars: converted
    s.add_site_property("tag", [object() for _ in s])  # nothing JSON can hold: dropped
    with pytest.warns(UserWarning, match=r"target: site property 'tag' dropped"):
        plain, notes = plain_site_properties(s, "target")
    assert notes == []
    assert set(plain.site_properties) == {"charge"}
    assert json.dumps(plain.as_dict())  # writes
    assert s.site_properties["tag"][0] is not None  # the caller's structure is untouched

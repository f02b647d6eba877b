"""jobflow workflows (matsym.workflows) and the example scripts in workflows/."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jobflow")

from jobflow import Flow, JobStore, run_locally
from maggma.stores import MemoryStore
from monty.json import MontyDecoder, MontyEncoder

from matsym.errors import InputError, IrrepsError
from matsym.structures import cubic_perovskite, polar_perovskite, tilted_perovskite
from matsym.symmetry import space_group
from matsym.workflows import (
    SUMMARY_COLUMNS,
    OrderParameterDocument,
    OrderParameterMaker,
    screening_flow,
    summary_row,
    summary_table,
)

# jobflow 0.4.0's run_locally calls monty.os.cd, which monty marks deprecated (FutureWarning); not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:cd is deprecated:FutureWarning")

ROOT = Path(__file__).resolve().parents[1]
SHORT = {"fit_steps": 100, "max_steps": 100, "search_steps": 60, "polish_steps": 50}
SYMPRECS = {"0.001": 1e-3, "0.01": 1e-2}


def _walk(obj, path="$"):
    """Yield (path, value) for every value in nested dicts / lists."""
    yield path, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            yield from _walk(v, f"{path}[{i}]")


def _assert_no_torch(serialised: dict) -> None:
    for path, value in _walk(serialised):
        if isinstance(value, dict):
            module = str(value.get("@module", ""))
            assert not module.startswith("torch"), f"torch object at {path}"
        assert "torch" not in type(value).__module__, f"{type(value)} at {path}"


def _script(name: str):
    """Import workflows/<name>.py as a module (workflows/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"_matsym_workflow_{name}", ROOT / "workflows" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def screening():
    """Two small searches and one pair that cannot be registered, run with run_locally."""
    pairs = {
        "tilt": tilted_perovskite("a0a0c-", 8.0),  # I4/mcm: Ti rotations, pseudovector 1e
        "polar": polar_perovskite((0, 0, 1), 0.1),  # P4mm: Ti off-centring, vector 1o
        "mismatch": (cubic_perovskite(species=("Ba", "Ti", "O")), polar_perovskite((0, 0, 1), 0.1)[1]),
    }
    maker = OrderParameterMaker(sites="Ti", irreps="1e+1o", search_kwargs=SHORT)
    flow = screening_flow(pairs, maker)
    store = JobStore(MemoryStore())
    responses = run_locally(flow, store=store, log=False, ensure_success=False)
    return flow, store, responses


def _search_job(flow, label):
    return next(j for j in flow.jobs if j.metadata.get("label") == label)


def test_flow_shape_and_inputs_are_json(screening):
    flow, _, _ = screening
    assert isinstance(flow, Flow)
    assert [j.metadata.get("label") for j in flow.jobs[:3]] == ["tilt", "polar", "mismatch"]
    assert flow.jobs[-1].name == "order parameter summary"
    assert _search_job(flow, "tilt").name == "order parameter search [tilt]"
    serialised = json.loads(json.dumps(flow.as_dict()))  # plain json: every input is MSON data
    _assert_no_torch(serialised)
    rebuilt = Flow.from_dict(serialised)
    assert len(rebuilt.jobs) == 4


def test_search_documents(screening):
    flow, _, responses = screening
    expected = {"tilt": ("1e", 140), "polar": ("1o", 99)}
    for label, (irrep, number) in expected.items():
        job = _search_job(flow, label)
        doc = responses[job.uuid][1].output
        assert isinstance(doc, OrderParameterDocument)
        assert doc.label == label and doc.formula == "SrTiO3"
        # the target is less symmetric than the cubic parent: by Curie's principle an OP is needed
        assert doc.verdict == "incompatible" and doc.curie_compatible is False
        assert doc.dominant_irrep == irrep
        assert doc.irrep_fractions[irrep] > 0.9
        # recorded space groups are those spglib finds for the stored structures
        for key, symprec in SYMPRECS.items():
            assert doc.space_groups[key] == list(space_group(doc.predicted_structure, symprec))
            assert doc.target_space_groups[key] == list(space_group(doc.result.target, symprec))
        assert doc.target_space_groups["0.001"][0] == number
        assert doc.matches_target(1e-2) is True
        assert doc.metrics["seconds"] > 0 and 0 <= doc.metrics["displacement_error_ratio"] < 1
        assert doc.search["sites"] == "Ti" and doc.search["search_kwargs"] == SHORT


def test_outputs_round_trip_as_json(screening):
    flow, store, responses = screening
    job = _search_job(flow, "tilt")
    original = responses[job.uuid][1].output
    stored = store.get_output(job.uuid)  # what the store holds: plain JSON
    _assert_no_torch(stored)
    text = json.dumps(stored, cls=MontyEncoder)
    decoded = json.loads(text, cls=MontyDecoder)
    assert isinstance(decoded, OrderParameterDocument)
    direct = OrderParameterDocument.from_dict(json.loads(json.dumps(original.as_dict())))
    for doc in (decoded, direct):
        assert doc.space_groups == original.space_groups
        assert doc.metrics == original.metrics
        assert doc.dominant_irrep == original.dominant_irrep
        np.testing.assert_array_equal(doc.result.order_parameter, original.result.order_parameter)
        np.testing.assert_allclose(
            doc.predicted_structure.cart_coords, original.predicted_structure.cart_coords, atol=1e-12
        )
        assert doc.as_dict() == original.as_dict()


def test_summary_reports_failed_job(screening):
    flow, store, _ = screening
    summary = store.get_output(flow.jobs[-1].uuid)
    assert summary["num_pairs"] == 3 and summary["num_failed"] == 1
    rows = {row["label"]: row for row in summary["rows"]}
    assert rows["mismatch"]["status"] == "failed" and rows["mismatch"]["verdict"] == "job failed"
    assert rows["tilt"]["status"] == "ok" and rows["tilt"]["found SG 1e-2"] == "I4/mcm (140)"
    assert rows["polar"]["dominant irrep"] == "1o"
    header = summary["table"].splitlines()[0]
    assert all(column in header for column in SUMMARY_COLUMNS)
    assert len(summary["table"].splitlines()) == 2 + 3
    # the failing search job left no output
    with pytest.raises(ValueError, match="no outputs"):
        store.get_output(_search_job(flow, "mismatch").uuid)


def test_summary_helpers_without_jobflow_run(screening):
    flow, store, _ = screening
    raw = store.get_output(_search_job(flow, "polar").uuid)
    row = summary_row(raw)
    assert row["label"] == "polar" and row["status"] == "ok"
    assert summary_row(None, "x")["status"] == "failed"
    assert len(summary_table([row]).splitlines()) == 3
    with pytest.raises(InputError):
        summary_row(42)


def test_document_of_a_finite_cloud_records_point_groups():
    from matsym.search import OrderParameterSearch
    from matsym.structures import square_rectangle

    square, rectangle = square_rectangle()
    result = OrderParameterSearch(square, rectangle, irreps="2e", **SHORT).run()
    doc = OrderParameterDocument.from_result(result, label="square")
    assert doc.space_groups == {} and doc.target_space_groups == {}
    # the rectangle (D2h) is less symmetric than the square (D4h); the distorted square is a rectangle too
    assert doc.target_point_group == "D2h" and doc.point_group == "D2h"
    assert doc.verdict == "incompatible" and doc.matches_target() is None
    again = OrderParameterDocument.from_dict(json.loads(json.dumps(doc.as_dict())))
    assert type(again.predicted_structure).__name__ == "Molecule"
    assert again.as_dict() == doc.as_dict()
    row = summary_row(again)
    assert row["target SG"] == "D2h (point group)" and row["found SG 1e-3"] == "D2h (point group)"


def test_maker_validation_and_serialisation():
    from matsym.search import SearchConfig

    maker = OrderParameterMaker(
        sites=["Ti"], irreps="1e", mask=("1e", (0, 0, 1)), search_kwargs={"config": SearchConfig(max_steps=7)}
    )
    assert maker.mask == "1e@0.0,0.0,1.0"  # a tuple would not survive JSON
    assert maker.search_kwargs["config"]["max_steps"] == 7
    again = OrderParameterMaker.from_dict(json.loads(json.dumps(maker.as_dict())))
    assert again == maker
    arguments = again.search_arguments()
    assert isinstance(arguments["config"], SearchConfig) and arguments["config"].max_steps == 7
    with pytest.raises(InputError, match="unknown search_kwargs"):
        OrderParameterMaker(search_kwargs={"max_stepz": 3})
    with pytest.raises(InputError, match="OrderParameterMaker arguments"):
        OrderParameterMaker(search_kwargs={"irreps": "1e"})
    with pytest.raises(InputError, match="JSON"):
        OrderParameterMaker(sites=object())
    assert OrderParameterMaker(sites=np.arange(4, 8)).sites == [4, 5, 6, 7]  # numpy indices become JSON
    with pytest.raises(IrrepsError):
        OrderParameterMaker(irreps="1q")


def test_screening_flow_rejects_bad_pairs():
    parent, target = polar_perovskite()
    with pytest.raises(InputError, match="empty"):
        screening_flow([])
    with pytest.raises(InputError, match=r"pairs\[0\]"):
        screening_flow([(parent,)])
    with pytest.raises(InputError, match="unique"):
        screening_flow([("a", parent, target), ("a", parent, target)])
    with pytest.raises(InputError, match="maker"):
        screening_flow([(parent, target)], maker="fast")
    flow = screening_flow([(parent, target)], summary=False)
    assert len(flow.jobs) == 1 and flow.jobs[0].metadata["label"] == "0:SrTiO3"


def test_missing_jobflow_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "jobflow", None)
    monkeypatch.delitem(sys.modules, "matsym.workflows")
    with pytest.raises(ImportError, match=r'pip install "matsym\[workflows\]"'):
        importlib.import_module("matsym.workflows")


# ------------------------------------------------------------------------------------------------------------
# the example scripts, with their --quick settings, so that they cannot rot
# ------------------------------------------------------------------------------------------------------------


def test_screening_flow_script(tmp_path, capsys):
    script = _script("screening_flow")
    out = tmp_path / "rows.json"
    assert script.main(["--quick", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "P4mm (99)" in printed and "nothing to find" in printed
    rows = {row["label"]: row for row in json.loads(out.read_text())}
    assert rows["undistorted (Pm-3m)"]["verdict"] == "nothing to find"
    assert rows["polar [001] (P4mm)"]["target SG"] == "P4mm (99)"
    assert script.main(["--quick", "--json", str(out)]) == 1  # no overwrite without --force
    assert "exists" in capsys.readouterr().err


def test_ase_pipeline_script(tmp_path, capsys):
    import ase.io

    script = _script("ase_pipeline")
    out = tmp_path / "sub" / "predicted.extxyz"
    assert script.main([str(out), "--quick"]) == 0
    assert "round trip: order parameters identical" in capsys.readouterr().out
    atoms = ase.io.read(out, format="extxyz")
    op = atoms.arrays["order_parameter"].reshape(len(atoms), -1)
    ti = [a.index for a in atoms if a.symbol == "Ti"]
    assert np.abs(op[ti]).max() > 0 and np.abs(np.delete(op, ti, axis=0)).max() == 0
    before = out.read_bytes()
    assert script.main([str(out), "--quick"]) == 1
    assert out.read_bytes() == before


def test_transformed_structure_pipeline_script(tmp_path, capsys):
    from pymatgen.alchemy.materials import TransformedStructure

    from matsym.io import load_structure
    from matsym.symmetry import verify_space_group

    script = _script("transformed_structure_pipeline")
    folder = tmp_path / "out"
    assert script.main([str(folder), "--quick"]) == 0
    printed = capsys.readouterr().out
    assert "OrderParameterSearchTransformation" in printed and "amplitude=0.5" in printed
    files = script.outputs(folder)
    assert all(p.is_file() for p in files.values())
    half, full = (load_structure(files[f"cif_{a}"]) for a in ("0.5", "1.0"))
    ts = TransformedStructure.from_dict(json.loads(files["ts_0.5"].read_text()))
    assert ts.history[-1]["output"]["amplitude"] == 0.5
    base = ts.structures[0]
    # half the amplitude, half the displacements (CIF keeps ~1e-6 in fractional coordinates)
    d_half = np.asarray(half.lattice.get_cartesian_coords(_frac_delta(half, base)))
    d_full = np.asarray(full.lattice.get_cartesian_coords(_frac_delta(full, base)))
    np.testing.assert_allclose(d_half, 0.5 * d_full, atol=1e-4)
    assert np.abs(d_full).max() > 0.1
    sg_full = verify_space_group(full, symprecs=(1e-3,))
    assert verify_space_group(half, symprecs=(1e-3,)) == sg_full
    assert script.main([str(folder), "--quick"]) == 1
    assert "use --force" in capsys.readouterr().err


def _frac_delta(s, base) -> np.ndarray:
    """Fractional displacement of each site of ``s`` from ``base`` (same site order), wrapped."""
    delta = np.asarray(s.frac_coords) - np.asarray(base.frac_coords)
    return delta - np.round(delta)

"""Smoke tests of the example scripts: each runs end to end with ``--quick`` and writes its files.

The scripts' ``main(argv)`` is called in this process (one import of torch/e3nn for all of them). ``--quick``
shrinks the step budgets, so the numbers are not converged; the physics is asserted in ``test_search.py`` and
``test_generality.py``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _load(name: str):
    module_name = f"matsym_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _assert_png(path: Path) -> None:
    assert path.is_file(), f"{path.name} was not written"
    assert path.read_bytes()[:8] == PNG_MAGIC, f"{path.name} is not a PNG"


def test_pnma_demo_writes_result_structure_and_plot_into_an_existing_folder(tmp_path, capsys):
    from matsym.result import OrderParameterResult
    from matsym.symmetry import space_group

    out = tmp_path / "demo_output"
    out.mkdir()
    (out / "result.json").write_text("stale")  # `make demo` run twice: the demo owns its folder
    (out / "predicted.cif").write_text("stale")
    assert _load("perovskite_pnma").main(["--quick", "--out", str(out), "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert "space group of the predicted structure" in text and "1e pseudovectors" in text
    result = OrderParameterResult.from_json(out / "result.json")
    assert result.sites.tolist() == [4, 5, 6, 7]
    assert result.settings["config"]["seed"] == 1
    assert space_group(out / "predicted.cif", 1e-2)[0] >= 1
    assert (out / "target.cif").stat().st_size > 0 and (out / "weights.safetensors").stat().st_size > 0
    _assert_png(out / "order_parameter.png")


def test_imma_example_runs(tmp_path, capsys):
    out = tmp_path / "imma"
    assert _load("perovskite_imma").main(["--quick", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "'translation': [0.5, 0.5, 0.5]" in text and "Imma" in text
    for name in ("result_imma.json", "result_unconstrained.json", "predicted_imma.cif"):
        assert (out / name).stat().st_size > 0, name
    _assert_png(out / "order_parameters.png")


def test_other_distortions_example_runs_selected_cases(tmp_path, capsys):
    out = tmp_path / "other"
    cases = ["a0a0c-", "polar001", "jt-q2"]
    assert _load("other_distortions").main(["--quick", "--out", str(out), "--cases", ",".join(cases)]) == 0
    rows = json.loads((out / "results.json").read_text())["cases"]
    assert [r["key"] for r in rows] == cases
    assert [r["expected_group"] for r in rows][:2] == [140, 99]
    assert "expected" in capsys.readouterr().out
    _assert_png(out / "summary.png")


def test_other_distortions_rejects_an_unknown_case(tmp_path):
    with pytest.raises(SystemExit):
        _load("other_distortions").main(["--out", str(tmp_path), "--cases", "a0a0c-,nonsense"])


def test_tilt_systems_example_runs_selected_cases_and_rejects_unknown_ones(tmp_path, capsys):
    out = tmp_path / "tilts"
    assert _load("tilt_systems").main(["--quick", "--out", str(out), "--cases", "a0a0c-"]) == 0
    rows = json.loads((out / "results.json").read_text())["cases"]
    assert [r["glazer"] for r in rows] == ["a0a0c-"]
    assert rows[0]["target"] == [140, "I4/mcm"] and set(rows[0]["found"]) == {"0.001", "0.01"}
    assert "keep the target's group" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        _load("tilt_systems").main(["--out", str(tmp_path), "--cases", "a0a0c-,a9b9c9"])


def test_square_rectangle_example_writes_both_figures(tmp_path, capsys):
    out = tmp_path / "square"
    assert _load("square_rectangle").main(["--quick", "--out", str(out)]) == 0
    figures = json.loads((out / "figures.json").read_text())
    assert figures["curie"]["rectangle_to_square"]["compatible"] is True
    assert figures["curie"]["square_to_rectangle"]["compatible"] is False
    assert [s["stage"] for s in figures["fig2"]] == ["start", "middle", "end"]
    assert figures["fig2"][0]["order_parameter"] == {}  # the search starts from a zero order parameter
    assert "degenerate vertices" in capsys.readouterr().out
    _assert_png(out / "fig1_curie.png")
    _assert_png(out / "fig2_order_parameter.png")

"""Fuzzing the readers, result loading and option parsers with hypothesis (issue 12).

Property: no input produces anything but a valid object or a :class:`~matsym.errors.MatsymError` (which the
command line prints as one line). Inputs are mutations of valid files (numbers replaced by odd tokens, lines dropped,
duplicated or cut, bytes inserted) and random text / JSON, so that most examples reach deep into the parsers.
Valid seeds: cubic SrTiO3 (Pm-3m, a = 3.905 Å, Materials Project mp-5229) written by matsym's own writers.

``make test`` runs a few dozen examples per reader (profile "ci"); ``make fuzz`` sets ``MATSYM_FUZZ=1`` for the
"fuzz" profile (1,500 examples per test, 10,500 in all); ``MATSYM_FUZZ=N`` (N > 1) runs N examples per test.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from matsym.errors import MatsymError  # noqa: E402
from matsym.io import load_structure, write_structure  # noqa: E402
from matsym.structures import cubic_perovskite  # noqa: E402

settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
_FUZZ = os.environ.get("MATSYM_FUZZ", "")
settings.register_profile(
    "fuzz",
    max_examples=int(_FUZZ) if _FUZZ.isdigit() and int(_FUZZ) > 1 else 1500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
settings.load_profile("fuzz" if _FUZZ else "ci")

_DIR = Path(tempfile.mkdtemp(prefix="matsym-fuzz-"))


def _seed_text(suffix: str) -> str:
    path = _DIR / f"seed{suffix}"
    if not path.exists():
        write_structure(cubic_perovskite(), path)
    return path.read_text()


ODD_TOKENS = st.sampled_from(
    ["nan", "inf", "-inf", "-1", "0", "1e308", "-3.905", "1e-300", "?", ".", "x", "", "1(2)", "99999999999", "-0"]
)


@st.composite
def mutated(draw, text: str) -> str:
    """``text`` with a few mutations: tokens replaced, lines dropped / duplicated / swapped, junk inserted."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(0, 4))):
        if not lines:
            break
        k = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["token", "drop", "dup", "swap", "junk", "cut"]))
        if action == "token":
            parts = lines[k].split()
            if parts:
                j = draw(st.integers(0, len(parts) - 1))
                parts[j] = draw(ODD_TOKENS | st.text(max_size=8))
                lines[k] = " ".join(parts)
        elif action == "drop":
            del lines[k]
        elif action == "dup":
            lines.insert(k, lines[k])
        elif action == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[k], lines[j] = lines[j], lines[k]
        elif action == "junk":
            lines.insert(k, draw(st.text(max_size=30)))
        else:
            lines = lines[:k]
    return "\n".join(lines) + "\n"


def _valid_structure(s) -> None:
    assert len(s) >= 1
    assert np.isfinite(np.asarray(s.cart_coords, dtype=float)).all()


def _read(text: str, name: str) -> None:
    path = _DIR / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dropped properties and the like warn; only exceptions matter here
            s = load_structure(path)
    except MatsymError as exc:
        assert str(exc).strip(), "an error must say what is wrong"
        return
    _valid_structure(s)


def _text_or_mutation(suffix: str):
    return mutated(_seed_text(suffix)) | st.text(max_size=200)


@given(st.data())
def test_cif_reader(data):
    _read(data.draw(_text_or_mutation(".cif")), "x.cif")


@given(st.data())
def test_poscar_reader(data):
    _read(data.draw(_text_or_mutation(".vasp")), "POSCAR")


@given(st.data())
def test_extxyz_reader(data):
    _read(data.draw(_text_or_mutation(".extxyz")), "x.extxyz")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@st.composite
def mutated_json(draw, base: object) -> object:
    """``base`` with one to three values (at any depth) replaced by random JSON or deleted."""
    doc = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        node, path = doc, []
        while isinstance(node, dict | list) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node))) if isinstance(node, dict) else draw(st.integers(0, len(node) - 1))
            path.append((node, key))
            node = node[key]
        if not path:
            continue
        parent, key = path[-1]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[key]
        else:
            parent[key] = draw(JSON_VALUES)
    return doc


@given(st.one_of(mutated_json(cubic_perovskite().as_dict()), JSON_VALUES))
def test_json_structure_reader(doc):
    _read(json.dumps(doc), "x.json")


_RESULT: dict = {}


def _result_dict() -> dict:
    if not _RESULT:
        from matsym.search import OrderParameterSearch

        result = OrderParameterSearch(cubic_perovskite(), cubic_perovskite(), irreps="1e+2o").run()
        _RESULT.update(result.as_dict())
    return _RESULT


@given(st.data())
def test_result_loading(data):
    from matsym.result import OrderParameterResult

    doc = data.draw(mutated_json(_result_dict()) | JSON_VALUES)
    path = _DIR / "result.json"
    path.write_text(json.dumps(doc))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = OrderParameterResult.from_json(path)
    except MatsymError:
        return
    # a result that loads is usable
    result.summary()
    result.irrep_fractions()
    if result.sites.size:
        result.component_fractions()
    assert np.isfinite(result.predicted_displacements).all()


@given(st.text(max_size=40))
def test_tie_parser(text):
    from matsym.cli import parse_tie

    try:
        tie = parse_tie(text)
    except MatsymError:
        return
    assert tie in ("none", "all") or isinstance(tie, str | list)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["--seed", "--threads", "--steps", "--sparsity", "--l-penalty", "--irreps", "--tie"]),
            st.one_of(ODD_TOKENS, st.integers().map(str), st.floats().map(repr), st.text(max_size=12)),
        ),
        max_size=4,
    )
)
def test_find_option_parsers(options):
    """The parser either refuses (usage error, exit 2) or yields values that the checks accept or refuse with a
    MatsymError, before any structure is read."""
    from matsym._validate import check_search_arguments
    from matsym.cli import build_parser, parse_tie
    from matsym.limits import check_seed, check_threads
    from matsym.search import SearchConfig

    argv = ["find", "p.cif", "t.cif", "--out", "o"]
    for flag, value in options:
        argv += [f"{flag}={value}"]
    parser = build_parser()
    parser.exit = _raise_exit  # keep argparse from printing usage for thousands of examples
    parser.error = _raise_exit
    for action in parser._subparsers._group_actions[0].choices.values():
        action.exit, action.error = _raise_exit, _raise_exit
    try:
        args = parser.parse_args(argv)
    except _UsageError:
        return
    try:
        check_seed(args.seed)
        threads = check_threads(args.threads)
        parse_tie(args.tie)
        config = SearchConfig(seed=args.seed, threads=threads or 1, max_steps=args.steps or 300)
        check_search_arguments(
            config,
            irreps=args.irreps or "1e",
            sites=None,
            tie="none",
            sparsity=1e-2 if args.sparsity is None else args.sparsity,
            l_penalty=1e-2 if args.l_penalty is None else args.l_penalty,
        )
    except MatsymError:
        return
    assert math.isfinite(config.max_steps)


class _UsageError(Exception):
    pass


def _raise_exit(*args, **kwargs):
    raise _UsageError(args)

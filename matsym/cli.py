"""The ``matsym`` command: find, apply, check and verify symmetry-breaking order parameters.

::

    matsym find parent.cif target.cif --sites Ti --irreps 1e --out run    # search; writes run/result.json,
                                                      # run/predicted.cif and run/model.safetensors
    matsym distort parent.cif --result run/result.json --amplitude 0.5 -o half.cif
    matsym check parent.cif target.cif                                    # Curie compatibility
    matsym verify run/predicted.cif --expect Pnma                         # space group over a symprec sweep

Structures are read from CIF, POSCAR/CONTCAR, extxyz or pymatgen JSON (:func:`matsym.io.load_structure`).
Exit status: 0 success; 1 a user error (bad file, different compositions, no supercell relation, an existing
output without ``--force``, a space group other than ``--expect``, an input beyond a limit), reported as one line
``matsym: error: ...`` on stderr; 2 a usage error (argparse); 3 ``find`` ran but the fit failed (the decoded
displacements miss the target: the outputs are written, ``result.json`` says ``"fit_failed": true``, and one
line ``matsym: fit failed: ...`` goes to stderr); 130 interrupted (Ctrl-C), 143 terminated (SIGTERM). Outputs
of ``find`` are written as one set (:mod:`matsym.outputs`), others atomically, never over an existing file
without ``--force``. Sizes are bounded by :mod:`matsym.limits` (``--max-atoms``, ``--max-volume``,
``--min-distance``).

Heavy modules (torch, pymatgen, spglib) are imported inside the subcommands, so ``matsym --help`` is fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from matsym.errors import FileFormatError, InputError, MatsymError, OutputExistsError, SymmetryMismatchError

__all__ = ["build_parser", "main", "run"]

_PROG = "matsym"
_OUTPUT_SYMPRECS = (1e-3, 1e-2)
_RESULT_NAME = "result.json"
_MODEL_NAME = "model.safetensors"
EXIT_FIT_FAILED = 3


# ------------------------------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in text:
        text = f"{text}: {exc.filename}"
    return text or type(exc).__name__


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _threads(text: str) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {text!r}") from None


def parse_tie(text: str | None) -> Any:
    """``--tie`` value for :class:`~matsym.search.OrderParameterSearch`.

    ``none`` / ``all`` / ``translation:fa,fb,fc`` pass through; ``0,1;2,3`` becomes ``[[0, 1], [2, 3]]``.

    Raises:
        InputError: the groups are not integers.
    """
    if text is None:
        return "none"
    value = text.strip()
    if value.lower() in ("none", "all") or value.lower().startswith("translation:"):
        return value.lower() if value.lower() in ("none", "all") else value
    groups = []
    for part in value.split(";"):
        if not part.strip():
            continue
        try:
            groups.append([int(x) for x in part.split(",") if x.strip()])
        except ValueError:
            raise InputError(
                f"--tie: expected 'none', 'all', 'translation:fa,fb,fc' or groups of site indices like "
                f"'0,1;2,3', got {text!r}"
            ) from None
    if not groups:
        raise InputError(f"--tie: no site groups in {text!r}")
    return groups


def search_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of :class:`~matsym.search.OrderParameterSearch` from :func:`add_search_options` options.

    Plain JSON data (``--tie`` parsed by :func:`parse_tie`); options not given are left out, except ``sites``,
    ``tie``, ``mask`` and ``seed``.
    """
    kwargs: dict[str, Any] = {"sites": args.sites, "tie": parse_tie(args.tie), "mask": args.mask, "seed": args.seed}
    for name in ("irreps", "sparsity", "l_penalty", "device", "threads", "ltol", "angle_tol", "graph_backend"):
        if getattr(args, name, None) is not None:
            kwargs[name] = getattr(args, name)
    if args.steps is not None:
        kwargs["max_steps"] = args.steps
    if getattr(args, "no_reduce", False):
        kwargs["reduce_cell"] = False
    if getattr(args, "no_steer", False):
        kwargs["prune_kvectors"] = False
    return kwargs


def _check_free(paths: Sequence[Path], force: bool) -> None:
    """Refuse early (before any work) to overwrite existing outputs."""
    for p in paths:
        if p.is_dir():
            raise FileFormatError(f"cannot write {p}: it is a directory, expected a file name")
    if force:
        return
    existing = [str(p) for p in paths if p.exists() or p.is_symlink()]
    if existing:
        raise FileFormatError(f"cannot write {', '.join(existing)}: exists; pass --force to overwrite")


def _load(path: str) -> Any:
    from matsym.io import load_structure

    return load_structure(path)  # validated against matsym.limits (--min-distance, --max-atoms, --max-volume)


def _is_periodic(s: Any) -> bool:
    from pymatgen.core import IStructure

    return isinstance(s, IStructure)


def _symmetry(structure: Any) -> dict[str, Any]:
    """``{"space_groups": {"0.001": [62, "Pnma"], ...}}`` or ``{"point_group": "D2h"}``."""
    from matsym import symmetry

    if _is_periodic(structure):
        return {"space_groups": {f"{p:g}": list(symmetry.space_group(structure, p)) for p in _OUTPUT_SYMPRECS}}
    return {"point_group": symmetry.point_group(structure)}


def _describe_symmetry(sym: dict[str, Any]) -> str:
    if "space_groups" in sym:
        return ", ".join(f"{s} ({n}) at symprec {p}" for p, (n, s) in sym["space_groups"].items())
    return f"point group {sym['point_group']}"


def _print_json(obj: Any) -> None:
    """One strict JSON object on stdout (non-finite numbers become null)."""
    plain = json.loads(json.dumps(obj, default=_json_default))
    print(json.dumps(_finite(plain), indent=1, allow_nan=False))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _json_default(o: Any) -> Any:
    from matsym.result import json_default

    return json_default(o)


def _progress_enabled(args: argparse.Namespace) -> bool:
    return not getattr(args, "no_progress", False)


# ------------------------------------------------------------------------------------------------------------
# subcommands
# ------------------------------------------------------------------------------------------------------------


def _tolerances(args: argparse.Namespace) -> dict[str, float]:
    """Registration tolerances given on the command line (``--ltol``, ``--angle-tol``)."""
    return {k: getattr(args, k) for k in ("ltol", "angle_tol") if getattr(args, k, None) is not None}


def _add_tolerances(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ltol",
        type=_finite_float,
        help="registration: largest principal strain of the target cell against the parent supercell (default 0.2)",
    )
    parser.add_argument(
        "--angle-tol",
        dest="angle_tol",
        type=_finite_float,
        help="registration: largest change of an angle between two directions by that strain, degrees (default 20)",
    )


def cmd_find(args: argparse.Namespace) -> int:
    """``matsym find``: run a search and write result.json, predicted.cif and model.safetensors."""
    from matsym.limits import check_seed, check_threads
    from matsym.outputs import OutputSet

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise FileFormatError(f"--out {out} exists and is not a directory")
    kwargs = search_settings(args)
    check_seed(args.seed, what="--seed")
    check_threads(args.threads, what="--threads")
    parent, target = _load(args.parent), _load(args.target)
    periodic = _is_periodic(parent)
    predicted_name = "predicted.cif" if periodic else "predicted.extxyz"
    result_path, model_path, predicted_path = out / _RESULT_NAME, out / _MODEL_NAME, out / predicted_name
    # folder writable and names free before any heavy work; the three files land together (result.json last)
    with OutputSet(out, [_MODEL_NAME, predicted_name, _RESULT_NAME], force=args.force) as outputs:
        # a bad pair fails in the search's set-up, at registration, before the network is built; a target that
        # repeats a smaller cell is registered on that cell only (matsym.reduction)
        from matsym.search import OrderParameterSearch

        search = OrderParameterSearch(parent, target, **kwargs)
        result = search.run(progress=_progress_enabled(args))

        from matsym.io import write_structure

        result.to_json(outputs.path(_RESULT_NAME))
        write_structure(result.predicted_structure, outputs.path(predicted_name))
        search.save_weights(outputs.path(_MODEL_NAME))
        outputs.commit()

    sym = _symmetry(result.predicted_structure)
    curie = result.curie
    nothing = bool(result.nothing_to_find or (curie is not None and curie.compatible))
    files = {"result": str(result_path), "predicted": str(predicted_path), "model": str(model_path)}
    if args.json:
        _print_json(
            {
                "files": files,
                "nothing_to_find": nothing,
                "target_equals_parent": bool(result.nothing_to_find),
                "curie_compatible": None if curie is None else bool(curie.compatible),
                "verdict": None if curie is None else curie.verdict,
                "metrics": result.metrics,
                "irreps": result.irreps,
                "order_parameter_sites": result.sites,
                "irrep_fractions": result.irrep_fractions() if result.irrep_weights.size else {},
                "parent_reduction": (result.registration or {}).get("parent_reduction", {}),
                "order_parameter_modes": result.order_parameter_modes,
                "distortion_modes": result.distortion_modes,
                "fit_failed": result.fit_failed,
                **sym,
            }
        )
        return _fit_status(result)
    print(result.summary())
    reduction = (result.registration or {}).get("parent_reduction") or {}
    if reduction:
        print(f"Parent reduced to its primitive cell: {reduction['note']}.")
    if "reduction" in result.registration:
        print(f"Smallest repeating cell: {result.registration['reduction']['note']}")
    if result.nothing_to_find:
        print("Nothing to find: the target equals the parent within tolerance (no symmetry breaking).")
    elif nothing:
        print("Nothing to find: the parent reaches the target without an order parameter (Curie compatible).")
    print(f"Predicted structure: {_describe_symmetry(sym)}")
    print(f"Wrote {files['result']}, {files['predicted']}, {files['model']}")
    return _fit_status(result)


def _fit_status(result: Any) -> int:
    """0, or :data:`EXIT_FIT_FAILED` with one line on stderr when the fit failed."""
    if not result.fit_failed:
        return 0
    error = result.metrics.get("displacement_error_ratio", float("nan"))
    limit = result.metrics.get("fit_failed_above", float("nan"))
    print(
        f"{_PROG}: fit failed: the decoded displacements miss the target by {100 * error:.3g}% of its RMS "
        f"(more than {100 * limit:.3g}%); the candidate irreps (--irreps {result.irreps}) cannot describe this "
        f"distortion, or the budget (--steps) is too small",
        file=sys.stderr,
    )
    return EXIT_FIT_FAILED


def cmd_distort(args: argparse.Namespace) -> int:
    """``matsym distort``: apply a saved result to a parent at an amplitude."""
    output = Path(args.output)
    _check_free([output], args.force)
    from matsym.io import write_structure
    from matsym.transformations import OrderParameterTransformation

    transformation = OrderParameterTransformation(args.result, args.amplitude, include_strain=args.strain)
    distorted = transformation.apply_transformation(_load(args.parent))
    write_structure(distorted, output, force=args.force)
    params = transformation.output_parameters
    sym = {k: params[k] for k in ("space_groups", "point_group") if k in params}
    if args.json:
        _print_json({"output": str(output), **params})
        return 0
    strain = params.get("strain", "none")
    print(
        f"Wrote {output}: {params['num_sites']} sites, amplitude {params['amplitude']:g}"
        f"{'' if strain == 'none' else f' with {strain} strain'}, largest displacement "
        f"{params['max_displacement']:.4f} Å (parent matched as {params['matched_as']})"
    )
    if sym:
        print(f"Space group: {_describe_symmetry(sym)}")
    elif "symmetry_error" in params:
        print(f"Symmetry not determined: {params['symmetry_error']}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """``matsym check``: Curie compatibility of a parent/target pair (exit 0 either way)."""
    import numpy as np

    parent, target = _load(args.parent), _load(args.target)
    from matsym.search import OrderParameterSearch

    # the Curie fit holds the order parameter at zero: a single scalar candidate keeps the network small
    search = OrderParameterSearch(
        parent, target, irreps="0e", reduce_cell=not args.no_reduce, **_tolerances(args)
    )
    if float(np.abs(search.problem.displacements).max(initial=0.0)) <= search.config.nothing_tol:
        report = {
            "compatible": True,
            "nothing_to_find": True,
            "verdict": "compatible: the target equals the parent within tolerance; there is nothing to find.",
        }
    else:
        curie = search.curie(progress=_progress_enabled(args))
        report = {**curie.as_dict(), "nothing_to_find": bool(curie.compatible)}
    if search.reduction is not None:
        report["reduction"] = search.reduction.describe()
    if args.json:
        _print_json(report)
    else:
        print(report["verdict"])
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """``matsym verify``: space group per symprec; exit 1 if ``--expect`` differs at any of them."""
    from matsym.io import load_structure
    from matsym.symmetry import DEFAULT_SYMPRECS, point_group, space_group_number, verify_space_group

    structure = load_structure(args.file, min_distance=0.0)
    symprecs = tuple(args.symprec) if args.symprec else DEFAULT_SYMPRECS
    if not _is_periodic(structure):
        group = point_group(structure)
        matches = args.expect is None or group.lower() == args.expect.strip().lower()
        if args.json:
            _print_json({"file": args.file, "point_group": group, "expect": args.expect, "match": matches})
        elif matches:
            print(f"point group {group}")
        if not matches:
            raise SymmetryMismatchError(f"expected point group {args.expect!r} for {args.file}, found {group}")
        return 0
    found = verify_space_group(structure, symprecs=symprecs)
    expected = None if args.expect is None else space_group_number(args.expect)
    matches = expected is None or all(number == expected for number, _ in found.values())
    if args.json:
        _print_json(
            {
                "file": args.file,
                "space_groups": {f"{p:g}": [n, s] for p, (n, s) in found.items()},
                "expect": args.expect,
                "expected_number": expected,
                "match": matches,
            }
        )
    elif matches:
        print(f"{'symprec':>9s}  {'number':>6s}  symbol")
        for p, (number, symbol) in found.items():
            print(f"{p:>9g}  {number:>6d}  {symbol}")
        if expected is not None:
            print(f"OK: space group {args.expect} (No. {expected}) at every symprec")
    if not matches:
        table = ", ".join(f"{p:g}: {n} ({s})" for p, (n, s) in found.items())
        raise SymmetryMismatchError(f"expected {args.expect} (No. {expected}) for {args.file}, found {table}")
    return 0


# ------------------------------------------------------------------------------------------------------------
# parser and entry point
# ------------------------------------------------------------------------------------------------------------


def add_search_options(parser: argparse.ArgumentParser) -> None:
    """Add the search settings of ``matsym find`` (``--sites``, ``--irreps``, ... ``--threads``) to ``parser``.

    :func:`search_settings` turns the parsed options into search arguments.
    """
    parser.add_argument(
        "--sites",
        help="sites carrying an order parameter: species (Ti), species list (Ti,Zr) or indices (0,4,8); default all",
    )
    parser.add_argument("--irreps", help="candidate irreps, e3nn syntax (e.g. 1e or 1e+1o+2e); default L=0..4")
    parser.add_argument("--tie", metavar="SPEC", help="none | all | translation:fa,fb,fc | groups like 0,1;2,3")
    parser.add_argument(
        "--mask",
        action="extend",
        nargs="+",
        metavar="MASK",
        help="components forced to zero (e.g. 1e, '2e m=2', 1e@0,0,1); several allowed",
    )
    parser.add_argument("--sparsity", type=_finite_float, help="L1 weight on every component")
    parser.add_argument("--l-penalty", dest="l_penalty", type=_finite_float, help="extra L1 weight per unit of L")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the network's initial weights, 0 to 2^63-1 (default 0)"
    )
    parser.add_argument("--steps", type=_positive_int, metavar="N", help="step budget of the joint search")
    parser.add_argument("--device", metavar="DEV", help="torch device of the network: cpu (default), cuda, cuda:1, ...")
    parser.add_argument(
        "--threads",
        type=_threads,
        metavar="N",
        help="torch threads of the search: a number (default 1: the same result on every machine) or 'auto' (1 on "
        "small graphs, torch's thread count from 4,000 edges, where more threads pay)",
    )
    _add_tolerances(parser)
    parser.add_argument(
        "--no-reduce",
        dest="no_reduce",
        action="store_true",
        help="search the target's own cell even where it repeats a smaller cell",
    )
    parser.add_argument(
        "--no-steer",
        dest="no_steer",
        action="store_true",
        help="keep the first order parameter found even where it carries secondary wave vectors (no second search "
        "without them)",
    )
    parser.add_argument(
        "--graph-backend",
        choices=("auto", "vesin", "pymatgen", "torch-cluster"),
        help="neighbour library of the graph (default auto; torch-cluster needs the extra matsym[cluster])",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``matsym`` command."""
    from matsym import __version__

    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Find symmetry-breaking order parameters of crystals with E(3)-equivariant networks "
        "(Smidt, Geiger & Miller, PRR 3, L012002, 2021).",
        epilog="Structures: CIF, POSCAR/CONTCAR, extxyz or pymatgen JSON. Exit status: 0 success, 1 user "
        "error (one line on stderr), 2 usage error, 3 fit failed (outputs written, result says so).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    find = sub.add_parser(
        "find",
        help="search the order parameter that takes PARENT to TARGET",
        description="Search the order parameter that takes PARENT to TARGET (any supercell, setting, origin, "
        "strain). Writes OUT/result.json, OUT/predicted.cif (the distorted parent), OUT/model.safetensors.",
    )
    find.add_argument("parent", metavar="PARENT", help="high-symmetry structure file")
    find.add_argument("target", metavar="TARGET", help="distorted structure file")
    find.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder (created if missing)")
    add_search_options(find)
    find.add_argument("--force", action="store_true", help="overwrite existing output files")
    find.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    find.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    find.set_defaults(func=cmd_find)

    distort = sub.add_parser(
        "distort",
        help="apply a saved order parameter to PARENT at an amplitude",
        description="Move PARENT along the order parameter of a saved result: parent + amplitude x predicted "
        "displacements, on the search cell. PARENT may be the parent as given to 'find' or its search cell.",
    )
    distort.add_argument("parent", metavar="PARENT", help="parent structure file")
    distort.add_argument("--result", required=True, metavar="JSON", help="result.json written by 'matsym find'")
    distort.add_argument(
        "--amplitude",
        type=_finite_float,
        default=1.0,
        help="0 = parent, 1 = fitted distortion (default); > 1 extrapolates (warning)",
    )
    distort.add_argument("--strain", action="store_true", help="also apply the target's strain, scaled by amplitude")
    distort.add_argument("-o", "--output", required=True, metavar="OUT", help="output structure file (.cif, ...)")
    distort.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    distort.add_argument("--json", action="store_true", help="print one JSON object")
    distort.set_defaults(func=cmd_distort)

    check = sub.add_parser(
        "check",
        help="Curie check: can PARENT reach TARGET without an order parameter?",
        description="Fit an equivariant network with no order parameter. If it cannot reach TARGET, TARGET "
        "is less symmetric than PARENT and an order parameter is missing (Curie's principle). Exit 0 either "
        "way.",
    )
    check.add_argument("parent", metavar="PARENT", help="high-symmetry structure file")
    check.add_argument("target", metavar="TARGET", help="distorted structure file")
    _add_tolerances(check)
    check.add_argument(
        "--no-reduce", dest="no_reduce", action="store_true",
        help="fit on the target's own cell even where it repeats a smaller cell",
    )  # fmt: skip
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    check.set_defaults(func=cmd_check)

    verify = sub.add_parser(
        "verify",
        help="space group of FILE over a sweep of tolerances",
        description="Space group (spglib) of FILE at each symprec; with --expect, exit 1 unless it is the "
        "expected group at every symprec.",
    )
    verify.add_argument("file", metavar="FILE", help="structure file")
    verify.add_argument(
        "--expect", metavar="GROUP", help="expected group: symbol in any setting (Pnma, Pbnm) or number"
    )
    verify.add_argument(
        "--symprec",
        type=_positive_float,
        nargs="+",
        metavar="TOL",
        help="tolerances in Å (default 1e-5 1e-4 1e-3 1e-2 1e-1)",
    )
    verify.add_argument("--json", action="store_true", help="print one JSON object")
    verify.set_defaults(func=cmd_verify)

    from matsym import cli_modes

    cli_modes.add_parser(sub)

    from matsym import cli_screen

    cli_screen.add_parser(sub)
    for command in (find, distort, check, verify):
        _add_limit_options(command)
    return parser


def _add_limit_options(parser: argparse.ArgumentParser) -> None:
    """``--min-distance``, ``--max-atoms``, ``--max-volume`` (defaults of :class:`matsym.limits.Limits`)."""
    parser.add_argument(
        "--min-distance",
        type=_non_negative_float,
        metavar="Å",
        help="refuse structures with two atoms closer than this (default 0.5; 0 disables)",
    )
    parser.add_argument("--max-atoms", type=_positive_int, metavar="N", help="refuse larger structures (default 20000)")
    parser.add_argument(
        "--max-volume", type=_positive_float, metavar="Å^3", help="refuse larger cells (default 1e6 Å^3)"
    )


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _limits(args: argparse.Namespace) -> dict[str, Any]:
    names = ("min_distance", "max_atoms", "max_volume")
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM ends the run like Ctrl-C: cleanup code runs (temporary outputs are removed)."""
    raise SystemExit(143)


@contextlib.contextmanager
def _collect_warnings() -> Iterator[list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


# what each subcommand imports whatever its files (modules of the command's own ``from ... import`` lines run
# later); ``find`` writes predicted.cif, so pymatgen's CIF module too
_HEAVY_IMPORTS = {
    "find": ("torch", "pymatgen.core", "pymatgen.io.cif", "matsym.search", "matsym.modes"),
    "check": ("torch", "pymatgen.core", "matsym.search"),
    "distort": ("pymatgen.core", "matsym.transformations"),
    "verify": ("pymatgen.core", "matsym.symmetry"),
}
_FILE_ARGUMENTS = ("parent", "target", "file", "output")


def _heavy_imports(args: argparse.Namespace) -> list[str]:
    """Modules that ``args.command`` will import: its own, and pymatgen's CIF module where a file is a CIF."""
    modules = list(_HEAVY_IMPORTS.get(args.command or "", ()))
    files = [str(getattr(args, name, None) or "") for name in _FILE_ARGUMENTS]
    if modules and any(f.lower().endswith(".cif") for f in files):
        modules.append("pymatgen.io.cif")
    return modules


def _preload(modules: Sequence[str]) -> None:
    """Import ``modules`` with the cyclic garbage collector paused, then freeze what was imported.

    Measured on ``matsym find`` (40-atom cell, ``benchmarks/bench_startup.py``): the collector makes three full
    passes while torch, pymatgen and scipy import (about 0.2 s, nothing to free: modules live until exit), and
    one more over their 200,000 objects when the interpreter exits (about 0.25 s). Frozen objects
    (:func:`gc.freeze`) are left out of both; objects made afterwards are collected as usual. Only for a process
    that runs one command (:func:`run`); an import error is left to the command's own import, which reports it.
    """
    import gc
    import importlib

    if not modules:
        return
    gc.disable()
    try:
        for name in modules:
            try:
                importlib.import_module(name)
            except ImportError:
                break
    finally:
        gc.freeze()
        gc.enable()


_PRELOADED: list[str] = []  # modules main(standalone=True) preloaded for its command (see run)


def run() -> None:
    """The console entry point (``matsym``, ``python -m matsym``): :func:`main` as the whole of a process, with
    the start-up of :func:`_preload`; exits with :func:`main`'s status (:func:`_exit_without_teardown` after a
    command that preloaded torch or pymatgen)."""
    status = main(standalone=True)
    if _PRELOADED:
        _exit_without_teardown(status)
    sys.exit(status)


def _exit_without_teardown(status: int) -> None:
    """End the process with ``status``: atexit handlers run and the standard streams are flushed, but the
    interpreter is not torn down.

    After a command that imported torch and pymatgen, the teardown (clearing every module, freeing its 200,000
    objects, libtorch's static destructors) took 0.15-0.18 s of a 40-atom ``matsym find``; this exit takes
    0.03 s. Nothing is lost: a command writes and closes its outputs (atomically) before it returns, and
    handlers registered with :mod:`atexit` (temporary folders, logging) still run. Where a thread other than the
    main one still runs (none in matsym's commands) the usual exit waits for it.
    """
    import atexit
    import os
    import threading

    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if run_exitfuncs is None or any(t.is_alive() for t in others):
        sys.exit(status)
    run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)


def main(argv: Sequence[str] | None = None, *, standalone: bool = False) -> int:
    """Run the ``matsym`` command.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).
        standalone: the process runs this one command and ends (:func:`run`): heavy modules are imported with
            the garbage collector paused and then frozen (:func:`_preload`). Leave it off when calling from a
            program that goes on.

    Returns:
        The exit status: 0 success, 1 user error (one line on stderr), 2 usage error, 3 fit failed, 130
        interrupted, 143 terminated.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2)
        return int(exc.code) if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if getattr(args, "func", None) is None:
        parser.print_usage(sys.stderr)
        print(f"{_PROG}: error: a command is required (find, distort, check, verify, modes, screen)", file=sys.stderr)
        return 2
    import signal

    from matsym.limits import using

    with contextlib.suppress(ValueError):  # only the main thread may set handlers
        signal.signal(signal.SIGTERM, _terminate)
    try:
        with _collect_warnings() as caught, using(**_limits(args)):
            if standalone:  # here, as the command's own imports were: same warnings, same Ctrl-C and SIGTERM
                _PRELOADED[:] = _heavy_imports(args)
                _preload(_PRELOADED)
            status = args.func(args)
    except OutputExistsError as exc:
        where = exc.path if exc.path is not None else "an output"
        print(f"{_PROG}: error: cannot write {where}: it exists; pass --force to overwrite", file=sys.stderr)
        return 1
    except (MatsymError, OSError) as exc:
        print(f"{_PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"{_PROG}: error: out of memory; lower --max-atoms / --max-volume or use a smaller cell", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:
        if exc.code != 143:
            raise
        print(f"{_PROG}: terminated", file=sys.stderr)
        return 143
    shown = set()
    for w in caught:
        text = " ".join(str(w.message).split())
        if issubclass(w.category, UserWarning) and w.filename and "matsym" in w.filename and text not in shown:
            shown.add(text)
            print(f"{_PROG}: warning: {text}", file=sys.stderr)
    return status


if __name__ == "__main__":
    run()

"""What a change gave: the same timings at two or more git commits, side by side, as ratios.

Each commit is checked out in a temporary ``git worktree`` and timed in a fresh process whose ``PYTHONPATH`` puts
that tree first, so the project's virtual environment (torch, e3nn, pymatgen, ...) is shared and only matsym
differs. The timings use only the public or long-standing API, so old commits run them too:

- ``step``: time of one joint-search step (forward ``search._loss()``, backward, Adam, proximal step) on the 20-atom
  Pnma cell with the default network, 1 thread, under the search's ``runtime()`` where the commit has it; Adam as
  the search builds it where the commit has ``OrderParameterSearch._optimizer``, else plain ``torch.optim.Adam``;
- ``step64``: the same on the 64x supercell (1,280 atoms);
- ``import``: importing ``matsym.search`` in a fresh interpreter (median of 3);
- ``graph``: ``matsym.graph.build_graph`` on the rattled SrTiO3 supercells of ``bench_graph.py``.

Run: ``python benchmarks/compare_commits.py OLD NEW [MORE ...] [--what import,step,step64,graph] [--rounds N]``.
With ``--chain`` each commit is compared with the one before it (what each change gave), otherwise with the
first. ``--rounds N`` times the commits N times in turn and takes medians (drift of the shared host reaches
every commit alike). With ``--record`` the table is appended to RESULTS.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import Report, add_common_args, fmt_ms, fmt_ratio, parse_common

ROOT = Path(__file__).resolve().parent.parent

_STEP = r"""
import json, statistics, sys, time
import torch
torch.set_num_threads(1)
from matsym.search import OrderParameterSearch
from matsym.structures import tilted_perovskite
parent, target = tilted_perovskite("a+b-b-", 8.0)
cells = tuple(json.loads(sys.argv[1]))
s = OrderParameterSearch(parent * cells, target * cells, sites="Ti", irreps="0e+0o+1e+1o+2e+2o")
runtime = s.runtime() if hasattr(s, "runtime") else None
if runtime is not None:
    runtime.__enter__()
lr = s.config.model_lr
opt = s._optimizer(lr) if hasattr(s, "_optimizer") else torch.optim.Adam(s.network.parameters(), lr=lr)
op = s.order_parameter
op.theta.requires_grad_(True)
def step():
    opt.zero_grad(set_to_none=True)
    op.theta.grad = None
    s._loss().backward()
    opt.step()
    op.proximal_step(s.config.op_lr)
budget = float(sys.argv[2])  # seconds of timed steps; at least 3 steps, medians of blocks of ~budget/5 s
t = time.perf_counter()
step()
step()
first = max((time.perf_counter() - t) / 2, 1e-6)
block = max(1, int(budget / 5 / first))
times = []
while len(times) < 3 or (sum(times) * block < budget and len(times) < 5):
    t = time.perf_counter()
    for _ in range(block):
        step()
    times.append((time.perf_counter() - t) / block)
print(json.dumps(statistics.median(times)))
"""

_GRAPH = r"""
import json, statistics, sys, time
import numpy as np
from pymatgen.core import Structure
from matsym.graph import build_graph
from matsym.structures import cubic_perovskite
out = {}
for n, rc in json.loads(sys.argv[1]):
    s = cubic_perovskite() * (n, n, n)
    cart = np.asarray(s.cart_coords) + np.random.default_rng(0).normal(0.0, 0.02, size=(len(s), 3))
    s = Structure(s.lattice, s.species, cart, coords_are_cartesian=True)
    build_graph(s, rc)
    times = []
    for _ in range(7):
        t = time.perf_counter()
        build_graph(s, rc)
        times.append(time.perf_counter() - t)
    out[f"{len(s)} atoms, {rc:g} A"] = statistics.median(times)
print(json.dumps(out))
"""

GRAPH_CASES = [(2, 5.0), (2, 8.0), (4, 5.0), (4, 8.0), (8, 5.0), (8, 8.0), (16, 5.0), (16, 8.0)]


_IMPORT = r"""
import json, time
t = time.perf_counter()
import matsym.search  # noqa: F401
print(json.dumps(time.perf_counter() - t))
"""


def _run(tree: Path, code: str, *args: str) -> object:
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=tree, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(tree: Path, what: list[str]) -> dict[str, float | None]:
    """The figures at one checked-out tree (seconds); None where the commit cannot run that timing."""
    figures: dict[str, float | None] = {}

    def attempt(name: str, code: str, *args: str):
        try:
            return _run(tree, code, *args)
        except RuntimeError as exc:
            print(f"  {name}: not measured at this commit ({exc})", flush=True)
            return None

    if "import" in what:
        runs = [attempt("import", _IMPORT) for _ in range(3)]
        figures["import matsym.search"] = None if None in runs else sorted(runs)[1]
    if "step" in what:
        figures["step, 20 atoms"] = attempt("step", _STEP, "[1, 1, 1]", "2")
    if "step64" in what:
        figures["step, 1,280 atoms"] = attempt("step64", _STEP, "[4, 4, 4]", "5")
    if "graph" in what:
        graph = attempt("graph", _GRAPH, json.dumps(GRAPH_CASES))
        for n, rc in GRAPH_CASES:
            name = f"{5 * n**3} atoms, {rc:g} A"
            figures[f"graph, {name}"] = None if graph is None else graph.get(name)
    return figures


def main(argv=None) -> int:
    parser = add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("commits", nargs="+", help="two or more commits (the first is the baseline)")
    parser.add_argument(
        "--chain", action="store_true", help="ratios between consecutive commits (default: against the first)"
    )
    parser.add_argument(
        "--what", default="import,step,step64,graph", help="comma-separated: import, step, step64, graph"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="time every commit this many times, round robin, and take the median of the rounds (the shared "
        "host drifts between faster and slower phases; rounds expose every commit to the same drift)",
    )
    args = parse_common(parser, argv)
    what = [w.strip() for w in args.what.split(",") if w.strip()]
    report = Report("compare_commits", args.quick)
    shas = []
    for commit in args.commits:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", commit], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        shas.append(sha)
    rounds: dict[str, list[dict[str, float | None]]] = {sha: [] for sha in shas}
    subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=False)  # trees of an interrupted earlier run
    with tempfile.TemporaryDirectory(prefix="matsym-compare-") as tmp:
        trees = {}
        try:
            for sha in shas:
                trees[sha] = Path(tmp) / sha
                subprocess.run(
                    ["git", "worktree", "add", "--detach", str(trees[sha]), sha],
                    cwd=ROOT,
                    check=True,
                    capture_output=True,
                )
            for k in range(max(args.rounds, 1)):
                for sha in shas:
                    print(f"timing {sha} (round {k + 1} of {max(args.rounds, 1)}) ...", flush=True)
                    rounds[sha].append(measure(trees[sha], what))
        finally:
            for tree in trees.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)

    def pooled(runs: list[dict[str, float | None]]) -> dict[str, float | None]:
        out = {}
        for key in runs[0]:
            values = [r[key] for r in runs]
            out[key] = None if None in values else statistics.median(values)
        return out

    results = {sha: pooled(runs) for sha, runs in rounds.items()}

    def ratio(old: str, new: str, key: str) -> str:
        a, b = results[old][key], results[new][key]
        return fmt_ratio(a / b) if a is not None and b is not None and b > 0 else "n/a"

    pairs = list(itertools.pairwise(shas)) if args.chain else [(shas[0], sha) for sha in shas[1:]]
    header = ["figure", *[f"{sha} ms" for sha in shas], *[f"{a} / {b}" for a, b in pairs]]
    rows = [
        [key, *[fmt_ms(results[sha][key]) for sha in shas], *[ratio(a, b, key) for a, b in pairs]]
        for key in results[shas[0]]
    ]
    against = "the commit before" if args.chain else shas[0]
    report.table(f"Timings at commits {', '.join(shas)} (ms, medians; ratio > 1: faster than {against})", header, rows)
    report.note(
        "Each commit in its own git worktree and fresh process, the same virtual environment, 1 thread; "
        f"{max(args.rounds, 1)} round(s), commits in turn, median of the rounds; "
        f"command: `python benchmarks/compare_commits.py {' '.join(args.commits)} --what {','.join(what)}"
        f"{' --chain' if args.chain else ''} --rounds {max(args.rounds, 1)}`."
    )
    report.data["seconds"] = results
    return report.finish(args)


if __name__ == "__main__":
    raise SystemExit(main())

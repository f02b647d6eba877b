"""Threads against graph size: the per-step time of a search on 1 and on 2 torch threads, in one process.

Sets :data:`matsym.search.AUTO_THREADS_EDGES`, the graph size from which ``SearchConfig.threads="auto"`` (the
default) runs a search on torch's own thread count instead of one thread.

Cases: supercells of cubic SrTiO3 (5, 40, 80, 160, 320, 640 and 1,280 sites) against a copy with every site moved
at random (0.05 Å RMS, seed 0), so the search cell is the whole cell (``reduce_cell=False``); default irreps on
every site. A step is one joint-search iteration, as ``benchmarks/bench_step.py`` times it (forward, backward, Adam,
proximal step). Per case: 3 warm-up steps, then blocks of steps alternating 1 and 2 threads (1, 2, 1, 2, ...), each
configuration's blocks pooled; medians. The ratio is the 1-thread median over the 2-thread median, both measured in
the same process, so the host's drift cancels in it.

Run: ``OMP_NUM_THREADS=2 python benchmarks/bench_threads.py [--quick]`` (needs 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import Report, add_common_args, fmt_ms, fmt_ratio, parse_common

CELLS = [(1, 1, 1), (2, 2, 2), (4, 2, 2), (4, 4, 2), (4, 4, 4), (8, 4, 4), (8, 8, 4)]
QUICK_CELLS = [(2, 2, 2), (4, 4, 2), (4, 4, 4)]


def case(repeat):
    """Parent and randomly displaced target on ``repeat`` x cubic SrTiO3."""
    import numpy as np
    from pymatgen.core import Structure

    from matsym.structures import cubic_perovskite

    parent = cubic_perovskite() * repeat
    rng = np.random.default_rng(0)
    moved = parent.cart_coords + rng.normal(scale=0.05 / np.sqrt(3), size=(len(parent), 3))
    return parent, Structure(parent.lattice, parent.species, moved, coords_are_cartesian=True)


def block_times(search, threads: int, steps: int) -> list[float]:
    import torch
    from bench_step import make_step

    torch.set_num_threads(threads)
    step = make_step(search)
    out = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        out.append(time.perf_counter() - t0)
    return out


def main(argv=None) -> int:
    import torch

    from matsym.search import AUTO_THREADS_EDGES, OrderParameterSearch

    parser = add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--blocks", type=int, default=None, help="blocks per thread count (default 4; quick 2)")
    args = parse_common(parser, argv)
    report = Report("bench_threads", args.quick)
    blocks = args.blocks or (2 if args.quick else 4)
    rows, data = [], []
    for repeat in QUICK_CELLS if args.quick else CELLS:
        parent, target = case(repeat)
        search = OrderParameterSearch(parent, target, reduce_cell=False, threads=1)
        edges = int(search.problem.graph.num_edges)
        with search.runtime():  # subnormals flushed as in a search; threads set per block below
            block_times(search, 1, 3)  # warm-up
            probe = statistics.median(block_times(search, 1, 3))
            steps = max(3, min(20, int(1.0 / max(probe, 1e-4))))  # about a second per block
            times: dict[int, list[float]] = {1: [], 2: []}
            for _ in range(blocks):
                for threads in (1, 2):
                    times[threads] += block_times(search, threads, steps)
        one, two = statistics.median(times[1]), statistics.median(times[2])
        rows.append([len(parent), edges, fmt_ms(one), fmt_ms(two), fmt_ratio(one / two)])
        data.append({"sites": len(parent), "edges": edges, "one_s": one, "two_s": two})
        print(f"  {len(parent)} sites, {edges} edges: {one * 1e3:.2f} ms / {two * 1e3:.2f} ms", flush=True)
    torch.set_num_threads(1)
    report.table(
        "Per-step time of a search on 1 and 2 torch threads (median ms; ratio = 1 thread / 2 threads)",
        ["sites", "edges", "1 thread ms", "2 threads ms", "ratio"],
        rows,
    )
    report.note(f"matsym.search.AUTO_THREADS_EDGES = {AUTO_THREADS_EDGES}.")
    report.data["cases"] = data
    return report.finish(args)


if __name__ == "__main__":
    raise SystemExit(main())

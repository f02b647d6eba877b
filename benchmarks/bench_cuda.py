"""The search on a CUDA device: per-step time on the 64x Pnma supercell, and agreement with the CPU.

- step: one joint-search step (as in ``bench_step.py``; the device synchronised before the clock stops) on the
  1,280-atom supercell of the 20-atom Pnma cell, float32, on CUDA and on the CPU in the same run;
- agreement: the same short float64 search (20-atom Pnma cell, B-site 1e candidates, fixed step budgets) on CUDA
  and on the CPU; the largest differences of the learned order parameter, the predicted displacements and the loss
  history (issue 5: to 1e-5).

Without a CUDA device it says so and measures nothing (nothing is recorded). Run:
``python benchmarks/bench_cuda.py [--quick]``; on the device machine of the project's tool library, for example
``OMP_NUM_THREADS=1 python benchmarks/bench_cuda.py --record --json $OUT/cuda.json``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import Report, add_common_args, fmt_ms, fmt_ratio, parse_common

IRREPS = "0e+0o+1e+1o+2e+2o"
AGREEMENT = {"sites": "Ti", "irreps": "1e", "dtype": "float64", "fit_steps": 40, "max_steps": 60, "polish_steps": 10}
TOLERANCE = 1e-5


def step_time(search, device, steps: int) -> float:
    """Median seconds of ``steps`` joint-search steps after two warm-up steps."""
    import torch
    from bench_step import make_step, set_threads

    set_threads(search)
    step = make_step(search)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    times = []
    for k in range(steps + 2):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        if k >= 2:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    args = parse_common(parser, argv)
    import numpy as np
    import torch

    from matsym.search import OrderParameterSearch
    from matsym.structures import tilted_perovskite

    report = Report("bench_cuda", args.quick)
    criterion = f"CUDA search agrees with the CPU to {TOLERANCE:g}"
    if not torch.cuda.is_available():
        report.note(f"No CUDA device here (torch {torch.__version__}): nothing measured.")
        report.check(criterion, "no CUDA device", None)
        args.record = False
        return report.finish(args)

    report.note(f"CUDA device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}, CUDA {torch.version.cuda}.")
    parent, target = tilted_perovskite("a+b-b-", 8.0)
    cells = (2, 2, 1) if args.quick else (4, 4, 4)
    big_parent, big_target = parent * cells, target * cells
    steps = 3 if args.quick else 10
    rows, data = [], {}
    for device in ("cuda", "cpu"):
        search = OrderParameterSearch(big_parent, big_target, sites="Ti", irreps=IRREPS, device=device)
        data[device] = step_time(search, device, steps)
        rows.append([device, len(big_parent), search.problem.graph.num_edges, fmt_ms(data[device]), steps])
        del search
    report.table(
        f"Time per search step, {len(big_parent)}-atom Pnma supercell, float32 (ms, median)",
        ["device", "atoms", "edges", "ms/step", "steps"],
        rows,
    )
    report.note(f"CPU / CUDA per step: {fmt_ratio(data['cpu'] / data['cuda'])}.")

    results = {
        device: OrderParameterSearch(parent, target, device=device, **AGREEMENT).run() for device in ("cpu", "cuda")
    }
    cpu, gpu = results["cpu"], results["cuda"]
    diffs = {
        "order parameter": float(np.abs(gpu.order_parameter - cpu.order_parameter).max()),
        "predicted displacements (Å)": float(np.abs(gpu.predicted_displacements - cpu.predicted_displacements).max()),
    }
    n = min(len(cpu.loss_history), len(gpu.loss_history))
    losses = [np.array([h["loss"] for h in r.loss_history[:n]]) for r in (cpu, gpu)]
    diffs["loss history (relative)"] = float(
        (np.abs(losses[0] - losses[1]) / np.maximum(np.abs(losses[0]), 1e-300)).max()
    )
    report.table(
        f"Same float64 search on CUDA and CPU (20-atom Pnma cell, {AGREEMENT})",
        ["quantity", "largest difference"],
        [[k, f"{v:.2e}"] for k, v in diffs.items()],
    )
    report.data.update({"step_s": data, "differences": diffs})
    worst = max(diffs.values())
    report.check(criterion, f"largest difference {worst:.2e}", worst <= TOLERANCE)
    return report.finish(args)


if __name__ == "__main__":
    raise SystemExit(main())

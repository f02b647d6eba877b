"""Shared helpers of the matsym benchmarks: timing, machine description, tables, and RESULTS.md sections.

Every benchmark script prints its tables and, unless told otherwise, appends one section to
``benchmarks/RESULTS.md`` headed by the date, the machine (cores, CPU model, torch version, threads, load)
and the git commit (``+dirty`` when the working tree has changes). Timings are medians of repeats; ratios
compare figures measured in the same run.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BENCH_DIR",
    "REPO_ROOT",
    "RESULTS_PATH",
    "Check",
    "Report",
    "Timing",
    "add_common_args",
    "cpu_model",
    "fmt_ms",
    "fmt_ratio",
    "git_commit",
    "machine_info",
    "markdown_table",
    "parse_common",
    "python_executable",
    "subprocess_env",
    "time_call",
]

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_PATH = BENCH_DIR / "RESULTS.md"

# measure the working tree's matsym even when an older copy is installed in site-packages
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

_RESULTS_HEADER = """# matsym benchmark results

Sections are appended by the scripts in `benchmarks/` (see `benchmarks/README.md`), newest last. Each one
names the date, the machine and the commit it measured. Timings are medians of repeats; every ratio compares
figures measured in the same run. The machine may be shared: the load average at the start of each run is
recorded.
"""


def python_executable() -> str:
    """The interpreter running the benchmarks (used for subprocesses)."""
    return sys.executable


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for child processes: this one, with the working tree first on ``PYTHONPATH``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra)
    return env


def cpu_model() -> str:
    """CPU model name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def git_commit() -> str:
    """Short commit of the repository, with ``+dirty`` when tracked or untracked files differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if status else "")


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, memory, Python/torch versions, thread settings and load of this machine."""
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
    }
    try:
        info["usable_cores"] = len(os.sched_getaffinity(0))
    except AttributeError:
        info["usable_cores"] = info["cores"]
    try:
        info["load"] = tuple(round(x, 2) for x in os.getloadavg())
    except OSError:
        info["load"] = None
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            kb = int(fh.readline().split()[1])
        info["memory_gib"] = round(kb / 2**20, 1)
    except (OSError, ValueError, IndexError):
        info["memory_gib"] = None
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["torch"] = "not installed"
        info["torch_threads"] = None
    return info


def _machine_line(info: dict[str, Any]) -> str:
    load = "n/a" if info.get("load") is None else "/".join(f"{x:g}" for x in info["load"])
    mem = "" if info.get("memory_gib") is None else f", {info['memory_gib']:g} GiB RAM"
    return (
        f"{info['cores']} cores ({info['usable_cores']} usable), {info['cpu']}{mem}; "
        f"Python {info['python']}, torch {info['torch']}, torch threads {info['torch_threads']} "
        f"(OMP_NUM_THREADS={info['omp_num_threads']}); "
        f"load average {load}"
    )


@dataclass
class Timing:
    """Wall times of repeated calls of one function (seconds)."""

    times: list[float]
    value: Any = None  # what the last call returned

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def runs(self) -> int:
        return len(self.times)


def time_call(
    fn: Callable[[], Any],
    *,
    repeats: int = 5,
    warmup: int = 1,
    budget_s: float = 5.0,
    single_above_s: float | None = None,
) -> Timing:
    """Median-ready wall times of ``fn()``.

    Args:
        fn: the call to time.
        repeats: most timed calls.
        warmup: untimed calls first (imports, caches, allocator).
        budget_s: stop repeating once the timed calls add up to this many seconds (at least one timed call).
        single_above_s: if the first call (warm-up or not) takes longer than this, keep it as the only timing:
            for calls too slow to repeat.
    """
    times: list[float] = []
    value = None
    for k in range(warmup + repeats):
        t0 = time.perf_counter()
        value = fn()
        dt = time.perf_counter() - t0
        if k == 0 and single_above_s is not None and dt > single_above_s:
            return Timing([dt], value)
        if k >= warmup:
            times.append(dt)
            if sum(times) >= budget_s:
                break
    return Timing(times, value)


def fmt_ms(seconds: float | None, digits: int = 3) -> str:
    """Seconds as milliseconds with ``digits`` significant figures (at least integer precision)."""
    if seconds is None:
        return "n/a"
    ms = seconds * 1e3
    if ms >= 10 ** (digits - 1):
        return f"{ms:,.0f}"
    return f"{ms:.{digits}g}"


def fmt_ratio(x: float | None) -> str:
    """A ratio such as ``3.2x`` (``n/a`` for missing)."""
    if x is None:
        return "n/a"
    if x >= 100:
        return f"{x:,.0f}x"
    return f"{x:.3g}x"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-markdown table (also readable as plain text)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), sep, *[line(r) for r in cells[1:]]])


@dataclass
class Check:
    """One acceptance criterion of the performance issue, evaluated on this run."""

    criterion: str
    measured: str
    passed: bool | None  # None: not evaluated (e.g. quick mode, missing data)


@dataclass
class Report:
    """What one benchmark run prints and records: tables, notes and acceptance checks."""

    name: str
    quick: bool
    started: float = field(default_factory=time.perf_counter)
    date: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    machine: dict[str, Any] = field(default_factory=machine_info)
    commit: str = field(default_factory=git_commit)
    blocks: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def table(self, title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Add and print a table."""
        text = f"**{title}**\n\n{markdown_table(headers, rows)}"
        self.blocks.append(text)
        print(f"\n{title}\n{markdown_table(headers, rows)}", flush=True)

    def note(self, text: str) -> None:
        """Add and print a note (one paragraph)."""
        self.blocks.append(text)
        print(f"\n{text}", flush=True)

    def check(self, criterion: str, measured: str, passed: bool | None) -> None:
        """Record an acceptance criterion."""
        self.checks.append(Check(criterion, measured, passed))

    def header(self) -> str:
        mode = "quick smoke run" if self.quick else "full run"
        return (
            f"## {self.name} — {self.date} ({mode})\n\n"
            f"- machine: {_machine_line(self.machine)}\n"
            f"- commit: {self.commit}"
        )

    def render(self) -> str:
        parts = [self.header(), *self.blocks]
        if self.checks:
            rows = [
                [c.criterion, c.measured, {True: "yes", False: "**NO**", None: "not evaluated"}[c.passed]]
                for c in self.checks
            ]
            parts.append("**Acceptance (issue 5)**\n\n" + markdown_table(["criterion", "measured", "met"], rows))
        parts.append(f"_{self.name} took {time.perf_counter() - self.started:.1f} s._")
        return "\n\n".join(parts) + "\n"

    def finish(self, args: argparse.Namespace) -> int:
        """Print the checks, append the section to RESULTS.md (if asked) and return the exit status."""
        text = self.render()
        if self.checks:
            print("\nAcceptance (issue 5)")
            for c in self.checks:
                mark = {True: "yes", False: "NO", None: "not evaluated"}[c.passed]
                print(f"  [{mark}] {c.criterion}: {c.measured}")
        print(f"\n{self.name} took {time.perf_counter() - self.started:.1f} s", flush=True)
        if args.record:
            path = Path(args.results)
            if not path.exists():
                path.write_text(_RESULTS_HEADER, encoding="utf-8")
            with path.open("a", encoding="utf-8") as fh:
                fh.write("\n" + text)
            print(f"appended a section to {path}")
        if args.json:
            Path(args.json).write_text(
                json.dumps(
                    {
                        "name": self.name,
                        "quick": self.quick,
                        "date": self.date,
                        "machine": self.machine,
                        "commit": self.commit,
                        "checks": [c.__dict__ for c in self.checks],
                        "data": self.data,
                    },
                    indent=1,
                    default=str,
                ),
                encoding="utf-8",
            )
        if args.strict and any(c.passed is False for c in self.checks):
            print("--strict: an acceptance criterion is not met", file=sys.stderr)
            return 3
        return 0


def add_common_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--quick``, ``--record/--no-record``, ``--results``, ``--json``, ``--strict``."""
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats: a fast smoke run")
    parser.add_argument(
        "--record",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="append a section to RESULTS.md (default: yes for full runs, no for --quick)",
    )
    parser.add_argument("--results", default=str(RESULTS_PATH), help="file to append to (default: %(default)s)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the figures as JSON here")
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 3 if an acceptance criterion is not met"
    )
    return parser


def parse_common(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse, filling the ``--record`` default from ``--quick``."""
    args = parser.parse_args(argv)
    if args.record is None:
        args.record = not args.quick
    return args

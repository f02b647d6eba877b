"""Character matching of spgrep's small irreps against the Bilbao tables, over all 230 space groups.

For every space group a structure with atoms in general positions is built in the tables' setting, and at every
k-point of the group's table spgrep's small irreps are matched to the table's irreps by characters
(:func:`matsym.modes._coverage.group_coverage`). A k-point counts when the matching is one to one. Needs the
optional tables: ``pip install matsym[labels]``.

Run::

    OMP_NUM_THREADS=1 .venv/bin/python examples/modes_label_coverage.py            # all 230 groups, about 1 min
    OMP_NUM_THREADS=1 .venv/bin/python examples/modes_label_coverage.py --groups 62,221,227

Prints the number of (space group, k-point) pairs and how many matched one to one, and every failure; exits 1 if
one did not match.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", help="comma-separated space-group numbers (default: 1-230)")
    ap.add_argument("--quick", action="store_true", help="a sample of 10 groups")
    args = ap.parse_args(argv)
    from matsym.modes import labels_available
    from matsym.modes._coverage import group_coverage

    if not labels_available():
        print("the irreptables data files are not installed: pip install matsym[labels]")
        return 1
    if args.groups:
        numbers = [int(x) for x in args.groups.split(",")]
    elif args.quick:
        numbers = [1, 2, 14, 62, 122, 142, 166, 194, 221, 227]
    else:
        numbers = list(range(1, 231))
    t0 = time.perf_counter()
    total = matched = 0
    failures: list[str] = []
    for n in numbers:
        c = group_coverage(n)
        total += c.kpoints
        matched += c.matched
        failures += [f"group {n}: {f}" for f in c.failures]
    print(
        f"{len(numbers)} space groups, {total} (group, k-point) pairs, {matched} matched one to one, "
        f"{total - matched} not ({time.perf_counter() - t0:.1f} s)"
    )
    for f in failures:
        print("  " + f)
    return 0 if matched == total else 1


if __name__ == "__main__":
    sys.exit(main())

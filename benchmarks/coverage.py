"""Benchmark: how often the nominal 95% interval covers the true breaking point, without load.

See docs/design.md#interval-coverage.

Run: `python benchmarks/coverage.py [--runs N] [--cases mm8,md8] [--hold-s S] [--no-readme]`
(default 200 runs of every case; a few minutes per case on one core). Each run is the real
search (analysis/search.py) against a queue simulated request by request (sim/queuesim.py:
Poisson arrivals, FCFS servers, the queue carried from step to step, warm-ups run, the drain
after an overloaded step), then the real analysis (analysis/breaks.py, 400 bootstrap
replicates), seeded by the run's number. Per case: coverage of the truth by the interval, the
median interval width (X and % of the truth), the median absolute error of the estimate, and
how the breaks were placed. Truths: Erlang C's p95 sojourn for M/M/c, Erlang B's blocking for
the loss system, a long simulation for M/D/c (sim/coverage.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from _readme import write_section

from breakpoint.sim.coverage import CASES, Coverage, coverage

README = Path(__file__).with_name("README.md")
HEADING = "## coverage.py"


def _method(method: str) -> str:
    return (
        method.split(" (", maxsplit=1)[0].split(",", maxsplit=1)[0].split(" over ", maxsplit=1)[0]
    )


def _row(cov: Coverage) -> str:
    n = len(cov.outcomes)
    methods = Counter(_method(o.method) for o in cov.outcomes)
    placed = ", ".join(f"{m} {k}" for m, k in methods.most_common())
    return (
        f"| {cov.case.title} | {n} | {cov.truth:.3f} | {cov.covered}/{n} ({cov.share:.1%}) | "
        f"{cov.median_width:.3f} ({cov.median_width / cov.truth:.1%}) | "
        f"{cov.median_abs_error:.1%} | {placed} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--hold-s", type=float, default=20.0)
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    keys = [k for k in args.cases.split(",") if k]
    unknown = [k for k in keys if k not in CASES]
    if unknown:
        print(f"coverage.py: unknown case {unknown[0]!r}; choose from {', '.join(CASES)}")
        return 2
    seeds = range(args.first_seed, args.first_seed + args.runs)
    rows = []
    started = time.time()
    for key in keys:
        t0 = time.time()
        cov = coverage(CASES[key], seeds, hold_s=args.hold_s)
        rows.append(_row(cov))
        print(rows[-1], f"({time.time() - t0:.0f} s)", flush=True)
    took = time.time() - started
    header = (
        "| case | runs | truth X | interval covers | median width X (% of truth) | "
        "median abs error | placed by |\n|---|---:|---:|---:|---:|---:|---|"
    )
    text = (
        f"{HEADING}\n\n`python benchmarks/coverage.py --runs {args.runs}` "
        f"({time.strftime('%Y-%m-%d')}, Python {sys.version.split()[0]}; took {took / 60:.1f} "
        f"min). Seeds {seeds.start}-{seeds.stop - 1}, {args.hold_s:g} s holds, 5 s warm-ups, "
        "max 12X, SLO p95 250 ms (errors < 1%). Each run: the real search against a queue "
        "simulated request by request, then the real analysis; the interval covers when "
        "low <= truth <= high (a missing bound never covers). Goal: 90-98% per case.\n\n"
        f"{header}\n" + "\n".join(rows) + "\n"
    )
    print(text)
    if not args.no_readme:
        write_section(README, HEADING, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

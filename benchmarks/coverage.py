"""Benchmark: how often the nominal 95% interval covers the true breaking point, without load.

See docs/design.md#interval-coverage.

Run: `python benchmarks/coverage.py [--runs N] [--cases mm8,md8] [--hold-s S] [--no-readme]`
(`--calibrate`: only the window-noise table behind analysis/level_boot.py's prior; `--cases
shared8,shared8x7,shared2`: a queue shared by a slow segment breaking far below the capacity
and a fast one, sim/shared.py, one row per segment, not in the default set)
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

from breakpoint.analysis.level_boot import relaxation_s
from breakpoint.sim.coverage import CASES, Coverage, coverage
from breakpoint.sim.queuesim import Queue, QueueTarget
from breakpoint.sim.shared import SHARED_CASES, SLOW, shared_coverage

README = Path(__file__).with_name("README.md")
HEADING = "## coverage.py"


def _method(method: str) -> str:
    head = method.split(" (", maxsplit=1)[0].split(",", maxsplit=1)[0]
    return head.split(" over ", maxsplit=1)[0]


def _row(cov: Coverage) -> str:
    n = len(cov.outcomes)
    methods = Counter(_method(o.method) for o in cov.outcomes)
    placed = ", ".join(f"{m} {k}" for m, k in methods.most_common())
    return (
        f"| {cov.case.title} | {n} | {cov.truth:.3f} | {cov.covered}/{n} ({cov.share:.1%}) | "
        f"{cov.median_width:.3f} ({cov.median_width / cov.truth:.1%}) | "
        f"{cov.median_abs_error:.1%} | {placed} |"
    )


def _shared_rows(key: str, seeds: range, hold_s: float) -> list[str]:
    """A shared case's row per segment; on stdout, how often the slow segment was found first
    and every interval that missed its truth."""
    case = SHARED_CASES[key]
    covs, runs = shared_coverage(case, seeds, hold_s=hold_s)
    first = sum(r.first_to_break == SLOW for r in runs)
    print(f"{case.title}: the slow segment found first in {first}/{len(runs)} runs")
    for name, cov in covs.items():
        for o in cov.outcomes:
            if not o.covers(cov.truth):
                print(
                    f"  miss {name} seed {o.seed}: [{o.low}, {o.high}] against {cov.truth:.3f}"
                    f" (estimate {o.estimate}, {o.label}, {o.method})"
                )
    return [_row(cov) for cov in covs.values()]


def calibrate(windows: int = 60, window_s: float = 20.0) -> None:
    """The spread of log p95 between consecutive windows of a queue in steady state, against
    sqrt(relaxation time / window): the K that analysis/level_boot.py's prior is taken from."""
    import numpy as np

    print("| queue | rho | sd of log p95 | sqrt(tau / window) | K |\n|---|---:|---:|---:|---:|")
    for c, service_ms, deterministic in ((8, 20.0, False), (2, 20.0, False), (16, 40.0, False),
                                         (8, 20.0, True)):  # fmt: skip
        capacity = c / (service_ms / 1000.0)
        for rho in (0.8, 0.9, 0.95, 0.97):
            rate = rho * capacity
            target = QueueTarget(Queue(c, service_ms, deterministic), 1.0, 11)
            target._serve(rate, 60.0)  # from empty to steady state
            logs = [
                np.log(np.quantile(target._serve(rate, window_s)[1], 0.95)) for _ in range(windows)
            ]
            sd = float(np.std(logs, ddof=1))
            scale = (relaxation_s(rate, capacity) / window_s) ** 0.5
            kind = "D" if deterministic else "M"
            queue = f"M/{kind}/{c}, {service_ms:g} ms"
            print(f"| {queue} | {rho} | {sd:.3f} | {scale:.3f} | {sd / scale:.2f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--hold-s", type=float, default=20.0)
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--calibrate", action="store_true", help="only the window-noise table")
    args = parser.parse_args()
    if args.calibrate:
        calibrate()
        return 0
    keys = [k for k in args.cases.split(",") if k]
    unknown = [k for k in keys if k not in CASES and k not in SHARED_CASES]
    if unknown:
        known = ", ".join([*CASES, *SHARED_CASES])
        print(f"coverage.py: unknown case {unknown[0]!r}; choose from {known}")
        return 2
    seeds = range(args.first_seed, args.first_seed + args.runs)
    rows = []
    started = time.time()
    for key in keys:
        t0 = time.time()
        if key in SHARED_CASES:
            mine = _shared_rows(key, seeds, args.hold_s)
        else:
            mine = [_row(coverage(CASES[key], seeds, hold_s=args.hold_s))]
        rows.extend(mine)
        print("\n".join(mine), f"({time.time() - t0:.0f} s)", flush=True)
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

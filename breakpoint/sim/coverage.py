"""How often the reported 95% interval covers the true breaking point, on simulated queues whose
truth is known: the real search (queuesim.py) and the real analysis, run after run.

Used by benchmarks/coverage.py (200+ runs per case) and tests/test_coverage.py (a small seeded
version). See docs/design.md#interval-coverage.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from breakpoint.analysis.breaks import analyse_slos
from breakpoint.plan.profiles import Slo
from breakpoint.plan.steps import Plan
from breakpoint.sim import queueing as q
from breakpoint.sim.queuesim import SEGMENT, Queue, QueueTarget, run_search


@dataclass(frozen=True)
class Case:
    """A simulated server, its 1X, the SLO and where it truly breaks (in X)."""

    key: str
    title: str
    queue: Queue
    baseline: float
    slo: Slo
    truth: Callable[[], float]


def _erlang_truth(c: int, service_ms: float, slo_ms: float, baseline: float) -> Callable[[], float]:
    return lambda: q.break_rate(c, service_ms / 1000.0, slo_ms) / baseline


def _loss_truth(c: int, service_ms: float, rate: float, baseline: float) -> Callable[[], float]:
    return lambda: q.finite_blocking_break_rate(c, 0, service_ms / 1000.0, rate) / baseline


def md_c_p95_s(c: int, service_s: float, rate: float, arrivals: int = 2_000_000) -> float:
    """p95 sojourn of M/D/c at `rate`, from one long simulated run (no closed form at hand).

    Seeded, so the same rate always gives the same figure and bisection on it is monotone
    enough: common random numbers across rates.
    """
    target = QueueTarget(Queue(c, service_s * 1000.0, deterministic=True), rate, 7)
    duration = arrivals / rate
    _, sojourn, _ = target._serve(rate, duration)
    keep = sojourn[len(sojourn) // 20 :]  # the first 5% is the queue filling from empty
    return float(np.quantile(keep, 0.95))


def md_c_break_x(c: int, service_ms: float, slo_ms: float, baseline: float) -> float:
    """Where M/D/c's p95 sojourn reaches the SLO, by bisection on md_c_p95_s (in X)."""
    cap = c / (service_ms / 1000.0)
    lo, hi = 0.5 * cap, cap * 0.9999
    for _ in range(20):
        mid = (lo + hi) / 2
        if md_c_p95_s(c, service_ms / 1000.0, mid) * 1000.0 > slo_ms:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2 / baseline


# The M/D/8 truth: the mean of md_c_break_x(8, 20.0, 250.0, 40.0) with seeds 7, 8, 9 (9.850,
# 9.844, 9.833: 2M arrivals per rate; the same bisection gives 9.672X for M/M/8, Erlang C 9.682X).
MD8_TRUTH_X = 9.842

CASES: dict[str, Case] = {
    c.key: c
    for c in (
        Case("mm8", "M/M/8, 20 ms, 1X = 40 req/s", Queue(8, 20.0), 40.0, Slo(250.0),
             _erlang_truth(8, 20.0, 250.0, 40.0)),
        Case("mm2", "M/M/2, 20 ms, 1X = 10 req/s", Queue(2, 20.0), 10.0, Slo(250.0),
             _erlang_truth(2, 20.0, 250.0, 10.0)),
        Case("mm16", "M/M/16, 40 ms, 1X = 40 req/s", Queue(16, 40.0), 40.0, Slo(250.0),
             _erlang_truth(16, 40.0, 250.0, 40.0)),
        Case("md8", "M/D/8, 20 ms, 1X = 40 req/s", Queue(8, 20.0, deterministic=True), 40.0,
             Slo(250.0), lambda: MD8_TRUTH_X),
        Case("loss8", "M/M/8/8 loss system (errors < 1%), 20 ms, 1X = 40 req/s",
             Queue(8, 20.0, loss=True), 40.0, Slo(250.0, 0.01), _loss_truth(8, 20.0, 0.01, 40.0)),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    seed: int
    estimate: float | None
    low: float | None
    high: float | None
    label: str
    method: str

    def covers(self, truth: float) -> bool:
        """A missing bound is no claim: an interval without one does not cover."""
        return self.low is not None and self.high is not None and self.low <= truth <= self.high

    @property
    def width(self) -> float:
        if self.low is None or self.high is None:
            return math.inf
        return self.high - self.low


def plan_for(case: Case, seed: int, hold_s: float = 20.0) -> Plan:
    return Plan("open", case.baseline, max_multiplier=12, hold_s=hold_s, seed=seed)


def one_run(case: Case, seed: int, *, hold_s: float = 20.0, boot: int = 400) -> Outcome:
    """The search and the analysis of one simulated run of `case`."""
    plan = plan_for(case, seed, hold_s)
    slos = {SEGMENT: case.slo}
    steps = run_search(plan, slos, QueueTarget(case.queue, case.baseline, seed))
    brk = analyse_slos(steps, slos, plan, seed=seed, boot=boot).segments[SEGMENT].breaking
    return Outcome(seed, brk.multiplier, brk.low, brk.high, brk.label, brk.method)


@dataclass(frozen=True)
class Coverage:
    case: Case
    truth: float
    outcomes: tuple[Outcome, ...]

    @property
    def covered(self) -> int:
        return sum(o.covers(self.truth) for o in self.outcomes)

    @property
    def share(self) -> float:
        return self.covered / len(self.outcomes) if self.outcomes else math.nan

    @property
    def median_width(self) -> float:
        return float(np.median([o.width for o in self.outcomes]))

    @property
    def median_abs_error(self) -> float:
        errors = [abs(o.estimate / self.truth - 1) for o in self.outcomes if o.estimate]
        return float(np.median(errors)) if errors else math.nan


def coverage(case: Case, seeds: Sequence[int], **kwargs: float) -> Coverage:
    truth = case.truth()
    return Coverage(case, truth, tuple(one_run(case, s, **kwargs) for s in seeds))  # type: ignore[arg-type]

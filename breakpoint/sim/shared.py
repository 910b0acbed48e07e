"""Two segments on one simulated queue: the coverage study's case of a segment that breaks on
its own small headroom far below the server's capacity, beside one that breaks near it.

Arrivals are Poisson at the plan's load; each belongs to SLOW with probability `share`, else to
FAST, and both are served FCFS by the same servers (queuesim.py). A slow request's latency is its
sojourn plus a constant `added_ms` (its emulated network, the same in every window, as a 3G
download is), and its step record carries the parts (network, server, device) as a real run's
does, so the analysis scales its window noise by the server's share. Truths by Erlang C: the
slow segment breaks where the p95 sojourn reaches its SLO less added_ms, the fast one where it
reaches its own SLO.

Used by benchmarks/coverage.py (`--cases shared8,shared8x7,shared2`) and
tests/test_coverage_segments.py. See docs/design.md#interval-coverage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from breakpoint.analysis.breaks import analyse_slos
from breakpoint.plan.profiles import Slo
from breakpoint.plan.steps import Plan
from breakpoint.results import SegmentStep
from breakpoint.sim import queueing as q
from breakpoint.sim.coverage import Case, Coverage, Outcome
from breakpoint.sim.queuesim import Queue, QueueTarget, run_search, segment_step

SLOW, FAST = "slow", "fast"


@dataclass(frozen=True)
class SharedCase:
    """An M/M/c queue shared by a slow segment (constant added_ms on top of its sojourn, a
    `share` of the arrivals) and a fast one, each with its own p95 SLO."""

    key: str
    title: str
    queue: Queue
    baseline: float
    share: float
    added_ms: float
    slow_slo: Slo
    fast_slo: Slo

    @property
    def slos(self) -> dict[str, Slo]:
        return {SLOW: self.slow_slo, FAST: self.fast_slo}

    def truth(self, segment: str) -> float:
        """Where the segment's p95 reaches its SLO (in X), by Erlang C."""
        if self.queue.deterministic or self.queue.loss:
            raise ValueError("shared cases have Erlang C truths: M/M/c only")
        added = self.added_ms if segment == SLOW else 0.0
        slo = self.slos[segment].p95_ms
        service_s = self.queue.service_ms / 1000.0
        return q.break_rate(self.queue.workers, service_s, slo, added) / self.baseline

    def segment_case(self, segment: str) -> Case:
        """The segment as a one-segment Case: its row in the benchmark's table."""
        truth = self.truth(segment)
        slo = self.slos[segment]
        title = f"{self.title} / {segment}, SLO p95 {slo.p95_ms:g} ms"
        return Case(f"{self.key}/{segment}", title, self.queue, self.baseline, slo, lambda: truth)


class SharedQueueTarget(QueueTarget):
    """queuesim's queue, its arrivals split between SLOW and FAST.

    The queue draws exactly what QueueTarget draws for the same seed (the service times do not
    depend on the segment); membership comes from a second generator.
    """

    def __init__(
        self, queue: Queue, baseline_rps: float, seed: int, share: float, added_ms: float
    ) -> None:
        super().__init__(queue, baseline_rps, seed)
        self.share = share
        self.added_ms = added_ms
        self.members = np.random.default_rng([seed, 1])

    def step_segments(
        self, multiplier: float, warmup_s: float, hold_s: float
    ) -> dict[str, SegmentStep]:
        start, t, sojourn, refused = self.window(multiplier, warmup_s, hold_s)
        slow = self.members.random(len(t)) < self.share
        out = {}
        for name, mine, added in ((SLOW, slow, self.added_ms), (FAST, ~slow, 0.0)):
            out[name] = segment_step(
                name, start, hold_s, t[mine], sojourn[mine], refused[mine], added
            )
        return out


SHARED_CASES: dict[str, SharedCase] = {
    c.key: c
    for c in (
        # Slow truth 4.99X, fast 9.51X; capacity 10X. Not identifiable: M/M/8's p95 sojourn is
        # 59.9 ms at 1X and 60.3 ms at 5X, less than a window's sampling noise (about 2 ms) and
        # the recorder's histogram resolution at 560 ms (0.5 ms).
        SharedCase("shared8", "M/M/8, 20 ms, 1X = 40 req/s, 30% slow (+500 ms)", Queue(8, 20.0),
                   40.0, 0.3, 500.0, Slo(560.3), Slo(170.0)),
        # The same queue, the slow segment breaking where the p95 rises: truth 7.00X (63.4 ms;
        # 61.1 ms at 6X, 70.2 ms at 8X), fast 9.51X.
        SharedCase("shared8x7", "M/M/8, 20 ms, 1X = 40 req/s, 30% slow (+500 ms)",
                   Queue(8, 20.0), 40.0, 0.3, 500.0, Slo(563.4), Slo(170.0)),
        # Few samples per window: 15 slow requests/s at the slow break. Slow truth 4.97X (p95
        # sojourn 76 ms, 60 ms at 1X), fast 9.50X; capacity 10X.
        SharedCase("shared2", "M/M/2, 20 ms, 1X = 10 req/s, 30% slow (+500 ms)", Queue(2, 20.0),
                   10.0, 0.3, 500.0, Slo(576.0), Slo(600.0)),
    )
}  # fmt: skip


@dataclass(frozen=True)
class SharedRun:
    """Both segments' outcomes of one run, and which segment the analysis found first."""

    outcomes: dict[str, Outcome]
    first_to_break: str | None


def one_shared_run(
    case: SharedCase, seed: int, *, hold_s: float = 20.0, boot: int = 400
) -> SharedRun:
    """The search and the analysis of one simulated run of the shared queue."""
    plan = Plan("open", case.baseline, max_multiplier=12, hold_s=hold_s, seed=seed)
    target = SharedQueueTarget(case.queue, case.baseline, seed, case.share, case.added_ms)
    steps = run_search(plan, case.slos, target)
    analysis = analyse_slos(steps, case.slos, plan, seed=seed, boot=boot)
    outcomes = {}
    for name in (SLOW, FAST):
        brk = analysis.segments[name].breaking
        outcomes[name] = Outcome(seed, brk.multiplier, brk.low, brk.high, brk.label, brk.method)
    return SharedRun(outcomes, analysis.first_to_break)


def shared_coverage(
    case: SharedCase, seeds: Sequence[int], **kwargs: float
) -> tuple[dict[str, Coverage], list[SharedRun]]:
    """Per segment, the coverage of its truth over the seeds; and the runs themselves."""
    runs = [one_shared_run(case, s, **kwargs) for s in seeds]  # type: ignore[arg-type]
    out = {}
    for name in (SLOW, FAST):
        seg = case.segment_case(name)
        out[name] = Coverage(seg, seg.truth(), tuple(r.outcomes[name] for r in runs))
    return out, runs

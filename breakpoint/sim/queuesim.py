"""A queue simulated request by request, measured as the recorder would: the coverage study's
target (benchmarks/coverage.py, tests/test_coverage.py).

stepbuilder.py draws each request's wait independently from the queue's steady state, so a
window's p95 varies only by sampling. A real queue's waits are correlated over many service
times (a busy spell delays everyone in it), and near saturation the p95 of a 20 s window varies
several times more than independent draws say: that variation is what an interval must cover.
Here the queue is the real thing: Poisson arrivals, c FCFS servers (exponential or constant
service), optionally no waiting room (a loss system that refuses arrivals finding every server
busy, as the embedded target's `max_queue=0`). The queue state carries over from one step to
the next and each step's warm-up runs before its window, as in a real run. The search is the
real one (analysis/search.py), so the steps are those a run would measure.

See docs/design.md#interval-coverage.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from breakpoint.analysis.criteria import SATURATION_RATIO
from breakpoint.analysis.search import Search
from breakpoint.plan.profiles import Slo
from breakpoint.plan.steps import Plan, ramp
from breakpoint.results import GeneratorHealth, SegmentStep, Series, StepResult
from breakpoint.sim.stepbuilder import _measured

SEGMENT = "s0"
DRAIN_S = 15.0  # the local runner's drain timeout (load/local.py)


@dataclass(frozen=True)
class Queue:
    """c servers, mean service `service_ms`, exponential or deterministic; loss: no waiting."""

    workers: int
    service_ms: float
    deterministic: bool = False
    loss: bool = False


class QueueTarget:
    """The queue's state through a run: which time each server is next free."""

    def __init__(self, queue: Queue, baseline_rps: float, seed: int) -> None:
        self.queue = queue
        self.baseline = baseline_rps
        self.rng = np.random.default_rng(seed)
        self.free = [0.0] * queue.workers  # a heap of the times servers become free
        self.now = 0.0

    def _serve(self, rate: float, duration_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Arrivals over the next duration_s: (arrival times, sojourn seconds, refused?)."""
        n = int(self.rng.poisson(rate * duration_s))
        t = self.now + np.sort(self.rng.uniform(0.0, duration_s, n))
        s = self.queue.service_ms / 1000.0
        service = np.full(n, s) if self.queue.deterministic else self.rng.exponential(s, n)
        sojourn = np.empty(n)
        refused = np.zeros(n, dtype=bool)
        free, loss = self.free, self.queue.loss
        for i, (at, work) in enumerate(zip(t.tolist(), service.tolist(), strict=True)):
            first = free[0]
            if loss and first > at:
                refused[i], sojourn[i] = True, 0.0
                continue
            start = first if first > at else at
            heapq.heapreplace(free, start + work)
            sojourn[i] = start - at + work
        self.now += duration_s
        return t, sojourn, refused

    def window(
        self, multiplier: float, warmup_s: float, hold_s: float
    ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """One step's arrivals: its warm-up (discarded), then its measured window, then (if the
        target fell behind) a pause until its queue drained, as the local runner does.
        (window start, arrival times, sojourn seconds, refused?)"""
        rate = self.baseline * multiplier
        if warmup_s > 0:
            self._serve(rate, warmup_s)
        start = self.now
        t, sojourn, refused = self._serve(rate, hold_s)
        in_window = int((t + sojourn <= start + hold_s).sum())
        if len(t) and in_window < SATURATION_RATIO * len(t):
            self.now = max(self.now, *self.free)  # arrivals pause until the queue drained
        return start, t, sojourn, refused

    def step(self, multiplier: float, warmup_s: float, hold_s: float) -> SegmentStep:
        """One step of the single segment SEGMENT."""
        start, t, sojourn, refused = self.window(multiplier, warmup_s, hold_s)
        return segment_step(SEGMENT, start, hold_s, t, sojourn, refused)

    def step_segments(
        self, multiplier: float, warmup_s: float, hold_s: float
    ) -> dict[str, SegmentStep]:
        """Every segment's record of one step (here the one segment; sim/shared.py: two)."""
        return {SEGMENT: self.step(multiplier, warmup_s, hold_s)}


def segment_step(
    name: str,
    start: float,
    hold_s: float,
    t: np.ndarray,
    sojourn: np.ndarray,
    refused: np.ndarray,
    added_ms: float | None = None,
) -> SegmentStep:
    """A segment's step record from its arrivals in the window, as the recorder keeps it.

    added_ms: a constant time on top of every sojourn (the segment's emulated network); when
    given, the record carries the mean parts (network, server, device) as real runs do.
    """
    latency = sojourn + added_ms / 1000.0 if added_ms else sojourn
    done_at = t + latency
    end = start + hold_s
    # The window's requests are waited for up to the drain deadline; later ones are
    # unfinished. completed_rps counts those done inside the window.
    finished = done_at <= end + DRAIN_S
    ok = finished & ~refused
    in_window = int((done_at <= end).sum())
    encoded, pct = _measured(latency[ok] * 1000.0)
    seconds = max(int(hold_s), 1)
    second = np.minimum((t[finished] - start).astype(int), seconds - 1)
    completed = np.bincount(second, minlength=seconds)
    sums = np.bincount(second, weights=latency[finished] * 1000.0, minlength=seconds)
    errs = np.bincount(second, weights=refused[finished], minlength=seconds)
    refusals = int(refused.sum())
    parts: dict[str, float] = {}
    if added_ms is not None and ok.any():
        server = float(sojourn[ok].mean() * 1000.0)
        parts = {"network": float(added_ms), "server": server, "device": 0.0}
    return SegmentStep(
        segment=name,
        requests=int(finished.sum()),
        errors={"http_5xx": refusals} if refusals else {},
        offered_rps=len(t) / hold_s,
        completed_rps=in_window / hold_s,
        p50_ms=pct["p50_ms"],
        p90_ms=pct["p90_ms"],
        p95_ms=pct["p95_ms"],
        p99_ms=pct["p99_ms"],
        max_ms=pct["max_ms"],
        mean_ms=pct["mean_ms"],
        histogram=encoded,
        parts_ms=parts,
        series=Series(
            completed=tuple(int(c) for c in completed),
            errors=tuple(int(e) for e in errs),
            mean_ms=tuple(
                float(x / c) if c else None for x, c in zip(sums, completed, strict=True)
            ),
        ),
        unfinished=int((~finished).sum()),
    )


def run_search(
    plan: Plan, slos: Mapping[str, Slo], target: QueueTarget, *, max_steps: int = 60
) -> list[StepResult]:
    """The real search against the simulated queue: the steps a run would measure."""
    search = Search(plan, slos)
    bound = len(ramp(plan)) * plan.refine_repeats * (1 + plan.refine_levels)
    bound += plan.separate_levels * plan.refine_repeats
    done: list[StepResult] = []
    while len(done) < min(max_steps, bound):
        planned = search.next_step(done)
        if planned is None:
            break
        hold = max(1.0, math.floor(planned.hold_s))
        segments = target.step_segments(planned.multiplier, planned.warmup_s, hold)
        result = StepResult(
            index=len(done),
            multiplier=planned.multiplier,
            load=plan.load_at(planned.multiplier),
            phase=planned.phase,
            started_at=target.now - hold - planned.warmup_s,
            warmup_s=planned.warmup_s,
            measured_s=hold,
            segments=segments,
            generator=GeneratorHealth(),
        )
        done.append(result)
    return done

"""The surge rehearsal's analysis: when did each segment recover, and what the fluid model says.

Pure: per-second series in, numbers out (no I/O, no locust). The recovery rule, its interval
and the fluid model are explained in docs/design.md#surge-rehearsal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from breakpoint.plan.profiles import Slo

# A second of one segment with fewer requests than this has no latency verdict: a p95 of a
# handful of requests is its maximum, noise rather than evidence.
MIN_REQUESTS_PER_S = 10
# The rule's window: this many consecutive seconds must be within the objective and drained.
CONFIRM_S = 5
# A segment too sparse for MIN_REQUESTS_PER_S every second is judged on blocks of seconds that
# hold that many requests at 1X (its resolution is then the block), up to this long; sparser
# than MIN_REQUESTS_PER_S in this many seconds at 1X, it has no verdict.
MAX_BLOCK_S = 10


# The per-second fields a surge's series.json stores, one list each (load/timeline.py).
SERIES_FIELDS = ("offered", "finished", "requests", "failed", "slow", "p95_all_ms", "p95_ms")


@dataclass(frozen=True)
class SecondBin:
    """One second of one segment (seconds counted from the timeline's origin).

    `offered`, `requests`, `failed`, `p95_all_ms` are about the iterations due (intended start)
    in that second; `finished` counts iterations that ended during it (wall clock), so the
    backlog at its end is the running sum of offered minus finished.
    """

    offered: int = 0
    finished: int = 0
    requests: int = 0  # completed requests of iterations due in this second, failures included
    failed: int = 0
    # p95 over every request of the second, a failed one counting as slower than any success:
    # None when more than 5% of them failed (or there were none).
    p95_all_ms: float | None = None
    p95_ms: float | None = None  # over successful requests only (as in a run's steps)
    # Successful requests slower than the segment's objective (None: not counted, as in a
    # series written before it was): with it, seconds can be pooled into blocks exactly.
    slow: int | None = None


@dataclass(frozen=True)
class Phases:
    """Where the surge's phases lie on the timeline, in seconds from its origin."""

    baseline_from_s: float  # the baseline's measured window (after its warm-up)
    surge_from_s: float
    drop_s: float  # the surge ended: load back to 1X
    end_s: float  # the last moment measured


@dataclass(frozen=True)
class Recovery:
    """A segment's time to recover after the drop, by the rule of docs/design.md#surge-rehearsal."""

    label: str  # "recovered", "not_recovered" or "no_verdict"
    recovery_s: float | None  # seconds from the drop; None unless recovered
    low_s: float | None  # the interval: the rule with a shorter and a longer window
    high_s: float | None  # None: the longer window was not satisfied within what was measured
    observed_s: float  # how long after the drop the segment was watched
    backlog_limit: float | None  # in-flight iterations counted as drained (from the baseline)
    reason: str = ""
    resolution_s: int = 1  # the block of seconds judged together (sparse segments: more)

    def to_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "recovery_s": _round(self.recovery_s),
            "low_s": _round(self.low_s),
            "high_s": _round(self.high_s),
            "observed_s": _round(self.observed_s),
            "backlog_limit": _round(self.backlog_limit),
            "reason": self.reason,
            "resolution_s": self.resolution_s,
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def objective_ms(slo: Slo) -> float:
    """The latency objective a segment's seconds are judged against: its p95 SLO, or, when it
    has objectives, the strictest p95 among them, applied to all of its requests."""
    p95s = [o.threshold_ms for o in slo.objectives if o.percentile == 95]
    return min(p95s) if p95s else slo.p95_ms


def in_flight(bins: Sequence[SecondBin]) -> list[int]:
    """Iterations offered and not yet finished at the end of each second."""
    out, total = [], 0
    for b in bins:
        total += b.offered - b.finished
        out.append(total)
    return out


def backlog_limit(bins: Sequence[SecondBin], phases: Phases) -> float | None:
    """The in-flight count that still counts as drained: the most the baseline itself had in
    flight at the end of a second, plus three Poisson deviations of that and one (a queue at
    1X fluctuates; the rule asks for many consecutive seconds below it). None when the baseline
    has no whole measured second."""
    first = math.ceil(phases.baseline_from_s)
    last = math.floor(phases.surge_from_s)  # bins wholly before the surge
    flying = in_flight(bins)[first:last]
    if not flying:
        return None
    peak = max(flying)
    return float(peak + 3 * math.sqrt(max(peak, 1)) + 1)


def has_verdict(b: SecondBin, min_requests: int = MIN_REQUESTS_PER_S) -> bool:
    return b.requests >= min_requests


def within_objective(b: SecondBin, slo_ms: float) -> bool:
    """At least 95% of the second's requests succeeded within the objective."""
    return b.p95_all_ms is not None and b.p95_all_ms <= slo_ms


def block_s(
    bins: Sequence[SecondBin], phases: Phases, min_requests: int = MIN_REQUESTS_PER_S
) -> int | None:
    """How many seconds to judge together: the fewest that held `min_requests` requests at 1X
    on average (1 for a segment with that many a second). None: too sparse even in
    MAX_BLOCK_S seconds, or no baseline second. Blocks need the `slow` counts: a series
    without them is judged second by second."""
    first = math.ceil(phases.baseline_from_s)
    last = min(len(bins), math.floor(phases.surge_from_s))
    base = bins[first:last]
    if not base:
        return None
    rate = sum(b.requests for b in base) / len(base)
    if rate >= min_requests or any(b.slow is None for b in bins):
        return 1
    if rate <= 0 or min_requests / rate > MAX_BLOCK_S:
        return None
    return math.ceil(min_requests / rate)


def block_verdict(
    block: Sequence[SecondBin], slo_ms: float, min_requests: int = MIN_REQUESTS_PER_S
) -> bool | None:
    """Did at least 95% of the block's requests succeed within the objective? None: fewer
    than `min_requests` requests, no verdict. A block of one second without `slow` counts
    is judged by its p95 over all requests, which says the same."""
    n = sum(b.requests for b in block)
    if n < min_requests:
        return None
    if len(block) == 1 and block[0].slow is None:
        return within_objective(block[0], slo_ms)
    bad = sum(b.failed + (b.slow or 0) for b in block)
    return n - bad >= math.ceil(0.95 * n)


def first_recovered(
    bins: Sequence[SecondBin],
    phases: Phases,
    slo_ms: float,
    limit: float,
    *,
    window: int = CONFIRM_S,
    min_requests: int = MIN_REQUESTS_PER_S,
    block: int = 1,
) -> int | None:
    """The first whole second k at or after the drop from which `window` blocks of `block`
    seconds (for block > 1: enough blocks to span `window` seconds, at least 2) are all
    drained (in flight at the end of each second <= limit) and, where a block has a verdict,
    within the objective; at least half of the blocks must have a verdict. None: no such
    streak in the measured seconds."""
    flying = in_flight(bins)
    start = math.ceil(phases.drop_s)
    end = min(len(bins), math.floor(phases.end_s))  # whole seconds measured
    blocks = window if block == 1 else max(2, math.ceil(window / block))
    span_s = blocks * block
    for k in range(start, end - span_s + 1):
        if any(flying[i] > limit for i in range(k, k + span_s)):
            continue
        verdicts = [
            block_verdict(bins[k + j * block : k + (j + 1) * block], slo_ms, min_requests)
            for j in range(blocks)
        ]
        judged = [v for v in verdicts if v is not None]
        if 2 * len(judged) >= blocks and all(judged):
            return k
    return None


def _no_verdict(observed: float, limit: float | None, reason: str, block: int = 1) -> Recovery:
    return Recovery("no_verdict", None, None, None, observed, limit, reason, block)


def recovery(
    bins: Sequence[SecondBin],
    phases: Phases,
    slo_ms: float,
    *,
    window: int = CONFIRM_S,
    min_requests: int = MIN_REQUESTS_PER_S,
) -> Recovery:
    """A segment's recovery after the drop, with the window-sensitivity interval.

    The interval is the spread of the recovery time when the rule asks for a shorter window
    (half as many seconds) or a longer one (twice as many): per-second p95s are noisy, and
    how long a streak of good seconds proves recovery is the rule's one arbitrary choice.
    A segment with fewer than `min_requests` requests a second at 1X is judged on blocks of
    seconds (block_s), and its resolution is the block."""
    observed = max(0.0, min(float(len(bins)), phases.end_s) - phases.drop_s)
    limit = backlog_limit(bins, phases)
    if limit is None:
        return _no_verdict(observed, None, "no measured baseline second")
    block = block_s(bins, phases, min_requests)
    if block is None:
        return _no_verdict(
            observed,
            limit,
            f"fewer than {min_requests} requests in {MAX_BLOCK_S} s at 1X: too sparse to judge "
            "(raise --baseline-rps or this segment's share)",
        )
    start = math.ceil(phases.drop_s)
    end = min(len(bins), math.floor(phases.end_s))
    after = [
        block_verdict(bins[i : i + block], slo_ms, min_requests)
        for i in range(start, end - block + 1, block)
    ]
    if not after or 2 * sum(v is not None for v in after) < len(after):
        what = "seconds" if block == 1 else f"{block}-second blocks"
        return _no_verdict(
            observed,
            limit,
            f"fewer than half of the {what} after the drop had {min_requests} requests",
            block,
        )

    def at(w: int) -> float | None:
        k = first_recovered(
            bins, phases, slo_ms, limit, window=w, min_requests=min_requests, block=block
        )
        return None if k is None else max(0.0, k - phases.drop_s)

    point = at(window)
    if point is None:
        return Recovery(
            "not_recovered",
            None,
            None,
            None,
            observed,
            limit,
            f"no {window} consecutive seconds within the objective and drained in the "
            f"{observed:.0f} s measured after the drop",
            block,
        )
    short, long_ = at(max(2, math.ceil(window / 2))), at(2 * window)
    low = min(x for x in (short, point, long_) if x is not None)
    high = None if long_ is None else max(point, long_, short if short is not None else point)
    return Recovery("recovered", point, low, high, observed, limit, resolution_s=block)


# -- the fluid model (docs/design.md#surge-rehearsal) ------------------------------------------


def surge_backlog(
    *,
    capacity_rps: float,
    surge_rps: float,
    surge_s: float,
    abandon_after_s: float | None = None,
) -> float:
    """Requests queued at the drop: (surge rate - capacity) x surge length, or none.

    With `abandon_after_s`, a server that drops the requests whose clients gave up cannot hold
    more than capacity x that wait."""
    backlog = max(0.0, (surge_rps - capacity_rps) * surge_s)
    if abandon_after_s is not None:
        backlog = min(backlog, capacity_rps * abandon_after_s)
    return backlog


def fluid_recovery_s(
    *,
    capacity_rps: float,
    baseline_rps: float,
    surge_rps: float,
    surge_s: float,
    residual: float = 0.0,
    abandon_after_s: float | None = None,
) -> float | None:
    """Seconds after the drop until the surge's backlog has drained to `residual` requests:
    (backlog - residual) / (capacity - baseline rate). None when the baseline alone is at or
    over capacity (the backlog never drains)."""
    for name, value in (
        ("capacity_rps", capacity_rps),
        ("baseline_rps", baseline_rps),
        ("surge_rps", surge_rps),
        ("surge_s", surge_s),
    ):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if baseline_rps >= capacity_rps:
        return None
    backlog = surge_backlog(
        capacity_rps=capacity_rps,
        surge_rps=surge_rps,
        surge_s=surge_s,
        abandon_after_s=abandon_after_s,
    )
    return max(0.0, backlog - residual) / (capacity_rps - baseline_rps)


def slo_residual(*, capacity_rps: float, slo_ms: float, service_p95_ms: float) -> float:
    """The queue that still lets requests meet the objective: a newcomer waits queue/capacity
    before its service, so the p95 is within the objective once the queue is at most
    capacity x (objective - service p95). Latency alone is back before the backlog is gone."""
    return max(0.0, capacity_rps * (slo_ms - service_p95_ms) / 1000.0)

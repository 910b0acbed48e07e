"""A step window's accumulators (per segment: histograms, errors, iterations, per-second
series) and how one becomes the segment's step record (docs/design.md#step-record). The
recorder fills them (recorder.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from breakpoint.histograms import encode_histogram, new_histogram, percentiles_ms
from breakpoint.plan.objectives import PAGE_VIEW_KEY
from breakpoint.results import ERROR_KINDS, EndpointStats, SegmentStep, Series


@dataclass
class SegmentAcc:
    """Accumulated measurements of one segment in one step."""

    hist: HdrHistogram = field(default_factory=new_histogram)  # successful requests only
    endpoint_hist: dict[str, HdrHistogram] = field(default_factory=dict)
    endpoint_errors: dict[str, int] = field(default_factory=dict)
    endpoint_requests: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    requests: int = 0  # completed requests, failed ones included
    generator_errors: int = 0  # requests the generator itself could not make (not the target's)
    offered: int = 0  # iterations offered in the window
    finished: int = 0  # of which have finished (whenever)
    done_in_window: int = 0  # iterations that finished inside the window (throughput)
    parts_sum: dict[str, float] = field(
        default_factory=lambda: {"network": 0.0, "server": 0.0, "device": 0.0}
    )
    endpoint_parts: dict[str, dict[str, float]] = field(default_factory=dict)  # as parts_sum
    sec_count: list[int] = field(default_factory=list)
    sec_errors: list[int] = field(default_factory=list)
    sec_sum_ms: list[float] = field(default_factory=list)
    sec_slow: list[int] = field(default_factory=list)

    def page_view(self, latency_ms: float, failed: bool) -> None:
        """One finished iteration, stored as the pseudo-endpoint PAGE_VIEW_KEY (latency of
        successful ones only, as for requests; docs/design.md#objectives)."""
        key = PAGE_VIEW_KEY
        self.endpoint_requests[key] = self.endpoint_requests.get(key, 0) + 1
        if failed:
            self.endpoint_errors[key] = self.endpoint_errors.get(key, 0) + 1
            return
        hist = self.endpoint_hist.get(key)
        if hist is None:
            hist = self.endpoint_hist[key] = new_histogram()
        hist.record_value(min(3_600_000_000, max(1, int(latency_ms * 1000))))

    def second(self, i: int) -> None:
        while len(self.sec_count) <= i:
            self.sec_count.append(0)
            self.sec_errors.append(0)
            self.sec_sum_ms.append(0.0)
            self.sec_slow.append(0)


@dataclass
class Window:
    """One step's measured window: its bounds, accumulators per segment and health samples."""

    index: int
    multiplier: float
    load: float
    phase: str
    started_at: float
    measure_from: float
    warmup_s: float
    until: float | None = None
    accs: dict[str, SegmentAcc] = field(default_factory=dict)
    health: list[tuple[str, float]] = field(default_factory=list)
    user_waits_s: list[float] = field(default_factory=list)  # arrivals that waited for a user
    pool_capped: bool = False  # the pool wanted more users than --max-users allows
    final: bool = False


def failure(
    ctx: Mapping[str, Any], error: str | None, latency_ms: float, timeouts_ms: Mapping[str, float]
) -> str | None:
    """A request's failure kind, a request past its profile's client timeout (from its intended
    start) included: the person gave up on it. Marks its iteration (page view) as failed."""
    limit = timeouts_ms.get(ctx.get("bp_segment", ""))
    if error is None and limit is not None and latency_ms > limit:
        error = "timeout"
    flag = ctx.get("bp_iter_failed")
    if error is not None and error != "generator" and flag is not None:
        flag[0] = True
    return error


def segment_step(
    name: str, acc: SegmentAcc, measured_s: float, *, count_unfinished: bool
) -> SegmentStep:
    """The segment's step record from its accumulator; unfinished iterations count only in a
    final one."""
    pct = percentiles_ms(acc.hist)
    n = acc.requests
    ok = int(acc.hist.get_total_count())
    endpoints = {}
    for ep in acc.endpoint_requests:
        # An endpoint whose requests all failed has no latency, but it is listed.
        hist = acc.endpoint_hist.get(ep) or new_histogram()
        ep_pct = percentiles_ms(hist)
        ep_ok = int(hist.get_total_count())
        ep_parts = acc.endpoint_parts.get(ep, {})
        endpoints[ep] = EndpointStats(
            requests=acc.endpoint_requests.get(ep, 0),
            errors=acc.endpoint_errors.get(ep, 0),
            p50_ms=ep_pct["p50_ms"],
            p95_ms=ep_pct["p95_ms"],
            p99_ms=ep_pct["p99_ms"],
            histogram=encode_histogram(hist),
            parts_ms={k: v / ep_ok for k, v in ep_parts.items()} if ep_ok else {},
        )
    seconds = math.floor(measured_s) if measured_s > 0 else 0
    acc.second(seconds - 1)  # quiet trailing seconds are zeros, not missing
    count = acc.sec_count[:seconds] if seconds else acc.sec_count
    errors = acc.sec_errors[: len(count)]
    mean_ms = [
        (s / (c - e) if c > e else None)
        for s, c, e in zip(acc.sec_sum_ms[: len(count)], count, errors, strict=True)
    ]
    unfinished = max(0, acc.offered - acc.finished) if count_unfinished else 0
    return SegmentStep(
        segment=name,
        requests=n,
        errors={k: v for k, v in acc.errors.items() if k in ERROR_KINDS or v},
        offered_rps=acc.offered / measured_s if measured_s > 0 else 0.0,
        completed_rps=acc.done_in_window / measured_s if measured_s > 0 else 0.0,
        p50_ms=pct["p50_ms"],
        p90_ms=pct["p90_ms"],
        p95_ms=pct["p95_ms"],
        p99_ms=pct["p99_ms"],
        max_ms=pct["max_ms"],
        mean_ms=pct["mean_ms"],
        histogram=encode_histogram(acc.hist),
        parts_ms={k: v / ok for k, v in acc.parts_sum.items()} if ok else {},
        endpoints=endpoints,
        series=Series(
            tuple(count),
            tuple(errors),
            tuple(mean_ms),
            tuple(acc.sec_slow[: len(count)]),
        ),
        unfinished=unfinished,
        generator_errors=acc.generator_errors,
    )

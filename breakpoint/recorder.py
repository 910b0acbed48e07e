"""Record every request into HdrHistograms per step x segment x endpoint.

Locust's own statistics round latencies to two significant figures; this listener on
`events.request` keeps exact histograms (microseconds, 3 significant digits) of the latency each
emulated user experienced, timed from the iteration's intended start (open model), with the
network/server/device parts, errors by kind, offered vs completed iterations and a per-second
series. A request belongs to the step whose measured window holds its intended start; warm-up
requests are discarded. When a step closes, a provisional result is available at once (for the
search to decide the next step), and the final one after in-flight requests have drained.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from .results import (
    ERROR_KINDS,
    EndpointStats,
    GeneratorHealth,
    SegmentStep,
    Series,
    StepResult,
    encode_histogram,
    new_histogram,
    percentiles_ms,
    values_at_percentiles,
)
from .users import IterationHooks

MAX_LATENCY_US = 3_600_000_000
RECENT_KEEP_S = 120  # wall-clock seconds of request counts kept for the abort guardrail


def redact_name(name: str) -> str:
    """An endpoint name without query values: `/search?q=x&api_key=s` -> `/search?q=*&api_key=*`.

    Locust names a request after its URL when the scenario gives no name=, so credentials in a
    query string would otherwise be stored and shown. It also groups the same endpoint.
    """
    if "?" not in name:
        return name
    path, _, query = name.partition("?")
    keys = [part.split("=", 1)[0] for part in query.split("&") if part]
    return path + "?" + "&".join(f"{k}=*" for k in keys)


def classify_error(exception: BaseException | None, response: Any) -> str | None:
    """Kind of failure of one request: timeout, connection, http_4xx/5xx, blocked, other."""
    status = getattr(response, "status_code", None) or 0
    if exception is None:
        return None if status < 400 else ("http_5xx" if status >= 500 else "http_4xx")
    name = type(exception).__name__.lower()
    text = str(exception).lower()
    if "blocked" in name or "hostnotallowed" in name:
        return "blocked"
    if "timeout" in name or "timed out" in text or "timeout" in text:
        return "timeout"
    if 400 <= status < 500:
        return "http_4xx"
    if status >= 500:
        return "http_5xx"
    if isinstance(exception, ConnectionError | OSError) or any(
        word in name or word in text
        for word in ("connection", "refused", "reset", "broken pipe", "remote end closed")
    ):
        return "connection"
    return "other"


@dataclass
class _Acc:
    """Accumulated measurements of one segment in one step."""

    hist: HdrHistogram = field(default_factory=new_histogram)
    endpoint_hist: dict[str, HdrHistogram] = field(default_factory=dict)
    endpoint_errors: dict[str, int] = field(default_factory=dict)
    endpoint_requests: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    offered: int = 0
    finished: int = 0  # iterations due in the window that have finished (any time)
    done_in_window: int = 0  # iterations that finished inside the window (throughput)
    parts_sum: dict[str, float] = field(
        default_factory=lambda: {"network": 0.0, "server": 0.0, "device": 0.0}
    )
    sec_count: list[int] = field(default_factory=list)
    sec_errors: list[int] = field(default_factory=list)
    sec_sum_ms: list[float] = field(default_factory=list)
    sec_slow: list[int] = field(default_factory=list)

    def second(self, i: int) -> None:
        while len(self.sec_count) <= i:
            self.sec_count.append(0)
            self.sec_errors.append(0)
            self.sec_sum_ms.append(0.0)
            self.sec_slow.append(0)


@dataclass
class _Window:
    index: int
    multiplier: float
    load: float
    phase: str
    started_at: float
    measure_from: float
    warmup_s: float
    until: float | None = None
    accs: dict[str, _Acc] = field(default_factory=dict)
    health: list[tuple[str, float]] = field(default_factory=list)
    final: bool = False


class Recorder(IterationHooks):
    """The events.request listener and the step windows it records into."""

    def __init__(
        self,
        segments: Sequence[str],
        *,
        clock: Callable[[], float] = time.time,
        slow_ms: float = 30_000.0,
    ) -> None:
        self.segments = list(segments)
        self.slow_ms = slow_ms  # per-second count of requests slower than this (abort guardrail)
        self._clock = clock
        self._windows: dict[int, _Window] = {}
        self._open: _Window | None = None
        self.dropped_outside = 0  # requests not in any measured window (warm-up, late)
        self._latest: dict[str, float] = {}
        self.last_completion_at = clock()  # wall time of the newest request (hang detection)
        self._recent: dict[int, list[int]] = {}  # wall second -> requests, errors, slow
        # Build the histogram layout cache now, not in the middle of a step (~0.2 s of CPU).
        values_at_percentiles(new_histogram(), (50,))

    # -- step windows ------------------------------------------------------------------------
    def open_step(
        self,
        index: int,
        multiplier: float,
        load: float,
        phase: str,
        warmup_s: float,
        start: float | None = None,
    ) -> None:
        started = self._clock() if start is None else start
        window = _Window(index, multiplier, load, phase, started, started + warmup_s, warmup_s)
        window.accs = {s: _Acc() for s in self.segments}
        self._windows[index] = window
        self._open = window

    def close_step(self, index: int, end: float | None = None) -> None:
        window = self._windows[index]
        window.until = self._clock() if end is None else end
        if self._open is window:
            self._open = None

    def in_flight(self, index: int) -> int:
        window = self._windows.get(index)
        if window is None:
            return 0
        return sum(max(0, a.offered - a.finished) for a in window.accs.values())

    def _window_for(self, t: float) -> _Window | None:
        window = self._open
        if window is not None and window.measure_from <= t:
            return window
        for w in reversed(self._windows.values()):
            if w.final:
                continue
            if w.measure_from <= t and (w.until is None or t < w.until):
                return w
        return None

    def _window_started_by(self, t: float) -> _Window | None:
        for w in reversed(self._windows.values()):
            if not w.final and w.measure_from <= t:
                return w
        return None

    # -- iteration hooks (called by wrapped users and the arrival scheduler) -------------------
    def iteration_offered(self, segment: str, start: float) -> None:
        w = self._window_for(start)
        if w is not None and segment in w.accs:
            w.accs[segment].offered += 1

    def iteration_finished(self, segment: str, start: float) -> None:
        # The window the iteration was offered into: the newest one begun by its start, even if
        # it closed (at the master's time) before the arrival was issued here.
        w = self._window_for(start) or self._window_started_by(start)
        if w is not None and segment in w.accs:
            w.accs[segment].finished += 1
        # Throughput counts completions inside a window, whenever they were due: a saturated
        # server completes at its capacity however many arrivals are offered.
        now = self._clock()
        current = self._open
        if current is not None and current.measure_from <= now and segment in current.accs:
            current.accs[segment].done_in_window += 1

    # -- health samples ------------------------------------------------------------------------
    def latest_health(self) -> dict[str, float]:
        """The most recent generator-health values, for the live view."""
        return {
            "cpu_pct": self._latest.get("cpu", 0.0),
            "loop_lag_ms": self._latest.get("loop_lag_ms", 0.0),
            "schedule_lag_ms": self._latest.get("schedule_lag_ms", 0.0),
        }

    def health_sample(self, kind: str, value: float, at: float | None = None) -> None:
        """A generator-health sample, kept when taken (`at`, default now) in a measured window."""
        self._latest[kind] = value
        when = self._clock() if at is None else at
        if self._open is not None and when >= self._open.measure_from:
            self._open.health.append((kind, value))

    # -- the request listener ------------------------------------------------------------------
    def on_request(
        self,
        request_type: str = "",
        name: str = "",
        response_time: float = 0.0,
        response_length: int = 0,
        exception: BaseException | None = None,
        context: Mapping[str, Any] | None = None,
        start_time: float | None = None,
        response: Any = None,
        **_: Any,
    ) -> None:
        ctx = context or {}
        segment = ctx.get("bp_segment")
        if segment is None:
            return
        now = self._clock()
        self.last_completion_at = now
        lag_ms = float(ctx.get("bp_lag_ms", 0.0) or 0.0)
        error = classify_error(exception, response)
        self._count_recent(now, error is not None, response_time + lag_ms > self.slow_ms)
        name = redact_name(name)
        started = start_time if start_time is not None else self._clock() - response_time / 1000
        intended = started - lag_ms / 1000.0
        w = self._window_for(intended)
        if w is None or segment not in w.accs:
            self.dropped_outside += 1
            return
        self.record(
            w,
            segment,
            name,
            response_time + lag_ms,
            intended,
            error,
            ctx,
        )

    def _count_recent(self, now: float, failed: bool, slow: bool) -> None:
        second = int(now)
        counts = self._recent.get(second)
        if counts is None:
            counts = self._recent[second] = [0, 0, 0]
            for old in [s for s in self._recent if s < second - RECENT_KEEP_S]:
                del self._recent[old]
        counts[0] += 1
        counts[1] += failed
        counts[2] += slow

    def recent_totals(self, for_s: int, settle_s: int) -> tuple[int, int, int]:
        """(requests, errors, slow) completed in the last `for_s` whole seconds of wall time,
        leaving out the newest `settle_s` (still filling), across step boundaries."""
        newest = int(self._clock()) - settle_s
        seconds = range(newest - for_s, newest)
        rows = [self._recent.get(s, (0, 0, 0)) for s in seconds]
        return sum(r[0] for r in rows), sum(r[1] for r in rows), sum(r[2] for r in rows)

    def record(
        self,
        w: _Window,
        segment: str,
        name: str,
        latency_ms: float,
        intended: float,
        error: str | None,
        ctx: Mapping[str, Any],
    ) -> None:
        acc = w.accs[segment]
        us = min(MAX_LATENCY_US, max(1, int(latency_ms * 1000)))
        acc.hist.record_value(us)
        eh = acc.endpoint_hist.get(name)
        if eh is None:
            eh = acc.endpoint_hist[name] = new_histogram()
        eh.record_value(us)
        acc.requests += 1
        acc.endpoint_requests[name] = acc.endpoint_requests.get(name, 0) + 1
        network = float(ctx.get("bp_network_ms", 0.0) or 0.0)
        device = float(ctx.get("bp_device_ms", 0.0) or 0.0)
        parts = acc.parts_sum
        parts["network"] += network
        parts["device"] += device
        parts["server"] += max(0.0, latency_ms - network - device)
        sec = max(0, int(intended - w.measure_from))
        acc.second(sec)
        acc.sec_count[sec] += 1
        acc.sec_sum_ms[sec] += latency_ms
        if latency_ms > self.slow_ms:
            acc.sec_slow[sec] += 1
        if error is not None:
            acc.errors[error] = acc.errors.get(error, 0) + 1
            acc.endpoint_errors[name] = acc.endpoint_errors.get(name, 0) + 1
            acc.sec_errors[sec] += 1

    # -- results -------------------------------------------------------------------------------
    def result(
        self,
        index: int,
        *,
        final: bool,
        health: GeneratorHealth | None = None,
        partial: bool = False,
    ) -> StepResult:
        """The step as measured so far; `final` freezes the window (late requests are dropped)."""
        w = self._windows[index]
        until = w.until if w.until is not None else self._clock()
        measured_s = max(0.0, until - w.measure_from)
        if final:
            w.final = True
        # Requests still in flight are unfinished (errors) only once the step is final; in a
        # provisional result they are simply not known yet.
        segments = {
            name: _segment_step(name, acc, measured_s, count_unfinished=final)
            for name, acc in w.accs.items()
        }
        return StepResult(
            index=w.index,
            multiplier=w.multiplier,
            load=w.load,
            phase=w.phase,
            started_at=w.started_at,
            warmup_s=w.warmup_s,
            measured_s=measured_s,
            segments=segments,
            generator=health or summarise_health(w.health),
            partial=partial,
        )

    def health_of(self, index: int) -> list[tuple[str, float]]:
        """The generator-health samples taken during a step's measured window."""
        return list(self._windows[index].health)

    def forget(self, index: int) -> None:
        self._windows.pop(index, None)


def _segment_step(
    name: str, acc: _Acc, measured_s: float, *, count_unfinished: bool
) -> SegmentStep:
    pct = percentiles_ms(acc.hist)
    n = acc.requests
    endpoints = {}
    for ep, hist in acc.endpoint_hist.items():
        ep_pct = percentiles_ms(hist)
        endpoints[ep] = EndpointStats(
            requests=acc.endpoint_requests.get(ep, 0),
            errors=acc.endpoint_errors.get(ep, 0),
            p50_ms=ep_pct["p50_ms"],
            p95_ms=ep_pct["p95_ms"],
            p99_ms=ep_pct["p99_ms"],
            histogram=encode_histogram(hist),
        )
    seconds = math.floor(measured_s) if measured_s > 0 else 0
    acc.second(seconds - 1)  # quiet trailing seconds are zeros, not missing
    count = acc.sec_count[:seconds] if seconds else acc.sec_count
    mean_ms = [
        (s / c if c else None) for s, c in zip(acc.sec_sum_ms[: len(count)], count, strict=True)
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
        parts_ms={k: v / n for k, v in acc.parts_sum.items()} if n else {},
        endpoints=endpoints,
        series=Series(
            tuple(count),
            tuple(acc.sec_errors[: len(count)]),
            tuple(mean_ms),
            tuple(acc.sec_slow[: len(count)]),
        ),
        unfinished=unfinished,
    )


# Above these the generator, not the target, is the bottleneck (DESIGN.md section 12: keep each
# process under about 80% CPU; beyond it sleep error p99 grows past 50 ms).
CPU_BOUND_PCT = 90.0
LOOP_LAG_BOUND_MS = 100.0
SCHEDULE_LAG_BOUND_MS = 100.0


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def _p99(values: list[float]) -> float:
    return _quantile(values, 0.99)


def summarise_health(
    samples: Sequence[tuple[str, float]], workers: int = 1, workers_lost: int = 0
) -> GeneratorHealth:
    cpu = [v for k, v in samples if k == "cpu"]
    loop = [v for k, v in samples if k == "loop_lag_ms"]
    sched = [v for k, v in samples if k == "schedule_lag_ms"]
    reasons = []
    cpu_max = max(cpu) if cpu else 0.0
    cpu_mean = sum(cpu) / len(cpu) if cpu else 0.0
    busy = sorted(cpu, reverse=True)[:2]
    if len(busy) == 2 and min(busy) >= CPU_BOUND_PCT:
        reasons.append(f"generator CPU at {cpu_max:.0f}% (limit {CPU_BOUND_PCT:.0f}%)")
    loop_p99, sched_p99 = _p99(loop), _p99(sched)
    # Bound means *sustained* lateness: the p95 of the samples, so that one pause (a garbage
    # collection, a neighbour's burst) does not discard a step. Arrivals sent late are still
    # timed from their intended start, so a short pause costs a few late samples, not honesty.
    loop_p95, sched_p95 = _quantile(loop, 0.95), _quantile(sched, 0.95)
    if loop_p95 > LOOP_LAG_BOUND_MS:
        reasons.append(f"event-loop lag p95 {loop_p95:.0f} ms")
    if sched_p95 > SCHEDULE_LAG_BOUND_MS:
        reasons.append(f"arrivals sent late: schedule lag p95 {sched_p95:.0f} ms")
    if workers_lost:
        reasons.append(f"{workers_lost} worker(s) lost")
    return GeneratorHealth(
        cpu_pct_max=cpu_max,
        cpu_pct_mean=cpu_mean,
        loop_lag_p99_ms=loop_p99,
        schedule_lag_p99_ms=sched_p99,
        bound=bool(reasons),
        reasons=tuple(reasons),
        workers=workers,
        workers_lost=workers_lost,
    )

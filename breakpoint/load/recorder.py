"""Record every request into exact HdrHistograms per step x segment x endpoint.

An `events.request` listener (Locust's own statistics round to two significant figures). Each
request is recorded in the measured window its iteration was offered in, timed from the
iteration's intended start (docs/design.md#window-membership, #latency-clock); a closed step
gives a provisional result at once and a final one when its iterations are done or drained.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from breakpoint.analysis.criteria import throughput_shortfall
from breakpoint.histograms import new_histogram, values_at_percentiles
from breakpoint.load.health import summarise_health
from breakpoint.load.request_kinds import classify_error, redact_name
from breakpoint.load.timeline import Timeline
from breakpoint.load.users import IterationHooks
from breakpoint.load.windows import SegmentAcc, Window, failure, segment_step
from breakpoint.results import GeneratorHealth, StepResult

MAX_LATENCY_US = 3_600_000_000
RECENT_KEEP_S = 120  # wall-clock seconds of request counts kept for the abort guardrail


# When more than this share of a segment's iterations are still running as its window closes
# (and more than one), the search waits for them: the slowest requests finish last, so a
# verdict from those already done would understate the p95.
IN_FLIGHT_WAIT_SHARE = 0.01


def stragglers_matter(in_flight: Mapping[str, tuple[int, int]]) -> bool:
    """Given (in flight, offered) iterations per segment of a closed window: must its verdict
    wait for them?"""
    return any(
        flying > 1 and flying > IN_FLIGHT_WAIT_SHARE * offered
        for flying, offered in in_flight.values()
    )


# The context key that carries an iteration's window through its requests. Its value is the
# window's index, or None for an iteration offered outside any measured window (warm-up).
WINDOW_KEY = "bp_window"


class Recorder(IterationHooks):
    """The events.request listener and the step windows it records into."""

    def __init__(
        self,
        segments: Sequence[str],
        *,
        clock: Callable[[], float] = time.time,
        slow_ms: float = 30_000.0,
        timeouts_s: Mapping[str, float] | None = None,
    ) -> None:
        self.segments = list(segments)
        self.timeouts_ms = {k: v * 1000.0 for k, v in (timeouts_s or {}).items()}  # windows.failure
        self.slow_ms = slow_ms  # per-second count of requests slower than this (abort guardrail)
        self._clock = clock
        self._windows: dict[int, Window] = {}
        self._open: Window | None = None
        # Requests of an iteration whose window was already final (or unknown) when they ended:
        # never expected (a window waits for its iterations); reported whenever non-zero.
        self.dropped_outside = 0
        self.warmup_requests = 0  # requests of iterations offered during a warm-up (discarded)
        self._latest: dict[str, float] = {}
        self.last_completion_at = clock()  # wall time of the newest request (hang detection)
        self._recent: dict[int, list[int]] = {}  # wall second -> requests, errors, slow
        # A surge's per-second series across its steps (timeline.py); None in a normal run.
        self.timeline: Timeline | None = None
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
        window = Window(index, multiplier, load, phase, started, started + warmup_s, warmup_s)
        window.accs = {s: SegmentAcc() for s in self.segments}
        self._windows[index] = window
        self._open = window

    def close_step(self, index: int, end: float | None = None) -> None:
        window = self._windows[index]
        window.until = self._clock() if end is None else end
        if self._open is window:
            self._open = None

    def in_flight(self, index: int) -> int:
        """Iterations offered in the window that have not finished yet."""
        window = self._windows.get(index)
        if window is None:
            return 0
        return sum(max(0, a.offered - a.finished) for a in window.accs.values())

    def in_flight_by_segment(self, index: int) -> dict[str, tuple[int, int]]:
        """(in flight, offered) iterations of each segment in the window."""
        window = self._windows.get(index)
        if window is None:
            return {}
        return {n: (max(0, a.offered - a.finished), a.offered) for n, a in window.accs.items()}

    def _window_for(self, t: float) -> Window | None:
        """The measured window holding time t (an intended start), if any is still recording."""
        window = self._open
        if window is not None and window.measure_from <= t:
            return window
        for w in reversed(self._windows.values()):
            if w.final:
                continue
            if w.measure_from <= t and (w.until is None or t < w.until):
                return w
        return None

    # -- iteration hooks (called by wrapped users and the arrival scheduler) -------------------
    def iteration_offered(self, segment: str, start: float) -> int | None:
        """Count an iteration due at `start` in the window holding it; return that window's
        index (None: offered in a warm-up or between windows, so not measured)."""
        if self.timeline is not None:
            self.timeline.offered(segment, start)
        w = self._window_for(start)
        if w is None or segment not in w.accs:
            return None
        w.accs[segment].offered += 1
        return w.index

    def iteration_finished(
        self, segment: str, window: int | None, started: float | None = None, failed: bool = False
    ) -> None:
        """The iteration offered into `window` (as iteration_offered returned) at `started` has
        finished: a page view (docs/design.md#objectives), failed if one of its requests did."""
        if self.timeline is not None:
            self.timeline.finished(segment, self._clock())
        # Throughput counts completions inside the open window, whenever they were due: a
        # saturated server completes at its capacity however many arrivals are offered.
        current = self._open
        if current is not None and current.measure_from <= self._clock():
            acc = current.accs.get(segment)
            if acc is not None:
                acc.done_in_window += 1
        if window is None:
            return
        w = self._windows.get(window)
        if w is None or w.final or segment not in w.accs:
            return  # finished after its window's drain deadline: it was counted unfinished
        acc = w.accs[segment]
        acc.finished += 1
        if started is not None:
            acc.page_view((self._clock() - started) * 1000.0, failed)

    def pool_capped(self) -> None:
        """The open window's arrivals needed more virtual users than the cap allows."""
        if self._open is not None:
            self._open.pool_capped = True

    def user_wait(self, window: int | None, waited_s: float) -> None:
        """An arrival of `window` waited `waited_s` for a free virtual user (a generator fault
        when it is material: see summarise_health)."""
        w = self._windows.get(window) if window is not None else None
        if w is not None and not w.final:
            w.user_waits_s.append(waited_s)

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
        latency_ms = response_time + lag_ms
        error = failure(ctx, classify_error(exception, response), latency_ms, self.timeouts_ms)
        self._count_recent(now, error is not None, latency_ms > self.slow_ms)
        if WINDOW_KEY in ctx:
            # The window of the iteration this request is part of (decided when it was offered).
            index = ctx[WINDOW_KEY]
            if index is None:
                self.warmup_requests += 1
                return
            w = self._windows.get(index)
            if w is None or w.final:
                self.dropped_outside += 1
                return
        else:
            # A request outside the wrapped users' iterations: placed by its own intended start.
            started = start_time if start_time is not None else now - response_time / 1000
            w = self._window_for(started - lag_ms / 1000.0)
            if w is None:
                self.dropped_outside += 1
                return
        if segment not in w.accs:
            self.dropped_outside += 1
            return
        if error == "generator":
            w.accs[segment].generator_errors += 1
            return
        began = ctx.get("bp_iter_start")
        if began is None:
            began = (start_time if start_time is not None else now - response_time / 1000) - (
                lag_ms / 1000.0
            )
        self.record(w, segment, redact_name(name), latency_ms, float(began), error, ctx)

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

    def recent_rows(self) -> dict[int, list[int]]:
        """(requests, errors, slow) per wall-clock second, the last RECENT_KEEP_S seconds."""
        return {second: list(row) for second, row in self._recent.items()}

    def recent_totals(self, for_s: int, settle_s: int) -> tuple[int, int, int]:
        """(requests, errors, slow) completed in the last `for_s` whole seconds of wall time,
        leaving out the newest `settle_s` (still filling), across step boundaries."""
        newest = int(self._clock()) - settle_s
        seconds = range(newest - for_s, newest)
        rows = [self._recent.get(s, (0, 0, 0)) for s in seconds]
        return sum(r[0] for r in rows), sum(r[1] for r in rows), sum(r[2] for r in rows)

    def record(
        self,
        w: Window,
        segment: str,
        name: str,
        latency_ms: float,
        began: float,
        error: str | None,
        ctx: Mapping[str, Any],
    ) -> None:
        """One request of an iteration offered in window w. Latency percentiles are over
        successful requests; a failed one counts in the errors (judged by their own rate)."""
        acc = w.accs[segment]
        if self.timeline is not None:
            self.timeline.request(segment, began, latency_ms, error is not None)
        acc.requests += 1
        acc.endpoint_requests[name] = acc.endpoint_requests.get(name, 0) + 1
        # The per-second series is by the second its iteration was offered in (trend test).
        sec = max(0, int(began - w.measure_from))
        acc.second(sec)
        acc.sec_count[sec] += 1
        if latency_ms > self.slow_ms:
            acc.sec_slow[sec] += 1
        if error is not None:
            acc.errors[error] = acc.errors.get(error, 0) + 1
            acc.endpoint_errors[name] = acc.endpoint_errors.get(name, 0) + 1
            acc.sec_errors[sec] += 1
            return
        us = min(MAX_LATENCY_US, max(1, int(latency_ms * 1000)))
        acc.hist.record_value(us)
        eh = acc.endpoint_hist.get(name)
        if eh is None:
            eh = acc.endpoint_hist[name] = new_histogram()
        eh.record_value(us)
        acc.sec_sum_ms[sec] += latency_ms
        network = float(ctx.get("bp_network_ms", 0.0) or 0.0)
        device = float(ctx.get("bp_device_ms", 0.0) or 0.0)
        server = max(0.0, latency_ms - network - device)
        by_endpoint = acc.endpoint_parts.get(name)
        if by_endpoint is None:
            by_endpoint = acc.endpoint_parts[name] = dict.fromkeys(acc.parts_sum, 0.0)
        for parts in (acc.parts_sum, by_endpoint):
            parts["network"] += network
            parts["device"] += device
            parts["server"] += server

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
            name: segment_step(name, acc, measured_s, count_unfinished=final)
            for name, acc in w.accs.items()
        }
        if health is None:
            offered = sum(a.offered for a in w.accs.values())
            mean_ms = [s.mean_ms for s in segments.values() if s.mean_ms is not None]
            saturated, _ = throughput_shortfall(
                sum(s.offered_rps for s in segments.values()),
                sum(s.completed_rps for s in segments.values()),
                measured_s,
                max(mean_ms) if mean_ms else None,
            )
            health = summarise_health(
                w.health,
                user_waits_s=w.user_waits_s,
                arrivals=offered,
                generator_errors=sum(a.generator_errors for a in w.accs.values()),
                target_saturated=saturated and not w.pool_capped,
                pool_capped=w.pool_capped,
            )
        return StepResult(
            index=w.index,
            multiplier=w.multiplier,
            load=w.load,
            phase=w.phase,
            started_at=w.started_at,
            warmup_s=w.warmup_s,
            measured_s=measured_s,
            segments=segments,
            generator=health,
            partial=partial,
        )

    def health_of(self, index: int) -> list[tuple[str, float]]:
        """The generator-health samples taken during a step's measured window."""
        return list(self._windows[index].health)

    def forget(self, index: int) -> None:
        self._windows.pop(index, None)

"""Greenlets that watch a run: the generator-health samplers (CPU, event-loop lag, arrival
schedule lag; docs/design.md#generator-faults) and the once-a-second loop that feeds the
progress view and stops the ramp when the target is clearly down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import gevent
import psutil

from breakpoint.analysis.criteria import AbortLimits, abort_reason_from_counts
from breakpoint.load.arrivals import ArrivalScheduler
from breakpoint.load.controller import Controller
from breakpoint.load.recorder import Recorder
from breakpoint.progress import Progress
from breakpoint.results import StepResult


def start_samplers(recorder: Recorder, scheduler: ArrivalScheduler | None) -> list[Any]:
    """Spawn the health samplers; the caller kills the greenlets it gets back."""
    samplers = [gevent.spawn(_sample_cpu, recorder), gevent.spawn(_sample_loop_lag, recorder)]
    if scheduler is not None:
        samplers.append(gevent.spawn(_sample_schedule_lag, recorder, scheduler))
    return samplers


def _sample_cpu(recorder: Recorder) -> None:
    proc = psutil.Process()
    proc.cpu_percent(None)
    while True:
        started = time.time()
        gevent.sleep(1.0)
        # Attributed to the second it measured, so warm-up seconds stay out of the window.
        recorder.health_sample("cpu", proc.cpu_percent(None), at=started)


def _sample_loop_lag(recorder: Recorder) -> None:
    while True:
        started, t0 = time.time(), time.perf_counter()
        gevent.sleep(0.1)
        lag_ms = max(0.0, (time.perf_counter() - t0 - 0.1) * 1000)
        recorder.health_sample("loop_lag_ms", lag_ms, at=started)


def _sample_schedule_lag(recorder: Recorder, scheduler: ArrivalScheduler) -> None:
    while True:
        gevent.sleep(1.0)
        lags, scheduler.schedule_lag_s = scheduler.schedule_lag_s, []
        for at, lag in lags:
            recorder.health_sample("schedule_lag_ms", lag * 1000.0, at=at)


class Vitals(Protocol):
    """What the once-a-second watch reads: a process's own Recorder, or (on the master of a
    distributed run) the workers' vital signs summed by vitals.RemoteVitals."""

    last_completion_at: float

    def recent_totals(self, for_s: int, settle_s: int) -> tuple[int, int, int]: ...
    def in_flight(self, index: int) -> int: ...
    def latest_health(self) -> dict[str, float]: ...


def watch_run(
    view: Progress,
    controller: Controller,
    vitals: Vitals,
    limits: AbortLimits,
    hang_s: float,
    *,
    snapshot: Callable[[int], StepResult] | None = None,
) -> None:
    """Once a second: feed the progress view, and stop the ramp if the target is clearly down.

    Down means the abort limits were crossed for their duration, or no request at all completed
    for `hang_s` while arrivals were being sent (a hanging target). The same rules hold in a
    distributed run, on the workers' summed counts (`vitals`).
    """
    while True:
        gevent.sleep(1.0)
        active = controller.active
        if snapshot is not None and active is not None and active.closed_at is None:
            try:
                step = snapshot(active.index)
            except KeyError:
                continue
            view.tick(now=time.time(), step=step)
        if controller.active is not None:
            # Judged on wall-clock seconds across steps: short steps and scouts count too.
            why = abort_reason_from_counts(
                *vitals.recent_totals(limits.for_s, limits.settle_s), limits
            )
            silent_s = time.time() - vitals.last_completion_at
            waiting = any(vitals.in_flight(s.index) for s in [controller.active] if s)
            if why is None and waiting and silent_s > hang_s:
                why = f"no request completed for {silent_s:.0f} s: the target is not answering"
            if why is not None and controller.stop_reason is None:
                view.warn(f"aborting the ramp: {why}")
                controller.request_stop(f"aborted: {why}")
        view.health(**vitals.latest_health())

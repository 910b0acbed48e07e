"""The step source of a single-process run: the local recorder and arrival scheduler, the pause
after an overloaded step (docs/design.md#window-membership), and the garbage collection as a
step opens (docs/design.md#quiet-event-loop).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import gevent

from breakpoint.analysis.criteria import calmest, cool_down_note, needs_cool_down
from breakpoint.load.arrivals import ArrivalScheduler
from breakpoint.load.recorder import Recorder, stragglers_matter
from breakpoint.plan.steps import PlannedStep
from breakpoint.results import StepResult


class LocalSteps:
    """The StepSource of a single-process run: the local recorder and arrival scheduler."""

    def __init__(
        self,
        recorder: Recorder,
        scheduler: ArrivalScheduler | None,
        shares: dict[str, float],
        on_final: Callable[[StepResult], None],
        drain_timeout_s: float = 15.0,
        say: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.say = say
        self.recorder = recorder
        self.scheduler = scheduler
        self.shares = shares
        self.on_final = on_final
        self.drain_timeout_s = drain_timeout_s
        # The pool's cap and its current size (set once the runner exists): arrivals waiting
        # with the pool at its cap are the generator's fault whatever the target does.
        self.max_users = 1 << 30
        self.user_count: Callable[[], int] = lambda: 0
        self.stopping_now = False
        # A surge's phases follow each other without a pause: no cool-down after an overloaded
        # step and no wait for its stragglers (docs/design.md#surge-rehearsal).
        self.continuous = False
        self._pending: set[int] = set()
        self._cooling: set[int] = set()
        self._awaiting: set[int] = set()  # windows whose verdict waits for their stragglers
        self._provisional: dict[int, StepResult] = {}
        self._finals: dict[int, StepResult] = {}
        self.calm_ms: dict[str, float] = {}  # each segment's lowest mean latency so far

    def open(self, index: int, planned: PlannedStep, load: float, now: float) -> None:
        collect_garbage_now(everything=index == 0)
        self.recorder.open_step(
            index, planned.multiplier, load, planned.phase, planned.warmup_s, start=now
        )
        if self.scheduler is not None:
            self.scheduler.set_rate(load, index)

    def close(self, index: int, now: float, *, partial: bool) -> None:
        self.recorder.close_step(index, now)
        self._pending.add(index)
        gevent.spawn(self._finalise, index, partial)
        provisional = self.recorder.result(index, final=False)
        self._provisional[index] = provisional
        if self.continuous:
            return
        self.calm_ms = calmest(self.calm_ms, provisional)
        if needs_cool_down(provisional, self.recorder.in_flight(index), self.calm_ms):
            # The target could not keep up: its queue would spill into the next step and make
            # it look worse than it is. Pause arrivals until this step's requests have drained
            # (then the decision uses the final measurements too).
            self.stop_arrivals()
            self._cooling.add(index)
            self.say(cool_down_note(index))
        elif stragglers_matter(self.recorder.in_flight_by_segment(index)):
            # Slow requests of this window are still running: the load stays at this level
            # (arrivals now belong to no window) until they finish, then the search decides.
            self._awaiting.add(index)

    def provisional(self, index: int, now: float) -> StepResult | None:
        if index in self._cooling or index in self._awaiting:
            # _finalise waits for the window's iterations, up to the drain deadline.
            return self._finals.get(index)
        return self._provisional.pop(index, None) or self._finals.get(index)

    def backlogged(self, load: float) -> bool:
        if self.scheduler is None:
            return False
        waiting = self.scheduler.backlogged()
        if waiting and self.user_count() >= self.max_users:
            self.recorder.pool_capped()
        return waiting or self.scheduler.short_of_users()

    def stop_arrivals(self) -> None:
        if self.scheduler is not None:
            self.scheduler.set_rate(0.0, -1)

    def pending(self) -> int:
        return len(self._pending)

    def _finalise(self, index: int, partial: bool) -> None:
        deadline = time.monotonic() + self.drain_timeout_s
        while (
            self.recorder.in_flight(index) > 0
            and time.monotonic() < deadline
            and not self.stopping_now
        ):
            gevent.sleep(0.1)
        final = self.recorder.result(index, final=True, partial=partial)
        self._pending.discard(index)
        self._finals[index] = final
        self.on_final(final)
        self.recorder.forget(index)


def collect_garbage_now(everything: bool = False) -> None:
    """Collect the young garbage as a step opens, then freeze whatever is alive.

    Automatic full passes over thousands of users paused the generator for 100-300 ms inside
    measured windows; frozen objects are left out of later passes. Only the young generations
    are collected here (about a millisecond: the previous step's slow requests are still being
    timed); with `everything` (a run's first step, before any request) all is unfrozen and
    collected, so runs in one process do not pile up frozen garbage. Measured in
    benchmarks/measurement.py.
    """
    if everything:
        gc.unfreeze()
        gc.collect()
    else:
        gc.collect(1)
    gc.freeze()

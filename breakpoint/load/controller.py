"""The controller: a Locust LoadTestShape that walks the plan step by step.

At each step boundary (Locust's `tick()`, about once a second, on the master when distributed)
it closes the step, waits for its provisional measurements from a `StepSource` (local.py or
distributed.py), asks the search policy for the next step off the event loop
(docs/design.md#quiet-event-loop) and returns how many users Locust should have.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import gevent
from locust import LoadTestShape

from breakpoint.plan.steps import Plan, PlannedStep
from breakpoint.results import StepResult


class Policy(Protocol):
    """Decides the next step from the steps measured so far.

    The controller calls `next_step` in a native thread, off the event loop (a curve fit takes
    up to a second, during which requests still in flight are being timed): it must not use
    gevent, nor change what it is given. A policy that must run on the loop (one that schedules
    greenlets, as some tests do) sets a class attribute `needs_event_loop = True`.
    """

    def next_step(self, done: Sequence[StepResult]) -> PlannedStep | None: ...


class StepSource(Protocol):
    """Opens and closes measurement windows and delivers their provisional results."""

    def open(self, index: int, planned: PlannedStep, load: float, now: float) -> None: ...

    def close(self, index: int, now: float, *, partial: bool) -> None: ...

    def provisional(self, index: int, now: float) -> StepResult | None:
        """The closed step's measurements, or None while they are still arriving."""
        ...

    def backlogged(self, load: float) -> bool:
        """The open-model pool should grow: arrivals wait for free users, or the idle users
        are running out (checked once a second, while a step runs)."""
        ...

    def stop_arrivals(self) -> None: ...


@dataclass
class ActiveStep:
    index: int
    planned: PlannedStep
    load: float
    started_at: float
    ends_at: float
    closed_at: float | None = None


T = TypeVar("T")

# While a native thread computes, the event loop must win the GIL back quickly each time it
# wakes: CPython lets a thread that wants the GIL wait up to the switch interval (5 ms by
# default) before the holder must let go, and the loop wakes many times a second. Lowered only
# while such a computation runs (benchmarks/measurement.py measures the loop lag it leaves).
OFF_LOOP_SWITCH_INTERVAL_S = 0.0001


class _FastSwitches:
    """Lowers the switch interval while at least one off-loop computation runs."""

    def __init__(self) -> None:
        self.running = 0
        self.saved = 0.0

    def __enter__(self) -> None:
        if self.running == 0:
            self.saved = sys.getswitchinterval()
            sys.setswitchinterval(min(self.saved, OFF_LOOP_SWITCH_INTERVAL_S))
        self.running += 1

    def __exit__(self, *exc: object) -> None:
        self.running -= 1
        if self.running == 0:
            sys.setswitchinterval(self.saved)


_fast_switches = _FastSwitches()


def run_off_loop(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in gevent's native thread pool: this greenlet waits, the others keep running."""
    with _fast_switches:
        return gevent.get_hub().threadpool.apply(fn, args)


# The pool of ready users in the open model: enough that an arrival rarely waits for a free
# user (arrival rate x time a user is busy per arrival x headroom). An arrival that does wait
# is still timed from its intended start, so a short pool costs accuracy of concurrency, never
# hides latency.
POOL_HEADROOM = 3.0
POOL_MIN_PER_SEGMENT = 4


class Controller(LoadTestShape):
    """Walks the plan; one instance per run."""

    def __init__(
        self,
        *,
        plan: Plan,
        policy: Policy,
        source: StepSource,
        shares: Mapping[str, float],
        busy_s: Mapping[str, float],
        pool_weights: Mapping[str, float],
        on_step_closed: Callable[[StepResult], None],
        on_step_started: Callable[[ActiveStep], None] | None = None,
        max_users: int = 20_000,
        processes: int = 1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.plan = plan
        self.policy = policy
        self.source = source
        self.shares = dict(shares)
        self.busy_s = dict(busy_s)
        # Size every step's pool for at least this load (a surge: its peak, so the users are
        # spawned during the baseline's warm-up, not at the jump, where spawning thousands made
        # the loop late by 300 ms).
        self.pool_floor_load = 0.0
        weight_total = sum(pool_weights.values())
        self.pool_fraction = {k: v / weight_total for k, v in pool_weights.items()}
        self.on_step_closed = on_step_closed
        self.on_step_started = on_step_started
        self.max_users = max_users
        # Locust processes that run users (the workers of a distributed run): each needs its
        # own spare users, as one process does (docs/design.md#distributed-runs).
        self.processes = processes
        self.clock = clock
        self.done: list[StepResult] = []
        self.active: ActiveStep | None = None
        self.finished = False
        self.stop_reason: str | None = None
        self._users = 0
        self._next_index = 0
        self._closing_partial = False
        self.failure: BaseException | None = None

    # Locust's API --------------------------------------------------------------------------
    def tick(self) -> tuple[int, float] | None:
        # An exception here would kill Locust's shape greenlet and leave the run hanging:
        # end the run instead, keeping what was measured, and let the run report the failure.
        try:
            return self._tick()
        except Exception as exc:
            self.failure = exc
            self.stop_reason = f"internal error: {type(exc).__name__}: {exc}"
            self.finished = True
            try:
                self.source.stop_arrivals()
            finally:
                return None  # noqa: B012 - the run must end whatever stop_arrivals does

    def _tick(self) -> tuple[int, float] | None:
        if self.finished:
            return None
        now = self.clock()
        active = self.active
        if active is None:
            first = self._next_step()
            if first is None:
                self._finish("nothing to run")
                return None
            self._start(first, self.clock())  # the policy took time
        elif active.closed_at is not None:
            # Waiting for the closed step's measurements (distributed workers send them).
            if not self._collect(active, now):
                return self._users, self._spawn_rate()
            if self._closing_partial:
                self._finish(self.stop_reason or "stopped")
                return None
            following = self._next_step()
            if following is None:
                self._finish("plan complete")
                return None
            self._start(following, self.clock())  # the policy took time
        elif self.stop_reason is not None:
            self._close(active, now, partial=True)
            return self._tick()
        elif now >= active.ends_at:
            self._close(active, now, partial=False)
            return self._tick()
        elif self.plan.model == "open" and self.source.backlogged(active.load):
            self._users = int(min(self.max_users, math.ceil(self._users * 1.5)))
        return self._users, self._spawn_rate()

    # Control from the run --------------------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        """Close the current step as partial at the next tick and end the run."""
        self.stop_reason = self.stop_reason or reason

    def end_step_now(self) -> None:
        """Close the current step at the next tick as if its time were up (not partial)."""
        if self.active is not None and self.active.closed_at is None:
            self.active.ends_at = min(self.active.ends_at, self.clock())

    def replace_result(self, final: StepResult) -> None:
        """Swap a provisional result for the final one (after in-flight requests drained)."""
        for i, step in enumerate(self.done):
            if step.index == final.index:
                self.done[i] = final

    # Internals -------------------------------------------------------------------------------
    def _next_step(self) -> PlannedStep | None:
        """The policy's next step, computed off the event loop (see Policy)."""
        done = list(self.done)  # replace_result may swap entries meanwhile: decide on these
        if getattr(self.policy, "needs_event_loop", False):
            return self.policy.next_step(done)
        return run_off_loop(self.policy.next_step, done)

    def _finish(self, reason: str) -> None:
        self.finished = True
        self.stop_reason = self.stop_reason or reason
        self.source.stop_arrivals()

    def _start(self, planned: PlannedStep, now: float) -> None:
        index = self._next_index
        self._next_index += 1
        load = self.plan.load_at(planned.multiplier)
        self.active = ActiveStep(index, planned, load, now, now + planned.duration_s)
        if self.plan.model == "open":
            self._users = max(self._users, self._pool_for(max(load, self.pool_floor_load)))
        else:
            self._users = int(load)
        self.source.open(index, planned, load, now)
        if self.on_step_started is not None:
            self.on_step_started(self.active)

    def _close(self, active: ActiveStep, now: float, *, partial: bool) -> None:
        active.closed_at = now
        self._closing_partial = partial
        self.source.close(active.index, now, partial=partial)

    def _collect(self, active: ActiveStep, now: float) -> bool:
        result = self.source.provisional(active.index, now)
        if result is None:
            return False
        self.done.append(result)
        self._learn_busy(result)
        self.on_step_closed(result)
        self.active = None
        return True

    def _learn_busy(self, result: StepResult) -> None:
        # Busy time per arrival grows with load; size the next pool from what was measured:
        # the mean request time times the requests an iteration makes.
        for name, seg in result.segments.items():
            if seg.mean_ms is None or name not in self.busy_s:
                continue
            arrivals = seg.offered_rps * result.measured_s
            per_iteration = max(1.0, seg.requests / arrivals) if arrivals > 0 else 1.0
            self.busy_s[name] = max(self.busy_s[name], seg.mean_ms / 1000.0 * per_iteration)

    def _pool_for(self, load: float) -> int:
        needed = 0.0
        for name, share in self.shares.items():
            busy = load * share * self.busy_s[name] * POOL_HEADROOM
            segment_pool = busy + POOL_MIN_PER_SEGMENT * self.processes
            # The dispatcher splits users by pool weight: scale so this segment gets its pool.
            needed = max(needed, segment_pool / self.pool_fraction[name])
        return int(min(self.max_users, math.ceil(needed)))

    def _spawn_rate(self) -> float:
        # Ramps must be short next to a step (tick() does not run while Locust is spawning).
        return float(max(100, self._users))

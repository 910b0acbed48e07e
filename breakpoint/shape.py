"""The controller: a Locust LoadTestShape that walks the plan step by step.

Locust calls `tick()` about once a second (on the master in distributed mode, and not while a
spawn ramp is in progress, so spawn rates are kept high). At each step boundary the controller
closes the step in the recorder, hands the provisional result to the run (which stores it), asks
the search policy for the next step, sets the arrival rate (open model) and returns the number
of users Locust should have: the pool of ready users (open) or the step's users (closed).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from locust import LoadTestShape

from .arrivals import ArrivalScheduler
from .config import Plan, PlannedStep
from .recorder import Recorder
from .results import StepResult


class Policy(Protocol):
    def next_step(self, done: Sequence[StepResult]) -> PlannedStep | None: ...


@dataclass
class ActiveStep:
    index: int
    planned: PlannedStep
    load: float
    started_at: float
    ends_at: float


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
        recorder: Recorder,
        scheduler: ArrivalScheduler | None,
        shares: Mapping[str, float],
        busy_s: Mapping[str, float],
        pool_weights: Mapping[str, float],
        on_step_closed: Callable[[StepResult], None],
        on_step_started: Callable[[ActiveStep], None] | None = None,
        max_users: int = 20_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.plan = plan
        self.policy = policy
        self.recorder = recorder
        self.scheduler = scheduler
        self.shares = dict(shares)
        self.busy_s = dict(busy_s)
        weight_total = sum(pool_weights.values())
        self.pool_fraction = {k: v / weight_total for k, v in pool_weights.items()}
        self.on_step_closed = on_step_closed
        self.on_step_started = on_step_started
        self.max_users = max_users
        self.clock = clock
        self.done: list[StepResult] = []
        self.active: ActiveStep | None = None
        self.finished = False
        self.stop_reason: str | None = None
        self._users = 0
        self._next_index = 0

    # Locust's API --------------------------------------------------------------------------
    def tick(self) -> tuple[int, float] | None:
        if self.finished:
            return None
        now = self.clock()
        if self.active is None:
            first = self.policy.next_step(self.done)
            if first is None:
                return self._finish("nothing to run")
            self._start(first, now)
        elif self.stop_reason is not None:
            self._close(now, partial=True)
            return self._finish(self.stop_reason)
        elif now >= self.active.ends_at:
            self._close(now, partial=False)
            following = self.policy.next_step(self.done)
            if following is None:
                return self._finish("plan complete")
            self._start(following, now)
        else:
            self._maybe_grow_pool()
        return self._users, self._spawn_rate()

    # Control from the run --------------------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        """Close the current step as partial at the next tick and end the run."""
        self.stop_reason = self.stop_reason or reason

    def replace_result(self, final: StepResult) -> None:
        """Swap a provisional result for the final one (after in-flight requests drained)."""
        for i, step in enumerate(self.done):
            if step.index == final.index:
                self.done[i] = final

    # Internals -------------------------------------------------------------------------------
    def _finish(self, reason: str) -> None:
        self.finished = True
        self.stop_reason = self.stop_reason or reason
        if self.scheduler is not None:
            self.scheduler.set_rate(0.0, -1)

    def _start(self, planned: PlannedStep, now: float) -> None:
        index = self._next_index
        self._next_index += 1
        load = self.plan.load_at(planned.multiplier)
        self.active = ActiveStep(index, planned, load, now, now + planned.duration_s)
        self.recorder.open_step(
            index, planned.multiplier, load, planned.phase, planned.warmup_s, start=now
        )
        if self.plan.model == "open":
            self._users = max(self._users, self._pool_for(load))
            assert self.scheduler is not None
            self.scheduler.set_rate(load, index)
        else:
            self._users = int(load)
        if self.on_step_started is not None:
            self.on_step_started(self.active)

    def _close(self, now: float, *, partial: bool) -> None:
        assert self.active is not None
        index = self.active.index
        self.recorder.close_step(index, now)
        result = self.recorder.result(index, final=False, partial=partial)
        self.done.append(result)
        self._learn_busy(result)
        self.on_step_closed(result)
        self.active = None

    def _learn_busy(self, result: StepResult) -> None:
        # Busy time per arrival grows with load; size the next pool from what was measured.
        for name, seg in result.segments.items():
            if seg.mean_ms is not None and name in self.busy_s:
                self.busy_s[name] = max(self.busy_s[name], seg.mean_ms / 1000.0)

    def _pool_for(self, load: float) -> int:
        needed = 0.0
        for name, share in self.shares.items():
            segment_pool = load * share * self.busy_s[name] * POOL_HEADROOM + POOL_MIN_PER_SEGMENT
            # The dispatcher splits users by pool weight: scale so this segment gets its pool.
            needed = max(needed, segment_pool / self.pool_fraction[name])
        return int(min(self.max_users, math.ceil(needed)))

    def _maybe_grow_pool(self) -> None:
        if self.plan.model != "open" or self.scheduler is None or self.active is None:
            return
        load = self.active.load
        for name, share in self.shares.items():
            backlog = self.scheduler.backlog(name)
            if backlog > max(5.0, load * share * 0.5):
                self._users = int(min(self.max_users, math.ceil(self._users * 1.5)))
                return

    def _spawn_rate(self) -> float:
        # Ramps must be short next to a step (tick() does not run while Locust is spawning).
        return float(max(100, self._users))

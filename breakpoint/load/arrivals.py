"""Open-model arrivals: a seeded Poisson schedule handed to a pool of ready users.

One greenlet draws arrival times at the step's rate and the segment of each by traffic share,
and queues a ticket carrying its intended start (docs/design.md#latency-clock) in that
segment's queue; how late it queued them is the schedule lag, a health signal.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import gevent
from gevent.queue import Queue


@dataclass(frozen=True)
class Ticket:
    segment: str
    intended: float  # wall-clock (epoch) seconds at which this arrival should start
    step: int  # the step whose schedule produced it
    window: int | None = None  # the measured window it was offered into (None: a warm-up)
    intended_mono: float = 0.0  # the same instant on the monotonic clock (lag is measured on it)
    issued_mono: float = 0.0  # when the scheduler queued it (monotonic)


# Idle users kept in reserve per segment, in seconds of its arrivals (see short_of_users).
IDLE_RESERVE_S = 0.5


class ArrivalScheduler:
    """Draws Poisson arrivals at the current rate and queues them per segment."""

    def __init__(
        self,
        shares: Mapping[str, float],
        *,
        seed: int,
        on_issue: Callable[[str, float], int | None] | None = None,
    ) -> None:
        self._on_issue = on_issue
        self._names = list(shares)
        total = sum(shares.values())
        cumulative, acc = [], 0.0
        for name in self._names:
            acc += shares[name] / total
            cumulative.append(acc)
        self._cumulative = cumulative
        self._rng = random.Random(seed)
        self.queues: dict[str, Queue[Ticket]] = {name: Queue() for name in self._names}
        self._rate = 0.0
        self._step = -1
        self._greenlet: gevent.Greenlet | None = None
        # (when, how late) of each arrival; drained by the health sampler once per second
        self.schedule_lag_s: list[tuple[float, float]] = []
        self.issued: dict[str, int] = dict.fromkeys(self._names, 0)
        # Users of each segment waiting for their next ticket (users.py counts them).
        self.idle: dict[str, int] = dict.fromkeys(self._names, 0)

    def reseed(self, seed: int) -> None:
        """Start a different random stream (each distributed worker draws its own)."""
        self._rng = random.Random(seed)

    def set_rates(self, rates: Mapping[str, float], step: int) -> None:
        """Per-segment arrival rates (a distributed worker draws the share its users serve)."""
        total = sum(max(0.0, rates.get(name, 0.0)) for name in self._names)
        if total > 0:
            acc, cumulative = 0.0, []
            for name in self._names:
                acc += max(0.0, rates.get(name, 0.0)) / total
                cumulative.append(acc)
            self._cumulative = cumulative
        self.set_rate(total, step)

    def set_rate(self, rate_per_s: float, step: int) -> None:
        """Change the total arrival rate; takes effect from the next arrival."""
        self._rate = max(0.0, rate_per_s)
        self._step = step
        if self._greenlet is None and self._rate > 0:
            self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        self._rate = 0.0
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    def backlog(self, segment: str) -> int:
        return self.queues[segment].qsize()

    def rates(self) -> dict[str, float]:
        """The current arrival rate of each segment (per second)."""
        out, before = {}, 0.0
        for name, edge in zip(self._names, self._cumulative, strict=True):
            out[name] = self._rate * (edge - before)
            before = edge
        return out

    def backlogged(self) -> bool:
        """Arrivals are queueing for want of free virtual users: more than half a second of a
        segment's arrivals (and more than 5) wait. The pool should grow (Controller), on one
        process or on each worker of a distributed run alike."""
        return any(self.backlog(name) > max(5.0, rate * 0.5) for name, rate in self.rates().items())

    def short_of_users(self) -> bool:
        """The pool should grow now: arrivals are backlogged, or a segment has fewer idle users
        than IDLE_RESERVE_S of its arrivals (and 2). The controller looks once a second; growing
        only once arrivals queue lets them wait up to that second, and an arrival that waits
        over 50 ms for a user marks the step generator-bound (load/health.py)."""
        if self.backlogged():
            return True
        return any(
            rate > 0 and self.idle[name] < max(2.0, rate * IDLE_RESERVE_S)
            for name, rate in self.rates().items()
        )

    def drop_backlog(self) -> dict[str, int]:
        """Empty the queues (at the end of the run); returns how many tickets were left."""
        left = {}
        for name, queue in self.queues.items():
            left[name] = queue.qsize()
            while not queue.empty():
                queue.get_nowait()
        return left

    def _pick(self) -> str:
        u = self._rng.random()
        for name, edge in zip(self._names, self._cumulative, strict=True):
            if u < edge:
                return name
        return self._names[-1]

    def _run(self) -> None:
        # Wall time = monotonic time + offset, fixed once so the schedule cannot jump.
        offset = time.time() - time.monotonic()
        next_at = time.monotonic()
        behind = 0
        while True:
            rate = self._rate
            if rate <= 0:
                gevent.sleep(0.05)
                next_at = time.monotonic()
                continue
            next_at += self._rng.expovariate(rate)
            delay = next_at - time.monotonic()
            if delay > 0:
                gevent.sleep(delay)
                behind = 0
            else:
                # Catching up after a pause: let users take the tickets already out instead of
                # queueing the whole backlog before any of them can run.
                behind += 1
                if behind % 16 == 0:
                    gevent.sleep(0)
            now = time.monotonic()
            self.schedule_lag_s.append((now + offset, max(0.0, now - next_at)))
            segment = self._pick()
            self.issued[segment] += 1
            intended = next_at + offset
            window = self._on_issue(segment, intended) if self._on_issue is not None else None
            self.queues[segment].put(
                Ticket(segment, intended, self._step, window, next_at, time.monotonic())
            )

"""The demo target's service: c workers behind one strict FIFO queue, each request holding a
worker for a seeded exponential (or constant) service time of mean S.

With Poisson arrivals that is an M/M/c queue whose latency follows from Erlang C
(sim/queueing.py): the ground truth the analysis is checked against (docs/design.md#ground-truths).
`TargetConfig` holds the parameters; the classes below make the queueing model hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Literal

from breakpoint.errors import ConfigError

Distribution = Literal["exponential", "constant"]
DISTRIBUTIONS: tuple[Distribution, ...] = ("exponential", "constant")

# Cost factors: service time = draw (mean S) x cost, so /api/page's mean service time is S.
PAGE_COST = 1.0
SEARCH_COST = 2.5
ASSET_COST = 0.25


@dataclass(frozen=True)
class TargetConfig:
    """How the demo target behaves: its workers, service time, randomness and listening address."""

    workers: int = 8
    service_ms: float = 20.0
    seed: int = 1
    port: int = 0  # 0: let the kernel pick a free port (start() returns it)
    host: str = "127.0.0.1"
    # Requests allowed to wait for a worker; beyond it the answer is an immediate 503, giving a
    # target that breaks through errors rather than latency. None: unbounded.
    max_queue: int | None = None
    distribution: Distribution = "exponential"
    # A worker is held until its response is written (gunicorn sync, thread-per-request): slow
    # readers then hold workers, and capacity_rps is an upper bound (docs/design.md#sync-workers).
    sync_workers: bool = False
    # Contention (the linear term of Gunther's Universal Scalability Law): a request's service is
    # slower by this fraction for every other request in service when it starts, as locks, a
    # shared database or a shared CPU make it. The wait then grows from low load on instead of
    # only at the workers' limit (docs/design.md#contention). 0: none, an M/M/c queue.
    contention: float = 0.0

    def __post_init__(self) -> None:
        source = "target"
        if self.workers < 1:
            raise ConfigError("must be at least 1", source=source, field="workers")
        if not self.service_ms > 0:
            raise ConfigError("must be a positive number of ms", source=source, field="service_ms")
        if not 0 <= self.port <= 65535:
            raise ConfigError("must be between 0 and 65535", source=source, field="port")
        if self.max_queue is not None and self.max_queue < 0:
            raise ConfigError("must be 0 or more (or unset)", source=source, field="max_queue")
        if not 0 <= self.contention <= 10:
            raise ConfigError("must be between 0 (none) and 10", source=source, field="contention")
        if self.distribution not in DISTRIBUTIONS:
            raise ConfigError(
                f"must be one of {', '.join(DISTRIBUTIONS)}", source=source, field="distribution"
            )

    @property
    def capacity_rps(self) -> float:
        """Requests per second the workers can complete on /api/page: c / S, or with contention
        sigma c / (S (1 + sigma (c - 1))), every worker in service."""
        slowdown = 1.0 + self.contention * (self.workers - 1)
        return self.workers / (self.service_ms * slowdown) * 1000.0

    def describe(self) -> str:
        """One line stating the capacity and what it follows from."""
        queue_note = "" if self.max_queue is None else f", max queue {self.max_queue}"
        if self.contention:
            queue_note += (
                f", contention {self.contention:g}: a request's service is "
                f"{self.contention:.1%} slower for every other request in service"
            )
        if self.sync_workers:
            queue_note += (
                "; sync workers: each is held until its response is written, so slow "
                "readers lower this"
            )
        return (
            f"capacity {self.capacity_rps:.1f} req/s ({self.workers} workers x "
            f"{self.service_ms} ms mean service, {self.distribution}, seed {self.seed}"
            f"{queue_note})"
        )


class ServiceSampler:
    """Draws service times from one seeded generator, so a seed fixes the whole sequence."""

    def __init__(
        self, mean_ms: float, distribution: Distribution = "exponential", seed: int = 1
    ) -> None:
        self.mean_ms = mean_ms
        self.distribution = distribution
        self._rng = random.Random(seed)
        self._rate = 1.0 / mean_ms

    def draw_ms(self, cost: float = 1.0) -> float:
        """The next service time in ms for a request of the given cost factor."""
        if self.distribution == "constant":
            return self.mean_ms * cost
        return self._rng.expovariate(self._rate) * cost


class CompensatedTimer:
    """Holds for a requested duration on average, despite asyncio's late wake-ups.

    asyncio timers wake about 0.8 ms late (the selector rounds its timeout up to whole ms), which
    would turn 20 ms of service into about 20.8 ms. So it sleeps (target - expected overshoot),
    where the expectation is an EWMA of the overshoot measured on earlier sleeps, and returns the
    time actually held: the server reports it (held_service_ms_mean in /__stats) and tests compare
    queueing theory with what the server really did. Durations shorter than the overshoot cannot
    be honoured by a timer; they yield once, and the held time says so.
    """

    # Overshoot seen on an idle loop; the EWMA corrects it within a few dozen sleeps.
    INITIAL_OVERSHOOT_S = 0.0008
    # A lagging loop is not a late timer: beyond this the estimate would swallow real service.
    MAX_OVERSHOOT_S = 0.005
    ALPHA = 0.05

    def __init__(self) -> None:
        self.overshoot_s = self.INITIAL_OVERSHOOT_S

    async def hold(self, duration_s: float) -> float:
        """Sleep about duration_s and return the seconds actually spent."""
        start = time.perf_counter()
        request_s = duration_s - self.overshoot_s
        if request_s <= 0:
            # Shorter than a timer can resolve: yield once so other work runs, as service would.
            await asyncio.sleep(0)
            return time.perf_counter() - start
        await asyncio.sleep(request_s)
        held_s = time.perf_counter() - start
        observed = held_s - request_s
        estimate = self.overshoot_s + self.ALPHA * (observed - self.overshoot_s)
        self.overshoot_s = min(max(estimate, 0.0), self.MAX_OVERSHOOT_S)
        return held_s


class WorkerPool:
    """c workers behind one strict FIFO queue, with an optional bound on the queue.

    The queue is an explicit deque of futures and a released worker is handed directly to the
    oldest waiter, so service is strictly first come, first served (asyncio.Semaphore makes no
    such promise when a newcomer races a woken waiter).
    """

    def __init__(self, workers: int, max_queue: int | None = None) -> None:
        self.workers = workers
        self.max_queue = max_queue
        self._free = workers
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.max_queue_length = 0

    @property
    def queue_length(self) -> int:
        """Requests waiting for a worker now."""
        return len(self._waiters)

    @property
    def busy(self) -> int:
        """Workers held now."""
        return self.workers - self._free

    async def acquire(self) -> bool:
        """Wait for a worker in arrival order; False (at once) if the queue is full."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        if self.max_queue is not None and len(self._waiters) >= self.max_queue:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.max_queue_length = max(self.max_queue_length, len(self._waiters))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # A worker was handed over just as we were cancelled: pass it on, do not leak it.
                self.release()
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise
        return True

    def release(self) -> None:
        """Hand the worker to the oldest waiter, or return it to the pool."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

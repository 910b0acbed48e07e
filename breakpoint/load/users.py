"""Wrap a scenario's Locust user classes once per segment (device/network profile).

The locustfile runs unchanged: each user class is subclassed per profile to tag requests with
their segment and measured window (docs/design.md#window-membership), install the profile's
emulation and, in the open model, start iterations on arrival tickets (arrivals.py).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gevent
from gevent import getcurrent
from locust import User

from breakpoint.load.arrivals import ArrivalScheduler, Ticket
from breakpoint.load.crashes import ScenarioCrashes
from breakpoint.load.guard import HostGuard
from breakpoint.plan import netmodel
from breakpoint.plan.profiles import Profile


class IterationHooks:
    """Where wrapped users report iteration starts and ends (the recorder implements it)."""

    def iteration_offered(self, segment: str, start: float) -> int | None:
        """An iteration was due to start at `start` (an arrival, or a closed user's next turn);
        returns the measured window it belongs to (None: not measured, e.g. a warm-up)."""
        return None

    def iteration_finished(
        self, segment: str, window: int | None, started: float | None = None, failed: bool = False
    ) -> None:
        """The iteration offered into `window` at `started` (wall clock) has finished; `failed`:
        one of its requests failed (a page view the person did not get)."""

    def user_wait(self, window: int | None, waited_s: float) -> None:
        """An arrival waited `waited_s` in its queue for a free virtual user."""


def _class_weight(cls: type[User]) -> float:
    return float(getattr(cls, "weight", 1) or 1)


@dataclass(frozen=True)
class UserWiring:
    """What every wrapped user of a run shares: the load model, where iterations are reported,
    the arrival queues (open model), whether to emulate, the seed and the host allow-list."""

    model: str
    hooks: IterationHooks
    scheduler: ArrivalScheduler | None = None
    emulate: bool = True
    seed: int = 1
    guard: HostGuard | None = None
    crashes: ScenarioCrashes | None = None
    # Filled as users start: the classes whose users have no HttpSession/FastHttpSession client
    # to emulate (they are measured from the request events they fire).
    not_emulated: set[str] | None = None


# The wrapped user running in each user greenlet: a custom client's request event carries no
# segment, so the listener finds the user that fired it here (measured_requests).
_RUNNING: dict[Any, Any] = {}


def measured_requests(
    on_request: Callable[..., None], guard: HostGuard | None = None
) -> Callable[..., None]:
    """A request listener that gives every request event of a wrapped user its segment and
    window (HttpSession's come with them; a custom client's context lacks them), and counts
    a custom client's requests to other hosts in the guard instead of measuring them.

    A user without an emulated client spends its profile's device time on each successful
    response it reports (in its own greenlet, which fired the event), added to the latency:
    its network is not emulated, its device is (docs/design.md#users-without-an-http-client).
    """

    def listener(**kwargs: Any) -> None:
        if guard is not None and not guard.reported(kwargs.get("url")):
            return
        context = kwargs.get("context")
        if not context or "bp_segment" not in context:
            user = _RUNNING.get(getcurrent())
            if user is not None:
                context = {**(context or {}), **user.context()}
                device = user._bp_device
                if device is not None and kwargs.get("exception") is None:
                    size = float(kwargs.get("response_length") or 0)
                    ms = netmodel.device_ms(device, max(0.0, size))
                    gevent.sleep(ms / 1000.0)
                    kwargs["response_time"] = float(kwargs.get("response_time") or 0.0) + ms
                    context["bp_device_ms"] = ms
                kwargs["context"] = context
        on_request(**kwargs)

    return listener


def wrap_user_classes(
    scenario_classes: Sequence[type[User]],
    profiles: Sequence[Profile],
    shares: Mapping[str, float],
    wiring: UserWiring,
    pool_weights: Mapping[str, float] | None = None,
) -> list[type[User]]:
    """One subclass per (profile, scenario class), weighted by traffic share x class weight.

    In the open model the weight of a segment's classes is its share of the *pool* of ready
    users (pool_weights), which depends on how long its users are busy per arrival, not only on
    its share of arrivals. In the closed model each user is one person: users are split by
    traffic share.
    """
    class_total = sum(_class_weight(c) for c in scenario_classes)
    wrapped: list[type[User]] = []
    counter = iter(range(1_000_000))
    for profile in profiles:
        weights = pool_weights if wiring.model == "open" and pool_weights else shares
        segment_weight = weights[profile.name]
        for cls in scenario_classes:
            weight = segment_weight * _class_weight(cls) / class_total
            wrapped.append(_wrap(cls, profile, weight, wiring, counter))
    return wrapped


def _wrap(
    cls: type[User], profile: Profile, weight: float, wiring: UserWiring, counter: Any
) -> type[User]:
    model, hooks, scheduler = wiring.model, wiring.hooks, wiring.scheduler
    emulate, seed, guard, crashes = wiring.emulate, wiring.seed, wiring.guard, wiring.crashes
    segment = profile.name
    original_wait: Callable[..., float] | None = getattr(cls, "wait_time", None)
    queue = scheduler.queues[segment] if scheduler is not None else None
    # Weights are integers for Locust's dispatcher; scale to keep three significant digits.
    int_weight = max(1, round(weight * 10_000))

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807 - becomes a method
        self._bp_broken = False
        self._bp_device = None  # the device to emulate around a custom client's events
        try:
            cls.__init__(self, *args, **kwargs)
        except Exception as exc:
            if crashes is None:
                raise
            # Counted (the run stops when this is the rule); the user is kept, inert, so that
            # Locust's spawner carries on.
            crashes.record(cls.__name__, exc, exc.__traceback__, "its constructor")
            self._bp_broken = True
            User.__init__(self, *args, **kwargs)
        self._bp_lag_ms = 0.0
        # The current iteration: its intended start (wall clock; None between iterations), its
        # window, and (closed model) whether the window is still to be looked up at its start.
        self._bp_iter_start = None
        self._bp_window = None
        self._bp_pending = False
        self._bp_failed = [False]  # did a request of the current iteration fail (the recorder says)
        self._bp_rng = random.Random(seed * 1_000_003 + next(counter))
        if self._bp_broken:
            return
        if emulate and getattr(cls, "bp_emulate", True):
            from breakpoint.load.emulate import emulator_of, install

            install(self, profile, rng=self._bp_rng)
            if emulator_of(self) is None:
                self._bp_device = profile.device
                if wiring.not_emulated is not None:
                    wiring.not_emulated.add(cls.__name__)
        if guard is not None:
            guard.install(self)  # outermost: a blocked request is not even emulated

    def _resolve(self: Any) -> None:
        # A closed user's iteration is offered when its think time ends, by then its window
        # (possibly a step that opened during the think time) is known.
        if self._bp_pending:
            self._bp_pending = False
            self._bp_window = hooks.iteration_offered(segment, self._bp_iter_start)

    def context(self: Any) -> dict[str, Any]:
        base = cls.context(self)
        _resolve(self)
        lag, self._bp_lag_ms = self._bp_lag_ms, 0.0
        return {
            **base,
            "bp_segment": segment,
            "bp_lag_ms": lag,
            "bp_window": self._bp_window,
            "bp_iter_start": self._bp_iter_start,
            "bp_iter_failed": self._bp_failed,
        }

    def _finish_iteration(self: Any) -> None:
        if self._bp_iter_start is not None:
            _resolve(self)
            hooks.iteration_finished(
                segment, self._bp_window, self._bp_iter_start, self._bp_failed[0]
            )
        self._bp_iter_start = None
        self._bp_window = None
        self._bp_failed = [False]

    def _take_ticket(self: Any) -> float:
        """Block until this segment's next arrival; return 0 so the task runs at once."""
        assert queue is not None and scheduler is not None
        scheduler.idle[segment] += 1
        try:
            ticket: Ticket = queue.get()
        finally:
            scheduler.idle[segment] -= 1
        now = time.monotonic()
        # Latency is timed from the intended start (coordinated omission); the time the ticket
        # sat in the queue with no free user is a generator fault and is reported as such.
        self._bp_lag_ms = max(0.0, (now - ticket.intended_mono) * 1000.0)
        hooks.user_wait(ticket.window, max(0.0, now - ticket.issued_mono))
        self._bp_iter_start = ticket.intended
        self._bp_window = ticket.window
        emulator = getattr(self, "_bp_emulator", None)
        if emulator is not None:
            emulator.arrive(_think_s(self))
        return 0.0

    def _think_s(self: Any) -> float:
        """The scenario's own think time, as its closed-model user would wait it (0 without
        one): how long ago the person behind an arrival last used their connection."""
        if original_wait is None:
            return 0.0
        try:
            return max(0.0, float(original_wait(self)))
        except Exception as exc:
            if crashes is None:
                raise
            crashes.record(cls.__name__, exc, exc.__traceback__, "its wait_time")
            return 0.0

    if model == "open":

        def wait_time(self: Any) -> float:
            _finish_iteration(self)
            if crashes is not None:
                crashes.iteration()
            return _take_ticket(self)

        def on_start(self: Any) -> None:
            _scenario_on_start(self)
            # The first iteration starts on an arrival too, not at spawn time.
            _take_ticket(self)

    else:

        def wait_time(self: Any) -> float:
            _finish_iteration(self)
            if crashes is not None:
                crashes.iteration()
            pause = original_wait(self) if original_wait is not None else 0.0
            # Users started together with the same think time fall into lockstep: jitter.
            pause *= self._bp_rng.uniform(0.9, 1.1)
            # The next iteration is due when the think time ends.
            self._bp_iter_start = time.time() + pause
            self._bp_pending = True
            return pause

        def on_start(self: Any) -> None:
            # Start each user at a random phase of its think time: users started together
            # fall into lockstep (docs/design.md#closed-model-split).
            if original_wait is not None:
                import gevent

                gevent.sleep(self._bp_rng.uniform(0, max(0.0, original_wait(self))))
            _scenario_on_start(self)
            self._bp_iter_start = time.time()
            self._bp_pending = True

    def _scenario_on_start(self: Any) -> None:
        try:
            cls.on_start(self)
        except Exception as exc:
            exc._bp_where = "on_start"  # type: ignore[attr-defined]  # for ScenarioCrashes
            raise

    def run(self: Any) -> None:
        if self._bp_broken:
            return
        me = getcurrent()
        _RUNNING[me] = self
        try:
            cls.run(self)
        finally:
            _RUNNING.pop(me, None)
            if self._bp_pending:
                # Stopped during its think time: that iteration was never offered.
                self._bp_pending = False
                self._bp_iter_start = None
            _finish_iteration(self)

    namespace: dict[str, Any] = {
        "__init__": __init__,
        "context": context,
        "wait_time": wait_time,
        "on_start": on_start,
        "run": run,
        "weight": int_weight,
        "fixed_count": 0,
        "abstract": False,
        "bp_segment": segment,
        "bp_profile": profile,
        "bp_class_name": cls.__name__,
        "__module__": cls.__module__,
    }
    name = f"{cls.__name__}@{segment}"
    return type(name, (cls,), namespace)

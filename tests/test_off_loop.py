"""Work at step boundaries leaves the event loop free: the policy and the garbage collector."""

from __future__ import annotations

import gc
import itertools
import sys
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import gevent
import pytest
from gevent import monkey

from breakpoint.load.controller import Controller
from breakpoint.load.local import collect_garbage_now
from breakpoint.plan.steps import Plan, PlannedStep
from breakpoint.results import StepResult

native_ident: Callable[[], int] = monkey.get_original("_thread", "get_ident")
STEP = PlannedStep(2.0, "ramp", warmup_s=1.0, hold_s=5.0)


class Source:
    """A StepSource that only notes which steps were opened."""

    def __init__(self) -> None:
        self.opened: list[int] = []
        self.stopped = False

    def open(self, index: int, planned: PlannedStep, load: float, now: float) -> None:
        self.opened.append(index)

    def close(self, index: int, now: float, *, partial: bool) -> None:
        pass

    def provisional(self, index: int, now: float) -> StepResult | None:
        return None

    def backlogged(self, load: float) -> bool:
        return False

    def stop_arrivals(self) -> None:
        self.stopped = True


class SlowPolicy:
    """Half a second of pure-Python computation (as a curve fit is), then STEP."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.thread: int | None = None
        self.given: list[Sequence[StepResult]] = []

    def next_step(self, done: Sequence[StepResult]) -> PlannedStep | None:
        self.thread = native_ident()
        self.given.append(done)
        until = time.perf_counter() + 0.5
        x = 0
        while time.perf_counter() < until:
            x += sum(i * i for i in range(200))
        if self.fail:
            raise ValueError("the fit diverged")
        return STEP


class LoopPolicy:
    """A policy that schedules a greenlet (as test_measurement_e2e's FixedSteps does)."""

    needs_event_loop = True

    def __init__(self) -> None:
        self.thread: int | None = None
        self.fired: list[bool] = []

    def next_step(self, done: Sequence[StepResult]) -> PlannedStep | None:
        self.thread = native_ident()
        gevent.spawn_later(0.01, self.fired.append, True)
        return STEP


def _controller(policy: Any, source: Source) -> Controller:
    return Controller(
        plan=Plan(model="open", baseline=10.0),
        policy=policy,
        source=source,
        shares={"a": 1.0},
        busy_s={"a": 0.1},
        pool_weights={"a": 1.0},
        on_step_closed=lambda result: None,
    )


def _ticking(during: Callable[[], Any]) -> tuple[Any, list[float]]:
    """Run `during()` while a greenlet ticks every 10 ms; its result and the tick times."""
    ticks: list[float] = []

    def tick() -> None:
        while True:
            gevent.sleep(0.01)
            ticks.append(time.perf_counter())

    ticker = gevent.spawn(tick)
    gevent.sleep(0.03)
    ticks.clear()
    try:
        return during(), ticks
    finally:
        ticker.kill()


def test_the_policy_computes_off_the_loop_while_greenlets_keep_ticking() -> None:
    """While the policy computes for half a second, the controller's greenlet waits and the
    others keep running: the policy ran in another OS thread and no tick came late by more
    than a fraction of that half second."""
    policy, source = SlowPolicy(), Source()
    controller = _controller(policy, source)
    interval = sys.getswitchinterval()

    (users, _), ticks = _ticking(lambda: gevent.spawn(controller.tick).get())

    assert policy.thread is not None and policy.thread != native_ident()
    assert source.opened == [0] and controller.active is not None
    assert controller.active.planned == STEP and users > 0
    assert len(ticks) >= 15, f"only {len(ticks)} ticks in half a second"
    worst = max(b - a for a, b in itertools.pairwise(ticks))
    assert worst < 0.15, f"a tick came {worst * 1000:.0f} ms after the previous one"
    assert sys.getswitchinterval() == interval  # lowered only while the policy ran


def test_the_policy_decides_on_a_copy_of_the_steps() -> None:
    """Results replaced while the policy computes (a step's final record) do not change the list
    it was given: it decides on the steps as they were when it was asked, as before."""
    policy = SlowPolicy()
    controller = _controller(policy, Source())
    gevent.spawn(controller.tick).get()
    assert policy.given == [[]] and policy.given[0] is not controller.done


def test_a_policy_that_fails_off_the_loop_ends_the_run_with_its_error() -> None:
    policy, source = SlowPolicy(fail=True), Source()
    controller = _controller(policy, source)
    assert gevent.spawn(controller.tick).get() is None
    assert controller.finished and source.stopped
    assert isinstance(controller.failure, ValueError)
    assert controller.stop_reason == "internal error: ValueError: the fit diverged"


def test_a_policy_that_needs_the_loop_runs_on_it() -> None:
    policy = LoopPolicy()
    controller = _controller(policy, Source())
    gevent.spawn(controller.tick).get()
    gevent.sleep(0.05)
    assert policy.thread == native_ident()
    assert policy.fired == [True]


def _collections_during(work: Callable[[], None]) -> list[int]:
    generations: list[int] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            generations.append(info["generation"])

    gc.callbacks.append(note)
    try:
        work()
    finally:
        gc.callbacks.remove(note)
    return generations


def test_a_step_opening_collects_only_the_young_generations() -> None:
    """As a step opens (requests of the previous one still in flight) no full collection runs:
    frozen objects are not scanned again, so cyclic garbage among them survives; what is alive
    is frozen. The run's first step (nothing in flight yet) unfreezes and collects everything.
    """

    class Node:
        pass

    gc.freeze()
    try:
        cycle = Node()
        cycle.self = cycle  # type: ignore[attr-defined]
        gone = weakref.ref(cycle)
        gc.freeze()  # frozen while alive, as the users and in-flight requests of a step are
        del cycle
        alive = [Node() for _ in range(1000)]

        assert max(_collections_during(collect_garbage_now)) <= 1
        assert gone() is not None  # a full pass over frozen objects would have freed it
        assert gc.get_count()[0] == 0 and gc.get_freeze_count() >= len(alive)

        assert 2 in _collections_during(lambda: collect_garbage_now(everything=True))
        assert gone() is None
    finally:
        gc.unfreeze()


@pytest.fixture(autouse=True)
def _no_frozen_leftovers() -> Any:
    yield
    gc.unfreeze()


def test_a_pool_floor_sizes_the_first_step_for_a_later_peak() -> None:
    """A surge sizes its baseline's pool for the surge's load (pool_floor_load), so the users
    are spawned before the jump: ten times the load, ten times the busy users."""
    plain = _controller(LoopPolicy(), Source())
    floored = _controller(LoopPolicy(), Source())
    floored.pool_floor_load = 10 * plain.plan.load_at(STEP.multiplier)
    (users, _), (peak, _) = plain.tick(), floored.tick()
    # 20/s x 0.1 s busy x headroom 3 = 6 busy users plus the minimum; at 200/s, 60 plus it.
    assert peak - users == pytest.approx(54, abs=1), (users, peak)

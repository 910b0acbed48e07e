"""Exceptions raised by the scenario's own code: never a measurement of the target.

A locustfile's user can raise in its constructor, `on_start` or a task (a typo, a missing
attribute, a client that cannot connect). Locust logs it and carries on, so without a check a
scenario that fails on every iteration measures nothing and the run would still report "no
segment broke". Every such exception is counted here (per step, by where it came from); when
they are a material share of the iterations of the last seconds the run stops with an error
naming the class, the exception and the scenario's line (docs/design.md#scenario-crashes).
Requests blocked by the host allow-list (BlockedHostError) are the guard's doing and reported
on their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from breakpoint.load.guard import BlockedHostError
from breakpoint.load.scenario import scenario_frame

# Stop when at least MIN_ERRORS exceptions in the last HORIZON_S seconds are at least SHARE of
# the iterations that ended meanwhile (an exception ends its iteration too). A scenario that
# fails rarely (a flaky parser on 1 iteration in 1000) runs on, with its count reported.
MIN_ERRORS = 3
SHARE = 0.05
HORIZON_S = 10.0


class ScenarioCrashes:
    """Counts the scenario's exceptions and iterations; says when the scenario is failing."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.clock = clock
        self.step: int | None = None  # the step being measured (None: before the first)
        self.by_step: dict[int, int] = {}
        self.total = 0
        self.failed_steps: list[int] = []
        self._buckets: dict[int, list[int]] = {}  # second -> [iterations, exceptions]
        self._first: dict[str, str] = {}  # class -> what it raised first, and where

    # -- counting ------------------------------------------------------------------------------
    def _bucket(self) -> list[int]:
        second = int(self.clock())
        bucket = self._buckets.get(second)
        if bucket is None:
            bucket = self._buckets[second] = [0, 0]
            horizon = second - HORIZON_S - 1
            for old in [s for s in self._buckets if s < horizon]:
                del self._buckets[old]
        return bucket

    def iteration(self) -> None:
        """An iteration of a wrapped user ended (its task returned or raised)."""
        self._bucket()[0] += 1

    def record(self, cls_name: str, exc: BaseException, tb: Any, where: str) -> None:
        if isinstance(exc, BlockedHostError):
            return
        self._bucket()[1] += 1
        self.total += 1
        if self.step is not None:
            self.by_step[self.step] = self.by_step.get(self.step, 0) + 1
        if cls_name not in self._first:
            frame = scenario_frame(self.path, tb) if tb is not None else None
            at = f"{Path(frame[0]).name}:{frame[1]}" if frame else self.path.name
            self._first[cls_name] = (
                f"{cls_name} raised {type(exc).__name__}: {exc} in {where} ({at})"
            )

    def on_user_error(
        self, user_instance: Any, exception: BaseException, tb: Any, **_: Any
    ) -> None:
        """Locust's user_error event (tasks and on_start); user_instance may be a TaskSet."""
        user = getattr(user_instance, "user", user_instance)
        name = getattr(type(user), "bp_class_name", type(user).__name__)
        self.record(name, exception, tb, getattr(exception, "_bp_where", "a task"))

    # -- judging -------------------------------------------------------------------------------
    def failing(self) -> str | None:
        """Why the scenario is failing (class, exception, file:line, counts), or None."""
        iterations = sum(b[0] for b in self._buckets.values())
        errors = sum(b[1] for b in self._buckets.values())
        if errors < MIN_ERRORS or errors < SHARE * iterations:
            return None
        first = "; ".join(self._first.values())
        return (
            f"the scenario raised {errors} exceptions in the last {HORIZON_S:g} s "
            f"({iterations} iterations ended): {first}"
        )

    def stopped_at(self, step: int | None) -> None:
        """The run stopped for the scenario during `step`: its measurements are not used."""
        if step is not None and step not in self.failed_steps:
            self.failed_steps.append(step)

    def as_dict(self) -> dict[str, Any]:
        """What run.json keeps: counts per step, the steps not to use, the first of each."""
        return {
            "total": self.total,
            "by_step": {str(k): v for k, v in sorted(self.by_step.items())},
            "failed_steps": sorted(self.failed_steps),
            "first": list(self._first.values()),
        }

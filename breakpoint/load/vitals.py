"""Vital signs of a distributed run (docs/design.md#distributed-runs): with each report a worker
sends the master (Locust's `report_to_master` / `worker_report` events, every 3 s) it adds its
per-second request counts, the iterations still running in the current window and its generator
health; the master sums them into the same view a single process has of its own recorder, so
the guardrails (abort limits, hang detection) follow one set of rules whichever runner drives
the load. A worker whose arrivals queue with its pool at --max-users flags its own step. (A
message of its own each second cost the workers' event loops 100-180 ms of lateness at p95 in
tests/test_measurement_e2e.py; riding on Locust's report costs nothing.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from breakpoint.load.arrivals import ArrivalScheduler
from breakpoint.load.recorder import Recorder

REPORT_KEY = "bp_vitals"
# How stale the master's view can be: Locust's worker report interval (locust.runners).
REPORT_EVERY_S = 3.0


class WorkerVitals:
    """On a worker: send this process's vital signs to the master once a second."""

    def __init__(
        self,
        runner: Any,
        recorder: Recorder,
        scheduler: ArrivalScheduler | None,
        *,
        max_users: int,
        current_window: Callable[[], int | None],
    ) -> None:
        self.runner = runner
        self.recorder = recorder
        self.scheduler = scheduler
        self.max_users = max_users
        self.current_window = current_window

    def snapshot(self) -> dict[str, Any]:
        """This worker's vital signs (JSON-friendly: second keys are strings)."""
        index = self.current_window()
        backlogged = self.scheduler is not None and self.scheduler.backlogged()
        if backlogged and int(self.runner.user_count) >= self.max_users:
            # Arrivals wait with this process's pool at its cap: the generator's fault.
            self.recorder.pool_capped()
        return {
            "recent": {str(s): row for s, row in self.recorder.recent_rows().items()},
            "last_completion_at": self.recorder.last_completion_at,
            "window": index,
            "in_flight": self.recorder.in_flight(index) if index is not None else 0,
            "health": self.recorder.latest_health(),
            "backlogged": backlogged,
        }

    def on_report_to_master(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        """Locust's report_to_master event: add this worker's vital signs to its report."""
        data[REPORT_KEY] = self.snapshot()


class RemoteVitals:
    """On the master: the workers' vital signs, summed (the Vitals protocol of samplers.py)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._started = clock()
        self._by_worker: dict[str, dict[str, Any]] = {}
        self.alive: Callable[[], set[str]] = lambda: set(self._by_worker)

    def attach(self, runner: Any, alive: Callable[[], set[str]]) -> None:
        runner.environment.events.worker_report.add_listener(self.on_worker_report)
        self.alive = alive

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        """Locust's worker_report event: keep the vital signs the worker added."""
        vitals = data.get(REPORT_KEY)
        if isinstance(vitals, dict):
            self._by_worker[client_id] = dict(vitals)

    def _current(self) -> list[dict[str, Any]]:
        alive = self.alive()
        return [v for node, v in self._by_worker.items() if node in alive]

    def recent_totals(self, for_s: int, settle_s: int) -> tuple[int, int, int]:
        """(requests, errors, slow) of all workers in the last `for_s` whole wall-clock seconds,
        leaving out the newest `settle_s` (as Recorder.recent_totals; clocks kept by NTP)."""
        newest = int(self._clock()) - settle_s
        wanted = {str(s) for s in range(newest - for_s, newest)}
        totals = [0, 0, 0]
        for vitals in self._current():
            for second, row in vitals.get("recent", {}).items():
                if second in wanted:
                    for k in range(3):
                        totals[k] += int(row[k])
        return totals[0], totals[1], totals[2]

    @property
    def last_completion_at(self) -> float:
        times = [float(v.get("last_completion_at", 0.0)) for v in self._current()]
        return max([self._started, *times])

    def in_flight(self, index: int) -> int:
        return sum(int(v.get("in_flight", 0)) for v in self._current() if v.get("window") == index)

    def latest_health(self) -> dict[str, float]:
        """The worst worker's values (one saturated worker bounds the step)."""
        out = {"cpu_pct": 0.0, "loop_lag_ms": 0.0, "schedule_lag_ms": 0.0}
        for vitals in self._current():
            for key, value in vitals.get("health", {}).items():
                out[key] = max(out.get(key, 0.0), float(value))
        return out

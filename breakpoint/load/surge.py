"""Run a surge rehearsal: the run machinery of run.py (controller, recorder, store, guard,
crash detection, vitals) walking the surge's three phases instead of a ramp.

What differs from a search (docs/design.md#surge-rehearsal): the phases follow each other
without a cool-down; the recorder keeps a per-second series across them (timeline.py), written
to series.json as each phase closes and when the run ends; the pool of users is sized for the
surge's rate times the client timeout, so the open model stays open while the target queues;
and the recovery phase ends as soon as every segment has recovered by the rule.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent

from breakpoint.analysis.surge import (
    Phases,
    backlog_limit,
    block_s,
    first_recovered,
    objective_ms,
)
from breakpoint.load.controller import POOL_HEADROOM, ActiveStep
from breakpoint.load.guard import guarding_sessions
from breakpoint.load.local import LocalSteps
from breakpoint.load.process import quiet_locust
from breakpoint.load.progress import SayProgress
from breakpoint.load.run import _Run
from breakpoint.load.settings import RunSettings
from breakpoint.load.timeline import Timeline
from breakpoint.plan.steps import PlannedStep
from breakpoint.plan.surge import SurgePlan, SurgeSchedule
from breakpoint.progress import Progress
from breakpoint.results import StepResult
from breakpoint.runs.store import SERIES_FILE, json_text

CHECK_EVERY_S = 1.0


def execute_surge(
    settings: RunSettings,
    surge: SurgePlan,
    *,
    say: Callable[[str], None] = print,
    progress: Progress | None = None,
) -> Path:
    """Run the surge against the host; return the run folder (complete or partial)."""
    if settings.distributed:
        raise ValueError("a surge runs in one process")  # the CLI offers no distribution
    view: Progress = progress if progress is not None else SayProgress(say)
    quiet_locust()
    run = _SurgeRun(settings, surge, view)
    with guarding_sessions(run.guard):
        run.connect()
        run.drive()
    return run.outcome()


class _SurgeRun(_Run):
    """A `_Run` whose policy is the surge's schedule, with the per-second series kept."""

    def __init__(self, settings: RunSettings, surge: SurgePlan, view: Progress) -> None:
        super().__init__(settings, SurgeSchedule(surge), view)
        self.surge = surge
        self.timeline = Timeline(
            self.seg.names,
            objectives_ms={p.name: objective_ms(p.slo) for p in self.seg.profiles},
        )
        self.recorder.timeline = self.timeline
        assert isinstance(self.source, LocalSteps)
        self.source.continuous = True
        # Enough ready users for the surge's arrivals to wait out the client timeout each
        # (docs/design.md#surge-rehearsal): the pool is rate x busy time x POOL_HEADROOM.
        for p in self.seg.profiles:
            floor = p.network.timeout_s / POOL_HEADROOM
            self.controller.busy_s[p.name] = max(self.controller.busy_s[p.name], floor)
        self.controller.pool_floor_load = surge.plan().load_at(surge.to)
        self.phase_at: dict[str, float] = {}
        self.writer.update(kind="surge", surge=surge.to_dict())

    def _planned_steps(self) -> int:
        return len(self.surge.steps())

    def _phases(self) -> list[PlannedStep]:
        return self.surge.steps()

    def _on_step_started(self, step: ActiveStep) -> None:
        if step.index == 0:
            self.timeline.origin = step.started_at
        self.phase_at[step.planned.phase] = step.started_at + step.planned.warmup_s
        super()._on_step_started(step)

    def _on_step_closed(self, result: StepResult) -> None:
        super()._on_step_closed(result)
        self._write_series()

    def _write_series(self) -> None:
        self.writer.put_file(SERIES_FILE, json_text(self.timeline.to_dict()))

    def _start_watchers(self) -> list[Any]:
        watchers = super()._start_watchers()
        watchers.append(gevent.spawn(self._watch_recovery))
        return watchers

    def _watch_recovery(self) -> None:
        """End the recovery phase once every segment recovered by the rule's longer window
        (so the interval's upper end is measured too), judged on settled seconds only."""
        settle_s = 1.0 + max(
            min(p.network.timeout_s, objective_ms(p.slo) / 1000.0) for p in self.seg.profiles
        )
        window = 2 * self.surge.confirm_s
        while not self.controller.finished:
            gevent.sleep(CHECK_EVERY_S)
            active = self.controller.active
            if active is None or active.planned.phase != "recovery" or active.closed_at:
                continue
            if self._all_recovered(time.time() - settle_s, window):
                self.view.info("every segment recovered: ending the recovery phase")
                self.controller.end_step_now()
                return

    def _all_recovered(self, settled_until: float, window: int) -> bool:
        origin = self.timeline.origin
        if origin is None or not {"baseline", "surge", "recovery"} <= self.phase_at.keys():
            return False
        phases = Phases(
            baseline_from_s=self.phase_at["baseline"] - origin,
            surge_from_s=self.phase_at["surge"] - origin,
            drop_s=self.phase_at["recovery"] - origin,
            end_s=settled_until - origin,
        )
        for p in self.seg.profiles:
            bins = self.timeline.bins(p.name)
            limit = backlog_limit(bins, phases)
            if limit is None:
                return False
            block = block_s(bins, phases)
            if block is None:
                return False
            slo_ms = objective_ms(p.slo)
            if first_recovered(bins, phases, slo_ms, limit, window=window, block=block) is None:
                return False
        return True

    def _write_ending(self) -> None:
        self._write_series()
        super()._write_ending()

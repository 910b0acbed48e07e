"""The progress view for CI logs, pipes and dumb terminals: short lines, flushed at once.

One line per event (run start, step start, finished step, warning, end) and, within a long
step, one line of provisional numbers every 30 s. `live.make_progress()` picks this view when
no person watches a terminal. Imports no locust.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from breakpoint.output.progress_text import (
    ActiveStep,
    ClosingView,
    RunState,
    duration,
    finished_line,
    phase_countdown,
    run_line,
    segment_parts,
    started_line,
)

if TYPE_CHECKING:
    from breakpoint.analysis.criteria import SegmentVerdict
    from breakpoint.plan.profiles import Profile
    from breakpoint.plan.steps import Plan, PlannedStep
    from breakpoint.results import StepResult

# One line of provisional numbers every this often within a long step.
PLAIN_HEARTBEAT_S = 30.0


class PlainProgress(ClosingView):
    """One flushed line per event; nothing per tick except a line every 30 s of a long step."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream  # None: sys.stdout at the time of each write
        self._run = RunState()
        self._last_line_at = 0.0
        self._closed = False

    def _line(self, text: str) -> None:
        out = sys.stdout if self._stream is None else self._stream
        out.write(text + "\n")
        out.flush()

    def run_started(
        self,
        *,
        plan: Plan,
        profiles: Sequence[Profile],
        host: str,
        run_dir: Path,
        planned_steps: int,
        phases: Sequence[PlannedStep] = (),
    ) -> None:
        self._run.start_run(plan, profiles, host, run_dir, planned_steps, phases, time.time())
        self._line(run_line(plan, profiles, host, run_dir, planned_steps, phases))

    def step_started(
        self,
        *,
        index: int,
        multiplier: float,
        load: float,
        unit: str,
        phase: str,
        warmup_s: float,
        hold_s: float,
        started_at: float,
    ) -> None:
        step = ActiveStep(index, multiplier, load, unit, phase, warmup_s, hold_s, started_at)
        self._run.start_step(step)
        self._last_line_at = started_at
        self._line(started_line(step))

    def tick(self, *, now: float, step: StepResult) -> None:
        active = self._run.step
        if active is None or now - self._last_line_at < PLAIN_HEARTBEAT_S:
            return
        self._last_line_at = now
        elapsed = now - active.started_at
        where = " (warm-up)" if elapsed < active.warmup_s else ""
        countdown = phase_countdown(active, now)
        where += f" ({countdown})" if countdown else ""
        parts = segment_parts(step, {}, self._run.order)
        self._line(
            f"  step {active.index + 1} at {duration(elapsed)} of "
            f"{duration(active.duration_s)}{where}: " + "; ".join(text for text, _, _ in parts)
        )

    def health(self, *, cpu_pct: float, loop_lag_ms: float, schedule_lag_ms: float) -> None:
        pass  # CI logs stay short; a generator-bound step is reported through warn()

    def step_finished(self, *, result: StepResult, verdicts: Mapping[str, SegmentVerdict]) -> None:
        self._run.finished += 1
        self._line(finished_line(result, verdicts, self._run.order, self._run.unit))

    def warn(self, message: str) -> None:
        self._line(f"warning: {message}")

    def info(self, message: str) -> None:
        self._line(message)

    def run_finished(self, *, status: str, run_dir: Path) -> None:
        if not self._closed:
            self._line(f"run {status}: {self._run.finished} step(s) measured")
        self.close()

    def close(self) -> None:
        self._closed = True

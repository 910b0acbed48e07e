"""`SayProgress`: the plain default of `execute`'s progress (one line per event through a `say`
callback, as tests and scripts use it). The `Progress` protocol is breakpoint/progress.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from breakpoint.analysis.criteria import SegmentVerdict
    from breakpoint.plan.profiles import Profile
    from breakpoint.plan.steps import Plan, PlannedStep
    from breakpoint.results import StepResult


class SayProgress:
    """One short line per run event, step and warning through `say`; nothing per tick."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say
        self._finished = 0

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
        names = ", ".join(p.name for p in profiles)
        steps = f"{len(phases)} surge phases" if phases else f"{planned_steps} ramp steps"
        self._say(f"run against {host} ({names}): {steps}; folder {run_dir}")

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
        self._say(
            f"step {index + 1} ({phase}): {multiplier:g}X = {load:g} {unit}, "
            f"{warmup_s:g}s warm-up + {hold_s:g}s"
        )

    def tick(self, *, now: float, step: StepResult) -> None:
        pass

    def health(self, *, cpu_pct: float, loop_lag_ms: float, schedule_lag_ms: float) -> None:
        pass

    def step_finished(self, *, result: StepResult, verdicts: Mapping[str, SegmentVerdict]) -> None:
        self._finished += 1
        failed = sorted(name for name, v in verdicts.items() if v.passed is False)
        state = f"failed: {', '.join(failed)}" if failed else "no segment failed"
        self._say(f"step {result.index + 1} finished: {state}")

    def warn(self, message: str) -> None:
        self._say(f"warning: {message}")

    def info(self, message: str) -> None:
        self._say(message)

    def run_finished(self, *, status: str, run_dir: Path) -> None:
        self._say(f"run {status}: {self._finished} step(s) measured")

"""What a run reports while it goes: the `Progress` protocol that the load layer calls and the
output layer's views (live panel, plain lines) implement. Shared vocabulary, like results.py, so
that neither layer imports the other (docs/design.md#code-layout).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from breakpoint.analysis.criteria import SegmentVerdict
    from breakpoint.plan.profiles import Profile
    from breakpoint.plan.steps import Plan, PlannedStep
    from breakpoint.results import StepResult


class Progress(Protocol):
    """Where a run reports its events (the live view, plain lines, or load.progress.SayProgress)."""

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
        """`phases`: a surge's fixed phases (plan/surge.py); empty for a search."""
        ...

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
    ) -> None: ...

    def tick(self, *, now: float, step: StepResult) -> None: ...

    def health(self, *, cpu_pct: float, loop_lag_ms: float, schedule_lag_ms: float) -> None: ...

    def step_finished(
        self, *, result: StepResult, verdicts: Mapping[str, SegmentVerdict]
    ) -> None: ...

    def warn(self, message: str) -> None: ...

    def info(self, message: str) -> None: ...

    def run_finished(self, *, status: str, run_dir: Path) -> None: ...

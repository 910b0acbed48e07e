"""What both progress views share: the run so far (`RunState`) and the text of its lines.

`live.py` (the rich panel) and `plain.py` (lines for CI logs) print the same run line, step
lines and finished-step line from here, so the two views cannot drift apart. Imports no locust.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from breakpoint.analysis.criteria import SegmentVerdict
    from breakpoint.plan.profiles import Profile, Slo
    from breakpoint.plan.steps import Plan, PlannedStep
    from breakpoint.results import StepResult

RAMP_PHASES = frozenset({"ramp", "beyond"})
SURGE_PHASES = ("baseline", "surge", "recovery")  # plan/surge.py


def number(x: float) -> str:
    """A load or multiplier without float noise: 120, 37.5, 2.25."""
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.4g}" if abs(x) < 10_000 else f"{x:.0f}"


def millis(x: float) -> str:
    """Milliseconds: one decimal under 10, whole above."""
    return f"{x:.1f}" if x < 10 else f"{x:.0f}"


def duration(seconds: float) -> str:
    """m:ss, or h:mm:ss from an hour."""
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def ordered(order: Sequence[str], present: Iterable[str]) -> list[str]:
    """Segments in the profiles' order, then any others the step measured."""
    names = list(order)
    names.extend(n for n in present if n not in names)
    return names


@dataclass(frozen=True)
class ActiveStep:
    """The step being applied, as `step_started` announced it."""

    index: int
    multiplier: float
    load: float
    unit: str
    phase: str
    warmup_s: float
    hold_s: float
    started_at: float

    @property
    def duration_s(self) -> float:
        return self.warmup_s + self.hold_s


def phase_countdown(step: ActiveStep, now: float) -> str | None:
    """A surge phase's countdown to what comes next; None for a search's step."""
    left = duration(max(0.0, step.started_at + step.duration_s - now))
    if step.phase == "baseline":
        return f"surge in {left}"
    if step.phase == "surge":
        return f"back to 1X in {left}"
    if step.phase == "recovery":
        return f"at most {left} left (ends once every segment recovered)"
    return None


def started_line(step: ActiveStep) -> str:
    if step.phase in SURGE_PHASES:
        what = {
            "baseline": f"{step.warmup_s:g}s warm-up + {step.hold_s:g}s measured at 1X",
            "surge": f"{step.hold_s:g}s",
            "recovery": f"back to 1X, watched for up to {step.hold_s:g}s",
        }[step.phase]
        return (
            f"{step.phase} phase: {number(step.multiplier)}X = {number(step.load)} {step.unit} "
            f"({what})"
        )
    return (
        f"step {step.index + 1}: {number(step.multiplier)}X = {number(step.load)} {step.unit} "
        f"({step.phase}, {step.warmup_s:g}s warm-up + {step.hold_s:g}s measured)"
    )


def segment_parts(
    result: StepResult, verdicts: Mapping[str, SegmentVerdict], order: Sequence[str]
) -> list[tuple[str, str, str]]:
    """(numbers, flag, flag style) per segment: flag "!criterion" failed, "?" untrusted."""
    parts = []
    for name in ordered(order, result.segments):
        seg = result.segments.get(name)
        if seg is None:
            continue
        p95 = "-" if seg.p95_ms is None else f"{millis(seg.p95_ms)}ms"
        verdict = verdicts.get(name)
        flag, style = "", ""
        if verdict is not None and verdict.passed is False:
            flag, style = f" !{verdict.criterion or 'failed'}", "bold red"
        elif verdict is not None and verdict.passed is None:
            flag, style = " ?", "yellow"
        parts.append((f"{name} p95 {p95} err {seg.error_rate:.1%}", flag, style))
    return parts


def finished_head(result: StepResult, unit: str) -> str:
    partial = ", partial" if result.partial else ""
    return (
        f"  step {result.index + 1} done: {number(result.multiplier)}X = {number(result.load)} "
        f"{unit}, {result.measured_s:.0f}s measured{partial}: "
    )


def finished_line(
    result: StepResult,
    verdicts: Mapping[str, SegmentVerdict],
    order: Sequence[str] = (),
    unit: str = "",
) -> str:
    """One line for a finished step: each segment's p95 and error rate, flagged when it failed."""
    parts = segment_parts(result, verdicts, order)
    return finished_head(result, unit) + "; ".join(text + flag for text, flag, _ in parts)


def run_line(
    plan: Plan,
    profiles: Sequence[Profile],
    host: str,
    run_dir: Path,
    planned_steps: int,
    phases: Sequence[PlannedStep] = (),
) -> str:
    names = ", ".join(p.name for p in profiles)
    if phases:
        longest = sum(p.duration_s for p in phases)
        return (
            f"breakpoint surge: {len(profiles)} segment(s) ({names}) against {host}; "
            + ", then ".join(f"{p.phase} {number(p.multiplier)}X" for p in phases)
            + f" (at most {duration(longest)}); run folder {run_dir}"
        )
    step_s = plan.warmup_s + plan.hold_s
    return (
        f"breakpoint: {len(profiles)} segment(s) ({names}) against {host}, {plan.model} model; "
        f"{planned_steps} ramp steps of {step_s:g}s "
        f"(at least {duration(planned_steps * step_s)}); run folder {run_dir}"
    )


class RunState:
    """What both views remember of the run so far."""

    def __init__(self) -> None:
        self.plan: Plan | None = None
        self.order: list[str] = []
        self.slos: dict[str, Slo] = {}
        self.host = ""
        self.run_dir: Path | None = None
        self.planned_steps = 0
        self.run_started_at: float | None = None
        self.ramp_started = 0
        self.finished = 0
        self.step: ActiveStep | None = None
        self.unit = ""
        self.phases: tuple[PlannedStep, ...] = ()  # a surge's phases (empty for a search)

    def start_run(
        self,
        plan: Plan,
        profiles: Sequence[Profile],
        host: str,
        run_dir: Path,
        planned_steps: int,
        phases: Sequence[PlannedStep],
        now: float,
    ) -> None:
        self.phases = tuple(phases)
        self.plan = plan
        self.order = [p.name for p in profiles]
        self.slos = {p.name: p.slo for p in profiles}
        self.host = host
        self.run_dir = run_dir
        self.planned_steps = planned_steps
        self.run_started_at = now
        self.unit = plan.unit

    def start_step(self, step: ActiveStep) -> None:
        self.step = step
        self.unit = step.unit
        if self.run_started_at is None:
            self.run_started_at = step.started_at
        if step.phase in RAMP_PHASES:
            self.ramp_started += 1

    def step_left_s(self, now: float) -> float:
        if self.step is None:
            return 0.0
        return max(0.0, self.step.started_at + self.step.duration_s - now)

    def ramp_steps_left(self) -> int:
        if self.phases:
            return 0
        return max(0, self.planned_steps - self.ramp_started)

    def run_left_s(self, now: float) -> float:
        """At least this much: the current step's rest and the ramp steps not yet started (a
        surge: at most the rest of its phases)."""
        if self.phases and self.step is not None:
            later = self.phases[self.step.index + 1 :]
            return self.step_left_s(now) + sum(p.duration_s for p in later)
        if self.plan is not None:
            step_s = self.plan.warmup_s + self.plan.hold_s
        else:
            step_s = self.step.duration_s if self.step is not None else 0.0
        return self.step_left_s(now) + self.ramp_steps_left() * step_s


class ClosingView:
    """A view used as a context manager: leaving the `with` block calls `close()`."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

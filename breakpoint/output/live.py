"""The live view of a run: what the terminal shows while load is applied.

The run reports to a `Progress` sink; `make_progress()` picks one of two. `RichProgress` is a
rich Live panel (current step, per-segment p95 and errors against their SLOs, generator health,
time left) for an interactive terminal. It has no refresh thread: the load generator shares this
process under gevent, so the panel is redrawn only from the run's own calls, at most 4 times a
second. `PlainProgress` writes short, flushed lines for CI logs, pipes and dumb terminals.
Finished steps and warnings are one line each in both. Imports no locust.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self, TextIO

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from breakpoint.analysis.criteria import SegmentVerdict
    from breakpoint.plan.profiles import Profile, Slo
    from breakpoint.plan.steps import Plan
    from breakpoint.results import StepResult

# A value within this fraction of its SLO (but not over it) is shown in yellow.
NEAR_SLO_FRACTION = 0.8
# Generator health is highlighted when near the limits at which recorder.py marks a step
# generator-bound (CPU 90%, lags 100 ms). Repeated here: recorder.py imports locust.
CPU_NEAR_PCT = 80.0
CPU_BOUND_PCT = 90.0
LAG_NEAR_MS = 50.0
LAG_BOUND_MS = 100.0
# Redraw at most this often; the run calls tick/health about once a second.
MIN_REFRESH_INTERVAL_S = 0.25
# Plain mode: one line of provisional numbers every this often within a long step.
PLAIN_HEARTBEAT_S = 30.0
RAMP_PHASES = frozenset({"ramp", "beyond"})


class Progress(Protocol):
    """What a run reports while it goes; `close()` (or leaving the `with`) restores the terminal."""

    def run_started(
        self,
        *,
        plan: Plan,
        profiles: Sequence[Profile],
        host: str,
        run_dir: Path,
        planned_steps: int,
    ) -> None: ...

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

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def is_interactive(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """A terminal a person watches: a tty, not CI, not a dumb terminal."""
    env = os.environ if environ is None else environ
    if env.get("CI") or env.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or the stream is closed
        return False


def make_progress(*, stream: TextIO | None = None, force_plain: bool | None = None) -> Progress:
    """The live view on an interactive terminal, plain lines otherwise.

    `force_plain` True always gives plain lines; False always gives the live view (the stream is
    then treated as a terminal); None decides from the stream and the environment.
    """
    out = sys.stdout if stream is None else stream
    plain = not is_interactive(out) if force_plain is None else force_plain
    if plain:
        return PlainProgress(stream)
    return RichProgress(Console(file=stream, force_terminal=True if force_plain is False else None))


# ---------------------------------------------------------------------------------------------
# Formatting shared by both views


def _num(x: float) -> str:
    """A load or multiplier without float noise: 120, 37.5, 2.25."""
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.4g}" if abs(x) < 10_000 else f"{x:.0f}"


def _ms(x: float) -> str:
    return f"{x:.1f}" if x < 10 else f"{x:.0f}"


def _duration(seconds: float) -> str:
    """m:ss, or h:mm:ss from an hour."""
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _ordered(order: Sequence[str], present: Iterable[str]) -> list[str]:
    """Segments in the profiles' order, then any others the step measured."""
    names = list(order)
    names.extend(n for n in present if n not in names)
    return names


@dataclass(frozen=True)
class _ActiveStep:
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


def _started_line(step: _ActiveStep) -> str:
    return (
        f"step {step.index + 1}: {_num(step.multiplier)}X = {_num(step.load)} {step.unit} "
        f"({step.phase}, {step.warmup_s:g}s warm-up + {step.hold_s:g}s measured)"
    )


def _segment_parts(
    result: StepResult, verdicts: Mapping[str, SegmentVerdict], order: Sequence[str]
) -> list[tuple[str, str, str]]:
    """(numbers, flag, flag style) per segment: flag "!criterion" failed, "?" untrusted."""
    parts = []
    for name in _ordered(order, result.segments):
        seg = result.segments.get(name)
        if seg is None:
            continue
        p95 = "-" if seg.p95_ms is None else f"{_ms(seg.p95_ms)}ms"
        verdict = verdicts.get(name)
        flag, style = "", ""
        if verdict is not None and verdict.passed is False:
            flag, style = f" !{verdict.criterion or 'failed'}", "bold red"
        elif verdict is not None and verdict.passed is None:
            flag, style = " ?", "yellow"
        parts.append((f"{name} p95 {p95} err {seg.error_rate:.1%}", flag, style))
    return parts


def _finished_head(result: StepResult, unit: str) -> str:
    partial = ", partial" if result.partial else ""
    return (
        f"  step {result.index + 1} done: {_num(result.multiplier)}X = {_num(result.load)} "
        f"{unit}, {result.measured_s:.0f}s measured{partial}: "
    )


def finished_line(
    result: StepResult,
    verdicts: Mapping[str, SegmentVerdict],
    order: Sequence[str] = (),
    unit: str = "",
) -> str:
    """One line for a finished step: each segment's p95 and error rate, flagged when it failed."""
    parts = _segment_parts(result, verdicts, order)
    return _finished_head(result, unit) + "; ".join(text + flag for text, flag, _ in parts)


def _run_line(
    plan: Plan, profiles: Sequence[Profile], host: str, run_dir: Path, planned_steps: int
) -> str:
    names = ", ".join(p.name for p in profiles)
    step_s = plan.warmup_s + plan.hold_s
    return (
        f"breakpoint: {len(profiles)} segment(s) ({names}) against {host}, {plan.model} model; "
        f"{planned_steps} ramp steps of {step_s:g}s "
        f"(at least {_duration(planned_steps * step_s)}); run folder {run_dir}"
    )


class _RunState:
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
        self.step: _ActiveStep | None = None
        self.unit = ""

    def start_run(
        self,
        plan: Plan,
        profiles: Sequence[Profile],
        host: str,
        run_dir: Path,
        planned_steps: int,
        now: float,
    ) -> None:
        self.plan = plan
        self.order = [p.name for p in profiles]
        self.slos = {p.name: p.slo for p in profiles}
        self.host = host
        self.run_dir = run_dir
        self.planned_steps = planned_steps
        self.run_started_at = now
        self.unit = plan.unit

    def start_step(self, step: _ActiveStep) -> None:
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
        return max(0, self.planned_steps - self.ramp_started)

    def run_left_s(self, now: float) -> float:
        """At least this much: the current step's rest and the ramp steps not yet started."""
        if self.plan is not None:
            step_s = self.plan.warmup_s + self.plan.hold_s
        else:
            step_s = self.step.duration_s if self.step is not None else 0.0
        return self.step_left_s(now) + self.ramp_steps_left() * step_s


# ---------------------------------------------------------------------------------------------
# Plain lines


class PlainProgress:
    """One flushed line per event; nothing per tick except a line every 30 s of a long step."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream  # None: sys.stdout at the time of each write
        self._run = _RunState()
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
    ) -> None:
        self._run.start_run(plan, profiles, host, run_dir, planned_steps, time.time())
        self._line(_run_line(plan, profiles, host, run_dir, planned_steps))

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
        step = _ActiveStep(index, multiplier, load, unit, phase, warmup_s, hold_s, started_at)
        self._run.start_step(step)
        self._last_line_at = started_at
        self._line(_started_line(step))

    def tick(self, *, now: float, step: StepResult) -> None:
        active = self._run.step
        if active is None or now - self._last_line_at < PLAIN_HEARTBEAT_S:
            return
        self._last_line_at = now
        elapsed = now - active.started_at
        where = " (warm-up)" if elapsed < active.warmup_s else ""
        parts = _segment_parts(step, {}, self._run.order)
        self._line(
            f"  step {active.index + 1} at {_duration(elapsed)} of "
            f"{_duration(active.duration_s)}{where}: " + "; ".join(text for text, _, _ in parts)
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

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# The rich live panel


def _level(value: float, limit: float) -> tuple[str, str]:
    """(style, prefix) of a value against its SLO: red and "! " over, yellow near, green under."""
    if value > limit:
        return "bold red", "! "
    if limit > 0 and value >= NEAR_SLO_FRACTION * limit:
        return "yellow", ""
    return "green", ""


def _health_style(value: float, near: float, bound: float) -> str:
    if value >= bound:
        return "bold red"
    return "bold yellow" if value >= near else ""


class RichProgress:
    """A rich Live panel redrawn from the run's calls, with finished steps printed above it.

    Use as a context manager or call `close()` (idempotent) so the terminal is restored whatever
    happens; after `run_finished` or `close` everything is printed as plain lines.
    """

    def __init__(
        self, console: Console | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.console = console if console is not None else Console()
        self._clock = clock
        self._run = _RunState()
        # Transient: when the run ends the panel goes, and the finished-step lines printed above
        # it stay, so what follows (report path, run folder) is the last output.
        self._live = Live(
            console=self.console, auto_refresh=False, transient=True, vertical_overflow="visible"
        )
        self._closed = False
        self._last_refresh = -float("inf")
        self._now = clock()
        self._provisional: StepResult | None = None
        self._health: tuple[float, float, float] | None = None
        self._last: tuple[StepResult, Mapping[str, SegmentVerdict]] | None = None

    @property
    def live(self) -> bool:
        """Whether the panel is on screen."""
        return self._live.is_started

    # -- the Progress calls

    def run_started(
        self,
        *,
        plan: Plan,
        profiles: Sequence[Profile],
        host: str,
        run_dir: Path,
        planned_steps: int,
    ) -> None:
        self._now = self._clock()
        self._run.start_run(plan, profiles, host, run_dir, planned_steps, self._now)
        self._print(Text(_run_line(plan, profiles, host, run_dir, planned_steps), style="dim"))
        self._refresh(force=True)

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
        step = _ActiveStep(index, multiplier, load, unit, phase, warmup_s, hold_s, started_at)
        self._run.start_step(step)
        self._provisional = None
        self._now = max(self._now, started_at)
        if self._closed:
            self._print(Text(_started_line(step)))
        self._refresh()

    def tick(self, *, now: float, step: StepResult) -> None:
        self._now = now
        self._provisional = step
        self._refresh()

    def health(self, *, cpu_pct: float, loop_lag_ms: float, schedule_lag_ms: float) -> None:
        self._health = (cpu_pct, loop_lag_ms, schedule_lag_ms)
        self._now = max(self._now, self._clock())
        self._refresh()

    def step_finished(self, *, result: StepResult, verdicts: Mapping[str, SegmentVerdict]) -> None:
        self._run.finished += 1
        self._last = (result, verdicts)
        line = Text(_finished_head(result, self._run.unit))
        for i, (text, flag, style) in enumerate(_segment_parts(result, verdicts, self._run.order)):
            line.append("; " if i else "")
            line.append(text)
            line.append(flag, style=style)
        self._print(line)
        self._refresh()

    def warn(self, message: str) -> None:
        self._print(Text(f"warning: {message}", style="bold yellow"))

    def info(self, message: str) -> None:
        self._print(Text(message))

    def run_finished(self, *, status: str, run_dir: Path) -> None:
        if self._closed:
            return
        self.close()
        self._print(Text(f"run {status}: {self._run.finished} step(s) measured"))

    def close(self) -> None:
        """Take the panel off the screen and restore the terminal; safe to call again."""
        self._closed = True
        if self._live.is_started:
            self._live.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- drawing

    def _print(self, line: Text) -> None:
        # Above the panel while it is on screen (rich keeps it below); plain afterwards.
        self.console.print(line, soft_wrap=True)

    def _refresh(self, *, force: bool = False) -> None:
        if self._closed:
            return
        now = self._clock()
        if not force and now - self._last_refresh < MIN_REFRESH_INTERVAL_S:
            return  # the next tick or health call draws it
        self._last_refresh = now
        self._live.update(self.render(), refresh=False)
        if not self._live.is_started:
            self._live.start()
        self._live.refresh()

    def render(self) -> RenderableType:
        """The panel as it stands (also what tests look at)."""
        run = self._run
        rows: list[RenderableType] = []
        step = run.step
        if step is None:
            rows.append(Text("waiting for the first step", style="dim"))
        else:
            rows.append(self._step_header(step))
            rows.append(self._timing(step))
        rows.append(self._segment_table())
        rows.append(self._generator_line())
        title = Text("breakpoint", style="bold")
        if run.host:
            title.append(" → ")
            title.append(run.host)
        return Panel(Group(*rows), title=title, title_align="left")

    def _step_header(self, step: _ActiveStep) -> Text:
        elapsed = self._now - step.started_at
        stage = (
            Text("warm-up (not measured)", style="dim")
            if elapsed < step.warmup_s
            else Text("measuring", style="cyan")
        )
        head = Text(f"step {step.index + 1}", style="bold")
        head.append(f" · {_num(step.multiplier)}X", style="bold")
        head.append(f" = {_num(step.load)} {step.unit} · {step.phase} · ")
        head.append_text(stage)
        return head

    def _timing(self, step: _ActiveStep) -> Text:
        run = self._run
        now = self._now
        elapsed = max(0.0, now - step.started_at)
        run_elapsed = max(0.0, now - (run.run_started_at or step.started_at))
        ramp_left = run.ramp_steps_left()
        more = f" ({ramp_left} ramp step(s) to go)" if ramp_left else ""
        return Text(
            f"step {_duration(elapsed)} elapsed, {_duration(run.step_left_s(now))} left   "
            f"run {_duration(run_elapsed)} elapsed, at least "
            f"{_duration(run.run_left_s(now))} left{more}",
            style="dim",
        )

    def _segment_table(self) -> Table:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
        for header in ("segment", "p95 now", "p95 SLO", "errors", "error SLO", "requests"):
            table.add_column(header, justify="left" if header == "segment" else "right")
        table.add_column("last step")
        step = self._provisional
        present = step.segments if step is not None else {}
        last_verdicts: Mapping[str, SegmentVerdict] = self._last[1] if self._last else {}
        for name in _ordered(self._run.order, present):
            slo = self._run.slos.get(name)
            seg = present.get(name)
            p95_cell, err_cell, req_cell = Text("-", style="dim"), Text("-", style="dim"), Text("")
            if seg is not None:
                if seg.p95_ms is not None:
                    style, mark = _level(seg.p95_ms, slo.p95_ms) if slo else ("", "")
                    p95_cell = Text(f"{mark}{_ms(seg.p95_ms)} ms", style=style)
                style, mark = _level(seg.error_rate, slo.error_rate) if slo else ("", "")
                err_cell = Text(f"{mark}{seg.error_rate:.1%}", style=style)
                req_cell = Text(f"{seg.requests:,}")
            table.add_row(
                Text(name),  # a Text, never markup: a segment name is shown as written
                p95_cell,
                Text(f"{slo.p95_ms:g} ms" if slo else "-", style="dim"),
                err_cell,
                Text(f"{slo.error_rate:.1%}" if slo else "-", style="dim"),
                req_cell,
                self._verdict_cell(last_verdicts.get(name)),
            )
        return table

    def _verdict_cell(self, verdict: SegmentVerdict | None) -> Text:
        if verdict is None or self._last is None:
            return Text("")
        at = f"{_num(self._last[0].multiplier)}X"
        if verdict.passed is True:
            return Text(f"held at {at}", style="green")
        if verdict.passed is False:
            return Text(f"! {verdict.criterion or 'failed'} at {at}", style="bold red")
        return Text(f"? untrusted at {at}", style="yellow")

    def _generator_line(self) -> Text:
        if self._health is not None:
            cpu, loop_lag, sched_lag = self._health
        elif self._provisional is not None:
            g = self._provisional.generator
            cpu, loop_lag, sched_lag = g.cpu_pct_max, g.loop_lag_p99_ms, g.schedule_lag_p99_ms
        else:
            return Text("generator: no samples yet", style="dim")
        line = Text("generator  ")
        line.append(f"CPU {cpu:.0f}%", style=_health_style(cpu, CPU_NEAR_PCT, CPU_BOUND_PCT))
        line.append("   ")
        line.append(
            f"loop lag {_ms(loop_lag)} ms", style=_health_style(loop_lag, LAG_NEAR_MS, LAG_BOUND_MS)
        )
        line.append("   ")
        line.append(
            f"schedule lag {_ms(sched_lag)} ms",
            style=_health_style(sched_lag, LAG_NEAR_MS, LAG_BOUND_MS),
        )
        if cpu >= CPU_NEAR_PCT or max(loop_lag, sched_lag) >= LAG_NEAR_MS:
            line.append("   near the generator's limit", style="bold yellow")
        return line

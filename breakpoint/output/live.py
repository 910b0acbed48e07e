"""The live view of a run: what an interactive terminal shows while load is applied.

The run reports to a `Progress` sink; `make_progress()` picks one of two: `RichProgress` here, a
rich Live panel (current step, per-segment p95 and errors against their SLOs, generator health,
time left), or `plain.PlainProgress`, short lines for CI logs, pipes and dumb terminals. The panel
has no refresh thread: the load generator shares this process under gevent, so it is redrawn only
from the run's own calls, at most 4 times a second. Imports no locust.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self, TextIO

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from breakpoint.output.plain import PlainProgress
from breakpoint.output.progress_text import (
    ActiveStep,
    ClosingView,
    RunState,
    duration,
    finished_head,
    millis,
    number,
    ordered,
    phase_countdown,
    run_line,
    segment_parts,
    started_line,
)
from breakpoint.progress import Progress as RunProgress

if TYPE_CHECKING:
    from breakpoint.analysis.criteria import SegmentVerdict
    from breakpoint.plan.profiles import Profile
    from breakpoint.plan.steps import Plan, PlannedStep
    from breakpoint.results import StepResult

# A value within this fraction of its SLO (but not over it) is shown in yellow.
NEAR_SLO_FRACTION = 0.8
# Generator health is highlighted when near the limits at which load/health.py marks a step
# generator-bound (CPU 90%, lags 100 ms). Repeated here: output may not import load.
CPU_NEAR_PCT = 80.0
CPU_BOUND_PCT = 90.0
LAG_NEAR_MS = 50.0
LAG_BOUND_MS = 100.0
# Redraw at most this often; the run calls tick/health about once a second.
MIN_REFRESH_INTERVAL_S = 0.25


class Progress(RunProgress, Protocol):
    """A view of the run's events; `close()` (or leaving the `with`) restores the terminal."""

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


class RichProgress(ClosingView):
    """A rich Live panel redrawn from the run's calls, with finished steps printed above it.

    Use as a context manager or call `close()` (idempotent) so the terminal is restored whatever
    happens; after `run_finished` or `close` everything is printed as plain lines.
    """

    def __init__(
        self, console: Console | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.console = console if console is not None else Console()
        self._clock = clock
        self._run = RunState()
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
        phases: Sequence[PlannedStep] = (),
    ) -> None:
        self._now = self._clock()
        self._run.start_run(plan, profiles, host, run_dir, planned_steps, phases, self._now)
        line = run_line(plan, profiles, host, run_dir, planned_steps, phases)
        self._print(Text(line, style="dim"))
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
        step = ActiveStep(index, multiplier, load, unit, phase, warmup_s, hold_s, started_at)
        self._run.start_step(step)
        self._provisional = None
        self._now = max(self._now, started_at)
        if self._closed:
            self._print(Text(started_line(step)))
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
        line = Text(finished_head(result, self._run.unit))
        for i, (text, flag, style) in enumerate(segment_parts(result, verdicts, self._run.order)):
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

    def _step_header(self, step: ActiveStep) -> Text:
        elapsed = self._now - step.started_at
        stage = (
            Text("warm-up (not measured)", style="dim")
            if elapsed < step.warmup_s
            else Text("measuring", style="cyan")
        )
        head = Text(f"step {step.index + 1}", style="bold")
        head.append(f" · {number(step.multiplier)}X", style="bold")
        head.append(f" = {number(step.load)} {step.unit} · {step.phase} · ")
        head.append_text(stage)
        countdown = phase_countdown(step, self._now)
        if countdown:
            head.append(f" · {countdown}", style="bold magenta")
        return head

    def _timing(self, step: ActiveStep) -> Text:
        run = self._run
        now = self._now
        elapsed = max(0.0, now - step.started_at)
        run_elapsed = max(0.0, now - (run.run_started_at or step.started_at))
        ramp_left = run.ramp_steps_left()
        more = f" ({ramp_left} ramp step(s) to go)" if ramp_left else ""
        return Text(
            f"step {duration(elapsed)} elapsed, {duration(run.step_left_s(now))} left   "
            f"run {duration(run_elapsed)} elapsed, at least "
            f"{duration(run.run_left_s(now))} left{more}",
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
        for name in ordered(self._run.order, present):
            slo = self._run.slos.get(name)
            seg = present.get(name)
            p95_cell, err_cell, req_cell = Text("-", style="dim"), Text("-", style="dim"), Text("")
            if seg is not None:
                if seg.p95_ms is not None:
                    style, mark = _level(seg.p95_ms, slo.p95_ms) if slo else ("", "")
                    p95_cell = Text(f"{mark}{millis(seg.p95_ms)} ms", style=style)
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
        at = f"{number(self._last[0].multiplier)}X"
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
            f"loop lag {millis(loop_lag)} ms",
            style=_health_style(loop_lag, LAG_NEAR_MS, LAG_BOUND_MS),
        )
        line.append("   ")
        line.append(
            f"schedule lag {millis(sched_lag)} ms",
            style=_health_style(sched_lag, LAG_NEAR_MS, LAG_BOUND_MS),
        )
        if cpu >= CPU_NEAR_PCT or max(loop_lag, sched_lag) >= LAG_NEAR_MS:
            line.append("   near the generator's limit", style="bold yellow")
        return line

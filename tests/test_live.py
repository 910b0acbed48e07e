"""The live view: plain lines for CI, the rich panel for a terminal, and choosing between them."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest
from rich.console import Console

from breakpoint.analysis.criteria import SegmentVerdict
from breakpoint.output.live import MIN_REFRESH_INTERVAL_S, Progress, RichProgress, make_progress
from breakpoint.output.plain import PlainProgress
from breakpoint.output.progress_text import finished_line
from breakpoint.plan.profiles import Device, Network, Profile, Slo
from breakpoint.plan.steps import Plan
from breakpoint.results import GeneratorHealth, SegmentStep, StepResult

T0 = 1_700_000_000.0
RUN_DIR = Path("runs/2024-01-01-demo")
PLAN = Plan(model="open", baseline=40.0, warmup_s=5.0, hold_s=20.0)


def profile(name: str, p95_ms: float, error_rate: float = 0.01) -> Profile:
    return Profile(
        name=name,
        description=name,
        share=1.0,
        network=Network(rtt_ms=50.0, down_kbps=10_000.0, up_kbps=5_000.0),
        device=Device(),
        slo=Slo(p95_ms=p95_ms, error_rate=error_rate),
    )


def segment(name: str, p95_ms: float | None, requests: int = 1000, errors: int = 0) -> SegmentStep:
    return SegmentStep(
        segment=name,
        requests=requests,
        errors={"http_5xx": errors} if errors else {},
        offered_rps=requests / 20,
        completed_rps=requests / 20,
        p50_ms=p95_ms,
        p90_ms=p95_ms,
        p95_ms=p95_ms,
        p99_ms=p95_ms,
        max_ms=p95_ms,
        mean_ms=p95_ms,
    )


def step(*segments: SegmentStep, index: int = 2, multiplier: float = 3.0) -> StepResult:
    return StepResult(
        index=index,
        multiplier=multiplier,
        load=40.0 * multiplier,
        phase="ramp",
        started_at=T0,
        warmup_s=5.0,
        measured_s=20.0,
        segments={s.segment: s for s in segments},
        generator=GeneratorHealth(),
    )


PROFILES = [profile("3g", 600.0), profile("wifi", 500.0), profile("desktop", 300.0)]
FINAL = step(
    segment("3g", 812.0), segment("wifi", 450.0, errors=3), segment("desktop", 120.0, requests=12)
)
VERDICTS = {
    "3g": SegmentVerdict(False, "latency", "p95 812 ms > SLO 600 ms"),
    "wifi": SegmentVerdict(True),
    "desktop": SegmentVerdict(None, reason="only 12 requests measured"),
}


class FakeClock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def drive(progress: Progress, clock: FakeClock | None = None) -> None:
    """A synthetic run of one step up to its finish (not run_finished)."""
    progress.run_started(
        plan=PLAN,
        profiles=PROFILES,
        host="http://127.0.0.1:8080",
        run_dir=RUN_DIR,
        planned_steps=10,
    )
    progress.step_started(
        index=2,
        multiplier=3.0,
        load=120.0,
        unit="req/s",
        phase="ramp",
        warmup_s=5.0,
        hold_s=20.0,
        started_at=T0,
    )
    for second in (1, 2, 8):
        if clock is not None:
            clock.t = T0 + second
        progress.health(cpu_pct=85.0, loop_lag_ms=3.0, schedule_lag_ms=1.0)
        progress.tick(now=T0 + second, step=FINAL)
    progress.step_finished(result=FINAL, verdicts=VERDICTS)
    progress.warn("step 3 is generator-bound (generator CPU at 95%)")


def rich_progress() -> tuple[RichProgress, io.StringIO, FakeClock]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system="standard")
    clock = FakeClock()
    return RichProgress(console, clock=clock), out, clock


@pytest.fixture(autouse=True)
def _colour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)


def test_plain_mode_prints_one_line_per_event() -> None:
    """Plain mode writes the step start, the finished step with flags, warnings and the end."""
    out = io.StringIO()
    progress = PlainProgress(out)
    drive(progress)
    progress.run_finished(status="complete", run_dir=RUN_DIR)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("breakpoint: 3 segment(s) (3g, wifi, desktop) against http://")
    assert lines[1:] == [
        "step 3: 3X = 120 req/s (ramp, 5s warm-up + 20s measured)",
        "  step 3 done: 3X = 120 req/s, 20s measured: 3g p95 812ms err 0.0% !latency; "
        "wifi p95 450ms err 0.3%; desktop p95 120ms err 0.0% ?",
        "warning: step 3 is generator-bound (generator CPU at 95%)",
        "run complete: 1 step(s) measured",
    ]


def test_plain_mode_prints_a_line_every_30_s_of_a_long_step() -> None:
    """Ticks are silent in plain mode except one provisional line per 30 s of a step."""
    out = io.StringIO()
    progress = PlainProgress(out)
    progress.step_started(
        index=0,
        multiplier=1.0,
        load=40.0,
        unit="req/s",
        phase="ramp",
        warmup_s=5.0,
        hold_s=120.0,
        started_at=T0,
    )
    for second in range(1, 61):
        progress.tick(now=T0 + second, step=FINAL)
    heartbeats = out.getvalue().splitlines()[1:]
    assert heartbeats == [
        "  step 1 at 0:30 of 2:05: 3g p95 812ms err 0.0%; wifi p95 450ms err 0.3%; "
        "desktop p95 120ms err 0.0%",
        "  step 1 at 1:00 of 2:05: 3g p95 812ms err 0.0%; wifi p95 450ms err 0.3%; "
        "desktop p95 120ms err 0.0%",
    ]


def test_rich_view_shows_segments_multiplier_and_over_slo_markers() -> None:
    """The panel names every segment and the multiplier, red with "!" over SLO, yellow near it."""
    progress, out, clock = rich_progress()
    drive(progress, clock)
    clock.t += 1.0
    progress.tick(now=clock.t, step=FINAL)
    text = out.getvalue()
    progress.close()
    assert "! latency at 3X" in text, "the last finished step's verdict per segment"
    for name in ("3g", "wifi", "desktop"):
        assert name in text
    assert "3X" in text
    assert "120 req/s" in text
    assert re.search(r"\x1b\[1;31m! 812 ms", text), "p95 over its SLO: bold red with a marker"
    assert re.search(r"\x1b\[33m *450 ms\x1b", text), "p95 within 20% of its SLO: yellow"
    assert re.search(r"\x1b\[32m *120 ms\x1b", text), "p95 well under its SLO: green"
    assert re.search(r"\x1b\[1;33mCPU 85%", text), "generator CPU >= 80%: highlighted"
    assert "at least" in text
    assert "!latency" in text, "the finished step is printed above the panel"
    assert "warning: step 3 is generator-bound" in text


def test_rich_view_refreshes_at_most_four_times_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """Calls closer together than the refresh interval do not redraw the panel."""
    progress, _, clock = rich_progress()
    drive(progress, clock)
    redraws: list[float] = []
    original = progress._live.refresh

    def counting_refresh() -> None:
        redraws.append(clock.t)
        original()

    monkeypatch.setattr(progress._live, "refresh", counting_refresh)
    clock.t += 1.0
    for _ in range(20):
        progress.tick(now=clock.t, step=FINAL)
        progress.health(cpu_pct=10.0, loop_lag_ms=1.0, schedule_lag_ms=1.0)
    clock.t += MIN_REFRESH_INTERVAL_S
    progress.tick(now=clock.t, step=FINAL)
    assert len(redraws) == 2
    progress.close()


def test_run_finished_stops_the_live_display_and_is_idempotent() -> None:
    """After run_finished the panel is gone, stdout is restored and later prints come after it."""
    stdout = sys.stdout
    progress, out, clock = rich_progress()
    drive(progress, clock)
    assert progress.live
    assert sys.stdout is not stdout, "stray prints are routed above the panel while it is shown"
    progress.run_finished(status="complete", run_dir=RUN_DIR)
    assert not progress.live
    assert sys.stdout is stdout
    after = out.getvalue()
    progress.run_finished(status="complete", run_dir=RUN_DIR)
    progress.close()
    assert out.getvalue() == after
    assert "\x1b[?25h" in after, "the cursor is shown again"
    assert after.rstrip().endswith("run complete: 1 step(s) measured")
    progress.console.print("report: report.html")
    assert out.getvalue().rstrip().endswith("report: report.html")


def test_leaving_the_with_block_on_ctrl_c_restores_the_terminal() -> None:
    """A KeyboardInterrupt inside `with` still takes the panel off the screen."""
    stdout = sys.stdout
    progress, _, clock = rich_progress()
    with pytest.raises(KeyboardInterrupt), progress:
        drive(progress, clock)
        raise KeyboardInterrupt
    assert not progress.live
    assert sys.stdout is stdout


def test_markup_in_a_segment_name_is_shown_literally() -> None:
    """A segment called "[red]x[/red]" appears as written in the panel and the finished line."""
    name = "[red]x[/red]"
    progress, out, clock = rich_progress()
    progress.run_started(
        plan=PLAN, profiles=[profile(name, 500.0)], host="h", run_dir=RUN_DIR, planned_steps=3
    )
    progress.step_started(
        index=0,
        multiplier=1.0,
        load=40.0,
        unit="req/s",
        phase="ramp",
        warmup_s=5.0,
        hold_s=20.0,
        started_at=T0,
    )
    result = step(segment(name, 100.0), index=0, multiplier=1.0)
    clock.t += 1.0
    progress.tick(now=clock.t, step=result)
    progress.step_finished(result=result, verdicts={name: SegmentVerdict(True)})
    progress.close()
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    assert plain.count(name) >= 3  # run line, panel row, finished line
    assert finished_line(result, {}, [name], "req/s").endswith(f"{name} p95 100ms err 0.0%")


@pytest.mark.parametrize(
    ("stream", "env", "force_plain", "expected"),
    [
        pytest.param(FakeTty(), {}, None, RichProgress, id="tty"),
        pytest.param(FakeTty(), {"CI": "1"}, None, PlainProgress, id="tty-in-ci"),
        pytest.param(FakeTty(), {"TERM": "dumb"}, None, PlainProgress, id="dumb-terminal"),
        pytest.param(io.StringIO(), {}, None, PlainProgress, id="not-a-tty"),
        pytest.param(FakeTty(), {}, True, PlainProgress, id="forced-plain"),
        pytest.param(io.StringIO(), {"CI": "1"}, False, RichProgress, id="forced-rich"),
    ],
)
def test_make_progress_picks_plain_for_ci_and_pipes(
    monkeypatch: pytest.MonkeyPatch,
    stream: io.StringIO,
    env: dict[str, str],
    force_plain: bool | None,
    expected: type,
) -> None:
    """The live view only for a terminal outside CI, unless forced either way."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    progress = make_progress(stream=stream, force_plain=force_plain)
    assert isinstance(progress, expected)
    progress.close()

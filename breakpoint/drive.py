"""Run a plan with Locust as a library: the only place that builds Locust environments.

`execute(settings)` wires the pieces together (scenario's user classes wrapped per segment,
arrival scheduler, recorder, controller shape, generator-health sampler), runs the steps, keeps
every closed step on disk as it goes, and ends cleanly on the plan's end, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import math
import platform
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
import psutil

from . import __version__
from .arrivals import ArrivalScheduler
from .config import Plan
from .profiles import Profile, normalised_shares
from .recorder import Recorder, summarise_health
from .results import StepResult
from .scenario import load_scenario
from .shape import ActiveStep, Controller, Policy
from .store import RunWriter
from .users import wrap_user_classes

# Wait at most this long after a step closes for its in-flight requests before the record is
# final; requests still in flight then count as unfinished (errors).
DRAIN_MAX_S = 15.0


@dataclass(frozen=True)
class RunSettings:
    """Everything `breakpoint run` decided at the CLI edge."""

    scenario: Path
    host: str
    plan: Plan
    profiles: tuple[Profile, ...]
    label: str
    out_dir: Path
    emulate: bool = True
    max_users: int = 20_000
    target_info: dict[str, Any] = field(default_factory=dict)


def estimate_busy_s(profile: Profile, *, emulate: bool) -> float:
    """Rough time a user is busy per arrival (for sizing the pool; learnt from steps later)."""
    if not emulate:
        return 0.05
    n = profile.network
    transfer_s = (30 * 8) / n.down_kbps if math.isfinite(n.down_kbps) else 0.0
    return 0.05 + 3 * n.rtt_ms / 1000.0 + transfer_s


def execute(
    settings: RunSettings,
    policy: Policy,
    *,
    say: Callable[[str], None] = print,
) -> Path:
    """Run the plan against the host; return the run folder (complete or partial)."""
    from locust.env import Environment

    plan = settings.plan
    scenario = load_scenario(settings.scenario)
    profiles = list(settings.profiles)
    shares = normalised_shares(profiles)
    names = [p.name for p in profiles]
    busy = {p.name: estimate_busy_s(p, emulate=settings.emulate) for p in profiles}
    pool_weights = {name: shares[name] * busy[name] for name in names}

    writer = RunWriter(
        settings.out_dir,
        settings.label,
        {
            "model": plan.model,
            "plan": plan.to_dict(),
            "profiles": [p.as_dict() for p in profiles],
            "shares": shares,
            "scenario": {
                "path": str(settings.scenario),
                "fingerprint": scenario.fingerprint,
                "user_classes": [c.__name__ for c in scenario.user_classes],
            },
            "host": settings.host,
            "target": settings.target_info,
            "emulation": settings.emulate,
            "versions": _versions(),
            "git_rev": _git_rev(settings.scenario),
        },
    )
    recorder = Recorder(names)
    scheduler = (
        ArrivalScheduler(shares, seed=plan.seed, on_issue=recorder.iteration_offered)
        if plan.model == "open"
        else None
    )
    classes = wrap_user_classes(
        scenario.user_classes,
        profiles,
        shares,
        model=plan.model,
        hooks=recorder,
        scheduler=scheduler,
        emulate=settings.emulate,
        pool_weights=pool_weights,
        seed=plan.seed,
    )
    closed: list[StepResult] = []

    def on_step_closed(result: StepResult) -> None:
        writer.append(result, final=False)
        closed.append(result)
        gevent.spawn(_finalise, result.index, result.partial)

    def on_step_started(step: ActiveStep) -> None:
        say(
            f"step {step.index + 1}: {step.planned.multiplier:g}X = {step.load:g} {plan.unit} "
            f"({step.planned.phase}, {step.planned.warmup_s:g}s warm-up + "
            f"{step.planned.hold_s:g}s measured)"
        )

    controller = Controller(
        plan=plan,
        policy=policy,
        recorder=recorder,
        scheduler=scheduler,
        shares=shares,
        busy_s=busy,
        pool_weights=pool_weights,
        on_step_closed=on_step_closed,
        on_step_started=on_step_started,
        max_users=settings.max_users,
    )
    finals: dict[int, StepResult] = {}

    def _finalise(index: int, partial: bool) -> None:
        deadline = time.time() + DRAIN_MAX_S
        while recorder.in_flight(index) > 0 and time.time() < deadline and not stopping_now[0]:
            gevent.sleep(0.1)
        step_samples = recorder._windows[index].health
        final = recorder.result(
            index, final=True, partial=partial, health=summarise_health(step_samples)
        )
        writer.append(final, final=True)
        finals[index] = final
        controller.replace_result(final)
        say(_progress_line(final, profiles))
        if final.generator.bound:
            say(
                f"  warning: step {index + 1} is generator-bound "
                f"({'; '.join(final.generator.reasons)}): not a breaking point of the target"
            )

    env = Environment(user_classes=classes, shape_class=controller, host=settings.host)
    env.events.request.add_listener(recorder.on_request)
    runner = env.create_local_runner()

    stopping_now = [False]

    def on_signal(signum: int) -> None:
        # First signal: close the current step as partial and write the run. Second: stop now.
        if controller.stop_reason is None and not controller.finished:
            say(
                f"{signal.Signals(signum).name}: closing the current step and writing the "
                "run (press Ctrl-C again to stop at once)"
            )
            controller.request_stop(f"interrupted ({signal.Signals(signum).name})")
        else:
            stopping_now[0] = True

    handlers = [
        gevent.signal_handler(sig, on_signal, sig) for sig in (signal.SIGINT, signal.SIGTERM)
    ]
    samplers = [gevent.spawn(_sample_cpu, recorder), gevent.spawn(_sample_loop_lag, recorder)]
    if scheduler is not None:
        samplers.append(gevent.spawn(_sample_schedule_lag, recorder, scheduler))
    interrupted = False
    try:
        runner.start_shape()
        while not controller.finished and not stopping_now[0]:
            gevent.sleep(0.2)
        interrupted = controller.stop_reason is not None and controller.stop_reason.startswith(
            "interrupted"
        )
        if scheduler is not None:
            scheduler.stop()
        # Let in-flight requests of the last step drain, then stop the users.
        grace_until = time.time() + DRAIN_MAX_S
        while len(finals) < len(closed) and time.time() < grace_until and not stopping_now[0]:
            gevent.sleep(0.1)
    finally:
        runner.quit()
        if scheduler is not None:
            scheduler.stop()
        for g in samplers:
            g.kill(block=False)
        for h in handlers:
            h.cancel()
        # Steps whose drain was cut short are finalised with what they have.
        for result in closed:
            if result.index not in finals:
                final = recorder.result(result.index, final=True, partial=result.partial)
                writer.append(final, final=True)
        status = "interrupted" if (interrupted or stopping_now[0]) else "complete"
        writer.update(
            status=status,
            stop_reason=controller.stop_reason,
            finished_at=time.time(),
            steps=len(closed),
        )
        writer.close()
    if stopping_now[0]:
        raise KeyboardInterrupt
    if interrupted:
        raise RunInterrupted(writer.path)
    return writer.path


class RunInterrupted(Exception):  # noqa: N818 - a signal, not an error
    """The run was stopped by a signal; its folder holds every step measured so far."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


def _progress_line(result: StepResult, profiles: list[Profile]) -> str:
    parts = []
    for p in profiles:
        seg = result.segments.get(p.name)
        if seg is None or seg.p95_ms is None:
            parts.append(f"{p.name} -")
            continue
        flag = "!" if seg.p95_ms > p.slo.p95_ms or seg.error_rate > p.slo.error_rate else ""
        parts.append(f"{p.name} p95 {seg.p95_ms:.0f}ms{flag} err {seg.error_rate:.1%}")
    head = (
        f"  done {result.multiplier:g}X ({result.measured_s:.0f}s measured"
        f"{', partial' if result.partial else ''}): "
    )
    return head + "; ".join(parts)


def _sample_cpu(recorder: Recorder) -> None:
    proc = psutil.Process()
    proc.cpu_percent(None)
    while True:
        gevent.sleep(1.0)
        recorder.health_sample("cpu", proc.cpu_percent(None))


def _sample_loop_lag(recorder: Recorder) -> None:
    while True:
        t0 = time.perf_counter()
        gevent.sleep(0.1)
        recorder.health_sample("loop_lag_ms", max(0.0, (time.perf_counter() - t0 - 0.1) * 1000))


def _sample_schedule_lag(recorder: Recorder, scheduler: ArrivalScheduler) -> None:
    while True:
        gevent.sleep(1.0)
        lags, scheduler.schedule_lag_s = scheduler.schedule_lag_s, []
        for lag in lags:
            recorder.health_sample("schedule_lag_ms", lag * 1000.0)


def _git_rev(near: Path) -> str | None:
    """The git revision of the repository holding the scenario, when there is one."""
    import subprocess

    try:
        done = subprocess.run(
            ["git", "-C", str(near.resolve().parent), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _versions() -> dict[str, str]:
    import locust

    return {
        "breakpoint": __version__,
        "locust": getattr(locust, "__version__", "?"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }

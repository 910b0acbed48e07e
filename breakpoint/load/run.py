"""Run a plan with Locust as a library: the only place that builds Locust environments and runners.

`execute(settings, policy)` runs a whole search in this process, or as the master of a
distributed run (local worker processes with `workers`, or remote ones with `expect_workers`);
`run_worker(settings, master_host, master_port)` is a worker. Every closed step is on disk as the
run goes; the run ends cleanly on the plan's end, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
import psutil

from breakpoint import __version__
from breakpoint.analysis.criteria import (
    AbortLimits,
    abort_reason_from_counts,
    judge_step,
    system_saturation,
)
from breakpoint.errors import BreakpointError, TargetError
from breakpoint.load.arrivals import ArrivalScheduler
from breakpoint.load.controller import ActiveStep, Controller, Policy
from breakpoint.load.distributed import RemoteSteps, WorkerAgent
from breakpoint.load.guard import HostGuard
from breakpoint.load.recorder import Recorder, stragglers_matter
from breakpoint.load.scenario import Scenario, load_scenario
from breakpoint.load.users import IterationHooks, wrap_user_classes
from breakpoint.output.live import Progress
from breakpoint.output.plain import PlainProgress
from breakpoint.plan.profiles import Profile, normalised_shares, profile_from_dict
from breakpoint.plan.steps import Plan, PlannedStep, ramp
from breakpoint.results import StepResult
from breakpoint.runs.store import RunWriter

# A closed window waits for its iterations up to the longest client timeout of the run's
# profiles plus this margin (device time, a last request started just before the deadline);
# iterations still running then count as unfinished (timeouts).
DRAIN_MARGIN_S = 5.0

WORKER_CONNECT_TIMEOUT_S = 60.0


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
    workers: int = 0  # local worker processes (0: run the users here)
    expect_workers: int = 0  # remote workers to wait for (--master)
    master_bind: str = "127.0.0.1"
    master_port: int = 5557
    abort: AbortLimits = field(default_factory=AbortLimits)
    hang_s: float = 20.0  # no completion at all for this long: the target is down
    allow_hosts: tuple[str, ...] = ()

    @property
    def distributed(self) -> bool:
        return self.workers > 0 or self.expect_workers > 0

    def to_spec(self) -> dict[str, Any]:
        """What a worker process needs to build the same user classes."""
        return {
            "scenario": str(self.scenario.resolve()),
            "host": self.host,
            "plan": self.plan.to_dict(),
            "profiles": [p.as_dict() for p in self.profiles],
            "emulate": self.emulate,
            "max_users": self.max_users,
            "allow_hosts": list(self.allow_hosts),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> RunSettings:
        return cls(
            scenario=Path(spec["scenario"]),
            host=spec["host"],
            plan=Plan.from_dict(spec["plan"]),
            profiles=tuple(profile_from_dict(p) for p in spec["profiles"]),
            label="worker",
            out_dir=Path("."),
            emulate=bool(spec["emulate"]),
            max_users=int(spec["max_users"]),
            allow_hosts=tuple(spec.get("allow_hosts", ())),
        )


def estimate_busy_s(profile: Profile, *, emulate: bool) -> float:
    """Rough time a user is busy per arrival (for sizing the pool; learnt from steps later)."""
    if not emulate:
        return 0.05
    n = profile.network
    transfer_s = (30 * 8) / n.down_kbps if math.isfinite(n.down_kbps) else 0.0
    return 0.05 + 3 * n.rtt_ms / 1000.0 + transfer_s


@dataclass(frozen=True)
class _Segments:
    scenario: Scenario
    profiles: list[Profile]
    names: list[str]
    shares: dict[str, float]
    busy: dict[str, float]
    pool_weights: dict[str, float]


def _prepare(settings: RunSettings) -> _Segments:
    scenario = load_scenario(settings.scenario)
    profiles = list(settings.profiles)
    shares = normalised_shares(profiles)
    busy = {p.name: estimate_busy_s(p, emulate=settings.emulate) for p in profiles}
    return _Segments(
        scenario,
        profiles,
        [p.name for p in profiles],
        shares,
        busy,
        {p.name: shares[p.name] * busy[p.name] for p in profiles},
    )


def _classes(
    settings: RunSettings,
    seg: _Segments,
    hooks: IterationHooks,
    scheduler: ArrivalScheduler | None,
    guard: HostGuard | None = None,
) -> list[type]:
    return wrap_user_classes(
        seg.scenario.user_classes,
        seg.profiles,
        seg.shares,
        model=settings.plan.model,
        hooks=hooks,
        scheduler=scheduler,
        emulate=settings.emulate,
        pool_weights=seg.pool_weights,
        seed=settings.plan.seed,
        guard=guard,
    )


def drain_s(profiles: list[Profile] | tuple[Profile, ...], *, emulate: bool) -> float:
    """How long a closed window waits for its iterations (see DRAIN_MARGIN_S)."""
    timeouts = [p.network.timeout_s for p in profiles if math.isfinite(p.network.timeout_s)]
    longest = max(timeouts) if emulate and timeouts else 10.0
    return longest + DRAIN_MARGIN_S


class LocalSteps:
    """The StepSource of a single-process run: the local recorder and arrival scheduler."""

    def __init__(
        self,
        recorder: Recorder,
        scheduler: ArrivalScheduler | None,
        shares: dict[str, float],
        on_final: Callable[[StepResult], None],
        drain_timeout_s: float = 15.0,
    ) -> None:
        self.recorder = recorder
        self.scheduler = scheduler
        self.shares = shares
        self.on_final = on_final
        self.drain_timeout_s = drain_timeout_s
        # The pool's cap and its current size (set once the runner exists): arrivals waiting
        # with the pool at its cap are the generator's fault whatever the target does.
        self.max_users = 1 << 30
        self.user_count: Callable[[], int] = lambda: 0
        self.stopping_now = False
        self._pending: set[int] = set()
        self._cooling: set[int] = set()
        self._awaiting: set[int] = set()  # windows whose verdict waits for their stragglers
        self._provisional: dict[int, StepResult] = {}
        self._finals: dict[int, StepResult] = {}

    def open(self, index: int, planned: PlannedStep, load: float, now: float) -> None:
        collect_garbage_now(everything=index == 0)
        self.recorder.open_step(
            index, planned.multiplier, load, planned.phase, planned.warmup_s, start=now
        )
        if self.scheduler is not None:
            self.scheduler.set_rate(load, index)

    def close(self, index: int, now: float, *, partial: bool) -> None:
        self.recorder.close_step(index, now)
        self._pending.add(index)
        gevent.spawn(self._finalise, index, partial)
        provisional = self.recorder.result(index, final=False)
        self._provisional[index] = provisional
        if _overloaded(provisional) or _backlogged(provisional, self.recorder.in_flight(index)):
            # The target could not keep up: its queue would spill into the next step and make
            # it look worse than it is. Pause arrivals until this step's requests have drained
            # (then the decision uses the final measurements too).
            self.stop_arrivals()
            self._cooling.add(index)
        elif stragglers_matter(self.recorder.in_flight_by_segment(index)):
            # Slow requests of this window are still running: the load stays at this level
            # (arrivals now belong to no window) until they finish, then the search decides.
            self._awaiting.add(index)

    def provisional(self, index: int, now: float) -> StepResult | None:
        if index in self._cooling or index in self._awaiting:
            # _finalise waits for the window's iterations, up to the drain deadline.
            return self._finals.get(index)
        return self._provisional.pop(index, None) or self._finals.get(index)

    def backlogged(self, load: float) -> bool:
        if self.scheduler is None:
            return False
        waiting = any(
            self.scheduler.backlog(name) > max(5.0, load * share * 0.5)
            for name, share in self.shares.items()
        )
        if waiting and self.user_count() >= self.max_users:
            self.recorder.pool_capped()
        return waiting

    def stop_arrivals(self) -> None:
        if self.scheduler is not None:
            self.scheduler.set_rate(0.0, -1)

    def pending(self) -> int:
        return len(self._pending)

    def _finalise(self, index: int, partial: bool) -> None:
        deadline = time.monotonic() + self.drain_timeout_s
        while (
            self.recorder.in_flight(index) > 0
            and time.monotonic() < deadline
            and not self.stopping_now
        ):
            gevent.sleep(0.1)
        final = self.recorder.result(index, final=True, partial=partial)
        self._pending.discard(index)
        self._finals[index] = final
        self.on_final(final)
        self.recorder.forget(index)


def collect_garbage_now(everything: bool = False) -> None:
    """Collect the young garbage as a step opens, then freeze whatever is alive.

    With thousands of users the collector's automatic full passes paused the whole generator
    for 100-300 ms in the middle of measured windows (seen in the demo). Frozen objects are left
    out of every later pass, so each step's opening freezes what is alive (above all the users
    spawned so far): automatic passes then only scan what is new. Nothing here may pause for
    long either: when a step opens, the previous step's slow requests are still in flight and
    being timed. Unfreezing to collect everything paused 100-200 ms with 1,500 users, and even a
    full pass over what is not yet frozen scans every user spawned since the last step (50-130
    ms the step after they were). So only the young generations are collected (about a
    millisecond) before freezing. Garbage already in the old generation is frozen with the rest:
    under load the old full passes found a few hundred unreachable objects per run
    (benchmarks/measurement.py). With `everything` (a run's first step, before any request) all
    is unfrozen and collected, so that runs in one process do not pile up frozen garbage.
    """
    if everything:
        gc.unfreeze()
        gc.collect()
    else:
        gc.collect(1)
    gc.freeze()


def _overloaded(step: StepResult) -> bool:
    return system_saturation(step)[0]


def _backlogged(step: StepResult, in_flight: int) -> bool:
    """Far more iterations in flight than Little's law expects: a queue is building up.

    Short windows cannot show saturation in their throughput when iterations last longer than
    the window, but the queue left behind would still spill into the next step.
    """
    expected = sum(
        seg.offered_rps * (seg.mean_ms or 0.0) / 1000.0 for seg in step.segments.values()
    )
    return in_flight > 2 * expected + 10


def execute(
    settings: RunSettings,
    policy: Policy,
    *,
    say: Callable[[str], None] = print,
    progress: Progress | None = None,
) -> Path:
    """Run the plan against the host; return the run folder (complete or partial).

    Progress goes to `progress` (the live view or plain lines, live.make_progress); without
    one, plain lines go through `say`.
    """
    from locust.env import Environment

    view: Progress = (
        progress if progress is not None else PlainProgress(_SayStream(say))  # type: ignore[arg-type]
    )

    _quiet_locust()
    plan = settings.plan
    seg = _prepare(settings)
    writer = RunWriter(
        settings.out_dir,
        settings.label,
        {
            "model": plan.model,
            "plan": plan.to_dict(),
            "profiles": [p.as_dict() for p in seg.profiles],
            "shares": seg.shares,
            "scenario": {
                "path": str(settings.scenario),
                "fingerprint": seg.scenario.fingerprint,
                "user_classes": [c.__name__ for c in seg.scenario.user_classes],
            },
            "host": settings.host,
            "target": settings.target_info,
            "emulation": settings.emulate,
            "generator": {"workers": settings.workers or settings.expect_workers or 0},
            "versions": _versions(),
            "git_rev": _git_rev(settings.scenario),
        },
    )
    slos = {p.name: p.slo for p in seg.profiles}
    closed: list[StepResult] = []
    finals: dict[int, StepResult] = {}

    def on_final(final: StepResult) -> None:
        writer.append(final, final=True)
        finals[final.index] = final
        controller.replace_result(final)
        view.step_finished(result=final, verdicts=judge_step(final, slos))
        if final.generator.bound:
            view.warn(
                f"step {final.index + 1} is generator-bound "
                f"({'; '.join(final.generator.reasons)}): not a breaking point of the target"
            )

    def on_step_closed(result: StepResult) -> None:
        writer.append(result, final=False)
        closed.append(result)

    def on_step_started(step: ActiveStep) -> None:
        view.step_started(
            index=step.index,
            multiplier=step.planned.multiplier,
            load=step.load,
            unit=plan.unit,
            phase=step.planned.phase,
            warmup_s=step.planned.warmup_s,
            hold_s=step.planned.hold_s,
            started_at=step.started_at,
        )

    recorder = Recorder(seg.names, slow_ms=settings.abort.p99_ms)
    drain = drain_s(seg.profiles, emulate=settings.emulate)
    guard = HostGuard(settings.host, settings.allow_hosts)
    scheduler: ArrivalScheduler | None = None
    source: LocalSteps | RemoteSteps
    if settings.distributed:
        source = RemoteSteps(
            seg.names,
            model=plan.model,
            on_final=on_final,
            drain_timeout_s=drain,
            say=view.info,
        )
        source.set_shares(seg.shares)
        classes = _classes(settings, seg, IterationHooks(), None)
    else:
        if plan.model == "open":
            scheduler = ArrivalScheduler(
                seg.shares, seed=plan.seed, on_issue=recorder.iteration_offered
            )
        source = LocalSteps(recorder, scheduler, seg.shares, on_final, drain_timeout_s=drain)
        classes = _classes(settings, seg, recorder, scheduler, guard)

    controller = Controller(
        plan=plan,
        policy=policy,
        source=source,
        shares=seg.shares,
        busy_s=seg.busy,
        pool_weights=seg.pool_weights,
        on_step_closed=on_step_closed,
        on_step_started=on_step_started,
        max_users=settings.max_users,
    )
    env = Environment(user_classes=classes, shape_class=controller, host=settings.host)
    worker_procs: list[subprocess.Popen[bytes]] = []
    if isinstance(source, RemoteSteps):
        runner = env.create_master_runner(settings.master_bind, settings.master_port)
        source.attach(runner)
        if settings.workers:
            worker_procs = _spawn_local_workers(settings, writer.path, runner.server.port)
        _wait_for_workers(
            runner, settings.workers or settings.expect_workers, worker_procs, view.info
        )
    else:
        env.events.request.add_listener(recorder.on_request)
        runner = env.create_local_runner()  # type: ignore[assignment]
        if isinstance(source, LocalSteps):
            source.max_users = settings.max_users
            source.user_count = lambda: int(runner.user_count)

    stopping_now = [False]

    def on_signal(signum: int) -> None:
        # First signal: close the current step as partial and write the run. Second: stop now.
        name = signal.Signals(signum).name
        if controller.stop_reason is None and not controller.finished:
            view.info(
                f"{name}: closing the current step and writing the run "
                "(press Ctrl-C again to stop at once)"
            )
            controller.request_stop(f"interrupted ({name})")
        else:
            stopping_now[0] = True
            if isinstance(source, LocalSteps):
                source.stopping_now = True

    handlers = [gevent.signal_handler(s, on_signal, s) for s in (signal.SIGINT, signal.SIGTERM)]
    samplers = []
    if not settings.distributed:
        samplers = _start_samplers(recorder, scheduler)
        # Emulated requests end (or time out) within their profile's timeout: silence for
        # twice the longest timeout cannot be a slow client.
        hang_s = settings.hang_s
        if settings.emulate:
            hang_s = max(hang_s, 2 * max(p.network.timeout_s for p in seg.profiles))
        samplers.append(gevent.spawn(_live, view, controller, recorder, settings.abort, hang_s))
    view.run_started(
        plan=plan,
        profiles=seg.profiles,
        host=settings.host,
        run_dir=writer.path,
        planned_steps=len(ramp(plan)),
    )
    try:
        runner.start_shape()
        while not controller.finished and not stopping_now[0]:
            gevent.sleep(0.2)
            _check_workers(worker_procs, view.warn)
        # Let in-flight requests of the last steps drain before stopping the users.
        grace_until = time.time() + drain + 6
        while source.pending() and time.time() < grace_until and not stopping_now[0]:
            gevent.sleep(0.1)
    finally:
        source.stop_arrivals()
        runner.quit()
        for g in samplers:
            g.kill(block=False)
        for h in handlers:
            h.cancel()
        _stop_local_workers(worker_procs)
        # Steps whose drain was cut short are finalised with what they have.
        for result in closed:
            if result.index not in finals and not settings.distributed:
                writer.append(
                    recorder.result(result.index, final=True, partial=result.partial), final=True
                )
        interrupted = stopping_now[0] or (controller.stop_reason or "").startswith("interrupted")
        status = "interrupted" if interrupted else "complete"
        if (controller.stop_reason or "").startswith("aborted"):
            status = "aborted"
        status = "failed" if controller.failure is not None else status
        view.run_finished(status=status, run_dir=writer.path)
        writer.update(
            blocked_hosts=_blocked(guard, source),
            measurement={
                "dropped_outside": recorder.dropped_outside,
                "warmup_requests": recorder.warmup_requests,
                "drain_s": drain,
            },
            status=status,
            stop_reason=controller.stop_reason,
            finished_at=time.time(),
            steps=len(closed),
        )
        writer.close()
    if controller.failure is not None:
        raise RunFailedError(writer.path, controller.failure) from controller.failure
    if stopping_now[0]:
        raise KeyboardInterrupt
    if (controller.stop_reason or "").startswith("interrupted"):
        raise RunInterrupted(writer.path)
    return writer.path


def run_worker(
    settings: RunSettings, master_host: str, master_port: int, *, say: Callable[[str], None] = print
) -> int:
    """Be one worker of a distributed run until the master says quit."""
    from locust.env import Environment

    _quiet_locust()
    plan = settings.plan
    seg = _prepare(settings)
    recorder = Recorder(seg.names)
    scheduler = (
        ArrivalScheduler(seg.shares, seed=plan.seed, on_issue=recorder.iteration_offered)
        if plan.model == "open"
        else None
    )
    guard = HostGuard(settings.host, settings.allow_hosts)
    env = Environment(
        user_classes=_classes(settings, seg, recorder, scheduler, guard), host=settings.host
    )
    env.events.request.add_listener(recorder.on_request)
    runner = env.create_worker_runner(master_host, master_port)
    WorkerAgent(
        runner,
        recorder,
        scheduler,
        seed=plan.seed,
        drain_timeout_s=drain_s(seg.profiles, emulate=settings.emulate),
        collect_garbage=collect_garbage_now,
        guard=guard,
    )
    samplers = _start_samplers(recorder, scheduler)
    say(f"worker connected to {master_host}:{master_port}")
    try:
        runner.greenlet.join()
    finally:
        for g in samplers:
            g.kill(block=False)
        if scheduler is not None:
            scheduler.stop()
    return 0


def run_worker_spec(spec_path: Path, master_host: str, master_port: int) -> int:
    """Entry of a local worker process started by `execute` (settings from a JSON spec)."""
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    return run_worker(
        RunSettings.from_spec(spec),
        master_host,
        master_port,
        say=lambda line: print(line, flush=True),
    )


def _spawn_local_workers(
    settings: RunSettings, run_dir: Path, port: int
) -> list[subprocess.Popen[bytes]]:
    spec = run_dir / "worker-spec.json"
    spec.write_text(json.dumps(settings.to_spec()), encoding="utf-8")
    procs = []
    for i in range(settings.workers):
        log = open(run_dir / f"worker-{i + 1}.log", "wb")  # noqa: SIM115 - owned by the child
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "breakpoint",
                    "_worker",
                    "--spec",
                    str(spec),
                    "--master-host",
                    "127.0.0.1",
                    "--master-port",
                    str(port),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        )
        log.close()
    return procs


def _wait_for_workers(
    runner: Any, count: int, procs: list[subprocess.Popen[bytes]], say: Callable[[str], None]
) -> None:
    say(f"waiting for {count} worker(s) on port {runner.server.port}")
    deadline = time.time() + WORKER_CONNECT_TIMEOUT_S
    while len(runner.clients.ready) < count:
        if time.time() > deadline:
            raise TargetError(
                f"--workers: only {len(runner.clients.ready)} of {count} workers "
                f"connected within {WORKER_CONNECT_TIMEOUT_S:g} s"
            )
        for p in procs:
            if p.poll() is not None:
                raise BreakpointError(
                    f"a local worker exited early (code {p.returncode}); "
                    "see worker-*.log in the run folder"
                )
        gevent.sleep(0.2)


_reported_dead: set[int] = set()


def _check_workers(procs: list[subprocess.Popen[bytes]], warn: Callable[[str], None]) -> None:
    for p in procs:
        if p.poll() is not None and p.pid not in _reported_dead:
            _reported_dead.add(p.pid)
            warn(
                f"worker process {p.pid} exited (code {p.returncode}); the run goes on "
                "with the others and the step is marked untrusted"
            )


def _stop_local_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class RunFailedError(BreakpointError):
    """The controller failed; the run folder keeps every step measured before."""

    def __init__(self, path: Path, cause: BaseException) -> None:
        super().__init__(
            f"the run failed ({type(cause).__name__}: {cause}); the steps measured "
            f"so far are in {path} (`breakpoint report {path}` renders them)"
        )
        self.path = path


class RunInterrupted(Exception):  # noqa: N818 - a signal, not an error
    """The run was stopped by a signal; its folder holds every step measured so far."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


def _blocked(guard: HostGuard, source: object) -> dict[str, int]:
    """Requests the allow-list blocked, here and (distributed) on the workers."""
    total = dict(guard.blocked)
    for host, n in getattr(source, "blocked", {}).items():
        total[host] = total.get(host, 0) + n
    return total


class _SayStream:
    """A text stream that hands complete lines to a `say` callback (for PlainProgress)."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say
        self._buffer = ""

    def write(self, text: str) -> int:
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            self._say(line)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def _live(
    view: Progress, controller: Controller, recorder: Recorder, limits: AbortLimits, hang_s: float
) -> None:
    """Once a second: feed the progress view, and stop the ramp if the target is clearly down.

    Down means the abort limits were crossed for their duration, or no request at all completed
    for `hang_s` while arrivals were being sent (a hanging target).
    """
    while True:
        gevent.sleep(1.0)
        active = controller.active
        if active is not None and active.closed_at is None:
            try:
                step = recorder.result(active.index, final=False)
            except KeyError:
                continue
            view.tick(now=time.time(), step=step)
        if controller.active is not None:
            # Judged on wall-clock seconds across steps: short steps and scouts count too.
            why = abort_reason_from_counts(
                *recorder.recent_totals(limits.for_s, limits.settle_s), limits
            )
            silent_s = time.time() - recorder.last_completion_at
            waiting = any(recorder.in_flight(s.index) for s in [controller.active] if s)
            if why is None and waiting and silent_s > hang_s:
                why = f"no request completed for {silent_s:.0f} s: the target is not answering"
            if why is not None and controller.stop_reason is None:
                view.warn(f"aborting the ramp: {why}")
                controller.request_stop(f"aborted: {why}")
        view.health(**recorder.latest_health())


def _start_samplers(recorder: Recorder, scheduler: ArrivalScheduler | None) -> list[Any]:
    samplers = [gevent.spawn(_sample_cpu, recorder), gevent.spawn(_sample_loop_lag, recorder)]
    if scheduler is not None:
        samplers.append(gevent.spawn(_sample_schedule_lag, recorder, scheduler))
    return samplers


def _sample_cpu(recorder: Recorder) -> None:
    proc = psutil.Process()
    proc.cpu_percent(None)
    while True:
        started = time.time()
        gevent.sleep(1.0)
        # Attributed to the second it measured, so warm-up seconds stay out of the window.
        recorder.health_sample("cpu", proc.cpu_percent(None), at=started)


def _sample_loop_lag(recorder: Recorder) -> None:
    while True:
        started, t0 = time.time(), time.perf_counter()
        gevent.sleep(0.1)
        lag_ms = max(0.0, (time.perf_counter() - t0 - 0.1) * 1000)
        recorder.health_sample("loop_lag_ms", lag_ms, at=started)


def _sample_schedule_lag(recorder: Recorder, scheduler: ArrivalScheduler) -> None:
    while True:
        gevent.sleep(1.0)
        lags, scheduler.schedule_lag_s = scheduler.schedule_lag_s, []
        for at, lag in lags:
            recorder.health_sample("schedule_lag_ms", lag * 1000.0, at=at)


def _quiet_locust() -> None:
    """Locust's own log lines (spawn-rate advice, worker chatter) would drown the run's output;
    its errors still show."""
    import logging

    logging.getLogger("locust").setLevel(logging.ERROR)
    # A blocked request is counted and reported once in the summary; Locust would log a full
    # traceback for each one (it raises inside the scenario's task).
    for name in ("locust.user.task", "locust.user.users"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _BlockedFilter) for f in log.filters):
            log.addFilter(_BlockedFilter())


class _BlockedFilter:
    def filter(self, record: Any) -> bool:
        return "BlockedHostError" not in record.getMessage()


def _git_rev(near: Path) -> str | None:
    """The git revision of the repository holding the scenario, when there is one."""
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
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def _versions() -> dict[str, str]:
    import locust

    return {
        "breakpoint": __version__,
        "locust": getattr(locust, "__version__", "?"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }

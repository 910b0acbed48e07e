"""Run a plan with Locust as a library: the only place that builds the run's Locust environment.

`execute(settings, policy)` runs a whole search in this process, or as the master of a
distributed run (local worker processes with `workers`, or remote ones with `expect_workers`;
a worker is workers.run_worker). Every closed step is on disk as the run goes; the run ends
cleanly on the plan's end, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent

from breakpoint.analysis.criteria import judge_step
from breakpoint.load.arrivals import ArrivalScheduler
from breakpoint.load.controller import ActiveStep, Controller, Policy
from breakpoint.load.crashes import ScenarioCrashes
from breakpoint.load.distributed import RemoteSteps
from breakpoint.load.guard import HostGuard, blocked_totals, guarding_sessions
from breakpoint.load.local import LocalSteps
from breakpoint.load.outcomes import (
    RunFailedError,
    RunInterrupted,
    ScenarioFailedError,
    WorkersLostError,
)
from breakpoint.load.process import quiet_locust
from breakpoint.load.progress import SayProgress
from breakpoint.load.provenance import run_info
from breakpoint.load.recorder import Recorder
from breakpoint.load.samplers import start_samplers, watch_run
from breakpoint.load.scrape import MetricsScraper
from breakpoint.load.settings import (
    RunSettings,
    drain_s,
    segments_of,
    timeouts_of,
    user_classes,
)
from breakpoint.load.users import IterationHooks, measured_requests
from breakpoint.load.vitals import REPORT_EVERY_S
from breakpoint.load.workers import (
    check_workers,
    spawn_local_workers,
    stop_local_workers,
    wait_for_workers,
)
from breakpoint.load.writer import RunWriter
from breakpoint.plan.steps import PlannedStep, ramp
from breakpoint.progress import Progress
from breakpoint.results import StepResult


def execute(
    settings: RunSettings,
    policy: Policy,
    *,
    say: Callable[[str], None] = print,
    progress: Progress | None = None,
) -> Path:
    """Run the plan against the host; return the run folder (complete or partial).

    Progress goes to `progress` (the live view or plain lines, output.live.make_progress);
    without one, short lines go through `say`.
    """
    view: Progress = progress if progress is not None else SayProgress(say)
    quiet_locust()
    run = _Run(settings, policy, view)
    with guarding_sessions(run.guard):
        run.connect()
        run.drive()
    return run.outcome()


class _Run:
    """One run of `execute`: its writer, step source, controller and Locust runner."""

    def __init__(self, settings: RunSettings, policy: Policy, view: Progress) -> None:
        self.settings = settings
        self.view = view
        self.seg = segments_of(settings)
        self.processes = max(1, settings.workers or settings.expect_workers)  # running users
        self.writer = RunWriter(settings.out_dir, settings.label, run_info(settings, self.seg))
        self.slos = {p.name: p.slo for p in self.seg.profiles}
        self.closed: list[StepResult] = []
        self.finals: dict[int, StepResult] = {}
        self.recorder = Recorder(
            self.seg.names, slow_ms=settings.abort.p99_ms, timeouts_s=timeouts_of(self.seg.profiles)
        )
        self.drain = drain_s(self.seg.profiles, emulate=settings.emulate)
        self.guard = HostGuard(settings.host, settings.allow_hosts)
        self.crashes = ScenarioCrashes(settings.scenario)
        self.not_emulated: set[str] = set()
        self.scheduler: ArrivalScheduler | None = None
        self.source: LocalSteps | RemoteSteps = self._source()
        self.controller = Controller(
            plan=settings.plan,
            policy=policy,
            source=self.source,
            shares=self.seg.shares,
            busy_s=self.seg.busy,
            pool_weights=self.seg.pool_weights,
            on_step_closed=self._on_step_closed,
            on_step_started=self._on_step_started,
            # --max-users is per process: the master's total is that times the workers.
            max_users=settings.max_users * self.processes,
            processes=self.processes,
        )
        # The server's own metrics (--metrics-url), scraped here, never on workers.
        self.scraper = MetricsScraper(settings.metrics_urls, self.writer, warn=view.warn)
        self.runner: Any = None
        self.worker_procs: list[subprocess.Popen[bytes]] = []
        self.stopping_now = False

    def _source(self) -> LocalSteps | RemoteSteps:
        """Where steps are measured: the workers (distributed) or this process."""
        settings, seg = self.settings, self.seg
        if settings.distributed:
            remote = RemoteSteps(
                seg.names,
                model=settings.plan.model,
                on_final=self._on_final,
                drain_timeout_s=self.drain,
                say=self.view.info,
            )
            remote.set_shares(seg.shares)
            return remote
        if settings.plan.model == "open":
            self.scheduler = ArrivalScheduler(
                seg.shares, seed=settings.plan.seed, on_issue=self.recorder.iteration_offered
            )
        return LocalSteps(
            self.recorder,
            self.scheduler,
            seg.shares,
            self._on_final,
            drain_timeout_s=self.drain,
            say=self.view.info,
        )

    # -- the controller's and the source's callbacks -------------------------------------------
    def _on_final(self, final: StepResult) -> None:
        self.writer.append(final, final=True)
        self.finals[final.index] = final
        self.controller.replace_result(final)
        self.view.step_finished(result=final, verdicts=judge_step(final, self.slos))
        if final.generator.bound:
            self.view.warn(
                f"step {final.index + 1} is generator-bound "
                f"({'; '.join(final.generator.reasons)}): not a breaking point of the target"
            )

    def _on_step_closed(self, result: StepResult) -> None:
        self.writer.append(result, final=False)
        self.closed.append(result)

    def _on_step_started(self, step: ActiveStep) -> None:
        self.crashes.step = step.index
        self.view.step_started(
            index=step.index,
            multiplier=step.planned.multiplier,
            load=step.load,
            unit=self.settings.plan.unit,
            phase=step.planned.phase,
            warmup_s=step.planned.warmup_s,
            hold_s=step.planned.hold_s,
            started_at=step.started_at,
        )

    def _on_signal(self, signum: int) -> None:
        # First signal: close the current step as partial and write the run. Second: stop now.
        name = signal.Signals(signum).name
        if self.controller.stop_reason is None and not self.controller.finished:
            self.view.info(
                f"{name}: closing the current step and writing the run "
                "(press Ctrl-C again to stop at once)"
            )
            self.controller.request_stop(f"interrupted ({name})")
        else:
            self.stopping_now = True
            if isinstance(self.source, LocalSteps):
                self.source.stopping_now = True

    # -- the run's phases ------------------------------------------------------------------------
    def connect(self) -> None:
        """Build the Locust environment and runner; a master waits for its workers here."""
        from locust.env import Environment

        settings, source = self.settings, self.source
        local = not isinstance(source, RemoteSteps)
        hooks = self.recorder if local else IterationHooks()
        classes = user_classes(
            settings,
            self.seg,
            hooks,
            self.scheduler,
            self.guard if local else None,
            crashes=self.crashes if local else None,
            not_emulated=self.not_emulated if settings.emulate else None,
        )
        env = Environment(
            user_classes=classes,
            shape_class=self.controller,
            host=settings.host,
            tags=None if settings.tags is None else list(settings.tags),
            exclude_tags=None if settings.exclude_tags is None else list(settings.exclude_tags),
            parsed_options=settings.locust_options(self.seg.scenario),
        )
        if isinstance(source, RemoteSteps):
            self.runner = env.create_master_runner(settings.master_bind, settings.master_port)
            source.attach(self.runner)
            if settings.workers:
                self.worker_procs = spawn_local_workers(
                    settings, self.writer.path, self.runner.server.port
                )
            wait_for_workers(
                self.runner,
                settings.workers or settings.expect_workers,
                self.worker_procs,
                self.view.info,
            )
        else:
            env.events.request.add_listener(measured_requests(self.recorder.on_request, self.guard))
            env.events.user_error.add_listener(self.crashes.on_user_error)
            runner = self.runner = env.create_local_runner()
            source.max_users = settings.max_users
            source.user_count = lambda: int(runner.user_count)

    def drive(self) -> None:
        """Walk the plan until it ends or a signal stops it, then write the run's ending."""
        signals = (signal.SIGINT, signal.SIGTERM)
        handlers = [gevent.signal_handler(s, self._on_signal, s) for s in signals]
        watchers = self._start_watchers() + self.scraper.start()
        self.view.run_started(
            plan=self.settings.plan,
            profiles=self.seg.profiles,
            host=self.settings.host,
            run_dir=self.writer.path,
            planned_steps=self._planned_steps(),
            phases=self._phases(),
        )
        try:
            self.runner.start_shape()
            while not self.controller.finished and not self.stopping_now:
                gevent.sleep(0.2)
                check_workers(self.worker_procs, self.view.warn)
                if self._workers_gone():
                    break
            # Let in-flight requests of the last steps drain before stopping the users.
            grace_until = time.time() + self.drain + 6
            while self.source.pending() and time.time() < grace_until and not self.stopping_now:
                gevent.sleep(0.1)
        finally:
            self.source.stop_arrivals()
            self.runner.quit()
            for g in watchers:
                g.kill(block=False)
            for h in handlers:
                h.cancel()
            stop_local_workers(self.worker_procs)
            self._write_ending()

    def _planned_steps(self) -> int:
        return len(ramp(self.settings.plan))

    def _phases(self) -> list[PlannedStep]:  # a surge's phases (load/surge.py)
        return []

    def _start_watchers(self) -> list[Any]:
        """Health samplers and the once-a-second watch (in this process's users only)."""
        settings, source = self.settings, self.source
        # Emulated requests end (or time out) within their profile's timeout: silence for
        # twice the longest timeout cannot be a slow client.
        hang_s = settings.hang_s
        if settings.emulate:
            hang_s = max(hang_s, 2 * max(p.network.timeout_s for p in self.seg.profiles))
        if isinstance(source, RemoteSteps):
            # The same rules on the workers' summed vital signs (load/vitals.py), which reach
            # the master with their reports: silence is judged over at least two of them.
            hang_s = max(hang_s, 2 * REPORT_EVERY_S)
            watch = gevent.spawn(
                watch_run,
                self.view,
                self.controller,
                source.vitals,
                settings.abort,
                hang_s,
            )
            return [watch, gevent.spawn(self._watch_scenario)]
        watchers = start_samplers(self.recorder, self.scheduler)
        watchers.append(
            gevent.spawn(
                watch_run,
                self.view,
                self.controller,
                self.recorder,
                settings.abort,
                hang_s,
                snapshot=lambda index: self.recorder.result(index, final=False),
            )
        )
        watchers.append(gevent.spawn(self._watch_scenario))
        return watchers

    def _workers_gone(self) -> bool:
        """Every worker of a distributed run is gone (Locust's master stops its shape then):
        end the run as failed, keeping every step already measured."""
        gone = self.source.workers_gone() if isinstance(self.source, RemoteSteps) else None
        if gone is None or self.controller.finished:
            return False
        self.view.warn(f"stopping the run: {gone}")
        self.controller.failure = self.controller.failure or WorkersLostError(gone)
        self.controller.request_stop(f"failed: {gone}")
        return True

    def _watch_scenario(self) -> None:
        """Stop the run when the scenario's own code keeps raising (crashes.py)."""
        while not self.controller.finished:
            gevent.sleep(0.5)
            reason = self.crashes.failing() or getattr(self.source, "scenario_failure", None)
            if reason is not None and self.controller.stop_reason is None:
                self.crashes.stopped_at(self.crashes.step)
                self.view.warn(f"scenario failed: {reason}")
                self.controller.request_stop(f"scenario failed: {reason}")
                return

    def _write_ending(self) -> None:
        """Finalise steps whose drain was cut short, and record how the run ended."""
        writer, recorder = self.writer, self.recorder
        for result in self.closed:
            if result.index not in self.finals and not self.settings.distributed:
                writer.append(
                    recorder.result(result.index, final=True, partial=result.partial), final=True
                )
        status = self._status()
        self.view.run_finished(status=status, run_dir=writer.path)
        writer.update(
            **({"metrics": self.scraper.stop()} if self.settings.metrics_urls else {}),
            blocked_hosts=blocked_totals(self.guard, self.source),
            reached_hosts=dict(self.guard.reached),
            scenario_errors=self._scenario_errors(),
            not_emulated=sorted(self.not_emulated | getattr(self.source, "not_emulated", set())),
            measurement={
                "dropped_outside": recorder.dropped_outside,
                "warmup_requests": recorder.warmup_requests,
                "drain_s": self.drain,
            },
            status=status,
            stop_reason=self.controller.stop_reason,
            finished_at=time.time(),
            steps=len(self.closed),
        )
        writer.close()

    def _scenario_errors(self) -> dict[str, object]:
        """crashes.as_dict(), with the workers' counts in a distributed run."""
        errors = self.crashes.as_dict()
        remote: dict[str, int] = getattr(self.source, "scenario_errors", {})
        if remote:
            errors["total"] = int(errors["total"]) + sum(remote.values())
        failure = getattr(self.source, "scenario_failure", None)
        if failure:
            errors["first"] = [failure]
        return errors

    def _status(self) -> str:
        reason = self.controller.stop_reason or ""
        if self.controller.failure is not None or reason.startswith("scenario failed"):
            return "failed"
        if reason.startswith("aborted"):
            return "aborted"
        if self.stopping_now or reason.startswith("interrupted"):
            return "interrupted"
        return "complete"

    def outcome(self) -> Path:
        """The run folder, or the exception that says how the run was cut short."""
        path = self.writer.path
        if self.controller.failure is not None:
            raise RunFailedError(path, self.controller.failure) from self.controller.failure
        reason = self.controller.stop_reason or ""
        if reason.startswith("scenario failed"):
            raise ScenarioFailedError(path, reason)
        if self.stopping_now:
            raise KeyboardInterrupt
        if (self.controller.stop_reason or "").startswith("interrupted"):
            raise RunInterrupted(path)
        return path

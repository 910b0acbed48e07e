"""Worker processes of a distributed run (docs/design.md#distributed-runs): being a worker
(`run_worker`, and `run_worker_spec` behind `python -m breakpoint _worker`), and the master's
side of local workers: spawning them, waiting for them to connect, noticing deaths, stopping.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent

from breakpoint.errors import BreakpointError, TargetError
from breakpoint.load.arrivals import ArrivalScheduler
from breakpoint.load.crashes import ScenarioCrashes
from breakpoint.load.distributed import WorkerAgent
from breakpoint.load.guard import HostGuard, guarding_sessions
from breakpoint.load.local import collect_garbage_now
from breakpoint.load.process import quiet_locust
from breakpoint.load.recorder import Recorder
from breakpoint.load.samplers import start_samplers
from breakpoint.load.settings import (
    RunSettings,
    drain_s,
    segments_of,
    timeouts_of,
    user_classes,
)
from breakpoint.load.users import measured_requests
from breakpoint.load.vitals import WorkerVitals

WORKER_CONNECT_TIMEOUT_S = 60.0
SCENARIO_OPTS_ENV = "BREAKPOINT_WORKER_SCENARIO_OPTS"


def run_worker(
    settings: RunSettings, master_host: str, master_port: int, *, say: Callable[[str], None] = print
) -> int:
    """Be one worker of a distributed run until the master says quit."""
    from locust.env import Environment

    quiet_locust()
    plan = settings.plan
    seg = segments_of(settings)
    recorder = Recorder(
        seg.names, slow_ms=settings.abort.p99_ms, timeouts_s=timeouts_of(seg.profiles)
    )
    scheduler = (
        ArrivalScheduler(seg.shares, seed=plan.seed, on_issue=recorder.iteration_offered)
        if plan.model == "open"
        else None
    )
    guard = HostGuard(settings.host, settings.allow_hosts)
    crashes = ScenarioCrashes(settings.scenario)
    not_emulated: set[str] = set()
    env = Environment(
        user_classes=user_classes(
            settings, seg, recorder, scheduler, guard, crashes=crashes, not_emulated=not_emulated
        ),
        host=settings.host,
        tags=None if settings.tags is None else list(settings.tags),
        exclude_tags=None if settings.exclude_tags is None else list(settings.exclude_tags),
        parsed_options=settings.locust_options(seg.scenario),
    )
    env.events.request.add_listener(measured_requests(recorder.on_request, guard))
    env.events.user_error.add_listener(crashes.on_user_error)
    runner = env.create_worker_runner(master_host, master_port)
    agent = WorkerAgent(
        runner,
        recorder,
        scheduler,
        seed=plan.seed,
        drain_timeout_s=drain_s(seg.profiles, emulate=settings.emulate),
        collect_garbage=collect_garbage_now,
        guard=guard,
        crashes=crashes,
        not_emulated=not_emulated,
    )
    samplers = [*start_samplers(recorder, scheduler), gevent.spawn(agent.watch_scenario)]
    vitals = WorkerVitals(
        runner,
        recorder,
        scheduler,
        max_users=settings.max_users,
        current_window=lambda: agent.current,
    )
    env.events.report_to_master.add_listener(vitals.on_report_to_master)
    say(f"worker connected to {master_host}:{master_port}")
    try:
        with guarding_sessions(guard):
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
    spec["scenario_opts"] = json.loads(os.environ.get(SCENARIO_OPTS_ENV, "[]"))
    return run_worker(
        RunSettings.from_spec(spec),
        master_host,
        master_port,
        say=lambda line: print(line, flush=True),
    )


def spawn_local_workers(
    settings: RunSettings, run_dir: Path, port: int
) -> list[subprocess.Popen[bytes]]:
    """Start `settings.workers` processes of `python -m breakpoint _worker`, logging to the run
    folder, connected to the master on 127.0.0.1:`port`."""
    spec = run_dir / "worker-spec.json"
    data = settings.to_spec()
    # The scenario's option values may be credentials: not in the run folder.
    options = json.dumps(data.pop("scenario_opts"))
    spec.write_text(json.dumps(data), encoding="utf-8")
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
                env={**os.environ, "PYTHONUNBUFFERED": "1", SCENARIO_OPTS_ENV: options},
            )
        )
        log.close()
    return procs


def wait_for_workers(
    runner: Any, count: int, procs: list[subprocess.Popen[bytes]], say: Callable[[str], None]
) -> None:
    """Until `count` workers are ready; fails when a local one exits or time runs out."""
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


def check_workers(procs: list[subprocess.Popen[bytes]], warn: Callable[[str], None]) -> None:
    """Warn once for each local worker that has exited (the run goes on without it)."""
    for p in procs:
        if p.poll() is not None and p.pid not in _reported_dead:
            _reported_dead.add(p.pid)
            warn(
                f"worker process {p.pid} exited (code {p.returncode}); the run goes on "
                "with the others and the step is marked untrusted"
            )


def stop_local_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    """Terminate the local workers, killing any that does not exit within 10 s."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

"""`breakpoint run`: drive load from 1X up and find where each segment breaks.

The only commands that import the load layer (and with it locust and gevent), and only inside
their bodies, so the other commands never monkey-patch anything. Preflight checks run in a
fixed order before any load is sent (docs/design.md#harness).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import click

from breakpoint.analysis.roadmap import AS_STORED, RoadmapAsked
from breakpoint.cli.options import (
    PlanOptions,
    check_metrics_url,
    echo,
    emulation_option,
    gathered,
    guard_options,
    metrics_option,
    options,
    out_option,
    plan_options,
    roadmap_options,
)
from breakpoint.cli.scenario_args import (
    ScenarioFlags,
    resolve_host,
    scenario_options,
    split_scenario_args,
)
from breakpoint.errors import ExitStatus, UsageError
from breakpoint.plan.steps import Plan

if TYPE_CHECKING:
    from breakpoint.load.settings import RunSettings
    from breakpoint.plan.objectives import Objective
    from breakpoint.plan.profiles import Profile


@dataclass(frozen=True)
class RunOptions:
    """What to run, against what, and where its results go."""

    scenario_args: tuple[str, ...]
    locustfile: str | None
    host: str | None
    label: str
    out_dir: Path
    no_emulation: bool
    # `surge` does not scrape: its report has no signals section (yet).
    metrics_urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class Limits:
    """Guardrails: the most users, the hosts a scenario may call, when to abort the ramp."""

    max_users: int
    allow_hosts: tuple[str, ...]
    abort_error_rate: float
    abort_p99_ms: float
    hang_s: float
    abort_for_s: int


@dataclass(frozen=True)
class Distribution:
    """How the load is spread: one process (the default), local workers, master or worker."""

    workers: int
    master: bool
    expect_workers: int | None
    master_bind: str
    worker: bool
    master_host: str | None
    master_port: int

    def check(self) -> None:
        """The modes exclude each other, and each has what it needs."""
        if sum((bool(self.workers), self.master, self.worker)) > 1:
            raise UsageError("--workers, --master and --worker: choose one way to distribute")
        if self.worker and not self.master_host:
            raise UsageError("--worker: give the master's address with --master-host HOST")
        if self.master and not self.expect_workers:
            raise UsageError("--master: say how many workers will join with --expect-workers N")


SINGLE_PROCESS = Distribution(0, False, None, "127.0.0.1", False, None, 5557)


# The options `run` shares with `surge` (cli/surge.py), declared once.
target_options = options(
    click.argument("scenario_args", metavar="SCENARIO [USERCLASS]...", nargs=-1),
    click.option(
        "-f",
        "--locustfile",
        default=None,
        help="The scenario (as Locust's -f); then every argument names a user class.",
    ),
    click.option(
        "-H",
        "--host",
        default=None,
        help="Base URL of the target, e.g. http://127.0.0.1:8089 (default: the classes' `host`).",
    ),
    scenario_options,
)

output_options = options(
    click.option(
        "--label", default="run", show_default=True, help="Run label, e.g. the release under test."
    ),
    out_option("Reports folder; the run folder is created inside it."),
)


@click.command()
@target_options
@plan_options
@roadmap_options
@output_options
@click.option(
    "--workers",
    type=click.IntRange(0, 64),
    default=0,
    show_default=True,
    help="Local Locust worker processes (0: everything in this process).",
)
@click.option(
    "--repeat",
    type=click.IntRange(1, 50),
    default=1,
    show_default=True,
    help="Run the whole search N times under the same label.",
)
@emulation_option
@metrics_option
@guard_options
@click.option(
    "--master", is_flag=True, help="Be the master of a distributed run; workers join with --worker."
)
@click.option(
    "--expect-workers",
    type=click.IntRange(1, 1024),
    default=None,
    help="With --master: how many workers to wait for before the first step.",
)
@click.option(
    "--master-bind",
    default="127.0.0.1",
    show_default=True,
    help="With --master: address to listen on for workers (0.0.0.0: all).",
)
@click.option(
    "--worker",
    is_flag=True,
    help="Be a worker of a distributed run (same scenario, host and plan options).",
)
@click.option("--master-host", default=None, help="With --worker: the master's address.")
@click.option(
    "--master-port",
    type=click.IntRange(1, 65535),
    default=5557,
    show_default=True,
    help="The master's port for workers.",
)
@gathered(
    options=RunOptions,
    planned=PlanOptions,
    limits=Limits,
    spread=Distribution,
    scenario_flags=ScenarioFlags,
    roadmap=RoadmapAsked,
)
def run(
    options: RunOptions,
    planned: PlanOptions,
    limits: Limits,
    spread: Distribution,
    scenario_flags: ScenarioFlags,
    roadmap: RoadmapAsked,
    repeat: int,
) -> None:
    """Drive load from 1X up, step by step, and find where each segment breaks."""
    split_scenario_args(options.scenario_args, options.locustfile)  # a missing one first
    the_plan = planned.plan()
    settings = prepare_settings(options, the_plan, planned, limits, scenario_flags, spread)
    from breakpoint.analysis.search import Search
    from breakpoint.load.run import RunInterrupted, ScenarioFailedError, execute
    from breakpoint.load.workers import run_worker
    from breakpoint.output.live import make_progress

    if spread.worker:
        assert spread.master_host is not None
        raise SystemExit(run_worker(settings, spread.master_host, spread.master_port, say=echo))
    for i in range(repeat):
        if repeat > 1:
            echo(f"repeat {i + 1} of {repeat}")
        # Repeats are independent searches: each draws its own arrivals.
        this = replace(settings, plan=replace(the_plan, seed=the_plan.seed + i))
        try:
            with make_progress() as view:
                search = Search.for_profiles(this.plan, this.profiles, emulate=this.emulate)
                run_dir = execute(this, search, progress=view)
        except ScenarioFailedError as failed:
            # The steps measured while the scenario worked are reported; then the error.
            publish_or_say(failed.path, roadmap)
            raise
        except RunInterrupted as stopped:
            publish_or_say(stopped.path, roadmap)
            raise SystemExit(int(ExitStatus.INTERRUPTED)) from None
        if not publish_or_say(run_dir, roadmap):
            raise SystemExit(int(ExitStatus.ERROR))


class _Profiles(Protocol):
    def profiles(
        self, *, emulation: bool = True, product_wide: Sequence[Objective] = ()
    ) -> tuple[Profile, ...]: ...


def prepare_settings(
    options: RunOptions,
    the_plan: Plan,
    chooser: _Profiles,
    limits: Limits,
    scenario_flags: ScenarioFlags,
    spread: Distribution = SINGLE_PROCESS,
) -> RunSettings:
    """Preflight, in a fixed order before any load, and the run's settings (`run`, `surge`)."""
    from breakpoint.load.preflight import check_host_url, check_store, check_target, ensure_fd_limit

    scenario_arg, class_names = split_scenario_args(options.scenario_args, options.locustfile)
    chosen = chooser.profiles(emulation=not options.no_emulation)
    if options.host:
        check_host_url(options.host)
    path = Path(scenario_arg)
    if not path.is_file():
        raise UsageError(f"{scenario_arg}: scenario file not found")
    tags, exclude_tags = scenario_flags.tag_sets()
    scenario_opts = scenario_flags.option_pairs()
    spread.check()
    metrics_urls = tuple(check_metrics_url(url) for url in options.metrics_urls)
    if not spread.worker:
        check_store(options.out_dir)
    max_users = limits.max_users
    allowed = ensure_fd_limit(max_users)
    if allowed < max_users:
        echo(
            f"note: the open-files limit allows about {allowed} users; --max-users lowered "
            f"from {max_users} (raise the hard limit with `ulimit -Hn` to allow more)"
        )
        max_users = allowed
    from breakpoint.load.scenario import load_scenario
    from breakpoint.load.scenario_options import check_tags, parsed_options

    # Imports the locustfile now: its mistakes surface before any load.
    scenario = load_scenario(path, class_names)
    host = resolve_host(options.host, scenario.hosts, scenario_arg)
    if not options.host:
        check_host_url(host)
        echo(f"target: {host} (the `host` of the scenario's user classes)")
    check_tags(scenario, tags, exclude_tags)
    parsed_options(scenario, scenario_opts, host=host, tags=tags, exclude_tags=exclude_tags)
    if scenario.shape:
        echo(
            f"note: {path.name} defines the LoadTestShape {scenario.shape}; breakpoint drives "
            "the load itself and ignores it"
        )
    check_target(host)
    from breakpoint.plan.objectives import scenario_objectives

    # The scenario's product-wide objectives (bp_objectives) under the profiles' and --objective.
    product_wide = scenario_objectives(scenario.user_classes, source=str(path))
    chosen = chooser.profiles(emulation=not options.no_emulation, product_wide=product_wide)
    from breakpoint.plan.loopback import loopback_note

    if not options.no_emulation and (note := loopback_note(host, chosen)):
        echo(f"warning: {note}")
    from breakpoint.analysis.criteria import AbortLimits
    from breakpoint.load.settings import RunSettings

    distributed = spread.master or spread.worker
    return RunSettings(
        scenario=path,
        host=host.rstrip("/"),
        plan=the_plan,
        profiles=chosen,
        label=options.label,
        out_dir=options.out_dir,
        emulate=not options.no_emulation,
        max_users=max_users,
        workers=spread.workers,
        expect_workers=spread.expect_workers or 0,
        master_bind=spread.master_bind,
        master_port=spread.master_port if distributed else 0,
        abort=AbortLimits(
            error_rate=limits.abort_error_rate, p99_ms=limits.abort_p99_ms, for_s=limits.abort_for_s
        ),
        allow_hosts=limits.allow_hosts,
        hang_s=limits.hang_s,
        user_class_names=class_names,
        tags=tags,
        exclude_tags=exclude_tags,
        scenario_opts=scenario_opts,
        metrics_urls=() if spread.worker else metrics_urls,
    )


def publish_or_say(run_dir: Path, roadmap: RoadmapAsked = AS_STORED) -> bool:
    """Write the run's report; if that fails, say how to retry. The run folder prints last."""
    from breakpoint.output.publish import publish
    from breakpoint.output.signals_view import run_lines

    try:
        report = publish(run_dir, roadmap=roadmap)
        for line in run_lines(run_dir):  # what preceded each break (--metrics-url)
            echo(f"server metrics: {line}")
        echo(f"report: {report}")
        ok = True
    except Exception as exc:  # the measurements are safe on disk whatever went wrong here
        click.echo(
            f"breakpoint: error: the report could not be written ({type(exc).__name__}: {exc}); "
            f"the steps are stored: `breakpoint report {run_dir}` retries",
            err=True,
        )
        ok = False
    echo(str(run_dir))
    return ok


@click.command("_worker", hidden=True)
@click.option("--spec", "spec_path", type=click.Path(path_type=Path), required=True)
@click.option("--master-host", required=True)
@click.option("--master-port", type=int, required=True)
def worker_process(spec_path: Path, master_host: str, master_port: int) -> None:
    """A local worker process of `run --workers N` (started by the master, not by users)."""
    from breakpoint.load.workers import run_worker_spec

    raise SystemExit(run_worker_spec(spec_path, master_host, master_port))

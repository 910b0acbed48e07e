"""The `breakpoint` command: options become frozen objects here, errors become exit codes here.

Core code raises BreakpointError; `main()` prints it as one line and returns its exit status.
Commands that only read stored runs never import locust (which monkey-patches with gevent).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import click

from breakpoint import __version__
from breakpoint.errors import BreakpointError, ConfigError, ExitStatus, UsageError
from breakpoint.plan.profiles import (
    Profile,
    builtin_profiles,
    default_profile_names,
    normalised_shares,
    resolve_profiles,
)
from breakpoint.plan.steps import Plan, ramp, worst_case_steps

DEFAULT_OUT = Path("reports")


def _echo(line: str = "") -> None:
    click.echo(line)
    sys.stdout.flush()


# -- shared options ----------------------------------------------------------------------------
def _plan_options(fn: Any) -> Any:
    options = [
        click.option(
            "--baseline-rps",
            type=float,
            default=None,
            help="1X as an arrival rate in iterations/s (open model, the default).",
        ),
        click.option(
            "--baseline-users",
            type=int,
            default=None,
            help="1X as concurrent users with the scenario's think time (closed model).",
        ),
        click.option(
            "--profiles",
            "profiles_spec",
            default=None,
            help="Comma-separated profile names or TOML paths (default: the built-in default set).",
        ),
        click.option(
            "--slo-p95-ms",
            type=float,
            default=None,
            help="Override every profile's p95 latency SLO (ms).",
        ),
        click.option(
            "--max-multiplier",
            type=float,
            default=10.0,
            show_default=True,
            help="Highest multiplier to ramp to (beyond 10X in x1.5 steps).",
        ),
        click.option(
            "--hard-cap",
            type=float,
            default=50.0,
            show_default=True,
            help="Guardrail: the highest multiplier this run may ever send.",
        ),
        click.option(
            "--warmup-s",
            type=float,
            default=5.0,
            show_default=True,
            help="Seconds discarded at the start of each step.",
        ),
        click.option(
            "--hold-s",
            type=float,
            default=20.0,
            show_default=True,
            help="Seconds measured in each step (lengthened for slow or sparse segments).",
        ),
        click.option(
            "--max-hold-s",
            type=float,
            default=120.0,
            show_default=True,
            help="The longest hold a step may be stretched to so that every segment gets "
            "enough requests for a verdict.",
        ),
        click.option(
            "--refine-levels",
            type=int,
            default=2,
            show_default=True,
            help="Extra levels between the last passing and first failing step.",
        ),
        click.option(
            "--refine-repeats",
            type=int,
            default=2,
            show_default=True,
            help="Runs of each refinement level (repeats give honest variance).",
        ),
        click.option(
            "--seed",
            type=int,
            default=1,
            show_default=True,
            help="Seed of every random choice (arrivals, jitter).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _build_plan(
    baseline_rps: float | None,
    baseline_users: int | None,
    max_multiplier: float,
    hard_cap: float,
    warmup_s: float,
    hold_s: float,
    refine_levels: int,
    refine_repeats: int,
    seed: int,
    max_hold_s: float = 120.0,
    **_: Any,
) -> Plan:
    if baseline_rps is not None and baseline_users is not None:
        raise UsageError("--baseline-rps and --baseline-users: give one (open or closed model)")
    if baseline_rps is None and baseline_users is None:
        raise UsageError(
            "give the expected normal load: --baseline-rps R (open model) or "
            "--baseline-users N (closed model)"
        )
    model: Literal["open", "closed"]
    if baseline_rps is not None:
        model, baseline = "open", baseline_rps
    else:
        assert baseline_users is not None
        model, baseline = "closed", float(baseline_users)
    try:
        return Plan(
            model=model,
            baseline=baseline,
            max_multiplier=max_multiplier,
            hard_cap_multiplier=hard_cap,
            warmup_s=warmup_s,
            hold_s=hold_s,
            refine_levels=refine_levels,
            refine_repeats=refine_repeats,
            seed=seed,
            max_hold_s=max_hold_s,
        )
    except ConfigError as exc:
        # Name the option the user typed, not the plan's field.
        options = {
            "baseline": "--baseline-rps" if model == "open" else "--baseline-users",
            "max_multiplier": "--max-multiplier",
            "hard_cap_multiplier": "--hard-cap",
        }
        field = exc.field or ""
        option = options.get(field, "--" + field.replace("_", "-"))
        message = str(exc).split(": ", 2)[-1]
        raise UsageError(f"{option}: {message}") from None


def _build_profiles(
    spec: str | None, slo_p95_ms: float | None, no_emulation: bool = False
) -> tuple[Profile, ...]:
    names = spec.split(",") if spec else default_profile_names()
    profiles = resolve_profiles(names)
    if slo_p95_ms is not None:
        if not slo_p95_ms > 0:
            raise UsageError(f"--slo-p95-ms: must be > 0, got {slo_p95_ms:g}")
        profiles = [p.with_slo_p95(slo_p95_ms) for p in profiles]
    if no_emulation:
        profiles = [p.without_emulation() for p in profiles]
    return tuple(profiles)


# -- commands ----------------------------------------------------------------------------------
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="breakpoint")
def cli() -> None:
    """Find where each user segment breaks under load, and whether a release moved it."""


@cli.command()
@click.option(
    "--workers",
    type=click.IntRange(1, 512),
    default=8,
    show_default=True,
    help="Workers serving requests (c).",
)
@click.option(
    "--service-ms",
    type=click.FloatRange(0, 60_000, min_open=True),
    default=20.0,
    show_default=True,
    help="Mean service time per request (S), exponential.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8089,
    show_default=True,
    help="Port on 127.0.0.1 (0 picks a free one).",
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--max-queue",
    type=click.IntRange(0, None),
    default=None,
    help="Answer 503 when more requests than this wait for a worker.",
)
def target(workers: int, service_ms: float, port: int, seed: int, max_queue: int | None) -> None:
    """Run the embedded demo target (an M/M/c service) on 127.0.0.1 until stopped."""
    from breakpoint.demo.target import TargetConfig, run_target

    raise SystemExit(
        run_target(
            TargetConfig(
                workers=workers,
                service_ms=service_ms,
                port=port,
                seed=seed,
                max_queue=max_queue,
            ),
            out=_echo,
        )
    )


@cli.group(invoke_without_command=True)
@click.pass_context
def profiles(ctx: click.Context) -> None:
    """List the built-in device and network profiles."""
    if ctx.invoked_subcommand is not None:
        return
    _echo(
        f"{'profile':<20} {'RTT ms':>7} {'down/up kbit/s':>15} {'loss':>5} {'CPU':>5} "
        f"{'share':>6} {'SLO p95':>8}  default"
    )
    for p in builtin_profiles().values():
        n = p.network
        _echo(
            f"{p.name:<20} {n.rtt_ms:>7g} {f'{n.down_kbps:g}/{n.up_kbps:g}':>15} "
            f"{n.loss_pct:>4g}% {p.device.cpu_slowdown:>4g}x {p.share:>6g} "
            f"{p.slo.p95_ms:>6g}ms  {'yes' if p.default else 'opt-in'}"
        )


@profiles.command("show")
@click.argument("name")
def profiles_show(name: str) -> None:
    """Show one profile (name or TOML path) with the model's predicted request times."""
    from breakpoint.plan.netmodel import describe

    profile = resolve_profiles([name], source="profiles show")[0]
    n, d = profile.network, profile.device
    _echo(f"{profile.name}: {profile.description}")
    if profile.source:
        _echo(f"  source: {profile.source}")
    _echo(
        f"  network: RTT {n.rtt_ms:g} ms, down {n.down_kbps:g} kbit/s, up {n.up_kbps:g} kbit/s,"
        f" loss {n.loss_pct:g}%, jitter {n.jitter_ms:g} ms, timeout {n.timeout_s:g} s,"
        f" {n.max_connections} connections per host, initial window "
        f"{n.initial_cwnd_segments} segments"
    )
    _echo(
        f"  device: CPU {d.cpu_slowdown:g}x, {d.base_ms:g} ms + {d.ms_per_kb:g} ms/KB per "
        "response at 1x"
    )
    _echo(f"  SLO: p95 < {profile.slo.p95_ms:g} ms, errors < {profile.slo.error_rate:.1%}")
    _echo(f"  traffic share (relative weight): {profile.share:g}")
    _echo("  predicted experienced time (server time excluded):")
    _echo(
        f"    {'response':<9}{'connection':<11}{'set-up':>8}{'request':>9}{'upload':>8}"
        f"{'download':>10}{'slow start':>11}{'loss':>7}{'device':>8}{'total':>9}"
    )
    for row in describe(profile):
        _echo(
            f"    {row['response']:<9}{row['connection']:<11}{row['setup_ms']:>6.0f}ms"
            f"{row['request_ms']:>7.0f}ms{row['upload_ms']:>6.0f}ms{row['download_ms']:>8.0f}ms"
            f"{row['slow_start_ms']:>9.0f}ms{row['loss_ms']:>5.0f}ms{row['device_ms']:>6.0f}ms"
            f"{row['total_ms']:>7.0f}ms"
        )


@cli.command()
@click.argument("scenario", required=False)
@_plan_options
def plan(
    scenario: str | None, profiles_spec: str | None, slo_p95_ms: float | None, **options: Any
) -> None:
    """Print the steps a run would take, without sending any load."""
    from breakpoint.analysis.criteria import MIN_REQUESTS
    from breakpoint.analysis.search import describe_policy, scout_of
    from breakpoint.analysis.sizing import (
        EXPECTED_REQUESTS,
        HOLD_P95_MULTIPLE,
        initial_paces,
        size_step,
    )

    the_plan = _build_plan(**options)
    chosen = _build_profiles(profiles_spec, slo_p95_ms)
    shares = normalised_shares(chosen)
    steps = ramp(the_plan)
    _echo(
        f"model: {the_plan.model} (1X = {the_plan.baseline:g} {the_plan.unit})"
        + (f", scenario {scenario}" if scenario else "")
    )
    _echo(
        "segments: "
        + ", ".join(f"{p.name} {shares[p.name]:.0%} (p95 < {p.slo.p95_ms:g} ms)" for p in chosen)
    )
    paces = initial_paces(chosen, shares, model=the_plan.model, emulate=True)
    _echo(
        f"{'step':>4} {'multiplier':>10} {'load':>12} {'warm-up':>8} {'hold':>6} {'ends at':>8}"
        f"  {'scout':>11}"
    )
    elapsed = 0.0
    notes: dict[str, None] = {}
    short: dict[str, None] = {}
    for i, step in enumerate(steps, 1):
        load = the_plan.load_at(step.multiplier)
        sized = size_step(step, load, paces, the_plan)
        scout = size_step(scout_of(step), load, paces, the_plan).step
        elapsed += sized.step.duration_s
        if sized.why:
            notes[f"{step.multiplier:g}X: {sized.why}"] = None
        for name in sized.short:
            short[name] = None
        _echo(
            f"{i:>4} {step.multiplier:>9g}X {load:>8g} "
            f"{'req/s' if the_plan.model == 'open' else 'users':<5}"
            f"{sized.step.warmup_s:>6g}s {sized.step.hold_s:>5g}s {_fmt_s(elapsed):>8}  "
            f"{f'{scout.warmup_s:g}s + {scout.hold_s:g}s':>11}  {step.phase}"
        )
    worst = worst_case_steps(the_plan, len(chosen))
    step_s = the_plan.warmup_s + the_plan.hold_s
    _echo(
        f"ramp: {len(steps)} steps, {_fmt_s(elapsed)} at full holds (scouts are shorter); "
        f"with refinement at most {worst} steps, {_fmt_s(worst * step_s)} at the plan's step "
        "length, if every segment breaks in a bracket of its own"
    )
    _echo(
        "step lengths follow the slowest segment (model times before the first step, measured "
        "ones after): warm-up at least one of its requests, hold long enough for "
        f"{EXPECTED_REQUESTS} of each segment's requests (assuming one per iteration) and "
        f"{HOLD_P95_MULTIPLE:g}x its p95, at most {the_plan.max_hold_s:g} s (--max-hold-s)"
    )
    for note in list(notes)[:4]:
        _echo(f"  {note}")
    if len(notes) > 4:
        _echo(f"  ... and {len(notes) - 4} more steps lengthened")
    if short:
        _echo(
            f"warning: {', '.join(short)} would complete fewer than {MIN_REQUESTS} requests "
            f"in a step even at --max-hold-s {the_plan.max_hold_s:g} at some levels: those "
            "levels will have no verdict for it; raise the baseline, its share or --max-hold-s"
        )
    _echo(describe_policy(the_plan))


def _fmt_s(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@cli.command()
@click.argument("scenario")
@click.option("--host", required=True, help="Base URL of the target, e.g. http://127.0.0.1:8089.")
@_plan_options
@click.option(
    "--label", default="run", show_default=True, help="Run label, e.g. the release under test."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_OUT,
    show_default=True,
    help="Reports folder; the run folder is created inside it.",
)
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
@click.option(
    "--no-emulation",
    is_flag=True,
    help="Segments without device/network emulation (for calibration).",
)
@click.option(
    "--max-users",
    type=click.IntRange(1, 200_000),
    default=20_000,
    show_default=True,
    help="Guardrail: most users this process may run.",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    help="Another host the scenario may call (repeatable); requests to any other are blocked.",
)
@click.option(
    "--abort-error-rate",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.5,
    show_default=True,
    help="Abort the ramp when errors exceed this fraction for --abort-for-s.",
)
@click.option(
    "--abort-p99-ms",
    type=click.FloatRange(0, None, min_open=True),
    default=30_000,
    show_default=True,
    help="Abort the ramp when p99 exceeds this for --abort-for-s.",
)
@click.option(
    "--hang-s",
    type=click.FloatRange(1, 3600),
    default=20.0,
    show_default=True,
    help="Abort when no request completes for this long while some are in flight.",
)
@click.option(
    "--abort-for-s",
    type=click.IntRange(1, 3600),
    default=10,
    show_default=True,
    help="How long an abort limit must be crossed before the ramp stops.",
)
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
def run(
    scenario: str,
    host: str,
    profiles_spec: str | None,
    slo_p95_ms: float | None,
    label: str,
    out_dir: Path,
    workers: int,
    repeat: int,
    no_emulation: bool,
    max_users: int,
    master: bool,
    expect_workers: int | None,
    master_bind: str,
    worker: bool,
    master_host: str | None,
    master_port: int,
    allow_hosts: tuple[str, ...],
    abort_error_rate: float,
    abort_p99_ms: float,
    abort_for_s: int,
    hang_s: float,
    **options: Any,
) -> None:
    """Drive load from 1X up, step by step, and find where each segment breaks."""
    from breakpoint.load.preflight import check_host_url, check_store, check_target, ensure_fd_limit

    the_plan = _build_plan(**options)
    chosen = _build_profiles(profiles_spec, slo_p95_ms, no_emulation)
    check_host_url(host)
    path = Path(scenario)
    if not path.is_file():
        raise UsageError(f"{scenario}: scenario file not found")
    if sum((bool(workers), master, worker)) > 1:
        raise UsageError("--workers, --master and --worker: choose one way to distribute")
    if worker and not master_host:
        raise UsageError("--worker: give the master's address with --master-host HOST")
    if master and not expect_workers:
        raise UsageError("--master: say how many workers will join with --expect-workers N")
    if not worker:
        check_store(out_dir)
    allowed = ensure_fd_limit(max_users)
    if allowed < max_users:
        _echo(
            f"note: the open-files limit allows about {allowed} users; --max-users lowered "
            f"from {max_users} (raise the hard limit with `ulimit -Hn` to allow more)"
        )
        max_users = allowed
    check_target(host)
    from breakpoint.load.scenario import load_scenario

    load_scenario(path)  # imports the locustfile now: its mistakes surface before any load
    from breakpoint.analysis.criteria import AbortLimits
    from breakpoint.analysis.search import Search
    from breakpoint.load.run import RunInterrupted, RunSettings, execute, run_worker
    from breakpoint.output.live import make_progress

    settings = RunSettings(
        scenario=path,
        host=host.rstrip("/"),
        plan=the_plan,
        profiles=chosen,
        label=label,
        out_dir=out_dir,
        emulate=not no_emulation,
        max_users=max_users,
        workers=workers,
        expect_workers=expect_workers or 0,
        master_bind=master_bind,
        master_port=master_port if (master or worker) else 0,
        abort=AbortLimits(error_rate=abort_error_rate, p99_ms=abort_p99_ms, for_s=abort_for_s),
        allow_hosts=allow_hosts,
        hang_s=hang_s,
    )
    if worker:
        assert master_host is not None
        raise SystemExit(run_worker(settings, master_host, master_port, say=_echo))
    for i in range(repeat):
        if repeat > 1:
            _echo(f"repeat {i + 1} of {repeat}")
        # Repeats are independent searches: each draws its own arrivals.
        this = replace(settings, plan=replace(the_plan, seed=the_plan.seed + i))
        try:
            with make_progress() as view:
                search = Search.for_profiles(this.plan, this.profiles, emulate=this.emulate)
                run_dir = execute(this, search, progress=view)
        except RunInterrupted as stopped:
            _publish_or_say(stopped.path)
            raise SystemExit(int(ExitStatus.INTERRUPTED)) from None
        if not _publish_or_say(run_dir):
            raise SystemExit(int(ExitStatus.ERROR))


def _publish_or_say(run_dir: Path) -> bool:
    """Write the run's report; if that fails, say how to retry. The run folder prints last."""
    from breakpoint.output.publish import publish

    try:
        _echo(f"report: {publish(run_dir)}")
        ok = True
    except Exception as exc:  # the measurements are safe on disk whatever went wrong here
        click.echo(
            f"breakpoint: error: the report could not be written ({type(exc).__name__}: {exc}); "
            f"the steps are stored: `breakpoint report {run_dir}` retries",
            err=True,
        )
        ok = False
    _echo(str(run_dir))
    return ok


@cli.command("_worker", hidden=True)
@click.option("--spec", "spec_path", type=click.Path(path_type=Path), required=True)
@click.option("--master-host", required=True)
@click.option("--master-port", type=int, required=True)
def worker_process(spec_path: Path, master_host: str, master_port: int) -> None:
    """A local worker process of `run --workers N` (started by the master, not by users)."""
    from breakpoint.load.run import run_worker_spec

    raise SystemExit(run_worker_spec(spec_path, master_host, master_port))


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
def report(run_dir: Path) -> None:
    """Re-render the report of a stored run (complete or partial)."""
    from breakpoint.output.publish import publish

    _echo(str(publish(run_dir)))


@cli.command()
@click.option("--quick", is_flag=True, help="A shorter plan (under 45 seconds).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_OUT,
    show_default=True,
    help="Reports folder.",
)
@click.option(
    "--service-ms",
    type=click.FloatRange(0, 10_000, min_open=True),
    default=20.0,
    show_default=True,
    help="The demo target's mean service time (a slower 'release').",
)
@click.option("--label", default="demo", show_default=True)
def demo(quick: bool, out_dir: Path, service_ms: float, label: str) -> None:
    """Start the embedded target, find where each default segment breaks, write the report."""
    from breakpoint.demo.run import run_demo
    from breakpoint.output.live import make_progress

    with make_progress() as view:
        path = run_demo(
            quick=quick,
            out_dir=out_dir,
            service_ms=service_ms,
            label=label,
            say=_echo,
            progress=view,
        )
    _echo(str(path))


@cli.command()
@click.argument("base")
@click.argument("new")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_OUT,
    show_default=True,
    help="Reports folder holding the runs.",
)
@click.option("--force", is_flag=True, help="Compare runs even if their settings differ.")
@click.option(
    "--noise-band",
    type=click.FloatRange(0, 1),
    default=None,
    help="Relative change treated as noise (default max(3%, 2 x A/A spread)).",
)
def compare(base: str, new: str, out_dir: Path, force: bool, noise_band: float | None) -> None:
    """Compare breaking points of two runs or labels; exit 3 on a regression."""
    from breakpoint.output.comparison import run_compare

    code = run_compare(base, new, out_dir=out_dir, force=force, noise_band=noise_band, say=_echo)
    raise SystemExit(code)


@cli.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_OUT,
    show_default=True,
    help="Reports folder holding the runs.",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write a trend report to this HTML file.",
)
def history(out_dir: Path, html_path: Path | None) -> None:
    """List stored runs and each segment's breaking point across releases."""
    from breakpoint.output.comparison import run_history

    run_history(out_dir=out_dir, html_path=html_path, say=_echo)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: returns the exit status instead of exiting (easy to test)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        cli.main(args=args, prog_name="breakpoint", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        return int(ExitStatus.USAGE)
    except click.UsageError as exc:
        exc.show()
        return int(ExitStatus.USAGE)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        return int(ExitStatus.INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except BreakpointError as exc:
        click.echo(f"breakpoint: error: {exc}", err=True)
        return int(exc.exit_status)
    except KeyboardInterrupt:
        click.echo("breakpoint: interrupted", err=True)
        return int(ExitStatus.INTERRUPTED)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BrokenPipeError:
        # Output piped into `head`: not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitStatus.OK)
    return int(ExitStatus.OK)

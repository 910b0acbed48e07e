"""`breakpoint surge`: the launch-day rehearsal. Hold 1X, jump to M X for S seconds, drop back
to 1X, and measure how long each segment takes to recover (docs/design.md#surge-rehearsal).

It takes `run`'s target, profile, emulation, guardrail and output options (declared once in
cli/run.py and cli/options.py) and its preflight (`prepare_settings`); the load layer is
imported only inside the command's body.
"""

from __future__ import annotations

from dataclasses import dataclass

import click

from breakpoint.cli.options import (
    ProfileOptions,
    as_usage_error,
    echo,
    emulation_option,
    gathered,
    guard_options,
    profile_options,
)
from breakpoint.cli.run import (
    Limits,
    RunOptions,
    output_options,
    prepare_settings,
    publish_or_say,
    target_options,
)
from breakpoint.cli.scenario_args import ScenarioFlags, split_scenario_args
from breakpoint.errors import ConfigError, ExitStatus, UsageError
from breakpoint.plan.surge import RECOVERY_MIN_S, RECOVERY_TIMEOUT_FACTOR, SurgePlan

# SurgePlan's fields named by the option a user types, for error messages.
_OPTION = {"to": "--to", "for_s": "--for-s", "hard_cap": "--hard-cap"}


@dataclass(frozen=True)
class SurgeOptions:
    """The surge's own options, as typed."""

    baseline_rps: float | None
    to: float | None
    for_s: float | None
    baseline_s: float
    warmup_s: float
    recovery_timeout_s: float | None
    confirm_s: int
    hard_cap: float
    seed: int

    def plan(self) -> SurgePlan:
        """The surge these options describe; UsageError naming the option when it is invalid."""
        for option, value, example in (
            ("--baseline-rps", self.baseline_rps, "40"),
            ("--to", self.to, "3"),
            ("--for-s", self.for_s, "30"),
        ):
            if value is None:
                raise UsageError(f"{option}: missing; give it, e.g. {option} {example}")
        assert self.baseline_rps is not None and self.to is not None and self.for_s is not None
        try:
            return SurgePlan(
                baseline_rps=self.baseline_rps,
                to=self.to,
                for_s=self.for_s,
                baseline_s=self.baseline_s,
                warmup_s=self.warmup_s,
                recovery_timeout_s=self.recovery_timeout_s,
                confirm_s=self.confirm_s,
                hard_cap=self.hard_cap,
                seed=self.seed,
            )
        except ConfigError as exc:
            raise as_usage_error(exc, _OPTION) from None


@click.command()
@target_options
@click.option(
    "--baseline-rps",
    type=float,
    default=None,
    help="1X as an arrival rate in iterations/s (the surge runs the open model).",
)
@click.option("--to", type=float, default=None, help="The surge's multiplier M (above 1).")
@click.option("--for-s", type=float, default=None, help="How long the surge lasts (seconds).")
@click.option(
    "--baseline-s",
    type=float,
    default=20.0,
    show_default=True,
    help="Seconds measured at 1X before the surge (after --warmup-s).",
)
@click.option(
    "--warmup-s",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds discarded at the start, before the baseline is measured.",
)
@click.option(
    "--recovery-timeout-s",
    type=float,
    default=None,
    help=f"The longest the recovery is watched after the drop (default "
    f"{RECOVERY_TIMEOUT_FACTOR:g} x --for-s, at least {RECOVERY_MIN_S:g} s).",
)
@click.option(
    "--confirm-s",
    type=int,
    default=5,
    show_default=True,
    help="Recovered: this many consecutive seconds within the objective and drained.",
)
@click.option(
    "--hard-cap",
    type=float,
    default=50.0,
    show_default=True,
    help="Guardrail: the highest multiplier this run may ever send.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of every random choice.")
@profile_options
@output_options
@emulation_option
@guard_options
@gathered(
    options=RunOptions,
    surge_options=SurgeOptions,
    chooser=ProfileOptions,
    limits=Limits,
    scenario_flags=ScenarioFlags,
)
def surge(
    options: RunOptions,
    surge_options: SurgeOptions,
    chooser: ProfileOptions,
    limits: Limits,
    scenario_flags: ScenarioFlags,
) -> None:
    """Hold 1X, surge to M X for S seconds, drop back to 1X: how long until each segment
    recovers? The last line printed is the run's folder."""
    split_scenario_args(options.scenario_args, options.locustfile)  # a missing one first
    the_surge = surge_options.plan()
    settings = prepare_settings(options, the_surge.plan(), chooser, limits, scenario_flags)
    from breakpoint.load.run import RunInterrupted, ScenarioFailedError
    from breakpoint.load.surge import execute_surge
    from breakpoint.output.live import make_progress

    echo(
        f"surge: {the_surge.baseline_rps:g} iterations/s for {the_surge.baseline_s:g}s, "
        f"then {the_surge.to:g}X for {the_surge.for_s:g}s, then 1X for up to "
        f"{the_surge.recovery_s:g}s until every segment recovered"
    )
    try:
        with make_progress() as view:
            run_dir = execute_surge(settings, the_surge, progress=view)
    except ScenarioFailedError as failed:
        publish_or_say(failed.path)
        raise
    except RunInterrupted as stopped:
        publish_or_say(stopped.path)
        raise SystemExit(int(ExitStatus.INTERRUPTED)) from None
    if not publish_or_say(run_dir):
        raise SystemExit(int(ExitStatus.ERROR))

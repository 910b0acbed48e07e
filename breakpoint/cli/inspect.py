"""`breakpoint profiles [show NAME]` and `breakpoint plan`: look before sending any load.

They print the built-in profiles, one profile with the network model's predicted request
times, and the steps a run would take with their lengths (docs/design.md#step-sizing).
"""

from __future__ import annotations

import click

from breakpoint.cli.options import PlanOptions, echo, gathered, plan_options
from breakpoint.plan.profiles import builtin_profiles, normalised_shares, resolve_profiles
from breakpoint.plan.steps import ramp, worst_case_steps


@click.group(invoke_without_command=True)
@click.pass_context
def profiles(ctx: click.Context) -> None:
    """List the built-in device and network profiles."""
    if ctx.invoked_subcommand is not None:
        return
    echo(
        f"{'profile':<20} {'RTT ms':>7} {'down/up kbit/s':>15} {'loss':>5} {'CPU':>5} "
        f"{'share':>6} {'SLO p95':>8}  default"
    )
    for p in builtin_profiles().values():
        n = p.network
        echo(
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
    echo(f"{profile.name}: {profile.description}")
    if profile.source:
        echo(f"  source: {profile.source}")
    echo(
        f"  network: RTT {n.rtt_ms:g} ms, down {n.down_kbps:g} kbit/s, up {n.up_kbps:g} kbit/s,"
        f" loss {n.loss_pct:g}%, jitter {n.jitter_ms:g} ms, timeout {n.timeout_s:g} s,"
        f" {n.max_connections} connections per host, initial window "
        f"{n.initial_cwnd_segments} segments"
    )
    echo(
        f"  device: CPU {d.cpu_slowdown:g}x, {d.base_ms:g} ms + {d.ms_per_kb:g} ms/KB per "
        "response at 1x"
    )
    echo(f"  SLO: p95 < {profile.slo.p95_ms:g} ms, errors < {profile.slo.error_rate:.1%}")
    echo(f"  traffic share (relative weight): {profile.share:g}")
    echo("  predicted experienced time (server time excluded):")
    echo(
        f"    {'response':<9}{'connection':<11}{'set-up':>8}{'request':>9}{'upload':>8}"
        f"{'download':>10}{'slow start':>11}{'loss':>7}{'device':>8}{'total':>9}"
    )
    for row in describe(profile):
        echo(
            f"    {row['response']:<9}{row['connection']:<11}{row['setup_ms']:>6.0f}ms"
            f"{row['request_ms']:>7.0f}ms{row['upload_ms']:>6.0f}ms{row['download_ms']:>8.0f}ms"
            f"{row['slow_start_ms']:>9.0f}ms{row['loss_ms']:>5.0f}ms{row['device_ms']:>6.0f}ms"
            f"{row['total_ms']:>7.0f}ms"
        )


def _fmt_s(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@click.command()
@click.argument("scenario", required=False)
@plan_options
@gathered(planned=PlanOptions)
def plan(scenario: str | None, planned: PlanOptions) -> None:
    """Print the steps a run would take, without sending any load."""
    from breakpoint.analysis.criteria import MIN_REQUESTS
    from breakpoint.analysis.search import describe_policy, scout_of
    from breakpoint.analysis.sizing import (
        EXPECTED_REQUESTS,
        HOLD_P95_MULTIPLE,
        initial_paces,
        size_step,
    )
    from breakpoint.plan.loopback import loopback_note
    from breakpoint.plan.objectives import describe

    the_plan = planned.plan()
    chosen = planned.profiles()
    shares = normalised_shares(chosen)
    steps = ramp(the_plan)
    echo(
        f"model: {the_plan.model} (1X = {the_plan.baseline:g} {the_plan.unit})"
        + (f", scenario {scenario}" if scenario else "")
    )
    echo(
        "segments: "
        + ", ".join(
            f"{p.name} {shares[p.name]:.0%} "
            + ("(objectives below)" if p.slo.objectives else f"(p95 < {p.slo.p95_ms:g} ms)")
            for p in chosen
        )
    )
    if any(p.slo.objectives for p in chosen):
        for p in chosen:
            echo(f"  {p.name} objectives: {describe(p.slo.objectives)}")
    if note := loopback_note(None, chosen):
        echo(f"note: {note}")
    paces = initial_paces(chosen, shares, model=the_plan.model, emulate=True)
    echo(
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
        echo(
            f"{i:>4} {step.multiplier:>9g}X {load:>8g} "
            f"{'req/s' if the_plan.model == 'open' else 'users':<5}"
            f"{sized.step.warmup_s:>6g}s {sized.step.hold_s:>5g}s {_fmt_s(elapsed):>8}  "
            f"{f'{scout.warmup_s:g}s + {scout.hold_s:g}s':>11}  {step.phase}"
        )
    worst = worst_case_steps(the_plan, len(chosen))
    step_s = the_plan.warmup_s + the_plan.hold_s
    echo(
        f"ramp: {len(steps)} steps, {_fmt_s(elapsed)} at full holds (scouts are shorter); "
        f"with refinement at most {worst} steps, {_fmt_s(worst * step_s)} at the plan's step "
        "length, if every segment breaks in a bracket of its own"
    )
    echo(
        "step lengths follow the slowest segment (model times before the first step, measured "
        "ones after): warm-up at least one of its requests, hold long enough for "
        f"{EXPECTED_REQUESTS} of each segment's requests (assuming one per iteration) and "
        f"{HOLD_P95_MULTIPLE:g}x its p95, at most {the_plan.max_hold_s:g} s (--max-hold-s)"
    )
    for note in list(notes)[:4]:
        echo(f"  {note}")
    if len(notes) > 4:
        echo(f"  ... and {len(notes) - 4} more steps lengthened")
    if short:
        echo(
            f"warning: {', '.join(short)} would complete fewer than {MIN_REQUESTS} requests "
            f"in a step even at --max-hold-s {the_plan.max_hold_s:g} at some levels: those "
            "levels will have no verdict for it; raise the baseline, its share or --max-hold-s"
        )
    echo(describe_policy(the_plan))

"""Options shared by the commands, declared once and converted once into frozen objects.

A command declares its options with the groups below (or click's own decorators) and ends with
`@gathered(...)`, which hands it one frozen dataclass per group instead of a long list of
keyword arguments. The plan's options become a `Plan` and profiles here, with errors naming
the option the user typed (docs/design.md#commands).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import click

from breakpoint.errors import ConfigError, UsageError
from breakpoint.plan.objectives import Objective, parse_cli_objective
from breakpoint.plan.objectives import apply as apply_objectives
from breakpoint.plan.profiles import Profile, default_profile_names, resolve_profiles
from breakpoint.plan.steps import Plan

DEFAULT_OUT = Path("reports")
F = TypeVar("F", bound=Callable[..., Any])


def echo(line: str = "") -> None:
    """One line to stdout, flushed at once (progress is read as it happens)."""
    click.echo(line)
    sys.stdout.flush()


def check_metrics_url(url: str) -> str:
    """A `--metrics-url` as given, or a UsageError naming the option (exit 2)."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError:
        raise UsageError(f"--metrics-url: {url!r} has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--metrics-url: {url!r} is not a URL like http://127.0.0.1:9100/metrics")
    return url


def options(*declarations: Callable[[F], F]) -> Callable[[F], F]:
    """Several click options as one decorator, listed in --help in the order given."""

    def decorate(fn: F) -> F:
        for declare in reversed(declarations):
            fn = declare(fn)
        return fn

    return decorate


def gathered(**groups: type[Any]) -> Callable[[F], F]:
    """Hand a command its options as frozen objects: each keyword names a parameter of the
    command and the dataclass whose fields (named like the options' parameters) it gathers."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def command(*args: Any, **kwargs: Any) -> Any:
            for name, group in groups.items():
                names = [f.name for f in dataclasses.fields(group)]
                # A field the command has no option for keeps the dataclass's default.
                kwargs[name] = group(**{n: kwargs.pop(n) for n in names if n in kwargs})
            return fn(*args, **kwargs)

        return command  # type: ignore[return-value]

    return decorate


def out_option(help_text: str) -> Callable[[F], F]:
    """`--out DIR`, the reports folder, with the command's own help text."""
    return click.option(
        "--out",
        "out_dir",
        type=click.Path(path_type=Path),
        default=DEFAULT_OUT,
        show_default=True,
        help=help_text,
    )


# -- the roadmap (docs/design.md#roadmap) -------------------------------------------------------

roadmap_options = options(
    click.option(
        "--expected-peak",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        help="The peak you expect, in multiples of 1X (headroom = break / peak; default 1X, "
        "or what the run was given).",
    ),
    click.option(
        "--target-multiplier",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        help="The load each segment should hold, in multiples of 1X: the report says how much "
        "capacity that takes (default 10X, or what the run was given).",
    ),
)


# -- the profiles (segments) and their objectives -------------------------------------------------

profile_options = options(
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
        "--objective",
        "objectives_spec",
        multiple=True,
        help="A latency objective, k6-style: TARGET=p(95)<800 (TARGET: page_view or an "
        "endpoint name), for every profile or, as PROFILE::TARGET=..., one (repeatable).",
    ),
)


@dataclass(frozen=True)
class ProfileOptions:
    """The options of `profile_options`, as typed."""

    profiles_spec: str | None
    slo_p95_ms: float | None
    objectives_spec: tuple[str, ...]

    def profiles(
        self, *, emulation: bool = True, product_wide: Sequence[Objective] = ()
    ) -> tuple[Profile, ...]:
        """The chosen profiles, with the SLO override and the objectives applied (the
        scenario's `product_wide` ones, then --objective), and emulation off if asked."""
        names = self.profiles_spec.split(",") if self.profiles_spec else default_profile_names()
        chosen = resolve_profiles(names)
        if self.slo_p95_ms is not None:
            if not self.slo_p95_ms > 0:
                raise UsageError(f"--slo-p95-ms: must be > 0, got {self.slo_p95_ms:g}")
            chosen = [p.with_slo_p95(self.slo_p95_ms) for p in chosen]
        cli = [parse_cli_objective(text) for text in self.objectives_spec]
        chosen = list(apply_objectives(chosen, product_wide, cli))
        if not emulation:
            chosen = [p.without_emulation() for p in chosen]
        return tuple(chosen)


# -- the plan ------------------------------------------------------------------------------------

plan_options = options(
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
    profile_options,
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
        "--separate-levels",
        type=int,
        default=0,
        show_default=True,
        help="Steps spent, after refinement, measuring between the first segment to break "
        "and the next, so that the report can say which breaks first with certainty.",
    ),
    click.option(
        "--seed",
        type=int,
        default=1,
        show_default=True,
        help="Seed of every random choice (arrivals, jitter).",
    ),
)

# The plan's fields named by the option a user types, for error messages.
_PLAN_OPTION = {"max_multiplier": "--max-multiplier", "hard_cap_multiplier": "--hard-cap"}


def as_usage_error(exc: ConfigError, names: Mapping[str, str]) -> UsageError:
    """A plan's ConfigError as a usage error naming the option the user typed, not the field
    (`names`: field -> option; otherwise the field's name as an option)."""
    field = exc.field or ""
    option = names.get(field, "--" + field.replace("_", "-"))
    return UsageError(f"{option}: {str(exc).split(': ', 2)[-1]}")


@dataclass(frozen=True)
class PlanOptions:
    """The options of `plan_options`, as typed."""

    baseline_rps: float | None
    baseline_users: int | None
    profiles_spec: str | None
    slo_p95_ms: float | None
    objectives_spec: tuple[str, ...]
    max_multiplier: float
    hard_cap: float
    warmup_s: float
    hold_s: float
    max_hold_s: float
    refine_levels: int
    refine_repeats: int
    separate_levels: int
    seed: int

    def plan(self) -> Plan:
        """The plan these options describe; UsageError naming the option when it is invalid."""
        if self.baseline_rps is not None and self.baseline_users is not None:
            raise UsageError("--baseline-rps and --baseline-users: give one (open or closed model)")
        model: Literal["open", "closed"]
        if self.baseline_rps is not None:
            model, baseline = "open", self.baseline_rps
        elif self.baseline_users is not None:
            model, baseline = "closed", float(self.baseline_users)
        else:
            raise UsageError(
                "give the expected normal load: --baseline-rps R (open model) or "
                "--baseline-users N (closed model)"
            )
        try:
            return Plan(
                model=model,
                baseline=baseline,
                max_multiplier=self.max_multiplier,
                hard_cap_multiplier=self.hard_cap,
                warmup_s=self.warmup_s,
                hold_s=self.hold_s,
                refine_levels=self.refine_levels,
                refine_repeats=self.refine_repeats,
                separate_levels=self.separate_levels,
                seed=self.seed,
                max_hold_s=self.max_hold_s,
            )
        except ConfigError as exc:
            names = {
                **_PLAN_OPTION,
                "baseline": f"--baseline-{'rps' if model == 'open' else 'users'}",
            }
            raise as_usage_error(exc, names) from None

    def profiles(
        self, *, emulation: bool = True, product_wide: Sequence[Objective] = ()
    ) -> tuple[Profile, ...]:
        """The chosen profiles (ProfileOptions.profiles)."""
        chosen = ProfileOptions(self.profiles_spec, self.slo_p95_ms, self.objectives_spec)
        return chosen.profiles(emulation=emulation, product_wide=product_wide)


# -- options `run` and `surge` share ------------------------------------------------------------
emulation_option = click.option(
    "--no-emulation",
    is_flag=True,
    help="Segments without device/network emulation (for calibration).",
)

metrics_option = click.option(
    "--metrics-url",
    "metrics_urls",
    multiple=True,
    help="A Prometheus text endpoint of the server to read once a second during the run "
    "(GET only, repeatable); the report names the metric that rose before each break.",
)

guard_options = options(
    click.option(
        "--max-users",
        type=click.IntRange(1, 200_000),
        default=20_000,
        show_default=True,
        help="Guardrail: most users this process may run.",
    ),
    click.option(
        "--allow-host",
        "allow_hosts",
        multiple=True,
        help="Another host the scenario may call (repeatable); requests to any other are blocked.",
    ),
    click.option(
        "--abort-error-rate",
        type=click.FloatRange(0, 1, min_open=True),
        default=0.5,
        show_default=True,
        help="Abort the ramp when errors exceed this fraction for --abort-for-s.",
    ),
    click.option(
        "--abort-p99-ms",
        type=click.FloatRange(0, None, min_open=True),
        default=30_000,
        show_default=True,
        help="Abort the ramp when p99 exceeds this for --abort-for-s.",
    ),
    click.option(
        "--hang-s",
        type=click.FloatRange(1, 3600),
        default=20.0,
        show_default=True,
        help="Abort when no request completes for this long while some are in flight.",
    ),
    click.option(
        "--abort-for-s",
        type=click.IntRange(1, 3600),
        default=10,
        show_default=True,
        help="How long an abort limit must be crossed before the ramp stops.",
    ),
)

"""A run's settings (decided at the CLI edge) and what follows from them before any load: the
spec a worker process rebuilds them from, the segments' shares and busy times, the drain
deadline (docs/design.md#window-membership) and the wrapped user classes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from breakpoint.analysis.criteria import AbortLimits
from breakpoint.load.arrivals import ArrivalScheduler
from breakpoint.load.crashes import ScenarioCrashes
from breakpoint.load.guard import HostGuard
from breakpoint.load.scenario import Scenario, load_scenario
from breakpoint.load.users import IterationHooks, UserWiring, wrap_user_classes
from breakpoint.plan.profiles import Profile, normalised_shares, profile_from_dict
from breakpoint.plan.steps import Plan

# A closed window waits for its iterations up to the longest client timeout of the run's
# profiles plus this margin (device time, a last request started just before the deadline);
# iterations still running then count as unfinished (timeouts).
DRAIN_MARGIN_S = 5.0


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
    # Locust's conventions (docs/design.md#locust-conventions): the user classes picked by name
    # (none: every class with tasks), tag filters, the scenario's own options as (name, value).
    user_class_names: tuple[str, ...] = ()
    tags: tuple[str, ...] | None = None
    exclude_tags: tuple[str, ...] | None = None
    scenario_opts: tuple[tuple[str, str], ...] = ()
    # Prometheus endpoints scraped once a second by the controller (docs/design.md#server-signals).
    metrics_urls: tuple[str, ...] = ()

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
            "user_class_names": list(self.user_class_names),
            "tags": None if self.tags is None else list(self.tags),
            "exclude_tags": None if self.exclude_tags is None else list(self.exclude_tags),
            "scenario_opts": [list(p) for p in self.scenario_opts],
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
            user_class_names=tuple(spec.get("user_class_names", ())),
            tags=_optional(spec.get("tags")),
            exclude_tags=_optional(spec.get("exclude_tags")),
            scenario_opts=tuple((str(n), str(v)) for n, v in spec.get("scenario_opts", ())),
        )

    def locust_options(self, scenario: Scenario) -> Any:
        """Locust's parsed_options for this run (scenario_options.parsed_options)."""
        from breakpoint.load.scenario_options import parsed_options

        return parsed_options(
            scenario,
            self.scenario_opts,
            host=self.host,
            tags=self.tags,
            exclude_tags=self.exclude_tags,
        )


def _optional(values: Any) -> tuple[str, ...] | None:
    return None if values is None else tuple(str(v) for v in values)


def estimate_busy_s(profile: Profile, *, emulate: bool) -> float:
    """Rough time a user is busy per arrival (for sizing the pool; learnt from steps later)."""
    if not emulate:
        return 0.05
    n = profile.network
    transfer_s = (30 * 8) / n.down_kbps if math.isfinite(n.down_kbps) else 0.0
    return 0.05 + 3 * n.rtt_ms / 1000.0 + transfer_s


def drain_s(profiles: list[Profile] | tuple[Profile, ...], *, emulate: bool) -> float:
    """How long a closed window waits for its iterations (see DRAIN_MARGIN_S)."""
    timeouts = [p.network.timeout_s for p in profiles if math.isfinite(p.network.timeout_s)]
    longest = max(timeouts) if emulate and timeouts else 10.0
    return longest + DRAIN_MARGIN_S


@dataclass(frozen=True)
class Segments:
    """The scenario and the run's segments: traffic shares, busy time per arrival, pool weights."""

    scenario: Scenario
    profiles: list[Profile]
    names: list[str]
    shares: dict[str, float]
    busy: dict[str, float]
    pool_weights: dict[str, float]


def segments_of(settings: RunSettings) -> Segments:
    """Load the scenario and derive the segments' numbers from the settings."""
    scenario = load_scenario(settings.scenario, settings.user_class_names)
    profiles = list(settings.profiles)
    shares = normalised_shares(profiles)
    busy = {p.name: estimate_busy_s(p, emulate=settings.emulate) for p in profiles}
    return Segments(
        scenario,
        profiles,
        [p.name for p in profiles],
        shares,
        busy,
        {p.name: shares[p.name] * busy[p.name] for p in profiles},
    )


def user_classes(
    settings: RunSettings,
    seg: Segments,
    hooks: IterationHooks,
    scheduler: ArrivalScheduler | None,
    guard: HostGuard | None = None,
    crashes: ScenarioCrashes | None = None,
    not_emulated: set[str] | None = None,
) -> list[type]:
    """The scenario's user classes wrapped once per segment (users.wrap_user_classes)."""
    wiring = UserWiring(
        crashes=crashes,
        not_emulated=not_emulated,
        model=settings.plan.model,
        hooks=hooks,
        scheduler=scheduler,
        emulate=settings.emulate,
        seed=settings.plan.seed,
        guard=guard,
    )
    return wrap_user_classes(
        seg.scenario.user_classes, seg.profiles, seg.shares, wiring, seg.pool_weights
    )


def timeouts_of(profiles: Sequence[Profile]) -> dict[str, float]:
    """Each segment's client timeout (s): a request past it is a failure the person saw."""
    return {p.name: p.network.timeout_s for p in profiles}

"""The plan of a surge rehearsal (`breakpoint surge`): hold 1X, jump to M X for S seconds, drop
back to 1X and hold until every segment recovered or the recovery timeout passed.

`SurgePlan` is built once at the CLI edge and checked here (errors name the option to fix);
`SurgeSchedule` is the controller's policy: the three phases as steps, in order
(docs/design.md#surge-rehearsal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from breakpoint.errors import ConfigError
from breakpoint.plan.steps import Plan, PlannedStep

if TYPE_CHECKING:
    from breakpoint.results import StepResult

PHASES = ("baseline", "surge", "recovery")
# The recovery phase lasts at most this many times the surge (and at least RECOVERY_MIN_S):
# at 1X = 50% of capacity a backlog drains as fast as it was built, and slower when 1X is
# closer to capacity; a bound keeps a target that never recovers from running for ever.
RECOVERY_TIMEOUT_FACTOR = 5.0
RECOVERY_MIN_S = 30.0
MIN_BASELINE_S = 5.0  # seconds measured at 1X: the backlog the target carries normally


@dataclass(frozen=True)
class SurgePlan:
    """The surge's shape; every duration in seconds, loads in iterations/s (open model)."""

    baseline_rps: float
    to: float  # the surge's multiplier
    for_s: float  # how long the surge lasts
    baseline_s: float = 20.0  # measured at 1X before the surge (after warmup_s)
    warmup_s: float = 5.0
    recovery_timeout_s: float | None = None  # None: RECOVERY_TIMEOUT_FACTOR x for_s
    confirm_s: int = 5  # the recovery rule's window (analysis/surge.py)
    hard_cap: float = 50.0
    seed: int = 1

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            (
                "baseline_rps",
                self.baseline_rps > 0 and math.isfinite(self.baseline_rps),
                "must be a positive arrival rate (iterations/s), e.g. --baseline-rps 40",
            ),
            (
                "to",
                self.to > 1 and math.isfinite(self.to),
                "the surge's multiplier must be above 1 (1X is the baseline), e.g. --to 3",
            ),
            (
                "for_s",
                self.for_s > 0 and math.isfinite(self.for_s) and self.for_s <= 3600,
                "the surge must last more than 0 and at most 3600 seconds, e.g. --for-s 30",
            ),
            (
                "baseline_s",
                MIN_BASELINE_S <= self.baseline_s <= 3600,
                f"must be between {MIN_BASELINE_S:g} and 3600 seconds (the baseline the "
                "recovery is judged against)",
            ),
            ("warmup_s", 0 <= self.warmup_s <= 3600, "must be between 0 and 3600 seconds"),
            (
                "recovery_timeout_s",
                self.recovery_timeout_s is None
                or (self.confirm_s * 2 <= self.recovery_timeout_s <= 7200),
                f"must be between {2 * self.confirm_s} (twice the rule's window) and 7200 seconds",
            ),
            ("confirm_s", 2 <= self.confirm_s <= 60, "must be between 2 and 60 seconds"),
            (
                "hard_cap",
                1 <= self.hard_cap <= 1000 and self.to <= self.hard_cap,
                f"--to {self.to:g} is above the hard cap {self.hard_cap:g}: lower --to or raise "
                "--hard-cap",
            ),
        ]
        for name, ok, fix in checks:
            if not ok:
                raise ConfigError(f"{fix}, got {getattr(self, name)!r}", source="surge", field=name)

    @property
    def recovery_s(self) -> float:
        """The longest the recovery phase may last."""
        if self.recovery_timeout_s is not None:
            return self.recovery_timeout_s
        return max(RECOVERY_MIN_S, RECOVERY_TIMEOUT_FACTOR * self.for_s)

    def steps(self) -> list[PlannedStep]:
        """Baseline (with its warm-up), surge and recovery: no warm-up after the first, so the
        three measured windows follow each other without a gap."""
        return [
            PlannedStep(1.0, "baseline", self.warmup_s, self.baseline_s),
            PlannedStep(self.to, "surge", 0.0, self.for_s),
            PlannedStep(1.0, "recovery", 0.0, self.recovery_s),
        ]

    def plan(self) -> Plan:
        """The run's `Plan` (what the controller, the store and the views read)."""
        return Plan(
            model="open",
            baseline=self.baseline_rps,
            max_multiplier=self.to,
            linear_until=self.to,
            warmup_s=self.warmup_s,
            hold_s=self.baseline_s,
            refine_levels=0,
            refine_repeats=1,
            hard_cap_multiplier=self.hard_cap,
            seed=self.seed,
            max_hold_s=max(self.baseline_s, self.for_s, self.recovery_s),
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "recovery_timeout_s": self.recovery_s}


class SurgeSchedule:
    """The controller's policy for a surge: its three phases, then the end. A phase cut short
    (the run was stopped) ends the surge there."""

    def __init__(self, surge: SurgePlan) -> None:
        self.steps = surge.steps()

    def next_step(self, done: Sequence[StepResult]) -> PlannedStep | None:
        if any(s.partial for s in done) or len(done) >= len(self.steps):
            return None
        return self.steps[len(done)]

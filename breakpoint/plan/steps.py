"""The plan of a run: baseline, load model, step timings, caps, refinement policy.

`Plan` is a frozen object built once at the CLI edge; `ramp()` is the pure, deterministic part of
the schedule (1X, 2X, ... up to 10X, then x1.5 beyond). Refinement steps are added at run time by
the search (search.py) around each segment's break; `worst_case_steps()` bounds them so the plan
can print a budget before any load is sent.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from breakpoint.errors import ConfigError

Model = Literal["open", "closed"]
# Steps within this relative distance count as the same load level (repeats).
SAME_LEVEL_RTOL = 1e-6


@dataclass(frozen=True)
class PlannedStep:
    """One load level to hold: warm-up is discarded, hold is measured."""

    multiplier: float
    phase: str  # "ramp", "beyond", "refine", "repeat" or "separate"
    warmup_s: float
    hold_s: float

    @property
    def duration_s(self) -> float:
        return self.warmup_s + self.hold_s


@dataclass(frozen=True)
class Plan:
    """Everything the controller needs to decide which steps to run."""

    model: Model
    baseline: float  # 1X: arrivals per second (open) or concurrent users (closed)
    max_multiplier: float = 10.0
    linear_until: float = 10.0  # 1X, 2X, ... up to here, then geometric
    beyond_factor: float = 1.5
    warmup_s: float = 5.0
    hold_s: float = 20.0
    refine_levels: int = 2  # extra levels between the last pass and the first fail
    refine_repeats: int = 2  # how many times each refinement level and the bracket run
    # Steps spent, after refinement, telling the first segment to break from the next
    # (analysis/separate.py): 0 leaves the order to the brackets refinement measured.
    separate_levels: int = 0
    hard_cap_multiplier: float = 50.0
    seed: int = 1
    # Steps are lengthened for slow or sparse segments (sizing.py), never beyond this hold.
    max_hold_s: float = 120.0

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            (
                "baseline",
                self.baseline > 0 and math.isfinite(self.baseline),
                "must be a positive number",
            ),
            (
                "max_multiplier",
                1 <= self.max_multiplier <= self.hard_cap_multiplier,
                f"must be between 1 and the hard cap {self.hard_cap_multiplier:g} "
                "(raise the cap with --hard-cap to go further)",
            ),
            ("linear_until", self.linear_until >= 1, "must be >= 1"),
            ("beyond_factor", 1 < self.beyond_factor <= 4, "must be > 1 and <= 4"),
            ("warmup_s", 0 <= self.warmup_s <= 3600, "must be between 0 and 3600 seconds"),
            ("hold_s", 1 <= self.hold_s <= 3600, "must be between 1 and 3600 seconds"),
            (
                "max_hold_s",
                1 <= self.max_hold_s <= 3600,
                "must be between 1 and 3600 seconds",
            ),
            ("refine_levels", 0 <= self.refine_levels <= 8, "must be between 0 and 8"),
            ("refine_repeats", 1 <= self.refine_repeats <= 10, "must be between 1 and 10"),
            ("separate_levels", 0 <= self.separate_levels <= 8, "must be between 0 and 8"),
            (
                "hard_cap_multiplier",
                1 <= self.hard_cap_multiplier <= 1000,
                "must be between 1 and 1000",
            ),
        ]
        if self.model == "closed" and not float(self.baseline).is_integer():
            checks.append(("baseline", False, "must be a whole number of users"))
        for name, ok, fix in checks:
            if not ok:
                raise ConfigError(f"{fix}, got {getattr(self, name)!r}", source="plan", field=name)

    @property
    def unit(self) -> str:
        return "req/s" if self.model == "open" else "users"

    def load_at(self, multiplier: float) -> float:
        load = self.baseline * multiplier
        return float(round(load)) if self.model == "closed" else load

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


def ramp(plan: Plan) -> list[PlannedStep]:
    """The deterministic ramp: 1X, 2X, ... linear_until, then x beyond_factor up to the maximum."""
    levels: list[tuple[float, str]] = []
    m = 1.0
    while m <= min(plan.linear_until, plan.max_multiplier) + 1e-9:
        levels.append((m, "ramp"))
        m += 1.0
    last = levels[-1][0]
    if last < plan.max_multiplier - 1e-9:
        m = last
        while True:
            m = round(m * plan.beyond_factor, 3)
            if m >= plan.max_multiplier - 1e-9:
                levels.append((plan.max_multiplier, "beyond"))
                break
            levels.append((m, "beyond"))
    return [PlannedStep(m, phase, plan.warmup_s, plan.hold_s) for m, phase in levels]


def worst_case_steps(plan: Plan, segments: int) -> int:
    """An upper bound on steps: the ramp plus one refinement bracket per segment."""
    per_bracket = plan.refine_levels * plan.refine_repeats + 2 * (plan.refine_repeats - 1)
    return len(ramp(plan)) + segments * per_bracket + plan.separate_levels


def same_level(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=SAME_LEVEL_RTOL)

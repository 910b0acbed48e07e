"""The plan: the ramp is deterministic, bounded, increasing, and bad plans are refused."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from breakpoint.errors import ConfigError
from breakpoint.plan.steps import Plan, ramp, worst_case_steps


def test_default_ramp_is_one_to_ten() -> None:
    """The default plan walks 1X, 2X, ... 10X."""
    steps = ramp(Plan(model="open", baseline=40))
    assert [s.multiplier for s in steps] == [float(m) for m in range(1, 11)]
    assert all(s.phase == "ramp" for s in steps)


def test_beyond_ten_grows_geometrically_to_the_maximum() -> None:
    """Past 10X the ramp grows x1.5 and ends exactly at the maximum."""
    steps = ramp(Plan(model="open", baseline=40, max_multiplier=30))
    beyond = [s.multiplier for s in steps if s.phase == "beyond"]
    assert beyond == [15.0, 22.5, 30.0]


@given(
    max_m=st.floats(1, 50),
    linear=st.floats(1, 20),
    factor=st.floats(1.05, 4),
)
def test_ramp_is_increasing_and_bounded(max_m: float, linear: float, factor: float) -> None:
    """Any valid plan's ramp starts at 1X, increases strictly and never exceeds the maximum."""
    plan = Plan(
        model="open", baseline=10, max_multiplier=max_m, linear_until=linear, beyond_factor=factor
    )
    levels = [s.multiplier for s in ramp(plan)]
    assert levels[0] == 1.0
    assert all(b > a for a, b in pairwise(levels))
    assert levels[-1] <= max_m + 1e-9
    assert worst_case_steps(plan, 3) >= len(levels)


def test_closed_model_loads_are_whole_users() -> None:
    """In the closed model a step's load is a whole number of users."""
    plan = Plan(model="closed", baseline=40)
    assert plan.load_at(1.5) == 60.0 and plan.unit == "users"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"baseline": 0}, "baseline", id="zero-baseline"),
        pytest.param({"baseline": float("inf")}, "baseline", id="infinite-baseline"),
        pytest.param({"max_multiplier": 0.5}, "max_multiplier", id="max-below-1"),
        pytest.param({"max_multiplier": 80}, "max_multiplier", id="max-above-cap"),
        pytest.param({"hold_s": 0}, "hold_s", id="zero-hold"),
        pytest.param({"warmup_s": -1}, "warmup_s", id="negative-warmup"),
        pytest.param({"refine_repeats": 0}, "refine_repeats", id="zero-repeats"),
        pytest.param({"beyond_factor": 1.0}, "beyond_factor", id="flat-beyond"),
    ],
)
def test_bad_plans_are_refused(kwargs: dict[str, float], field: str) -> None:
    """A plan value out of range is refused naming the field and the fix."""
    settings = {"model": "open", "baseline": 40.0, **kwargs}
    with pytest.raises(ConfigError, match=field):
        Plan(**settings)  # type: ignore[arg-type]


def test_cap_can_be_raised_explicitly() -> None:
    """Going beyond the hard cap requires raising the cap itself."""
    assert Plan(model="open", baseline=1, max_multiplier=80, hard_cap_multiplier=100)


def test_plan_round_trips_through_a_dict() -> None:
    """A plan stored in run.json reads back equal."""
    plan = Plan(model="closed", baseline=40, max_multiplier=12, seed=7)
    assert Plan.from_dict(plan.to_dict()) == plan

"""The adaptive search policy, run against known systems through simulate()."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from breakpoint import queueing as q
from breakpoint.config import Plan, PlannedStep, ramp, same_level
from breakpoint.model import bracket, measured_levels
from breakpoint.profiles import Slo
from breakpoint.results import GeneratorHealth, SegmentStep, StepResult
from breakpoint.search import (
    Search,
    describe_policy,
    linear_ramp_load_time_s,
    load_time_s,
    simulate,
    simulate_results,
)

BASE_RPS = 40.0
SLOS = {"s0": Slo(250.0)}


def make_seg(name: str, p95_ms: float, offered_rps: float, completion: float = 1.0) -> SegmentStep:
    """One segment's measurements with p95 set and empty histograms."""
    requests = max(int(offered_rps * 20), 200)
    return SegmentStep(
        segment=name,
        requests=requests,
        errors={},
        offered_rps=offered_rps,
        completed_rps=offered_rps * completion,
        p50_ms=p95_ms / 3,
        p90_ms=p95_ms * 0.8,
        p95_ms=p95_ms,
        p99_ms=p95_ms * 1.5,
        max_ms=p95_ms * 2,
        mean_ms=p95_ms / 3,
    )


def make_step(multiplier: float, segs: list[SegmentStep], bound: bool = False) -> StepResult:
    return StepResult(
        index=0,
        multiplier=multiplier,
        load=BASE_RPS * multiplier,
        phase="ramp",
        started_at=0.0,
        warmup_s=5.0,
        measured_s=20.0,
        segments={s.segment: s for s in segs},
        generator=GeneratorHealth(bound=bound),
    )


Oracle = Callable[[float], StepResult]


def curve_oracle(
    p95: Callable[[float], float],
    capacity_rps: float,
    *,
    segments: int = 1,
    sigma: float = 0.0,
    seed: int = 0,
    bound_from: float = math.inf,
    spread_ms: float = 0.0,
) -> Oracle:
    """A target with a p95 curve (segment j adds j x spread_ms), saturating at capacity."""
    rng = np.random.default_rng(seed)

    def oracle(m: float) -> StepResult:
        rate = BASE_RPS * m
        segs = []
        for j in range(segments):
            if rate >= capacity_rps * 0.995:
                segs.append(make_seg(f"s{j}", 5000.0, rate, completion=0.9))
            else:
                noisy = (p95(m) + spread_ms * j) * math.exp(sigma * rng.standard_normal())
                segs.append(make_seg(f"s{j}", noisy, rate))
        return make_step(m, segs, bound=m >= bound_from)

    return oracle


def erlang_oracle(
    *, sigma: float = 0.0, seed: int = 0, bound_from: float = math.inf, segments: int = 1
) -> Oracle:
    """DESIGN §6's M/M/c target (c=8, S=20 ms, 1X = 40 req/s)."""
    return curve_oracle(
        lambda m: q.sojourn_p95_s(8, 0.020, BASE_RPS * m) * 1000,
        400.0,
        segments=segments,
        sigma=sigma,
        seed=seed,
        bound_from=bound_from,
    )


def final_bracket(results: list[StepResult], name: str = "s0") -> tuple[float, float]:
    low, high = bracket(measured_levels(results, name, SLOS.get(name, Slo(250.0))))
    assert low is not None and high is not None
    return low, high


def test_first_step_is_1x_in_full_then_scouts_far_from_the_break() -> None:
    """The walk starts at 1X with the plan's hold and shortens holds while p95 stays flat."""
    plan = Plan("open", BASE_RPS)
    search = Search(plan, SLOS)
    first = search.next_step([])
    assert first == PlannedStep(1.0, "ramp", plan.warmup_s, plan.hold_s)
    oracle = erlang_oracle()
    second = search.next_step([oracle(1.0)])
    assert second is not None
    assert second.multiplier == 2.0
    assert second.hold_s < plan.hold_s


def test_locates_erlang_break_to_5_percent_within_60_percent_of_linear_ramp() -> None:
    """DESIGN §10: the M/M/c break is bracketed to 5% in at most 60% of a linear ramp's time."""
    plan = Plan("open", BASE_RPS, max_multiplier=20)
    truth = q.break_rate(8, 0.020, 250.0) / BASE_RPS
    for sigma, seed in ((0.0, 0), (0.05, 1), (0.05, 2)):
        results = simulate_results(plan, SLOS, erlang_oracle(sigma=sigma, seed=seed))
        low, high = final_bracket(results)
        assert low < truth < high
        assert (high - low) / truth <= 0.05
        steps = [PlannedStep(r.multiplier, r.phase, r.warmup_s, r.measured_s) for r in results]
        assert load_time_s(steps) <= 0.6 * linear_ramp_load_time_s(plan)


def test_refinement_runs_repeats_with_refine_phases() -> None:
    """Interior levels run refine_repeats times: first as 'refine', then as 'repeat'."""
    plan = Plan("open", BASE_RPS, refine_levels=2, refine_repeats=2)
    steps = simulate(plan, SLOS, erlang_oracle())
    refine = [s.multiplier for s in steps if s.phase == "refine"]
    assert len(refine) == 2
    for m in refine:
        runs = [s for s in steps if same_level(s.multiplier, m)]
        assert [s.phase for s in runs] == ["refine", "repeat"]
        assert all(s.hold_s == plan.hold_s for s in runs)


def test_shared_bracket_is_refined_once() -> None:
    """Two segments breaking together get one refinement, not two."""
    plan = Plan("open", BASE_RPS)
    slos = {"s0": Slo(250.0), "s1": Slo(250.0)}
    steps = simulate(plan, slos, erlang_oracle(segments=2))
    assert len([s for s in steps if s.phase == "refine"]) == plan.refine_levels


def test_generator_bound_step_ends_the_walk() -> None:
    """A generator-bound level is retried once; bound again, nothing at or above it runs."""
    plan = Plan("open", BASE_RPS)
    steps = simulate(plan, SLOS, erlang_oracle(bound_from=6.0))
    assert [s.multiplier for s in steps] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 6.0]


def test_never_breaking_target_walks_to_the_cap() -> None:
    """A flat target is walked up to max_multiplier and nothing is refined."""
    plan = Plan("open", BASE_RPS, max_multiplier=20)
    steps = simulate(plan, SLOS, curve_oracle(lambda m: 100.0, math.inf))
    assert [s.multiplier for s in steps] == [p.multiplier for p in ramp(plan)]
    assert steps[-1].multiplier == 20


def test_failing_at_the_lowest_level_is_confirmed_then_stops() -> None:
    """A segment failing at 1X has 1X repeated, and the search ends without a bracket."""
    plan = Plan("open", BASE_RPS, refine_repeats=3)
    steps = simulate(plan, SLOS, curve_oracle(lambda m: 300.0, math.inf))
    assert [(s.multiplier, s.phase) for s in steps] == [
        (1.0, "ramp"),
        (1.0, "repeat"),
        (1.0, "repeat"),
    ]


def test_describe_policy_names_ramp_and_refinement() -> None:
    """The printed policy lists the ramp levels and the refinement budget."""
    text = describe_policy(Plan("open", BASE_RPS, max_multiplier=15))
    assert "1X, 2X, 3X" in text
    assert "15X" in text
    assert "refinement: 2 levels" in text


def test_linear_ramp_reference_time() -> None:
    """A linear ramp at 5% resolution needs 20 full steps."""
    plan = Plan("open", BASE_RPS, warmup_s=5, hold_s=20)
    assert linear_ramp_load_time_s(plan) == 20 * 25


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    segments=st.integers(1, 3),
    max_multiplier=st.sampled_from([3.0, 8.0, 12.0, 25.0]),
    refine_levels=st.integers(0, 3),
    refine_repeats=st.integers(1, 3),
    capacity_x=st.floats(1.5, 40.0),
    floor_ms=st.floats(20.0, 240.0),
    sigma=st.sampled_from([0.0, 0.1]),
    bound_from=st.sampled_from([math.inf, 4.0, 11.0]),
    seed=st.integers(0, 1000),
)
def test_policy_terminates_within_cap_and_refines_inside_brackets(
    segments: int,
    max_multiplier: float,
    refine_levels: int,
    refine_repeats: int,
    capacity_x: float,
    floor_ms: float,
    sigma: float,
    bound_from: float,
    seed: int,
) -> None:
    """Any target: the search ends, never exceeds the cap, and refines strictly inside brackets."""
    plan = Plan(
        "open",
        BASE_RPS,
        max_multiplier=max_multiplier,
        refine_levels=refine_levels,
        refine_repeats=refine_repeats,
    )
    capacity = capacity_x * BASE_RPS
    oracle = curve_oracle(
        lambda m: floor_ms + 2000.0 / (capacity - BASE_RPS * m),
        capacity,
        segments=segments,
        sigma=sigma,
        seed=seed,
        bound_from=bound_from,
        spread_ms=40.0,
    )
    slos = {f"s{j}": Slo(250.0) for j in range(segments)}
    search = Search(plan, slos)
    walk_levels = [p.multiplier for p in ramp(plan)]
    done: list[StepResult] = []
    for _ in range(200):
        step = search.next_step(done)
        if step is None:
            break
        assert 0 < step.multiplier <= max_multiplier
        if step.phase == "refine":
            walk = [r for r in done if any(same_level(r.multiplier, w) for w in walk_levels)]
            brackets = [bracket(measured_levels(walk, n, slo)) for n, slo in slos.items()]
            assert any(
                low is not None and high is not None and low < step.multiplier < high
                for low, high in brackets
            )
        result = oracle(step.multiplier)
        done.append(StepResult(**{**result.__dict__, "index": len(done), "phase": step.phase}))
    else:
        raise AssertionError("the search did not terminate")
    assert search.next_step(done) is None  # and stays over

"""The adaptive search policy, run against known systems through simulate()."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from breakpoint.analysis.levels import bracket, measured_levels
from breakpoint.analysis.search import Search, describe_policy
from breakpoint.plan.profiles import Slo
from breakpoint.plan.steps import Plan, PlannedStep, ramp, same_level
from breakpoint.results import GeneratorHealth, SegmentStep, StepResult
from breakpoint.sim import queueing as q
from breakpoint.sim.simulate import (
    linear_ramp_load_time_s,
    load_time_s,
    simulate,
    simulate_results,
)

BASE_RPS = 40.0
SLOS = {"s0": Slo(250.0)}


def make_seg(
    name: str, p95_ms: float, offered_rps: float, completion: float = 1.0, errors: int = 0
) -> SegmentStep:
    """One segment's measurements with p95 set and empty histograms."""
    requests = max(int(offered_rps * 20), 200)
    return SegmentStep(
        segment=name,
        requests=requests,
        errors={"http_5xx": errors} if errors else {},
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
    *,
    sigma: float = 0.0,
    seed: int = 0,
    bound_from: float = math.inf,
    segments: int = 1,
    added_ms: float = 0.0,
    spread_ms: float = 0.0,
) -> Oracle:
    """The ground-truth M/M/c target (c=8, S=20 ms, 1X = 40 req/s), plus constant network time."""
    return curve_oracle(
        lambda m: q.sojourn_p95_s(8, 0.020, BASE_RPS * m) * 1000 + added_ms,
        400.0,
        segments=segments,
        sigma=sigma,
        seed=seed,
        bound_from=bound_from,
        spread_ms=spread_ms,
    )


def blocking_oracle(*, sigma: float = 0.0, seed: int = 0, max_queue: int = 8) -> Oracle:
    """The benchmark's error targets: 8 workers, S = 20 ms, at most max_queue waiting and 503
    beyond (M/M/8/16 by default; max_queue=0 is the Erlang B loss system).

    Errors are binomial over a 20 s hold of arrivals; p95 (of accepted requests, at most about
    70 ms) carries lognormal noise. The truth is where blocking reaches the 1% error SLO.
    """
    rng = np.random.default_rng(seed)

    def oracle(m: float) -> StepResult:
        rate = BASE_RPS * m
        requests = max(int(rate * 20), 200)
        errors = int(rng.binomial(requests, q.finite_blocking(8, max_queue, 0.020, rate)))
        p95 = q.finite_sojourn_p95_s(8, max_queue, 0.020, rate) * 1000
        p95 *= math.exp(sigma * rng.normal())
        return make_step(m, [make_seg("s0", p95, rate, errors=errors)])

    return oracle


def final_bracket(results: list[StepResult], name: str = "s0") -> tuple[float, float]:
    low, high = bracket(measured_levels(results, name, SLOS.get(name, Slo(250.0))))
    assert low is not None and high is not None
    return low, high


def test_a_passing_end_seen_only_as_a_scout_is_held_in_full_before_refining() -> None:
    """10X passes as a 2 s + 8 s scout (the queue had no time to fill) and 12X fails: before
    any level inside (10X, 12X), 10X runs again with the plan's full warm-up and hold."""
    plan = Plan("open", BASE_RPS, max_multiplier=12)
    slos = {"s0": Slo(250.0, 0.01)}

    def oracle(m: float) -> StepResult:
        return make_step(m, [make_seg("s0", 60.0 if m <= 10 else 900.0, BASE_RPS * m)])

    results = simulate_results(plan, slos, oracle, max_steps=14)
    walk = [r for r in results if r.phase in ("ramp", "beyond")]
    assert [r.multiplier for r in walk][-2:] == [10.0, 12.0]
    ten = next(r for r in walk if r.multiplier == 10.0)
    assert ten.warmup_s < plan.warmup_s  # it was a scout
    after = results[len(walk)]
    assert (after.multiplier, after.phase, after.warmup_s) == (10.0, "repeat", plan.warmup_s)


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
    """The M/M/c break is bracketed to 5% in at most 60% of a linear ramp's time (the target)."""
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
    """Interior levels are held in full, first as 'refine', then as 'repeat'; one is repeated."""
    plan = Plan("open", BASE_RPS, refine_levels=2, refine_repeats=2)
    steps = simulate(plan, SLOS, erlang_oracle())
    refine = [s.multiplier for s in steps if s.phase == "refine"]
    assert 1 <= len(refine) <= plan.refine_levels
    repeated = 0
    for m in refine:
        runs = [s for s in steps if same_level(s.multiplier, m)]
        assert [s.phase for s in runs] in (["refine"], ["refine", "repeat"])
        assert all(s.hold_s == plan.hold_s for s in runs)
        repeated += len(runs) == 2
    assert repeated >= 1


def test_shared_bracket_is_refined_once() -> None:
    """Two segments breaking together get one refinement, not two."""
    plan = Plan("open", BASE_RPS)
    slos = {"s0": Slo(250.0), "s1": Slo(250.0)}
    steps = simulate(plan, slos, erlang_oracle(segments=2))
    assert 1 <= len([s for s in steps if s.phase == "refine"]) <= plan.refine_levels


def test_generator_bound_step_ends_the_walk() -> None:
    """A generator-bound level is retried once; bound again, nothing at or above it runs."""
    plan = Plan("open", BASE_RPS)
    steps = simulate(plan, SLOS, erlang_oracle(bound_from=6.0))
    assert [s.multiplier for s in steps] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 6.0]


def test_generator_bound_top_level_is_retried_before_the_walk_ends() -> None:
    """The ramp's last level, bound once, is run again: a bound run is no verdict."""
    plan = Plan("open", BASE_RPS, max_multiplier=3)
    flaky = {"bound": 1}

    def oracle(m: float) -> StepResult:
        bound = same_level(m, 3.0) and flaky["bound"] > 0
        flaky["bound"] -= bound
        return make_step(m, [make_seg("s0", 100.0, BASE_RPS * m)], bound=bound)

    steps = simulate_results(plan, SLOS, oracle)
    assert [(s.multiplier, s.generator.bound) for s in steps] == [
        (1.0, False),
        (2.0, False),
        (3.0, True),
        (3.0, False),
    ]


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
    assert "refinement: up to 2 levels" in text


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


# --- efficiency and accuracy on the accuracy benchmark's targets (performance targets) -------

ERRORS_SLO = {"s0": Slo(250.0, 0.01)}
BENCH_PLAN = Plan("open", BASE_RPS, max_multiplier=12)  # benchmarks/accuracy.py's plan
# Noise flips verdicts at levels close to the truth, so a final bracket may miss it by a little;
# its width must still be within the asked 5%. How close: p95 noise of 5% against a p95 curve
# that steep, or the Poisson noise of ~30 errors (20 s at ~156 req/s, 1%) against Erlang B's
# blocking, which grows only ~5x as fast as the load there.
BENCH_CASES = {
    # case: (oracle for a seed, truth in X, how far a final bracket may miss it)
    "plain": (
        lambda seed: erlang_oracle(sigma=0.05, seed=seed),
        q.break_rate(8, 0.020, 250.0) / BASE_RPS,
        0.015,
    ),
    "network": (
        lambda seed: erlang_oracle(sigma=0.05, seed=seed, added_ms=100.0),
        q.break_rate(8, 0.020, 250.0, added_ms=100.0) / BASE_RPS,
        0.015,
    ),
    "errors_mmc16": (
        lambda seed: blocking_oracle(sigma=0.05, seed=seed),
        q.finite_blocking_break_rate(8, 8, 0.020, 0.01) / BASE_RPS,
        0.015,
    ),
    "errors_erlang_b": (
        lambda seed: blocking_oracle(sigma=0.05, seed=seed, max_queue=0),
        q.finite_blocking_break_rate(8, 0, 0.020, 0.01) / BASE_RPS,
        0.03,
    ),
}


def bench_ramp_s(truth: float, plan: Plan) -> float:
    """benchmarks/accuracy.py's reference: full steps of 5% of the truth from 1X up to it."""
    return (math.ceil((truth - 1.0) / (0.05 * truth) - 1e-9) + 1) * (plan.warmup_s + plan.hold_s)


def load_time(results: list[StepResult]) -> float:
    return load_time_s(
        [PlannedStep(r.multiplier, r.phase, r.warmup_s, r.measured_s) for r in results]
    )


def assert_located(
    results: list[StepResult], name: str, slo: Slo, truth: float, tolerance: float = 0.015
) -> None:
    low, high = bracket(measured_levels(results, name, slo))
    assert low is not None and high is not None, name
    assert (high - low) / truth <= 0.05, (name, low, high, truth)
    assert low / (1 + tolerance) < truth < high * (1 + tolerance), (name, low, high)


@pytest.mark.parametrize("case", sorted(BENCH_CASES))
@pytest.mark.parametrize("seed", range(1, 7))
def test_benchmark_targets_located_to_5_percent_in_at_most_58_percent_of_the_ramp(
    case: str, seed: int
) -> None:
    """M/M/8 (9.68X), M/M/8 + 100 ms (9.43X), M/M/8/16 and M/M/8/8 breaking by errors (7.57X,
    3.91X), 5% p95 noise: bracketed to 5% in at most 58% of the benchmark's linear ramp at
    default steps (60% is asked), the bracket's passing end held in full included."""
    make_oracle, truth, tolerance = BENCH_CASES[case]
    results = simulate_results(BENCH_PLAN, ERRORS_SLO, make_oracle(seed))
    assert_located(results, "s0", ERRORS_SLO["s0"], truth, tolerance)
    assert load_time(results) <= 0.58 * bench_ramp_s(truth, BENCH_PLAN)


def test_four_segments_with_distinct_breaks_cost_at_most_62_percent_on_average() -> None:
    """0/50/100/150 ms added (9.68X to 9.02X), 5% noise: every break bracketed to 5%, and the
    whole search in at most 62% of one linear ramp on average (0.66 before this policy)."""
    plan = Plan("open", BASE_RPS)
    added = (0.0, 50.0, 100.0, 150.0)
    slos = {f"s{j}": Slo(250.0) for j in range(len(added))}
    ratios = []
    for seed in range(8):
        results = simulate_results(
            plan, slos, erlang_oracle(sigma=0.05, seed=seed, segments=4, spread_ms=50.0)
        )
        for j, extra in enumerate(added):
            truth = q.break_rate(8, 0.020, 250.0, added_ms=extra) / BASE_RPS
            assert_located(results, f"s{j}", slos[f"s{j}"], truth)
        ratios.append(load_time(results) / linear_ramp_load_time_s(plan))
    assert float(np.mean(ratios)) <= 0.62


@pytest.mark.parametrize("low", [7.0, 8.0, 9.0])
@pytest.mark.parametrize("seed", range(6))
def test_two_levels_close_a_walk_bracket_whatever_the_verdicts(low: float, seed: int) -> None:
    """Inside [low, low + 1] every run's verdict is a coin flip (p95 240 or 260 ms against 250):
    verdicts turn on repeats and even contradict each other, yet the two refinement levels
    leave a final bracket at most 5% wide."""
    rng = np.random.default_rng(seed)

    def oracle(m: float) -> StepResult:
        if m <= low + 1e-9:
            p95 = 100.0
        elif m >= low + 1 - 1e-9:
            p95 = 1000.0
        else:
            p95 = 260.0 if rng.random() < 0.5 else 240.0
        return make_step(m, [make_seg("s0", p95, BASE_RPS * m)])

    plan = Plan("open", BASE_RPS)
    results = simulate_results(plan, SLOS, oracle)
    low_end, high_end = final_bracket(results)
    assert low <= low_end < high_end <= low + 1
    assert high_end / low_end - 1 <= 0.05 + 1e-6
    assert len([r for r in results if r.phase == "refine"]) <= plan.refine_levels


def test_flat_p95_near_the_slo_is_scouted_despite_noise() -> None:
    """A segment whose p95 is mostly a constant network floor (200 ms of a 250 ms SLO) and wobbles
    by noise is not approaching its break: the walk scouts it (the growth of p95 itself, 195 to
    212 ms, would have predicted 230 ms and held every other level in full)."""
    wobble = {1.0: 200.0, 2.0: 195.0, 3.0: 212.0, 4.0: 195.0, 5.0: 212.0, 6.0: 195.0}
    plan = Plan("open", BASE_RPS, max_multiplier=6)
    steps = simulate(plan, SLOS, curve_oracle(lambda m: wobble[m], math.inf))
    assert [s.multiplier for s in steps] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert [s.hold_s == plan.hold_s for s in steps] == [True] + [False] * 5


def test_growth_above_a_network_floor_holds_the_break_in_full() -> None:
    """With 100 ms of network time the queueing part still grows ahead of the break: 10X, where
    it fails, is held in full (9X too: the fit puts the break near); 2X to 8X are scouts."""
    plan = Plan("open", BASE_RPS, max_multiplier=12)
    steps = simulate(plan, SLOS, erlang_oracle(added_ms=100.0))
    walk = [s for s in steps if s.phase == "ramp"]
    assert [s.multiplier for s in walk] == [float(m) for m in range(1, 11)]
    assert [s.hold_s == plan.hold_s for s in walk[:8]] == [True] + [False] * 7
    assert walk[-1].hold_s == plan.hold_s


def test_repeats_stop_once_the_majority_is_settled() -> None:
    """With refine_repeats=3 a level whose first two runs agree is not run a third time."""
    plan = Plan("open", BASE_RPS, refine_repeats=3)
    steps = simulate(plan, SLOS, erlang_oracle())
    runs: dict[float, int] = {}
    for s in steps:
        key = next((k for k in runs if same_level(k, s.multiplier)), s.multiplier)
        runs[key] = runs.get(key, 0) + 1
    assert max(runs.values()) == 2


def test_error_rate_near_its_slo_is_not_decisive() -> None:
    """A bracket end passing with 0.9% errors against a 1% SLO is repeated, however low its p95."""
    plan = Plan("open", BASE_RPS, max_multiplier=4, refine_levels=0)

    def oracle(m: float) -> StepResult:
        rate = BASE_RPS * m
        errors = {3.0: 0.009, 4.0: 0.05}.get(m, 0.0)
        return make_step(m, [make_seg("s0", 60.0, rate, errors=round(errors * rate * 20))])

    steps = simulate(plan, ERRORS_SLO, oracle)
    assert [(s.multiplier, s.phase) for s in steps] == [
        (1.0, "ramp"),
        (2.0, "ramp"),
        (3.0, "ramp"),
        (4.0, "ramp"),
        (3.0, "repeat"),
    ]


# -- separating the first segment to break from the next (analysis/separate.py) ---------------
TWO = {"s0": Slo(290.0), "s1": Slo(290.0)}


def two_segments(spread_ms: float) -> Oracle:
    """p95 = 50 ms x multiplier, s1 `spread_ms` slower: s0 breaks at 5.8X, s1 earlier."""
    return curve_oracle(lambda m: 50.0 * m, BASE_RPS * 8, segments=2, spread_ms=spread_ms)


def test_no_separating_steps_unless_the_plan_asks_for_them() -> None:
    plan = Plan("open", BASE_RPS, refine_levels=0, refine_repeats=1)
    results = simulate_results(plan, TWO, two_segments(30.0))
    assert all(r.phase != "separate" for r in results)


def test_a_shared_bracket_gets_a_level_between_the_two_estimates_then_its_repeat() -> None:
    """s1 breaks at 5.2X and s0 at 5.8X: the walk brackets both in [5X, 6X]. The separating
    level goes between their estimates, where s1 fails and s0 holds; neither verdict is
    decisive there (p95 5% over and 6% under the objective), so it runs once more, and no more
    although the plan allows three."""
    plan = Plan("open", BASE_RPS, refine_levels=0, refine_repeats=1, separate_levels=3)
    results = simulate_results(plan, TWO, two_segments(30.0))
    separating = [r.multiplier for r in results if r.phase == "separate"]
    assert len(separating) == 2 and separating[0] == separating[1]
    assert 5.2 < separating[0] < 5.8
    level = separating[0]
    verdicts = {
        n: next(lv for lv in measured_levels(results, n, TWO[n]) if lv.multiplier == level)
        for n in TWO
    }
    assert not verdicts["s1"].passed and verdicts["s0"].passed


def test_the_separating_budget_is_a_hard_limit() -> None:
    plan = Plan("open", BASE_RPS, refine_levels=0, refine_repeats=1, separate_levels=1)
    results = simulate_results(plan, TWO, two_segments(30.0))
    assert [r.phase for r in results].count("separate") == 1


def test_a_walk_level_that_already_separates_them_is_repeated_not_refined_around() -> None:
    """s1 breaks at 4.6X, s0 at 5.8X: at 5X s1 fails and s0 holds, neither decisively, so 5X
    runs again; no level is placed elsewhere."""
    plan = Plan("open", BASE_RPS, refine_levels=0, refine_repeats=1, separate_levels=3)
    results = simulate_results(plan, TWO, two_segments(60.0))
    assert [(r.multiplier, r.phase) for r in results if r.phase == "separate"] == [
        (5.0, "separate")
    ]


def test_one_segment_has_nothing_to_separate() -> None:
    plan = Plan("open", BASE_RPS, refine_levels=0, refine_repeats=1, separate_levels=3)
    results = simulate_results(plan, SLOS, erlang_oracle())
    assert all(r.phase != "separate" for r in results)


def test_too_narrow_a_shared_stretch_is_left_alone() -> None:
    """Both break in [9X, 10X] of the M/M/8 (9.61X and 9.68X): the separating levels stop once
    the stretch they share is narrower than 8%, within the budget."""
    from breakpoint.analysis.separate import MIN_GAP

    slos = {"s0": Slo(250.0), "s1": Slo(250.0)}
    plan = Plan("open", BASE_RPS, refine_levels=0, refine_repeats=1, separate_levels=8)
    results = simulate_results(plan, slos, erlang_oracle(segments=2, spread_ms=40.0))
    separating = [r.multiplier for r in results if r.phase == "separate"]
    assert 1 <= len(separating) < 8
    low, high = final_bracket(results, "s1")
    assert high <= low * (1 + MIN_GAP)


def test_the_policy_names_the_separating_budget() -> None:
    text = describe_policy(Plan("open", BASE_RPS, separate_levels=3))
    assert "separating the first: up to 3 steps" in text
    assert "separating" not in describe_policy(Plan("open", BASE_RPS))

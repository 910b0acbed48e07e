"""Step sizing: steps outlast the slowest segment's requests and hold enough of every segment's
requests for a verdict (docs/design.md#step-sizing)."""

from __future__ import annotations

import math

import pytest

from breakpoint.analysis.criteria import MIN_REQUESTS
from breakpoint.analysis.sizing import (
    EXPECTED_REQUESTS,
    HOLD_P95_MULTIPLE,
    Pace,
    initial_paces,
    learn_paces,
    model_request_s,
    size_step,
)
from breakpoint.plan.profiles import resolve_profiles
from breakpoint.plan.steps import Plan, PlannedStep
from breakpoint.results import EndpointStats, SegmentStep, StepResult

PLAN = Plan(model="open", baseline=40.0, warmup_s=5.0, hold_s=20.0)


def _step(warmup: float = 5.0, hold: float = 20.0) -> PlannedStep:
    return PlannedStep(2.0, "ramp", warmup, hold)


def test_fast_segments_keep_the_plans_lengths() -> None:
    """Plenty of fast requests: the plan's warm-up and hold are enough, nothing is stretched."""
    paces = [Pace("fast", 1.0, 0.05, 1.0)]
    sized = size_step(_step(), 80.0, paces, PLAN)
    assert (sized.step.warmup_s, sized.step.hold_s) == (5.0, 20.0) and sized.why == ""


def test_a_slow_segment_sets_the_warmup_and_a_multiple_of_its_p95() -> None:
    """A 5 s request time: the warm-up covers one request, the hold three of them."""
    paces = [Pace("fast", 0.9, 0.05, 0.9), Pace("3g", 0.1, 5.0, 0.1)]
    sized = size_step(_step(2.0, 8.0), 200.0, paces, PLAN)
    assert sized.step.warmup_s == 5.0
    assert sized.step.hold_s == HOLD_P95_MULTIPLE * 5.0
    assert "3g" in sized.why


def test_a_sparse_segment_gets_enough_requests() -> None:
    """A segment with 10% of 4 req/s needs EXPECTED_REQUESTS / 0.4 s of hold."""
    paces = [Pace("fast", 0.9, 0.05, 0.9), Pace("rare", 0.1, 0.1, 0.1)]
    sized = size_step(_step(), 4.0, paces, PLAN)
    assert sized.step.hold_s == pytest.approx(math.ceil(EXPECTED_REQUESTS / 0.4))
    assert sized.short == ()


def test_the_hold_is_capped_and_short_segments_are_named() -> None:
    """Past max_hold_s a segment that cannot reach the verdict's minimum is named as short."""
    plan = Plan(model="open", baseline=0.1, max_hold_s=60.0)
    paces = [Pace("rare", 1.0, 0.1, 1.0)]
    sized = size_step(_step(), 0.1, paces, plan)
    assert sized.step.hold_s == 60.0
    assert MIN_REQUESTS > 0.1 * 60 and sized.short == ("rare",)


def test_paces_are_learnt_from_the_latest_trusted_step() -> None:
    """Measured p95 (capped at the SLO) and requests per unit of load replace the model's."""
    paces = [Pace("3g", 1.0, 1.9, 1.0, timeout_s=10.0, cap_s=6.0)]

    def step(p95_ms: float, requests: int) -> StepResult:
        seg = SegmentStep("3g", requests, {}, 4.0, 4.0, 1.0, 1.0, p95_ms, 1.0, 1.0, 1.0)
        return StepResult(0, 1.0, 4.0, "ramp", 0.0, 5.0, 10.0, {"3g": seg})

    learnt = learn_paces(paces, [step(4700.0, 120)])[0]
    assert learnt.request_s == pytest.approx(4.7)
    assert learnt.requests_per_load_s == pytest.approx(120 / 10 / 4.0)  # 3 requests an arrival
    failing = learn_paces(paces, [step(9500.0, 40)])[0]
    assert failing.request_s == pytest.approx(6.0)  # its SLO: a failing p95 does not stretch


def test_initial_paces_use_the_network_model() -> None:
    """Before any step: the model's time of a typical response, one request per iteration."""
    profiles = resolve_profiles(["android-lowend-3g", "desktop-broadband"])
    shares = {"android-lowend-3g": 0.25, "desktop-broadband": 0.75}
    paces = {p.name: p for p in initial_paces(profiles, shares, model="open", emulate=True)}
    slow = paces["android-lowend-3g"]
    assert slow.request_s == pytest.approx(model_request_s(profiles[0], emulate=True))
    assert 1.0 < slow.request_s < paces["desktop-broadband"].request_s * 20
    assert slow.requests_per_load_s == 0.25


def test_with_objectives_the_rarest_objective_endpoint_sets_the_rate() -> None:
    """Each objective is judged on its own endpoint's requests: 12 search requests in 10 s at
    4 req/s of load, beside 108 others, pace the segment at 0.3 search requests per unit of
    load, so the hold stretches until search alone is expected to reach EXPECTED_REQUESTS."""
    paces = [Pace("3g", 1.0, 0.9, 1.0, keys=("/api/search", "/api/page"))]
    eps = {
        "/api/search": EndpointStats(12, 0, 800.0, 900.0, 950.0),
        "/api/page": EndpointStats(108, 0, 500.0, 600.0, 650.0),
    }
    seg = SegmentStep("3g", 120, {}, 4.0, 4.0, 1.0, 1.0, 900.0, 1.0, 1.0, 1.0, endpoints=eps)
    learnt = learn_paces(paces, [StepResult(0, 1.0, 4.0, "ramp", 0.0, 5.0, 10.0, {"3g": seg})])[0]
    assert learnt.requests_per_load_s == pytest.approx(12 / 10 / 4.0)
    sized = size_step(_step(), 4.0, [learnt], PLAN)
    assert sized.step.hold_s == pytest.approx(math.ceil(EXPECTED_REQUESTS / (12 / 10)))

"""The surge rehearsal's pure parts: the fluid model, the recovery rule on synthetic per-second
series with known answers, the timeline's per-second percentiles, and the surge's plan."""

from __future__ import annotations

import math

import pytest

from breakpoint.analysis.surge import (
    Phases,
    SecondBin,
    backlog_limit,
    block_verdict,
    fluid_recovery_s,
    recovery,
    slo_residual,
    surge_backlog,
)
from breakpoint.errors import ConfigError
from breakpoint.load.timeline import Timeline
from breakpoint.plan.surge import SurgePlan, SurgeSchedule
from breakpoint.runs.surge_summary import bins_from_dict

CAP = 100  # completions per second the synthetic server manages
SLO_MS = 500.0


def fluid_bins(
    rates: list[int], *, requests_per_s: int | None = None, failed_share: float = 0.0
) -> list[SecondBin]:
    """A deterministic queue, one bin a second: it serves at most CAP a second; a second's p95
    is 100 ms of service plus the wait behind the queue left at its end."""
    bins, q = [], 0
    for a in rates:
        served = min(CAP, q + a)
        q += a - served
        n = a if requests_per_s is None else requests_per_s
        failed = round(n * failed_share)
        p95 = 100.0 + q / CAP * 1000.0
        bins.append(SecondBin(a, served, n, failed, None if failed_share >= 0.05 else p95, p95))
    return bins


def surge_rates(base: int = 50, peak: int = 150, tail_s: int = 30) -> list[int]:
    """10 s at `base`, 10 s at `peak`, then `tail_s` at `base`."""
    return [base] * 10 + [peak] * 10 + [base] * tail_s


PHASES = Phases(baseline_from_s=0.0, surge_from_s=10.0, drop_s=20.0, end_s=50.0)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param(
            {"capacity_rps": 100, "baseline_rps": 50, "surge_rps": 150, "surge_s": 12},
            12.0,
            id="600-requests-drain-at-50-per-s",
        ),
        pytest.param(
            {"capacity_rps": 100, "baseline_rps": 50, "surge_rps": 80, "surge_s": 12},
            0.0,
            id="surge-within-capacity",
        ),
        pytest.param(
            {"capacity_rps": 100, "baseline_rps": 100, "surge_rps": 150, "surge_s": 12},
            None,
            id="baseline-at-capacity-never-drains",
        ),
        pytest.param(
            {
                "capacity_rps": 100,
                "baseline_rps": 50,
                "surge_rps": 150,
                "surge_s": 12,
                "abandon_after_s": 2,
            },
            4.0,
            id="abandoned-requests-cap-the-backlog",
        ),
        pytest.param(
            {
                "capacity_rps": 100,
                "baseline_rps": 75,
                "surge_rps": 200,
                "surge_s": 10,
                "residual": 100,
            },
            36.0,
            id="residual-queue-within-objective",
        ),
    ],
)
def test_fluid_model(kwargs: dict[str, float], expected: float | None) -> None:
    """Recovery = (surge rate - capacity) x surge length / (capacity - baseline rate)."""
    got = fluid_recovery_s(**kwargs)
    assert got == (None if expected is None else pytest.approx(expected))


def test_fluid_model_parts_and_bad_input() -> None:
    """The backlog and the queue the objective tolerates follow the formulas; nonsense raises."""
    assert surge_backlog(capacity_rps=100, surge_rps=300, surge_s=5) == 1000
    assert slo_residual(capacity_rps=100, slo_ms=500, service_p95_ms=120) == pytest.approx(38)
    assert slo_residual(capacity_rps=100, slo_ms=100, service_p95_ms=120) == 0
    with pytest.raises(ValueError, match="surge_s"):
        fluid_recovery_s(capacity_rps=100, baseline_rps=50, surge_rps=150, surge_s=math.nan)


def test_recovery_of_a_draining_queue_is_when_it_drained() -> None:
    """A 500-request backlog draining at 50/s is gone 10 s after the drop: the first good
    second is the 10th (index 29), 9 s after the drop; both window variants agree."""
    rec = recovery(fluid_bins(surge_rates()), PHASES, SLO_MS)
    assert rec.label == "recovered"
    assert rec.recovery_s == pytest.approx(9.0)
    assert (rec.low_s, rec.high_s) == (pytest.approx(9.0), pytest.approx(9.0))
    assert rec.backlog_limit == 4.0  # nothing in flight at 1X: 0 + 3 x sqrt(1) + 1


def test_recovery_is_counted_from_the_drop_itself() -> None:
    """A drop 0.4 s into a second: recovery is measured from the drop, not the bin edge."""
    phases = Phases(0.0, 10.0, 19.6, 50.0)
    rates = [50] * 10 + [150] * 10 + [50] * 30
    rec = recovery(fluid_bins(rates), phases, SLO_MS)
    assert rec.recovery_s == pytest.approx(29 - 19.6)


def test_noisy_second_delays_recovery_and_widens_the_interval() -> None:
    """One slow second (p95 over the objective) inside the streak pushes recovery past it;
    the shorter window recovers before it, so the interval's low end is earlier."""
    bins = fluid_bins(surge_rates())
    slow = bins[32]
    bins[32] = SecondBin(slow.offered, slow.finished, slow.requests, 0, 900.0, 900.0)
    rec = recovery(bins, PHASES, SLO_MS)
    assert rec.recovery_s == pytest.approx(13.0)  # 5 good seconds from index 33
    assert rec.low_s == pytest.approx(9.0)  # 3 good seconds: 29, 30, 31
    assert rec.high_s == pytest.approx(13.0)


def test_never_recovered_says_so_without_a_number() -> None:
    """A baseline at capacity never drains the surge's backlog: not_recovered, no number."""
    rec = recovery(fluid_bins([100] * 10 + [150] * 10 + [100] * 30), PHASES, SLO_MS)
    assert rec.label == "not_recovered"
    assert rec.recovery_s is None and rec.low_s is None and rec.high_s is None
    assert rec.observed_s == pytest.approx(30.0)
    assert "30 s measured" in rec.reason


def test_recovery_cut_short_before_the_longer_window_has_no_upper_end() -> None:
    """Measured until 5 s after the backlog drained: recovered (5-s window), but the 10-s
    window did not fit, so the interval's upper end is unknown (None), not invented."""
    phases = Phases(0.0, 10.0, 20.0, 34.0)
    rec = recovery(fluid_bins(surge_rates(tail_s=14)), phases, SLO_MS)
    assert rec.label == "recovered" and rec.recovery_s == pytest.approx(9.0)
    assert rec.high_s is None


def test_too_few_requests_per_second_is_no_verdict() -> None:
    """Three requests a second say nothing about a p95: no verdict, and the reason says so."""
    rec = recovery(fluid_bins(surge_rates(), requests_per_s=3), PHASES, SLO_MS)
    assert rec.label == "no_verdict" and rec.recovery_s is None
    assert "10 requests" in rec.reason


def sparse_bins(rates: list[int], per_iteration: float) -> list[SecondBin]:
    """fluid_bins with few requests a second (`per_iteration` of each arrival's, rounded down
    per second but carried over) and `slow` counted: all slow while the queue's wait is over
    the objective, none otherwise."""
    out, carry = [], 0.0
    for b in fluid_bins(rates):
        carry += b.offered * per_iteration
        n = int(carry)
        carry -= n
        late = b.p95_all_ms is not None and b.p95_all_ms > SLO_MS
        out.append(SecondBin(b.offered, b.finished, n, 0, b.p95_all_ms, b.p95_ms, n if late else 0))
    return out


def test_a_sparse_segment_is_judged_on_blocks_of_seconds() -> None:
    """Four requests a second at 1X: blocks of 3 s hold 10; the recovery is found on them,
    within a block of the dense answer (9 s), and says its resolution."""
    dense = recovery(fluid_bins(surge_rates()), PHASES, SLO_MS)
    sparse = recovery(sparse_bins(surge_rates(), 0.08), PHASES, SLO_MS)
    assert sparse.label == "recovered" and sparse.resolution_s == 3, sparse
    assert dense.resolution_s == 1 and dense.recovery_s == pytest.approx(9.0)
    assert sparse.recovery_s is not None
    assert abs(sparse.recovery_s - dense.recovery_s) <= sparse.resolution_s


def test_a_segment_too_sparse_for_ten_seconds_has_no_verdict() -> None:
    """Under one request a second at 1X (fewer than 10 in 10 s): no verdict, saying why."""
    rec = recovery(sparse_bins(surge_rates(), 0.015), PHASES, SLO_MS)
    assert rec.label == "no_verdict" and rec.recovery_s is None
    assert "too sparse" in rec.reason


def test_blocks_count_failures_and_slow_requests_exactly() -> None:
    """A block passes when at most 5% of its requests failed or were slower than the
    objective: 1 of 20 passes, 2 of 20 fails, fewer than 10 has no verdict."""
    ok = SecondBin(0, 0, 10, 0, 100.0, 100.0, 0)
    one_slow = SecondBin(0, 0, 10, 0, 900.0, 100.0, 1)
    one_failed = SecondBin(0, 0, 10, 1, None, 100.0, 0)
    assert block_verdict([ok, one_slow], SLO_MS) is True
    assert block_verdict([one_slow, one_failed], SLO_MS) is False
    assert block_verdict([SecondBin(0, 0, 9, 0, 100.0, 100.0, 0)], SLO_MS) is None


def test_failures_count_against_the_objective() -> None:
    """Fast answers that fail (10% of them) are not a recovery."""
    rec = recovery(fluid_bins(surge_rates(), failed_share=0.1), PHASES, SLO_MS)
    assert rec.label == "not_recovered"


def test_no_baseline_second_is_no_verdict() -> None:
    """Without a whole measured second at 1X there is nothing to call drained."""
    phases = Phases(baseline_from_s=9.5, surge_from_s=10.0, drop_s=20.0, end_s=50.0)
    assert backlog_limit(fluid_bins(surge_rates()), phases) is None
    assert recovery(fluid_bins(surge_rates()), phases, SLO_MS).label == "no_verdict"


def test_timeline_percentiles_count_failures_as_slowest() -> None:
    """Per second: p95 of successes, and p95 of all with failures slower than any success
    (None once more than 5% failed); the stored form reads back the same."""
    t = Timeline(["a"], origin=1000.0)
    for i in range(100):
        t.offered("a", 1000.2)
        t.request("a", 1000.2, float(i + 1), failed=False)
        t.finished("a", 1000.9)
    for i in range(19):
        t.request("a", 1001.5, 10.0 + i, failed=False)
    t.request("a", 1001.5, 0.0, failed=True)
    assert t.bins("a")[1].p95_all_ms == 28.0  # 1 of 20 failed: the p95 is the slowest success
    t.request("a", 1001.5, 0.0, failed=True)
    first, second = t.bins("a")
    assert (first.requests, first.failed, first.p95_all_ms, first.p95_ms) == (100, 0, 95.0, 95.0)
    assert second.requests == 21 and second.p95_all_ms is None and second.p95_ms == 28.0
    assert bins_from_dict(t.to_dict())["a"] == [first, second]
    assert first.slow is None  # no objective given: not counted


def test_timeline_counts_requests_over_the_objective() -> None:
    """With an objective, successful requests over it are counted per second (failures are
    counted as failed, not slow); the stored form reads back the same."""
    t = Timeline(["a", "b"], origin=1000.0, objectives_ms={"a": 50.0})
    for ms in (10.0, 50.0, 51.0, 200.0):
        t.request("a", 1000.5, ms, failed=False)
        t.request("b", 1000.5, ms, failed=False)
    t.request("a", 1000.5, 999.0, failed=True)
    (a,), (b,) = t.bins("a"), t.bins("b")
    assert (a.requests, a.failed, a.slow) == (5, 1, 2) and b.slow is None
    assert bins_from_dict(t.to_dict()) == {"a": [a], "b": [b]}


def test_surge_plan_phases_and_schedule() -> None:
    """Three phases back to back (no warm-up after the first); the recovery timeout defaults to
    5 x the surge (at least 30 s); the schedule walks them and stops after a partial one."""
    plan = SurgePlan(baseline_rps=40, to=3, for_s=10, baseline_s=12, warmup_s=2)
    steps = plan.steps()
    assert [(s.phase, s.multiplier, s.warmup_s, s.hold_s) for s in steps] == [
        ("baseline", 1.0, 2, 12),
        ("surge", 3, 0.0, 10),
        ("recovery", 1.0, 0.0, 50.0),
    ]
    assert SurgePlan(baseline_rps=40, to=3, for_s=2).recovery_s == 30.0
    assert plan.plan().load_at(3) == 120
    schedule = SurgeSchedule(plan)
    assert schedule.next_step([]) == steps[0]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"to": 1.0}, "to", id="to-one"),
        pytest.param({"for_s": 0.0}, "for_s", id="for-zero"),
        pytest.param({"to": 60.0}, "hard_cap", id="above-cap"),
        pytest.param({"baseline_s": 1.0}, "baseline_s", id="baseline-too-short"),
        pytest.param({"recovery_timeout_s": 4.0}, "recovery_timeout_s", id="timeout-too-short"),
    ],
)
def test_surge_plan_refuses_nonsense(kwargs: dict[str, float], field: str) -> None:
    """Each invalid value is refused naming its field."""
    base = {"baseline_rps": 40.0, "to": 3.0, "for_s": 10.0}
    with pytest.raises(ConfigError) as err:
        SurgePlan(**{**base, **kwargs})  # type: ignore[arg-type]
    assert err.value.field == field

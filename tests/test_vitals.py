"""The master's view of a distributed run's vital signs (load/vitals.py), and the rules it
shares with a single process: pool backlog (ArrivalScheduler.backlogged), cool-down
(criteria.needs_cool_down), the user-wait flag (health.summarise_health), and the within-step
trend test (criteria.is_saturated)."""

from __future__ import annotations

from dataclasses import replace

from breakpoint.analysis.criteria import calmest, is_saturated, latency_trend, needs_cool_down
from breakpoint.load.arrivals import ArrivalScheduler
from breakpoint.load.health import summarise_health
from breakpoint.load.vitals import RemoteVitals
from breakpoint.results import GeneratorHealth, SegmentStep, Series, StepResult


def report(vitals: RemoteVitals, node: str, **data: object) -> None:
    """A worker's report to the master, as Locust's worker_report event hands it over."""
    vitals.on_worker_report(node, {"stats": [], "bp_vitals": data})


def test_remote_vitals_sum_the_live_workers_only() -> None:
    now = 1_000.0
    clock = [now - 60]  # the master started a minute ago
    alive = {"w1", "w2"}
    vitals = RemoteVitals(clock=lambda: clock[0])
    clock[0] = now
    vitals.alive = lambda: alive
    for node, rows, flying, cpu, backlog in (
        ("w1", {"995": [10, 1, 0], "996": [10, 2, 1], "999": [99, 99, 99]}, 3, 40.0, False),
        ("w2", {"995": [5, 0, 0], "996": [5, 5, 0]}, 4, 95.0, True),
        ("gone", {"995": [1000, 1000, 1000]}, 100, 100.0, True),
    ):
        report(
            vitals,
            node,
            recent=rows,
            last_completion_at=now - 2,
            window=7,
            in_flight=flying,
            health={"cpu_pct": cpu, "loop_lag_ms": 1.0, "schedule_lag_ms": 0.0},
            backlogged=backlog,
        )
    # Seconds 995 and 996 (the newest second, still filling, is left out: settle 3 s).
    assert vitals.recent_totals(2, 3) == (30, 8, 1)
    assert vitals.in_flight(7) == 7 and vitals.in_flight(8) == 0
    assert vitals.latest_health()["cpu_pct"] == 95.0
    assert vitals.last_completion_at == now - 2
    alive.discard("w2")
    assert vitals.recent_totals(2, 3) == (20, 3, 1)


def test_scheduler_backlog_is_judged_per_segment_rate() -> None:
    scheduler = ArrivalScheduler({"a": 0.5, "b": 0.5}, seed=1)
    scheduler.set_rates({"a": 100.0, "b": 10.0}, step=0)
    rates = scheduler.rates()
    assert abs(rates["a"] - 100.0) < 1e-9 and abs(rates["b"] - 10.0) < 1e-9
    for _ in range(6):
        scheduler.queues["b"].put(None)  # type: ignore[arg-type]
    assert scheduler.backlogged()  # 6 > max(5, 10 x 0.5) for b
    for _ in range(6):
        scheduler.queues["b"].get_nowait()
    for _ in range(40):
        scheduler.queues["a"].put(None)  # type: ignore[arg-type]
    assert not scheduler.backlogged()  # 40 < 100 x 0.5 for a
    scheduler.stop()


def step_with(offered: float, completed: float, mean_ms: float) -> StepResult:
    seg = SegmentStep(
        segment="s", requests=int(completed * 10), errors={}, offered_rps=offered,
        completed_rps=completed, p50_ms=mean_ms, p90_ms=mean_ms, p95_ms=mean_ms,
        p99_ms=mean_ms, max_ms=mean_ms, mean_ms=mean_ms,
    )  # fmt: skip
    return StepResult(
        index=0, multiplier=1.0, load=offered, phase="ramp", started_at=0.0, warmup_s=1.0,
        measured_s=10.0, segments={"s": seg}, generator=GeneratorHealth(),
    )  # fmt: skip


def test_cool_down_when_saturated_or_far_more_in_flight_than_littles_law() -> None:
    calm = step_with(40.0, 40.0, 50.0)  # Little: 2 in flight
    assert not needs_cool_down(calm, in_flight=10)
    assert needs_cool_down(calm, in_flight=200)
    assert needs_cool_down(step_with(100.0, 50.0, 100.0), in_flight=0)  # completed half


def test_cool_down_when_a_queue_grew_all_through_the_step() -> None:
    """A queue that built all through a step raises its own mean latency, and Little's law with
    it (80/s x 4 s = 320 in flight) passes 400 in flight; against the run's calmest mean (0.3 s
    at 1X: 24 expected) it is a queue to drain. A step as calm as that one is not paused."""
    queued = step_with(80.0, 79.0, 4000.0)
    assert not needs_cool_down(queued, in_flight=400)
    calm = calmest({}, step_with(40.0, 40.0, 300.0))
    assert calm == {"s": 300.0}
    assert needs_cool_down(queued, in_flight=400, calm_ms=calm)
    assert not needs_cool_down(step_with(80.0, 80.0, 400.0), in_flight=40, calm_ms=calm)
    # The reference only falls; a step with too few requests leaves it as it was.
    assert calmest(calm, step_with(80.0, 79.0, 4000.0)) == calm
    assert calmest(calm, step_with(1.0, 1.0, 10.0)) == calm


def test_one_late_arrival_is_a_pause_not_a_pool_too_small() -> None:
    one = summarise_health([], user_waits_s=[0.2] + [0.0] * 26, arrivals=27)
    two = summarise_health([], user_waits_s=[0.2, 0.3] + [0.0] * 25, arrivals=27)
    assert not one.bound and two.bound


def test_the_within_step_trend_test_shares_its_p_value_among_the_segments() -> None:
    """A per-second mean that rises x1.8 with p = 0.004 fails a lone segment as saturated; among
    six segments (six chances of a false alarm) the threshold is 0.01 / 6 and it passes."""
    rising = (47, 46, 47, 108, 117, 117, 139, 89, 145, 164, 190, 132, 156, 97, 164, 102)
    growth, p = latency_trend(rising)
    assert growth >= 1.5 and 0.01 / 6 < p < 0.01
    seg = replace(step_with(40.0, 40.0, 120.0).segments["s"], series=Series(mean_ms=rising))
    assert is_saturated(seg)[0]
    assert not is_saturated(seg, segments=6)[0]
    steady = tuple(100.0 + 10 * i for i in range(16))  # x1.9, p far below 0.01 / 6
    assert is_saturated(replace(seg, series=Series(mean_ms=steady)), segments=6)[0]


def test_scheduler_asks_for_users_before_arrivals_wait() -> None:
    scheduler = ArrivalScheduler({"a": 0.5, "b": 0.5}, seed=1)
    scheduler.set_rates({"a": 100.0, "b": 2.0}, step=0)
    scheduler.idle.update(a=60, b=2)
    assert not scheduler.short_of_users()  # 60 idle >= 100 x 0.5; 2 idle >= max(2, 1)
    scheduler.idle["a"] = 49
    assert scheduler.short_of_users()  # fewer idle users than half a second of a's arrivals
    assert not scheduler.backlogged()  # nobody waits yet
    scheduler.idle["a"] = 60
    scheduler.idle["b"] = 1
    assert scheduler.short_of_users()
    scheduler.set_rates({"a": 0.0, "b": 0.0}, step=1)
    assert not scheduler.short_of_users()  # no arrivals: no reserve needed
    scheduler.stop()

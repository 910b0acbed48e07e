"""The master's view of a distributed run's vital signs (load/vitals.py), and the rules it
shares with a single process: pool backlog (ArrivalScheduler.backlogged), cool-down
(criteria.needs_cool_down) and the user-wait flag (health.summarise_health)."""

from __future__ import annotations

from breakpoint.analysis.criteria import needs_cool_down
from breakpoint.load.arrivals import ArrivalScheduler
from breakpoint.load.health import summarise_health
from breakpoint.load.vitals import RemoteVitals
from breakpoint.results import GeneratorHealth, SegmentStep, StepResult


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


def test_one_late_arrival_is_a_pause_not_a_pool_too_small() -> None:
    one = summarise_health([], user_waits_s=[0.2] + [0.0] * 26, arrivals=27)
    two = summarise_health([], user_waits_s=[0.2, 0.3] + [0.0] * 25, arrivals=27)
    assert not one.bound and two.bound

"""The recorder: requests land in the right step window, timed from their intended start."""

from __future__ import annotations

import pytest

from breakpoint.load.health import summarise_health
from breakpoint.load.recorder import Recorder, classify_error


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Status:
    def __init__(self, code: int) -> None:
        self.status_code = code


def request(
    rec: Recorder,
    *,
    start: float,
    ms: float,
    segment: str = "a",
    lag_ms: float = 0.0,
    name: str = "/x",
    exc: BaseException | None = None,
    status: int = 200,
    **ctx: float,
) -> None:
    rec.on_request(
        request_type="GET",
        name=name,
        response_time=ms,
        response_length=10,
        exception=exc,
        context={"bp_segment": segment, "bp_lag_ms": lag_ms, **ctx},
        start_time=start,
        response=Status(status),
    )


def test_warmup_is_discarded_and_lag_is_added() -> None:
    """Requests in the warm-up are dropped; a late start adds its lag to the latency."""
    clock = Clock()
    rec = Recorder(["a"], clock=clock)
    rec.open_step(0, 1.0, 40.0, "ramp", warmup_s=2.0, start=1000.0)
    request(rec, start=1001.0, ms=10)  # warm-up: dropped
    for _ in range(99):
        request(rec, start=1003.0, ms=10)
    request(rec, start=1003.5, ms=10, lag_ms=990)  # intended at 1002.51: counted, 1000 ms
    clock.t = 1006.0
    rec.close_step(0, 1006.0)
    step = rec.result(0, final=True)
    seg = step.segments["a"]
    assert seg.requests == 100 and rec.dropped_outside == 1
    assert seg.max_ms == pytest.approx(1000, rel=0.01)
    assert seg.p50_ms == pytest.approx(10, rel=0.01)
    assert step.measured_s == pytest.approx(4.0)


def test_requests_go_to_the_step_of_their_intended_start() -> None:
    """A request that started in step 0 but finished in step 1 still belongs to step 0."""
    rec = Recorder(["a"], clock=Clock())
    rec.open_step(0, 1.0, 40.0, "ramp", warmup_s=0.0, start=1000.0)
    rec.close_step(0, 1010.0)
    rec.open_step(1, 2.0, 80.0, "ramp", warmup_s=1.0, start=1010.0)
    request(rec, start=1009.0, ms=5000)
    request(rec, start=1012.0, ms=20)
    assert rec.result(0, final=False).segments["a"].requests == 1
    assert rec.result(1, final=False).segments["a"].requests == 1


def test_offered_completed_and_unfinished() -> None:
    """Offered and finished iterations give rates; in-flight ones are errors once final."""
    clock = Clock(1010.0)
    rec = Recorder(["a"], clock=clock)
    rec.open_step(0, 1.0, 40.0, "ramp", warmup_s=0.0, start=1000.0)
    windows = [rec.iteration_offered("a", 1000.0 + i * 0.1) for i in range(100)]
    assert windows == [0] * 100
    for i in range(90):
        rec.iteration_finished("a", windows[i])
        request(rec, start=1000.0 + i * 0.1, ms=5, bp_window=0)
    rec.close_step(0, 1010.0)
    provisional = rec.result(0, final=False).segments["a"]
    assert provisional.unfinished == 0 and provisional.error_rate == 0
    final = rec.result(0, final=True).segments["a"]
    assert final.offered_rps == pytest.approx(10.0) and final.completed_rps == pytest.approx(9.0)
    assert final.unfinished == 10 and final.error_rate == pytest.approx(0.1)
    assert final.completion_ratio == pytest.approx(0.9)


def test_iterations_longer_than_a_window_count_in_their_own_window() -> None:
    """Two consecutive 4 s windows, iterations lasting three windows (12 s): every offered
    iteration, and its request, is counted in the window it was offered in, none in the next
    one, none dropped; the first window waits for its stragglers."""
    clock = Clock(1000.0)
    rec = Recorder(["slow"], clock=clock)
    rec.open_step(0, 1.0, 1.0, "ramp", warmup_s=0.0, start=1000.0)
    first = [(1000.0 + i * 0.5, rec.iteration_offered("slow", 1000.0 + i * 0.5)) for i in range(8)]
    rec.close_step(0, 1004.0)
    # The next step's warm-up (1 s) and window; its arrivals overlap the first window's
    # iterations, which are all still running.
    rec.open_step(1, 2.0, 2.0, "ramp", warmup_s=1.0, start=1004.0)
    warm = rec.iteration_offered("slow", 1004.5)
    second = [
        (1005.0 + i * 0.25, rec.iteration_offered("slow", 1005.0 + i * 0.25)) for i in range(12)
    ]
    rec.close_step(1, 1008.0)
    assert warm is None
    assert {w for _, w in first} == {0} and {w for _, w in second} == {1}
    assert rec.in_flight(0) == 8 and rec.in_flight(1) == 12
    # Now they finish, 12 s after their start, in any order (second window's first).
    for start, window in second + first:
        clock.t = start + 12.0
        request(rec, start=start, ms=12_000, segment="slow", bp_window=window, bp_iter_start=start)
        rec.iteration_finished("slow", window)
    assert rec.in_flight(0) == 0 and rec.in_flight(1) == 0
    one, two = rec.result(0, final=True), rec.result(1, final=True)
    a, b = one.segments["slow"], two.segments["slow"]
    assert (a.requests, a.unfinished, a.offered_rps) == (8, 0, 2.0)
    assert (b.requests, b.unfinished, b.offered_rps) == (12, 0, 4.0)
    assert a.p95_ms == pytest.approx(12_000, rel=0.01) and b.p95_ms == pytest.approx(
        12_000, rel=0.01
    )
    assert sum(a.series.completed) == 8 and sum(b.series.completed) == 12
    assert rec.dropped_outside == 0


def test_a_request_after_its_window_is_final_is_counted_as_dropped() -> None:
    """Past the drain deadline the window is final: a straggler is counted, never moved."""
    rec = Recorder(["a"], clock=Clock(1010.0))
    rec.open_step(0, 1.0, 1.0, "ramp", warmup_s=0.0, start=1000.0)
    window = rec.iteration_offered("a", 1001.0)
    rec.close_step(0, 1005.0)
    final = rec.result(0, final=True).segments["a"]
    assert final.unfinished == 1 and final.error_rate == 1.0
    request(rec, start=1001.0, ms=9000, bp_window=window)
    rec.iteration_finished("a", window)
    assert rec.dropped_outside == 1


def test_p95_is_over_successful_requests() -> None:
    """Fast failures do not pull the p95 down: they count in the error rate only."""
    rec = Recorder(["a"], clock=Clock())
    rec.open_step(0, 1.0, 40.0, "ramp", warmup_s=0.0, start=1000.0)
    for i in range(80):
        request(rec, start=1000.0 + i * 0.01, ms=200)
    for i in range(20):
        request(rec, start=1001.0 + i * 0.01, ms=1, status=503, exc=RuntimeError("503"))
    rec.close_step(0, 1003.0)
    seg = rec.result(0, final=True).segments["a"]
    assert seg.requests == 100 and seg.error_rate == pytest.approx(0.2)
    assert seg.p50_ms == pytest.approx(200, rel=0.01) and seg.p95_ms == pytest.approx(200, rel=0.01)


def test_generator_faults_are_not_the_targets_errors() -> None:
    """Running out of file descriptors is the generator's fault: not an error of the target,
    and the step is flagged generator-bound; so is an arrival waiting for a free user."""
    import errno

    rec = Recorder(["a"], clock=Clock())
    rec.open_step(0, 1.0, 40.0, "ramp", warmup_s=0.0, start=1000.0)
    for i in range(30):
        request(rec, start=1000.0 + i * 0.01, ms=10)
    request(rec, start=1001.0, ms=0, exc=OSError(errno.EMFILE, "Too many open files"), status=0)
    rec.close_step(0, 1003.0)
    step = rec.result(0, final=True)
    seg = step.segments["a"]
    assert seg.requests == 30 and seg.error_rate == 0 and seg.generator_errors == 1
    assert step.generator.bound and "file descriptors" in step.generator.reasons[0]

    rec = Recorder(["a"], clock=Clock())
    rec.open_step(0, 1.0, 40.0, "ramp", warmup_s=0.0, start=1000.0)
    windows = [rec.iteration_offered("a", 1000.0 + i * 0.01) for i in range(100)]
    for i, w in enumerate(windows):
        rec.user_wait(w, 0.2 if i < 3 else 0.0)  # 3% of arrivals waited 200 ms for a user
        rec.iteration_finished("a", w)  # the target kept up
    rec.close_step(0, 1003.0)
    health = rec.result(0, final=True).generator
    assert health.bound and "free virtual user" in health.reasons[0]
    assert health.waited_arrivals == 3 and health.user_wait_p99_ms == pytest.approx(200)


def test_errors_parts_endpoints_and_series() -> None:
    """Errors by kind, latency parts, endpoints and the per-second series are all kept."""
    rec = Recorder(["a", "b"], clock=Clock())
    rec.open_step(0, 1.0, 40.0, "ramp", warmup_s=0.0, start=1000.0)
    request(rec, start=1000.2, ms=100, bp_network_ms=60, bp_device_ms=10)
    request(rec, start=1001.2, ms=300, name="/y", status=503, exc=RuntimeError("503"))
    request(rec, start=1001.5, ms=50, segment="b")
    rec.close_step(0, 1003.0)
    step = rec.result(0, final=True)
    a = step.segments["a"]
    assert a.errors == {"http_5xx": 1}
    # Latency parts are means over successful requests (the failed one is only an error).
    assert a.parts_ms["network"] == pytest.approx(60) and a.parts_ms["device"] == pytest.approx(10)
    assert a.parts_ms["server"] == pytest.approx(30)
    assert set(a.endpoints) == {"/x", "/y"} and a.endpoints["/y"].errors == 1
    assert a.series.completed == (1, 1, 0) and a.series.errors == (0, 1, 0)
    assert step.segments["b"].requests == 1
    # Requests of users outside any segment (not wrapped) are ignored.
    rec.on_request(name="/z", response_time=1, context={}, start_time=1001.0)
    assert rec.result(0, final=True).segments["a"].requests == 2


@pytest.mark.parametrize(
    ("exc", "status", "kind"),
    [
        pytest.param(None, 200, None, id="ok"),
        pytest.param(None, 404, "http_4xx", id="4xx-without-exception"),
        pytest.param(RuntimeError("HTTP 500"), 500, "http_5xx", id="5xx"),
        pytest.param(TimeoutError("timed out"), 0, "timeout", id="timeout"),
        pytest.param(TimeoutError("timed out"), 0, "timeout", id="socket-timeout"),
        pytest.param(ConnectionRefusedError(111, "refused"), 0, "connection", id="refused"),
        pytest.param(ConnectionResetError(104, "reset"), 0, "connection", id="reset"),
        pytest.param(ValueError("bad json"), 200, "other", id="other"),
    ],
)
def test_error_classification(exc: BaseException | None, status: int, kind: str | None) -> None:
    """Each failure is classified as timeout, connection, HTTP status class or other."""
    assert classify_error(exc, Status(status)) == kind


def test_generator_health_flags_a_busy_generator() -> None:
    """Two or more seconds above 90% CPU, or large loop/schedule lag, mark the step bound."""
    calm = summarise_health([("cpu", 40.0), ("cpu", 50.0), ("loop_lag_ms", 2.0)])
    busy = summarise_health([("cpu", 97.0), ("cpu", 99.0), ("cpu", 60.0)])
    late = summarise_health([("schedule_lag_ms", 400.0)] * 10)
    assert not calm.bound
    assert busy.bound and "CPU" in busy.reasons[0]
    assert late.bound and "schedule lag" in late.reasons[0]


def test_one_pause_does_not_discard_a_step() -> None:
    """A single long pause (e.g. a garbage collection) is not sustained lag; a slow loop is."""
    one_pause = summarise_health([("loop_lag_ms", 1.0)] * 29 + [("loop_lag_ms", 180.0)])
    sustained = summarise_health([("loop_lag_ms", 150.0)] * 10 + [("loop_lag_ms", 1.0)] * 20)
    assert not one_pause.bound and one_pause.loop_lag_p99_ms == 180.0
    assert sustained.bound and "event-loop lag" in sustained.reasons[0]


def test_a_stall_of_seconds_discards_the_step() -> None:
    """A stall of the loop for seconds (a paused machine: 28 s in one demo run) sent no load
    meanwhile: the step measured the stall, whatever the p95 of the lag samples says."""
    stalled = summarise_health([("loop_lag_ms", 1.0)] * 40 + [("loop_lag_ms", 28_200.0)])
    assert stalled.bound and "stood still for 28.2 s" in stalled.reasons[0]
    short = summarise_health([("loop_lag_ms", 1.0)] * 40 + [("loop_lag_ms", 900.0)])
    assert not short.bound


def test_waiting_for_a_user_while_the_target_is_overloaded_is_the_targets_latency() -> None:
    """When the target completes clearly less than is offered, every user is held by its queue:
    arrivals that wait are timed from their intended start and the step is not flagged; with
    the pool at its cap (--max-users) the same wait is the generator's fault."""
    for capped in (False, True):
        clock = Clock(1000.0)
        rec = Recorder(["a"], clock=clock)
        rec.open_step(0, 12.0, 400.0, "ramp", warmup_s=0.0, start=1000.0)
        windows = [rec.iteration_offered("a", 1000.0 + i * 0.0025) for i in range(4000)]
        if capped:
            rec.pool_capped()
        for i, w in enumerate(windows):
            rec.user_wait(w, 0.3)
            if i % 2 == 0:  # the target completes half of what is offered
                clock.t = 1000.0 + i * 0.0025 + 0.5
                request(rec, start=1000.0 + i * 0.0025, ms=800, bp_window=w)
                rec.iteration_finished("a", w)
        clock.t = 1010.0
        rec.close_step(0, 1010.0)
        health = rec.result(0, final=True).generator
        assert health.waited_arrivals == 4000
        assert health.bound is capped
        if capped:
            assert "--max-users" in health.reasons[0]

"""The recorder: requests land in the right step window, timed from their intended start."""

from __future__ import annotations

import pytest

from breakpoint.recorder import Recorder, classify_error, summarise_health


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
    for i in range(100):
        rec.iteration_offered("a", 1000.0 + i * 0.1)
    for i in range(90):
        rec.iteration_finished("a", 1000.0 + i * 0.1)
        request(rec, start=1000.0 + i * 0.1, ms=5)
    rec.close_step(0, 1010.0)
    provisional = rec.result(0, final=False).segments["a"]
    assert provisional.unfinished == 0 and provisional.error_rate == 0
    final = rec.result(0, final=True).segments["a"]
    assert final.offered_rps == pytest.approx(10.0) and final.completed_rps == pytest.approx(9.0)
    assert final.unfinished == 10 and final.error_rate == pytest.approx(0.1)
    assert final.completion_ratio == pytest.approx(0.9)


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
    assert a.parts_ms["network"] == pytest.approx(30) and a.parts_ms["device"] == pytest.approx(5)
    assert a.parts_ms["server"] == pytest.approx((30 + 300) / 2)
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

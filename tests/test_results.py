"""Results: records round-trip through storage, and worker parts merge as one process would."""

from __future__ import annotations

import random

import pytest

from breakpoint.load.recorder import Recorder
from breakpoint.results import group_records, merge_steps


class Clock:
    t = 1010.0

    def __call__(self) -> float:
        return self.t


def _measure(samples: list[tuple[float, float, str]], *, workers: int) -> list:
    """Record the same requests split over `workers` recorders (round robin)."""
    recorders = [Recorder(["a"], clock=Clock()) for _ in range(workers)]
    for r in recorders:
        r.open_step(0, 2.0, 80.0, "ramp", warmup_s=0.0, start=1000.0)
    for i, (start, ms, name) in enumerate(samples):
        r = recorders[i % workers]
        r.iteration_finished("a", r.iteration_offered("a", start))
        r.on_request(
            name=name,
            response_time=ms,
            context={"bp_segment": "a", "bp_network_ms": ms / 4},
            start_time=start,
        )
    for r in recorders:
        r.close_step(0, 1010.0)
    return [r.result(0, final=True) for r in recorders]


def test_merged_workers_equal_one_process() -> None:
    """Merging two workers' parts gives the counts, rates and percentiles of one recorder."""
    rng = random.Random(3)
    samples = [
        (1000 + rng.random() * 10, rng.expovariate(1 / 50), rng.choice(["/p", "/s"]))
        for _ in range(3000)
    ]
    (single,) = _measure(samples, workers=1)
    merged = merge_steps(_measure(samples, workers=2))
    a, b = single.segments["a"], merged.segments["a"]
    assert b.requests == a.requests == 3000
    assert b.offered_rps == pytest.approx(a.offered_rps)
    assert b.completed_rps == pytest.approx(a.completed_rps)
    for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms"):
        assert getattr(b, key) == getattr(a, key)
    assert b.mean_ms == pytest.approx(a.mean_ms, rel=1e-6)
    assert b.parts_ms["network"] == pytest.approx(a.parts_ms["network"])
    assert {k: v.requests for k, v in b.endpoints.items()} == {
        k: v.requests for k, v in a.endpoints.items()
    }
    assert b.endpoints["/p"].p95_ms == a.endpoints["/p"].p95_ms
    assert b.endpoints["/s"].parts_ms == pytest.approx(a.endpoints["/s"].parts_ms)
    assert b.series.completed == a.series.completed
    assert merged.generator.workers == 2


def test_lost_worker_marks_the_step_untrusted() -> None:
    """A step during which a worker was lost is flagged, never a breaking point."""
    parts = _measure([(1001.0, 10.0, "/p")] * 30, workers=2)
    merged = merge_steps(parts, workers_lost=1)
    assert merged.generator.bound and "lost" in merged.generator.reasons[-1]


def test_records_round_trip() -> None:
    """A step written as records reads back equal."""
    (step,) = _measure([(1001.0 + i / 100, 10.0 + i, "/p") for i in range(200)], workers=1)
    (back,) = group_records(step.records())
    assert back == step


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_percentiles_match_hdrhistogram(seed: int) -> None:
    """The vectorised percentiles equal HdrHistogram's own, value for value."""
    from breakpoint.histograms import new_histogram, values_at_percentiles

    rng = random.Random(seed)
    hist = new_histogram()
    for _ in range(5000):
        hist.record_value(max(1, int(rng.lognormvariate(10, 2))))
    ps = [0.1, 1, 50, 90, 95, 99, 99.9, 100]
    assert values_at_percentiles(hist, ps) == [hist.get_value_at_percentile(p) for p in ps]

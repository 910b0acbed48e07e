"""The server's own signals (docs/design.md#server-signals): scrapes to per-step values, counter
rates, the "precedes the break" rule on synthetic series with known answers, the parser's view of
the Prometheus text format, and metrics.jsonl read back."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from breakpoint.analysis.findings import Break, FitSummary, Level, SegmentAnalysis
from breakpoint.analysis.precedes import follows_load, preceded, rise
from breakpoint.analysis.signals import (
    SeriesSamples,
    StepValue,
    Window,
    aggregate,
    per_second,
    pooled,
    step_values,
)
from breakpoint.plan.profiles import Slo
from breakpoint.runs.metrics_file import read_metrics, shown

# -- scrapes to steps ---------------------------------------------------------------------------


def test_counter_is_read_as_its_rate_and_a_drop_as_a_restart() -> None:
    """A counter's rate between samples, placed mid-interval; after a drop it counts from 0."""
    counter = SeriesSamples(
        "req_total", "counter", (0.0, 1.0, 2.0, 4.0, 5.0), (10.0, 20.0, 40.0, 60.0, 5.0)
    )
    assert per_second(counter) == [(0.5, 10.0), (1.5, 20.0), (3.0, 10.0), (4.5, 5.0)]


def test_gauge_samples_are_kept_and_non_finite_ones_dropped() -> None:
    """A gauge is read as sampled; NaN and infinities are left out."""
    gauge = SeriesSamples("busy", "gauge", (0.0, 1.0, 2.0), (3.0, float("nan"), 5.0))
    assert per_second(gauge) == [(0.0, 3.0), (2.0, 5.0)]


def test_step_values_use_the_measured_window_only() -> None:
    """Samples during a warm-up or between steps do not count; a step without one is absent."""
    gauge = SeriesSamples("busy", "gauge", tuple(float(t) for t in range(12)), tuple(range(12)))
    windows = [Window(0, 1.0, 2.0, 5.0), Window(1, 2.0, 8.0, 10.0), Window(2, 3.0, 20.0, 25.0)]
    values = step_values(gauge, windows)
    assert values == {
        0: StepValue(3.5, 5.0, 5.0, 4, pytest.approx(1.118, abs=1e-3)),  # type: ignore[arg-type]
        1: StepValue(9.0, 10.0, 10.0, 3, pytest.approx(0.816, abs=1e-3)),  # type: ignore[arg-type]
    }


def test_pooled_levels_combine_means_and_spreads() -> None:
    """Two steps of one level pool their samples: within and between spread both count."""
    level = pooled([StepValue(1.0, 2.0, 1.0, 4, 1.0), StepValue(3.0, 4.0, 3.0, 4, 1.0)])
    assert level is not None and (level.mean, level.n) == (2.0, 8)
    assert level.sd == pytest.approx(2**0.5)
    assert pooled([]) is None


def test_aggregate_turns_a_counter_into_a_per_step_rate() -> None:
    """A counter growing 30/s in a step's window reads 30 there, whatever its total."""
    t = tuple(float(x) for x in range(10))
    total = tuple(1000.0 + 30.0 * x for x in range(10))
    agg = aggregate(
        {
            "r": SeriesSamples("r", "counter", t, total),
            "idle": SeriesSamples("idle", "gauge", (), ()),
        },
        [Window(0, 1.0, 2.0, 8.0)],
    )
    assert set(agg) == {"r"}
    assert agg["r"][0].mean == pytest.approx(30.0) and agg["r"][0].n == 6


# -- the rule -----------------------------------------------------------------------------------

MULTIPLIERS = (1.0, 2.0, 3.0, 4.0)  # 4X is the first failing level
P95 = (60.0, 62.0, 70.0, 130.0)  # an M/M/c p95: flat, then up at the end


def _segment(
    multipliers: Sequence[float] = MULTIPLIERS,
    p95: Sequence[float] = P95,
    *,
    first_fail: float | None = 4.0,
    criterion: str = "latency",
) -> SegmentAnalysis:
    levels = tuple(
        Level(
            multiplier=m,
            load=40.0 * m,
            repeats=1,
            failed=int(first_fail is not None and m >= first_fail),
            passed=not (first_fail is not None and m >= first_fail),
            criterion=None,
            p95_median_ms=p,
            p95_min_ms=p,
            p95_max_ms=p,
            error_rate=0.0,
            errors=0,
            attempts=100,
            completion_ratio=1.0,
            saturated=False,
            steps=(i,),
        )
        for i, (m, p) in enumerate(zip(multipliers, p95, strict=True))
    )
    label = "bracketed" if first_fail is not None else "not_reached"
    return SegmentAnalysis(
        profile="fast",
        slo=Slo(p95_ms=100.0),
        breaking=Break(3.5, 3.2, 3.8, label, criterion, "interpolation"),  # type: ignore[arg-type]
        fit=FitSummary("none", False, {}, None, 0),
        levels=levels,
        curve=(),
        knee_multiplier=None,
        diagnosis=None,
        last_pass=3.0,
        first_fail=first_fail,
        first_fail_step=3 if first_fail is not None else None,
        fit_multiplier=None,
        interp_multiplier=None,
    )


def _steps(values: Sequence[float], sd: float = 0.0, n: int = 5) -> dict[int, StepValue]:
    return {i: StepValue(v, v, v, n, sd) for i, v in enumerate(values)}


POOL = _steps([2.0, 4.0, 6.0, 7.8])  # in use of a pool of 8: linear, near full at the break
QUEUE = _steps([0.0, 0.1, 0.5, 6.0])  # waits only near saturation, like the p95
REQUESTS = _steps([40.0, 80.0, 120.0, 158.0])  # rate/s: the load itself
SIZE = _steps([8.0, 8.0, 8.0, 8.0])


def test_the_pool_filling_steadily_is_named_not_the_queue_or_the_traffic() -> None:
    """In-use count rising from 1X is named; the queue (rising with the p95), the requests
    counter (the load itself) and the pool size (constant) are not."""
    metrics = {"pool_in_use": POOL, "queue": QUEUE, "requests_total": REQUESTS, "pool_size": SIZE}
    kinds = {"requests_total": "counter"}
    found = preceded(_segment(), metrics, kinds)  # type: ignore[arg-type]
    assert found is not None and found.named is not None
    assert found.named.metric == "pool_in_use"
    assert [c.metric for c in found.candidates] == ["pool_in_use"]
    assert found.named.half_by == 3.0 and found.named.direction == "rose"
    assert found.text.startswith("pool_in_use rose from 2 at 1X to 7.8 at 4X")
    assert "the most seen in the run: 7.8" in found.text
    doc = found.as_dict()
    assert doc["metric"] == "pool_in_use" and doc["named"]["at_base"] == 2.0  # type: ignore[index]


def test_no_metric_clearly_preceded_when_all_rise_with_the_p95_or_the_load() -> None:
    """Only a queue (rising with the p95) and the traffic: nothing is named, and it says so."""
    found = preceded(
        _segment(), {"queue": QUEUE, "requests_total": REQUESTS}, {"requests_total": "counter"}
    )
    assert found is not None and found.named is None
    assert found.text.startswith("no metric clearly preceded the break")
    assert "of 2 series, 2 changed clearly" in found.text


def test_a_counter_rising_faster_than_the_load_is_a_signal() -> None:
    """Retries per second growing ahead of the load are not traffic: named."""
    retries = _steps([1.0, 6.0, 12.0, 16.0])
    found = preceded(_segment(), {"retries_total": retries}, {"retries_total": "counter"})
    assert found is not None and found.named is not None
    assert found.named.metric == "retries_total"
    assert "(rate per s)" in found.text


def test_a_falling_metric_is_named_with_its_direction() -> None:
    """Free connections draining from 1X on precede the break as well as a rise does."""
    free = _steps([20.0, 12.0, 6.0, 1.0])
    found = preceded(_segment(), {"free_connections": free}, {})
    assert found is not None and found.named is not None and found.named.direction == "fell"


def test_a_dip_within_the_noise_of_snapshots_is_not_a_reversal() -> None:
    """Busy workers read once a second (5 snapshots, sd 1 each) dipped at 2X and at the failing
    level: within noise, the trend still rose from 1X and is named; the same dips measured to
    0.05 are real reversals and nothing is named."""
    values = [1.4, 0.8, 2.9, 2.67]
    found = preceded(_segment(), {"busy": _steps(values, sd=1.0)}, {})
    assert found is not None and found.named is not None and found.named.metric == "busy"
    precise = preceded(_segment(), {"busy": _steps(values, sd=0.05)}, {})
    assert precise is not None and precise.named is None


def test_a_change_within_the_noise_is_not_named() -> None:
    """A 50% rise that is one standard error is not a rise."""
    found = preceded(_segment(), {"m": _steps([2.0, 2.5, 3.0, 3.0], sd=2.0, n=4)}, {})
    assert found is not None and found.named is None


@pytest.mark.parametrize(
    ("values", "why"),
    [
        pytest.param([5.0, 5.2, 4.9, 5.1], "too small a change", id="flat"),
        pytest.param([2.0, 7.0, 1.0, 8.0], "not steady", id="noisy"),
    ],
)
def test_small_or_unsteady_changes_are_not_named(values: list[float], why: str) -> None:
    """A metric that barely moved, or jumped up and down, precedes nothing."""
    found = preceded(_segment(), {"m": _steps(values)}, {})
    assert found is not None and found.named is None, why


def test_too_few_levels_and_no_break_give_no_name() -> None:
    """With only 1X and the failing level nothing can be said to come first; a segment that
    did not break is not judged at all."""
    short = _segment((1.0, 2.0), (60.0, 130.0), first_fail=2.0)
    found = preceded(short, {"pool_in_use": _steps([2.0, 7.8])}, {})
    assert found is not None and found.named is None and "too few levels" in found.text
    assert preceded(_segment(first_fail=None), {"pool_in_use": POOL}, {}) is None


def test_levels_above_the_first_failure_are_ignored_and_missing_steps_skipped() -> None:
    """Only 1X up to the first failing level count; a metric absent at 1X is not a candidate."""
    seg = _segment((1.0, 2.0, 3.0, 4.0, 5.0), (60.0, 62.0, 70.0, 130.0, 900.0))
    late = {i: StepValue(v, v, v, 5) for i, v in enumerate([0.0, 0.0, 0.0, 0.0, 50.0])}
    missing = {i: StepValue(v, v, v, 5) for i, v in enumerate([2.0, 4.0, 6.0, 7.8]) if i}
    found = preceded(seg, {"late": late, "missing_1x": missing, "pool": _steps([2, 4, 6, 7.8])}, {})
    assert found is not None and found.named is not None and found.named.metric == "pool"
    assert [c.metric for c in found.candidates] == ["pool"]


@pytest.mark.parametrize(
    ("values", "lead"),
    [
        pytest.param([0.0, 1.0, 2.0, 3.0], 0.5, id="linear"),
        pytest.param([0.0, 3.0, 3.0, 3.0], 5 / 6, id="early"),
        pytest.param([0.0, 0.0, 0.0, 3.0], 1 / 6, id="late"),
    ],
)
def test_lead_is_the_area_under_the_normalised_rise(values: list[float], lead: float) -> None:
    """Linear 0.5, all at once at the start 5/6, only at the end 1/6 (levels 1-4X)."""
    assert rise("m", "gauge", MULTIPLIERS, values).lead == pytest.approx(lead)


def test_follows_load_is_a_rate_per_unit_of_load_that_did_not_grow() -> None:
    """40/s at 1X and 158/s at 4X is the traffic, and so is 40/s to 100/s (throughput falling
    behind the load, as the demo's /api/search did at saturation); 1/s to 16/s is not."""
    assert follows_load(rise("r", "counter", MULTIPLIERS, [40.0, 80.0, 120.0, 158.0]))
    assert follows_load(rise("r", "counter", MULTIPLIERS, [40.0, 70.0, 90.0, 100.0]))
    assert not follows_load(rise("r", "counter", MULTIPLIERS, [1.0, 6.0, 12.0, 16.0]))


# -- the text format and the stored file -------------------------------------------------------

EXPOSITION = """\
# TYPE pool_in_use gauge
pool_in_use{pool="db"} 3
# TYPE http_requests_total counter
http_requests_total{code="200"} 120
# TYPE http_requests_created gauge
http_requests_created{code="200"} 1.7e9
retries_total 7
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.1"} 4
latency_seconds_bucket{le="+Inf"} 5
latency_seconds_sum 0.7
latency_seconds_count 5
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.5"} 0.02
rpc_seconds_sum 3.5
rpc_seconds_count 100
# TYPE build info
build_info{version="1.2"} 1
# TYPE temperature untyped
temperature 21.5
"""


def test_flatten_keeps_levels_and_totals_and_drops_buckets_quantiles_and_info() -> None:
    """Gauges and untyped as gauges (an untyped `_total` as a counter); counters' totals and
    histograms'/summaries' _sum/_count as counters; no buckets, quantiles or _created."""
    from breakpoint.load.scrape import flatten

    values, kinds = flatten(EXPOSITION)
    assert values == {
        'pool_in_use{pool="db"}': 3.0,
        'http_requests_total{code="200"}': 120.0,
        "latency_seconds_sum": 0.7,
        "latency_seconds_count": 5.0,
        "rpc_seconds_sum": 3.5,
        "rpc_seconds_count": 100.0,
        "temperature": 21.5,
        'build_info{version="1.2"}': 1.0,  # no info type in this format: a constant gauge
        "retries_total": 7.0,  # untyped, named as a counter is
    }
    assert kinds['pool_in_use{pool="db"}'] == "gauge" and kinds["temperature"] == "gauge"
    assert {kinds[k] for k in values if "seconds" in k or "total" in k} == {"counter"}


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"status": "ok"}', id="json"),
        pytest.param('x{a="b" 1\n', id="unclosed-labels"),
        pytest.param("<html>busy</html>\n", id="html"),
    ],
)
def test_flatten_refuses_what_is_not_the_text_format(text: str) -> None:
    """Anything else is a ValueError (a failed scrape), never a wrong number."""
    from breakpoint.load.scrape import flatten

    with pytest.raises(ValueError):
        flatten(text)


def test_metrics_file_reads_back_sources_series_failures_and_a_torn_line(tmp_path: Path) -> None:
    """Two URLs' batches become tagged series in time order; failures and costs are counted;
    a torn last line is a warning, not an error; no file means no metrics."""
    assert read_metrics(tmp_path) is None
    lines = [
        {"kind": "metrics_source", "url": 0, "address": "http://a:1/metrics"},
        {"kind": "metrics_source", "url": 1, "address": "http://b:2/metrics"},
        {
            "kind": "metrics_batch",
            "url": 0,
            "t": [1.0, 2.0],
            "types": {"busy": "gauge", "req_total": "counter"},
            "values": {"busy": [1.0, None], "req_total": [5.0, 9.0]},
            "failed": [[3.0, "no answer within 0.5 s"]],
            "cost_ms": [[2.0, 0.3], [2.5, 0.4]],
            "dropped_series": 0,
        },
        {
            "kind": "metrics_batch",
            "url": 1,
            "t": [],
            "types": {},
            "values": {},
            "failed": [[1.5, "refused"]],
            "cost_ms": [],
        },
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines) + '{"kind": "metrics_ba'
    (tmp_path / "metrics.jsonl").write_text(text)
    stored = read_metrics(tmp_path)
    assert stored is not None
    assert set(stored.series) == {"busy @a:1/metrics", "req_total @a:1/metrics"}
    assert stored.series["busy @a:1/metrics"].t == (1.0,)
    assert stored.series["req_total @a:1/metrics"].kind == "counter"
    a, b = stored.sources
    assert (a.ok, a.failed, a.last_error) == (2, 1, "no answer within 0.5 s")
    assert (b.ok, b.failed) == (0, 1)
    assert a.as_dict()["parse_ms"]["max"] == 0.4
    assert len(stored.warnings) == 1 and "torn" in stored.warnings[0]


def test_shown_url_drops_credentials_and_query() -> None:
    """A scraped URL is stored without what may be a secret."""
    assert shown("https://user:pw@host:9100/metrics?token=x") == "https://host:9100/metrics"

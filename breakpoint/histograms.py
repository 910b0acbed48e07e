"""Latency histograms: HdrHistogram in microseconds, its stored encoding and fast percentiles.

Steps store their latency as HdrHistogram's compressed base64 encoding, so a run can be
re-analysed exactly and distributed workers' measurements merged (results.merge_steps). hdrh's
own percentile and mean walk the counts in Python; the vectorised versions here return the same
numbers without stalling the load generator. Pure: no locust, no file I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hdrh.histogram import HdrHistogram

# Latencies are recorded in microseconds from 1 us to 1 hour with 3 significant digits.
HIST_LOWEST_US = 1
HIST_HIGHEST_US = 3_600_000_000
HIST_DIGITS = 3


def new_histogram() -> HdrHistogram:
    return HdrHistogram(HIST_LOWEST_US, HIST_HIGHEST_US, HIST_DIGITS)


def encode_histogram(hist: HdrHistogram) -> str:
    return hist.encode().decode("ascii") if hist.get_total_count() else ""


def merge_encoded(encoded: Iterable[str]) -> HdrHistogram:
    total = new_histogram()
    for item in encoded:
        if item:
            total.add(HdrHistogram.decode(item.encode("ascii")))
    return total


_INDEX_VALUES: dict[int, Any] = {}
_INDEX_HIGHEST: dict[int, Any] = {}


def _index_values(hist: HdrHistogram) -> Any:
    """Mid-point value of every counts-array index (cached per histogram layout)."""
    import numpy as np

    key = hist.counts_len
    values = _INDEX_VALUES.get(key)
    if values is None:
        values = np.array(
            [
                hist._hdr_median_equiv_value(hist.get_value_from_index(i))
                for i in range(hist.counts_len)
            ],
            dtype=np.float64,
        )
        _INDEX_VALUES[key] = values
        _INDEX_HIGHEST[key] = np.array(
            [
                hist.get_highest_equivalent_value(hist.get_value_from_index(i))
                for i in range(hist.counts_len)
            ],
            dtype=np.int64,
        )
    return values


def values_at_percentiles(hist: HdrHistogram, percentiles: Sequence[float]) -> list[int]:
    """Exactly HdrHistogram's get_value_at_percentile, vectorised.

    hdrh walks the counts in Python for every call: 25 ms for a wide histogram, which stalled
    the load generator when the live view asked for percentiles once a second.
    """
    import numpy as np

    _index_values(hist)
    highest = _INDEX_HIGHEST[hist.counts_len]
    counts = np.ctypeslib.as_array(hist.counts)[: hist.counts_len]
    cumulative = np.cumsum(counts, dtype=np.int64)
    total = int(cumulative[-1])
    out = []
    for p in percentiles:
        wanted = max(1, int(min(p, 100.0) * total / 100.0 + 0.5))
        index = int(np.searchsorted(cumulative, wanted, side="left"))
        out.append(int(highest[min(index, len(highest) - 1)]))
    return out


def mean_us(hist: HdrHistogram) -> float:
    """Mean of the recorded values (hdrh's own get_mean_value walks every value: too slow)."""
    import numpy as np

    total = hist.get_total_count()
    if not total:
        return 0.0
    counts = np.ctypeslib.as_array(hist.counts)[: hist.counts_len].astype(np.float64)
    # An elementwise product, not `@`: a BLAS dot product starts OpenBLAS's threads, which
    # paused the load generator up to 200 ms inside a step (benchmarks/measurement.py).
    return float((counts * _index_values(hist)).sum() / total)


def percentiles_ms(hist: HdrHistogram) -> dict[str, float | None]:
    """p50/p90/p95/p99/max/mean in milliseconds; None when there are no samples."""
    if hist.get_total_count() == 0:
        return {k: None for k in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms")}
    p50, p90, p95, p99 = values_at_percentiles(hist, (50, 90, 95, 99))
    return {
        "p50_ms": p50 / 1000.0,
        "p90_ms": p90 / 1000.0,
        "p95_ms": p95 / 1000.0,
        "p99_ms": p99 / 1000.0,
        "max_ms": hist.get_highest_equivalent_value(hist.get_max_value()) / 1000.0,
        "mean_ms": mean_us(hist) / 1000.0,
    }

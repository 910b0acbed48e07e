"""The server's own signals, per step: a scraped metric's per-second samples turned into one
value per measured window (docs/design.md#server-signals).

A gauge is read as it was sampled; a counter as its rate per second between consecutive
samples (a drop is a restart: the counter began again from 0, as Prometheus's rate() reads it),
each rate placed at the middle of its interval. A step's value is over the samples inside its
measured window (warm-up excluded): mean, max, last and count. Pure: no I/O.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Kind = Literal["gauge", "counter"]


@dataclass(frozen=True)
class SeriesSamples:
    """One metric series (name and labels) as scraped: epoch seconds and raw values."""

    key: str  # e.g. 'breakpoint_target_busy_workers' or 'http_requests_total{code="200"}'
    kind: Kind
    t: tuple[float, ...]
    v: tuple[float, ...]


@dataclass(frozen=True)
class Window:
    """A step's measured window on the wall clock."""

    step: int
    multiplier: float
    start: float
    end: float


@dataclass(frozen=True)
class StepValue:
    """A series over one step's measured window (a counter: its rate per second)."""

    mean: float
    max: float
    last: float
    n: int
    sd: float = 0.0  # of the samples around their mean (population)

    def as_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "max": self.max, "last": self.last, "n": self.n, "sd": self.sd}


def per_second(series: SeriesSamples) -> list[tuple[float, float]]:
    """(time, value) pairs: a gauge's samples, or a counter's rates at their intervals' middles.

    Non-finite values are left out; samples must be in time order (the scraper's are).
    """
    pairs = [(t, v) for t, v in zip(series.t, series.v, strict=True) if math.isfinite(v)]
    if series.kind == "gauge":
        return pairs
    rates: list[tuple[float, float]] = []
    for (t0, v0), (t1, v1) in itertools.pairwise(pairs):
        dt = t1 - t0
        if dt <= 0:
            continue
        increase = v1 - v0 if v1 >= v0 else v1  # a drop: the counter restarted from 0
        rates.append(((t0 + t1) / 2, increase / dt))
    return rates


def step_values(series: SeriesSamples, windows: Iterable[Window]) -> dict[int, StepValue]:
    """The series in each window that holds at least one of its samples."""
    points = per_second(series)
    out: dict[int, StepValue] = {}
    for w in windows:
        inside = [v for t, v in points if w.start <= t <= w.end]
        if inside:
            mean = sum(inside) / len(inside)
            sd = math.sqrt(sum((v - mean) ** 2 for v in inside) / len(inside))
            out[w.step] = StepValue(mean, max(inside), inside[-1], len(inside), sd)
    return out


def pooled(values: Iterable[StepValue]) -> StepValue | None:
    """Several steps of one level as one: their samples pooled (None when there are none)."""
    parts = [v for v in values if v.n > 0]
    n = sum(v.n for v in parts)
    if not n:
        return None
    mean = sum(v.n * v.mean for v in parts) / n
    var = sum(v.n * (v.sd**2 + (v.mean - mean) ** 2) for v in parts) / n
    return StepValue(mean, max(v.max for v in parts), parts[-1].last, n, math.sqrt(var))


def aggregate(
    series: Mapping[str, SeriesSamples], windows: Sequence[Window]
) -> dict[str, dict[int, StepValue]]:
    """Every series per step (series with no sample in any window are left out)."""
    out = {}
    for key, one in series.items():
        values = step_values(one, windows)
        if values:
            out[key] = values
    return out


def windows_of(steps: Iterable[tuple[int, float, float, float, float]]) -> list[Window]:
    """Windows from (index, multiplier, started_at, warmup_s, measured_s) of stored steps."""
    return [
        Window(index, multiplier, started + warmup, started + warmup + measured)
        for index, multiplier, started, warmup, measured in steps
    ]

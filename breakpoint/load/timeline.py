"""Per-second series of a whole surge run, across its steps: what the recovery rule judges.

Kept only when asked (`Recorder(timeline=...)`, by `breakpoint surge`): a normal run pays one
`is None` test per event. Per segment and second from the origin: iterations offered (by
intended start), iterations finished (by wall clock), and the latencies of the requests of the
iterations due in that second, reduced to percentiles when the series is written
(docs/design.md#surge-rehearsal). No locust here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from breakpoint.analysis.surge import SERIES_FIELDS, SecondBin

# series.json; bump with a note when fields change. 1: first version. 2: `slow`, the successful
# requests over the segment's objective (so sparse segments can be judged on blocks of seconds).
SERIES_SCHEMA = 2


@dataclass
class _SegmentSeries:
    offered: list[int] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    slow: list[int] = field(default_factory=list)  # successful, but over the objective
    ok_ms: list[list[float]] = field(default_factory=list)  # successful requests' latencies

    def grow(self, i: int) -> None:
        while len(self.offered) <= i:
            self.offered.append(0)
            self.finished.append(0)
            self.failed.append(0)
            self.slow.append(0)
            self.ok_ms.append([])


def nearest_rank(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by the nearest-rank rule (an observed value, never interpolated)."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


class Timeline:
    """The per-second series of every segment; seconds count from `origin` (epoch seconds)."""

    def __init__(
        self,
        segments: Sequence[str],
        origin: float | None = None,
        objectives_ms: Mapping[str, float] | None = None,
    ) -> None:
        self.origin = origin
        self._series = {name: _SegmentSeries() for name in segments}
        # Each segment's objective (analysis/surge.py objective_ms): requests over it are counted.
        self.objectives_ms = dict(objectives_ms or {})

    def _index(self, name: str, t: float) -> tuple[_SegmentSeries, int] | None:
        series = self._series.get(name)
        if series is None:
            return None
        if self.origin is None:
            self.origin = t
        i = max(0, int(t - self.origin))
        series.grow(i)
        return series, i

    def offered(self, name: str, intended: float) -> None:
        if (hit := self._index(name, intended)) is not None:
            hit[0].offered[hit[1]] += 1

    def finished(self, name: str, at: float) -> None:
        if (hit := self._index(name, at)) is not None:
            hit[0].finished[hit[1]] += 1

    def request(self, name: str, began: float, latency_ms: float, failed: bool) -> None:
        """A completed request of an iteration due at `began`."""
        if (hit := self._index(name, began)) is None:
            return
        series, i = hit
        if failed:
            series.failed[i] += 1
        else:
            series.ok_ms[i].append(latency_ms)
            if latency_ms > self.objectives_ms.get(name, math.inf):
                series.slow[i] += 1

    def bins(self, name: str) -> list[SecondBin]:
        """The segment's series as the analysis reads it."""
        series = self._series[name]
        counted = name in self.objectives_ms
        out = []
        for offered, finished, failed, slow, ok in zip(
            series.offered, series.finished, series.failed, series.slow, series.ok_ms, strict=True
        ):
            ok_sorted = sorted(ok)
            n = len(ok_sorted) + failed
            p95_ms = nearest_rank(ok_sorted, 0.95) if ok_sorted else None
            # Failures are slower than any success: the p95 of all is a success's latency only
            # while that rank falls among the successes.
            rank = math.ceil(0.95 * n)
            p95_all = ok_sorted[rank - 1] if n and rank <= len(ok_sorted) else None
            out.append(
                SecondBin(offered, finished, n, failed, p95_all, p95_ms, slow if counted else None)
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """series.json: the origin and, per segment, one list per field (one entry a second)."""
        segments: dict[str, Any] = {}
        for name in self._series:
            bins = self.bins(name)
            segments[name] = {key: [getattr(b, key) for b in bins] for key in SERIES_FIELDS}
        return {"schema": SERIES_SCHEMA, "origin": self.origin, "segments": segments}

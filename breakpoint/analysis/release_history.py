"""Each segment's breaking point release by release, for `breakpoint history`'s trend report.

Pure: runs in (the same `RunLike` as the comparison), one point per label and segment out, and
the releases at which a segment's break changed (docs/design.md#history-change-points).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from breakpoint.analysis.changepoint import ChangePoint, ReleasePoint, change_points
from breakpoint.analysis.release_input import (
    BreakLike,
    RunLike,
    held_bound,
    log_break,
    positive,
    segment_breaks,
)


def _geometric_mean(values: Sequence[float]) -> float | None:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def _in_time_order(runs: Sequence[RunLike]) -> dict[str, list[RunLike]]:
    """The runs grouped by label, labels in the order of their first run; undated runs last."""

    def when(item: tuple[int, RunLike]) -> tuple[float, int]:
        created = item[1].created_at
        if created is not None and math.isfinite(created):
            return (created, item[0])
        return (math.inf, item[0])  # undated runs go last, in the order given

    groups: dict[str, list[RunLike]] = {}
    for index, run in sorted(enumerate(runs), key=when):
        key = str(run.label or run.run_id or f"run {index}")
        groups.setdefault(key, []).append(run)
    return groups


def history(summaries: Sequence[RunLike]) -> dict[str, list[dict[str, Any]]]:
    """Per segment, the breaking point per run label in time order (for a trend report).

    Runs sharing a label (repeats of one release) are pooled: `multiplier` is the geometric mean
    of their bracketed or extrapolated breaks, `low`/`high` the envelope of their intervals,
    `not_reached` how many held to the cap and `cap` the highest such cap.
    """
    trend: dict[str, list[dict[str, Any]]] = {}
    for label, runs in _in_time_order(summaries).items():
        per_segment: dict[str, list[tuple[RunLike, BreakLike]]] = {}
        for run in runs:
            for profile, raw in segment_breaks(run).items():
                if raw is not None:
                    per_segment.setdefault(profile, []).append((run, raw))
        for profile, items in per_segment.items():
            held = [raw for _, raw in items if raw.label == "not_reached"]
            broke = [raw for _, raw in items if raw.label != "not_reached"]
            multipliers = [m for raw in broke if (m := positive(raw.multiplier))]
            lows = [v for raw in broke if (v := positive(raw.low or raw.multiplier))]
            highs = [v for raw in broke if (v := positive(raw.high or raw.multiplier))]
            caps = [cap for raw in held if (cap := held_bound(raw)) is not None]
            statuses = list(dict.fromkeys(str(raw.label) for _, raw in items))
            trend.setdefault(profile, []).append(
                {
                    "label": label,
                    "created_at": runs[0].created_at,
                    "git_rev": runs[-1].git_rev,
                    "run_ids": [run.name for run, _ in items],
                    "runs": len(items),
                    "multiplier": _geometric_mean(multipliers),
                    "low": min(lows) if lows else None,
                    "high": max(highs) if highs else None,
                    "status": statuses[0] if len(statuses) == 1 else "mixed",
                    "not_reached": len(held),
                    "cap": max(caps) if caps else None,
                }
            )
    return trend


def changes(summaries: Sequence[RunLike]) -> dict[str, list[ChangePoint]]:
    """Per segment, the releases (labels in time order) at which its breaking point changed.

    Each run counts with its own interval (analysis/changepoint.py); runs that held to the cap
    or have no usable break are left out. Indices refer to `history()`'s points of the segment.
    """
    found: dict[str, list[ChangePoint]] = {}
    series: dict[str, list[ReleasePoint]] = {}
    for label, runs in _in_time_order(summaries).items():
        per_segment: dict[str, list[tuple[float, float]]] = {}
        for run in runs:
            for profile, raw in segment_breaks(run).items():
                if raw is None:
                    continue
                per_segment.setdefault(profile, [])
                parsed = log_break(raw, run)
                if parsed is not None and not parsed.censored:
                    half = max(parsed.point - parsed.lower, parsed.upper - parsed.point)
                    per_segment[profile].append((parsed.point, half))
        for profile, items in per_segment.items():
            series.setdefault(profile, []).append(
                ReleasePoint(label, tuple(y for y, _ in items), tuple(h for _, h in items))
            )
    for profile, releases in series.items():
        points = change_points(releases)
        if points:
            found[profile] = points
    return found

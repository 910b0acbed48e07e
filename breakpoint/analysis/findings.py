"""What an analysis finds, as plain data: each segment's Break (value, interval, label), its
levels, fit summary, curve and diagnosis, the run's QualityWarnings, and their summary.json form
(summary_segments).

Kept apart from the fits and light to import (no numpy at run time), so the report, the summary
and the search read results without the machinery. Labels and warning kinds:
docs/design.md#labels-and-intervals and docs/design.md#warnings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from breakpoint.plan.profiles import Slo

if TYPE_CHECKING:
    import numpy as np

Label = Literal["bracketed", "extrapolated", "not_reached", "no_verdict"]
Criterion = Literal["latency", "errors", "saturation"]

CONFIDENCE = 0.95


@dataclass(frozen=True)
class QualityWarning:
    """A measurement- or analysis-quality problem, shown to the user next to the number."""

    kind: str
    message: str
    segment: str | None = None
    step: int | None = None


@dataclass(frozen=True)
class Break:
    """Where a segment breaks, in multiples of the baseline, with an interval and its origin."""

    multiplier: float | None
    low: float | None
    high: float | None
    label: Label
    criterion: Criterion | None
    method: str
    objective: str | None = None  # the objective crossed (docs/design.md#objectives)


@dataclass(frozen=True)
class Level:
    """One load level of one segment: its trusted repeats summarised, and its verdict."""

    multiplier: float
    load: float
    repeats: int  # trusted steps at this level
    failed: int  # of which failed
    passed: bool  # fails when most repeats fail; a latency tie goes by median p95
    criterion: str | None  # most frequent failing criterion at this level
    p95_median_ms: float | None
    p95_min_ms: float | None
    p95_max_ms: float | None
    error_rate: float  # pooled over repeats: failed / attempted requests
    errors: int  # failed requests over the repeats (unfinished ones count as failed)
    attempts: int  # requests over the repeats (completed + unfinished)
    completion_ratio: float | None
    saturated: bool  # any repeat saturated: its latency is not a steady state
    steps: tuple[int, ...]
    age_s: float = math.inf  # shortest time under load at a repeat's mid-window (warm-up + hold/2)
    overloaded: bool = False  # a repeat completed clearly less than offered (past the capacity)


@dataclass(frozen=True)
class CurvePoint:
    """The fitted p95 at one multiplier and its bootstrap band (None where undefined)."""

    multiplier: float
    p95_ms: float | None
    low_ms: float | None
    high_ms: float | None


@dataclass(frozen=True)
class FitSummary:
    """The fitted model as seen by one segment, and how well it describes the data."""

    kind: str  # "open a+b/(L-lambda)", "closed USL", or "none"
    ok: bool  # usable for placing the break
    params: Mapping[str, float]
    rms_log: float | None  # root-mean-square residual of log p95 (or log throughput)
    points: int
    message: str = ""


@dataclass(frozen=True)
class Diagnosis:
    """What gave way at the break: the first endpoint to cross, and the latency part that grew."""

    multiplier: float  # the level diagnosed (first failing level, else the highest)
    endpoint: str | None
    endpoint_reason: str
    endpoint_p95_ms: float | None
    part: str | None  # "network", "server" or "device"
    part_growth_ms: Mapping[str, float]


@dataclass(frozen=True)
class SegmentAnalysis:
    """Everything the report needs about one segment."""

    profile: str
    slo: Slo
    breaking: Break
    fit: FitSummary
    levels: tuple[Level, ...]
    curve: tuple[CurvePoint, ...]
    knee_multiplier: float | None  # where degradation starts (kneed); descriptive only
    diagnosis: Diagnosis | None
    last_pass: float | None
    first_fail: float | None
    first_fail_step: int | None
    fit_multiplier: float | None  # the two estimates, kept for the cross-check
    interp_multiplier: float | None


@dataclass(frozen=True)
class Analysis:
    """The analysis of a whole run."""

    model: Literal["open", "closed"]
    baseline: float
    segments: Mapping[str, SegmentAnalysis]
    warnings: tuple[QualityWarning, ...]
    first_to_break: str | None


@dataclass
class _SegmentFit:
    """The fitted model seen from one segment: estimate, bootstrap estimates, curve."""

    summary: FitSummary
    estimate: float | None
    boot: np.ndarray  # crossings, inf = none
    curve: Callable[[np.ndarray], np.ndarray] | None  # multipliers -> p95 ms
    boot_curves: Callable[[np.ndarray], np.ndarray] | None


_NO_FIT = FitSummary("none", False, {}, None, 0, "no fit")


def summary_segments(analysis: Analysis) -> list[dict[str, Any]]:
    """The `segments` list of summary.json, with extra keys (docs/design.md#summary-contract)."""
    out: list[dict[str, Any]] = []
    for name, seg in analysis.segments.items():
        b = seg.breaking
        diag = seg.diagnosis
        out.append(
            {
                "profile": name,
                "break": {
                    "multiplier": b.multiplier,
                    "low": b.low,
                    "high": b.high,
                    "label": b.label,
                    "criterion": b.criterion,
                    "objective": b.objective,
                },
                "method": b.method,
                "last_pass_multiplier": seg.last_pass,
                # The highest level with a trusted verdict for this segment (None: no verdict).
                "held_to_multiplier": seg.levels[-1].multiplier if seg.levels else None,
                "first_fail_multiplier": seg.first_fail,
                "first_fail_step": seg.first_fail_step,
                "fit_multiplier": seg.fit_multiplier,
                "interp_multiplier": seg.interp_multiplier,
                "knee_multiplier": seg.knee_multiplier,
                "diagnosis": None
                if diag is None
                else {
                    "multiplier": diag.multiplier,
                    "endpoint": diag.endpoint,
                    "endpoint_reason": diag.endpoint_reason,
                    "part": diag.part,
                    "part_growth_ms": dict(diag.part_growth_ms),
                },
            }
        )
    return out

"""Objectives judged on a segment's step, and the view the fits work on (docs/design.md#objectives).

A segment with objectives (per endpoint, per page view) is judged on each of them that has enough
successful requests in the step; it fails on the one furthest over its threshold. The fits and
the placement work on one number per step: the *pressure*, the largest measured value/threshold
ratio over the objectives, expressed in the unit of the segment's first objective (its value
when that objective is the binding one). `view_steps` rewrites a run's steps into that number so
the pipeline (levels, fits, placement) needs no change. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from breakpoint.histograms import merge_encoded, values_at_percentiles
from breakpoint.plan.objectives import Objective
from breakpoint.plan.profiles import Slo
from breakpoint.results import SegmentStep, StepResult

MIN_OBJECTIVE_REQUESTS = 20  # fewer successful samples: this objective is not judged this step


@dataclass(frozen=True)
class Reading:
    """One objective measured in one step."""

    objective: Objective
    value_ms: float
    samples: int

    @property
    def ratio(self) -> float:
        return self.value_ms / self.objective.threshold_ms


def reading(seg: SegmentStep, obj: Objective) -> Reading | None:
    """The objective's percentile in this step, None when too few successful samples."""
    ep = seg.endpoints.get(obj.key)
    if ep is None:
        return None
    samples = ep.requests - ep.errors
    if samples < MIN_OBJECTIVE_REQUESTS:
        return None
    known = {50.0: ep.p50_ms, 95.0: ep.p95_ms, 99.0: ep.p99_ms}
    value = known.get(obj.percentile)
    if value is None and ep.histogram:
        value = values_at_percentiles(merge_encoded([ep.histogram]), [obj.percentile])[0] / 1000.0
    return None if value is None else Reading(obj, float(value), samples)


def readings(seg: SegmentStep, objectives: Sequence[Objective]) -> list[Reading]:
    return [r for o in objectives if (r := reading(seg, o)) is not None]


def worst(seg: SegmentStep, objectives: Sequence[Objective]) -> Reading | None:
    """The objective furthest over (or closest to) its threshold; None when none was judged."""
    found = readings(seg, objectives)
    return max(found, key=lambda r: r.ratio) if found else None


def view_slo(slo: Slo) -> Slo:
    """The SLO the fits see: the pressure must stay below the first objective's threshold."""
    if not slo.objectives:
        return slo
    return replace(slo, p95_ms=slo.objectives[0].threshold_ms)


def view_segment(seg: SegmentStep, slo: Slo) -> SegmentStep:
    """The segment's step with p95_ms replaced by the pressure (None: no objective judged)."""
    if not slo.objectives:
        return seg
    w = worst(seg, slo.objectives)
    scale = slo.objectives[0].threshold_ms
    # The all-requests histogram no longer describes p95_ms: drop it so that pooled percentiles
    # fall back to the per-step values.
    return replace(seg, p95_ms=None if w is None else w.ratio * scale, histogram="")


def view_steps(
    steps: Sequence[StepResult], slos: Mapping[str, Slo]
) -> tuple[list[StepResult], dict[str, Slo]]:
    """Steps and SLOs as the fits see them (unchanged for segments without objectives)."""
    if not any(s.objectives for s in slos.values()):
        return list(steps), dict(slos)
    out = []
    for step in steps:
        segs = {
            name: view_segment(seg, slos[name]) if name in slos else seg
            for name, seg in step.segments.items()
        }
        out.append(replace(step, segments=segs))
    return out, {name: view_slo(slo) for name, slo in slos.items()}

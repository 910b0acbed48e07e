"""The breaking-point definition applied to one segment in one step.

A segment fails a step when, in steady state, its p95 experienced latency exceeds its SLO, its
error rate exceeds its SLO, or the system is saturated (completed / offered below 0.97, or
latency still trending up within the step). A step where the generator was the bottleneck is
not trusted: it neither passes nor fails. Pure: numbers in, verdicts out.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats

from breakpoint.analysis.objectives import MIN_OBJECTIVE_REQUESTS, worst
from breakpoint.plan.profiles import Slo
from breakpoint.results import SegmentStep, StepResult

SATURATION_RATIO = 0.97
# A trend inside a step only counts as saturation when it is both significant and large:
# the last third of the step's per-second mean latency at least this much above the first third.
TREND_MIN_GROWTH = 1.5
TREND_P_VALUE = 0.01
MIN_REQUESTS = 20  # fewer measured requests than this: the step says nothing about the segment
# A queue to drain after a step: more in flight than this many times what the offered load holds
# at each segment's calmest mean latency of the run (needs_cool_down).
CALM_FACTOR = 3.0


@dataclass(frozen=True)
class SegmentVerdict:
    """Did the segment hold at this step, and if not, which criterion broke first."""

    passed: bool | None  # None: not trusted (generator-bound or too few samples)
    criterion: str | None = None  # "latency", "errors" or "saturation" when failed
    reason: str = ""
    objective: str | None = None  # the objective crossed (its label), for a latency failure


def latency_trend(mean_ms: Sequence[float | None]) -> tuple[float, float]:
    """(growth, p-value): last-third over first-third mean, and Kendall's tau test for a rise."""
    return _trend(tuple(mean_ms))


@functools.lru_cache(maxsize=4096)
def _trend(mean_ms: tuple[float | None, ...]) -> tuple[float, float]:
    """latency_trend, remembered: the search judges every step again after each new one."""
    values = [v for v in mean_ms if v is not None and math.isfinite(v)]
    if len(values) < 6:
        return 1.0, 1.0
    third = len(values) // 3
    head = sum(values[:third]) / third
    tail = sum(values[-third:]) / third
    growth = tail / head if head > 0 else 1.0
    result = stats.kendalltau(range(len(values)), values, alternative="greater")
    p = float(result.pvalue) if math.isfinite(result.pvalue) else 1.0
    return growth, p


def throughput_shortfall(
    offered_rps: float,
    completed_rps: float,
    measured_s: float,
    mean_ms: float | None,
    warmup_s: float | None = None,
) -> tuple[bool, str]:
    """Completed clearly below offered: below 0.97 *and* beyond arrival noise.

    Completions inside a window answer arrivals one latency earlier: when iterations last
    longer than a third of the window, the ratio mostly measures the ramp, not the target, and
    the test does not apply. Given the warm-up, the lag is allowed for instead: arrivals before
    the warm-up (at most mean latency - warm-up of the window) may have come at any lower rate,
    so the completions expected are at least the rest of the window's. The shortfall must also
    exceed 3 standard deviations of Poisson arrival counts, so a short window with a handful of
    arrivals cannot fail by chance.
    """
    if offered_rps <= 0 or measured_s <= 0:
        return False, ""
    floor = 1.0
    if mean_ms is not None and warmup_s is not None:
        floor = 1.0 - max(0.0, mean_ms / 1000.0 - warmup_s) / measured_s
        if floor < 0.5:
            return False, ""
    elif mean_ms is not None and mean_ms / 1000.0 > measured_s / 3:
        return False, ""
    ratio = completed_rps / offered_rps
    offered = offered_rps * measured_s * floor
    shortfall = offered - completed_rps * measured_s
    if ratio < SATURATION_RATIO * floor and shortfall > 3 * math.sqrt(offered):
        return True, f"completed/offered {ratio:.2f} < {SATURATION_RATIO * floor:.2f}"
    return False, ""


def system_saturation(step: StepResult) -> tuple[bool, str]:
    """The target as a whole (all segments share it) completed clearly less than offered."""
    segs = list(step.segments.values())
    requests = sum(s.requests for s in segs)
    mean_ms = sum((s.mean_ms or 0.0) * s.requests for s in segs) / requests if requests else None
    saturated, why = throughput_shortfall(
        sum(s.offered_rps for s in segs),
        sum(s.completed_rps for s in segs),
        step.measured_s,
        mean_ms,
    )
    return saturated, (f"the target is saturated: {why}" if saturated else "")


# A queue is flat through a step (criteria.queue_flat) when its fastest segment's per-second mean
# latency spans at least this many seconds, its last third is under FLAT_GROWTH times its first,
# and Kendall's test finds no rise at FLAT_P (lenient: any hint of a rise leaves it in doubt).
MIN_FLAT_SECONDS = 6
FLAT_GROWTH = 1.1
FLAT_P = 0.2


def queue_flat(step: StepResult) -> bool:
    """Did the server's queue stay flat through the step's measured window?

    Every segment waits in the same queue; the fastest one (lowest mean latency) shows it
    with the least of its own time mixed in. A queue past the capacity grows linearly through
    the window (6% over it for 18 s took a fast segment's latency from 0.1 s towards 1 s); one
    relaxing towards a far higher steady state rises over its relaxation time. Used to keep a
    pass near the break that the capacity estimate alone would set aside as a transient
    (placement._unsteady_pass, docs/design.md#labels-and-intervals).
    """
    timed = [s for s in step.segments.values() if s.mean_ms is not None and s.requests > 0]
    if not timed:
        return False
    fastest = min(timed, key=lambda s: s.mean_ms or 0.0)
    series = [v for v in fastest.series.mean_ms if v is not None and math.isfinite(v)]
    if len(series) < MIN_FLAT_SECONDS:
        return False
    growth, p = latency_trend(series)
    return growth < FLAT_GROWTH and p >= FLAT_P


def is_saturated(
    seg: SegmentStep, measured_s: float | None = None, segments: int = 1
) -> tuple[bool, str]:
    """The segment's own throughput test, or its latency still rising within the step.

    The trend test is run on every segment of a step: with `segments` of them its p-value
    threshold is divided among them (Bonferroni), so six noisy per-second series do not give
    six chances of a false "saturated". A queue still growing at the server shows in every
    segment it serves, strongly enough to pass the stricter test; a sparse segment's bursts
    (sync workers held by slow readers) alone failed one at 1.38X, where it met its objective
    and the others passed (docs/design.md#break-definition)."""
    if measured_s is not None:
        saturated, why = throughput_shortfall(
            seg.offered_rps, seg.completed_rps, measured_s, seg.mean_ms
        )
        if saturated:
            return True, why
    growth, p = latency_trend(seg.series.mean_ms)
    if growth >= TREND_MIN_GROWTH and p < TREND_P_VALUE / max(1, segments):
        return True, f"latency still rising within the step (x{growth:.1f}, p={p:.1g})"
    return False, ""


def judge(
    seg: SegmentStep,
    slo: Slo,
    *,
    generator_bound: bool = False,
    system: tuple[bool, str] = (False, ""),
    measured_s: float | None = None,
    segments: int = 1,
) -> SegmentVerdict:
    """Apply the breaking-point definition to one segment's measurements at one step.

    `system` is the target-wide saturation test of the step (system_saturation), which fails
    every segment; `measured_s` enables the segment's own throughput test.
    """
    if generator_bound:
        return SegmentVerdict(None, reason="generator was the bottleneck")
    total = seg.requests + seg.unfinished
    if total < MIN_REQUESTS:
        return SegmentVerdict(None, reason=f"only {total} requests measured")
    if seg.error_rate > slo.error_rate:
        return SegmentVerdict(
            False, "errors", f"error rate {seg.error_rate:.1%} > SLO {slo.error_rate:.1%}"
        )
    if slo.objectives:
        # docs/design.md#objectives: the first objective crossed breaks the segment.
        w = worst(seg, slo.objectives)
        if w is None:
            return SegmentVerdict(
                None, reason=f"no objective had {MIN_OBJECTIVE_REQUESTS} successful requests"
            )
        if w.ratio > 1:
            o = w.objective
            return SegmentVerdict(
                False,
                "latency",
                f"{o.label} crossed: p({o.percentile:g}) {w.value_ms:.0f} ms",
                objective=o.label,
            )
        # Held only if every objective was measured: one with a few requests in the window
        # (15 search requests, their p95 over the objective) is not shown to hold.
        for o in slo.objectives:
            ep = seg.endpoints.get(o.key)
            if ep is not None and ep.requests - ep.errors < MIN_OBJECTIVE_REQUESTS:
                return SegmentVerdict(
                    None,
                    reason=(
                        f"{o.label}: only {ep.requests - ep.errors} successful requests (a "
                        f"verdict needs {MIN_OBJECTIVE_REQUESTS}); the others held"
                    ),
                )
    elif seg.p95_ms is not None and seg.p95_ms > slo.p95_ms:
        return SegmentVerdict(
            False, "latency", f"p95 {seg.p95_ms:.0f} ms > SLO {slo.p95_ms:.0f} ms"
        )
    if system[0]:
        return SegmentVerdict(False, "saturation", system[1])
    saturated, why = is_saturated(seg, measured_s, segments)
    if saturated:
        return SegmentVerdict(False, "saturation", why)
    return SegmentVerdict(True)


def judge_step(step: StepResult, slos: Mapping[str, Slo]) -> dict[str, SegmentVerdict]:
    system = system_saturation(step)
    return {
        name: judge(
            seg,
            slos[name],
            generator_bound=step.generator.bound,
            system=system,
            measured_s=step.measured_s,
            segments=len(step.segments),
        )
        for name, seg in step.segments.items()
        if name in slos
    }


@dataclass(frozen=True)
class AbortLimits:
    """Guardrail: stop the ramp when the target is clearly down, not merely degraded."""

    error_rate: float = 0.5  # more than half of the requests fail ...
    p99_ms: float = 30_000.0  # ... or the p99 is beyond 30 s ...
    for_s: int = 10  # ... for this many seconds in a row
    settle_s: int = 2  # the newest seconds are still filling: leave them out


def abort_reason_from_counts(count: int, errors: int, slow: int, limits: AbortLimits) -> str | None:
    """Why the run must stop, from the requests completed over the last `limits.for_s` s."""
    if count == 0:
        return None
    if errors / count > limits.error_rate:
        return (
            f"error rate {errors / count:.0%} over {limits.for_s} s "
            f"(abort limit {limits.error_rate:.0%})"
        )
    if slow / count > 0.01:
        return f"p99 above {limits.p99_ms / 1000:g} s for {limits.for_s} s (abort limit)"
    return None


def abort_reason(step: StepResult, limits: AbortLimits) -> str | None:
    """Why the run must stop now, judged on the step's trailing seconds (all segments)."""
    series = [seg.series for seg in step.segments.values()]
    n = max((len(s.completed) for s in series), default=0) - limits.settle_s
    if n < limits.for_s:
        return None

    def total(attr: str) -> int:
        return sum(sum(getattr(s, attr)[n - limits.for_s : n]) for s in series)

    count, errors, slow = total("completed"), total("errors"), total("slow")
    if count == 0:
        return None
    if errors / count > limits.error_rate:
        return (
            f"error rate {errors / count:.0%} over {limits.for_s} s "
            f"(abort limit {limits.error_rate:.0%})"
        )
    if slow / count > 0.01:
        return f"p99 above {limits.p99_ms / 1000:g} s for {limits.for_s} s (abort limit)"
    return None


def needs_cool_down(
    step: StepResult, in_flight: int, calm_ms: Mapping[str, float] | None = None
) -> bool:
    """After this step, pause arrivals until its requests drain (docs/design.md#window-membership):
    the target could not keep up (saturated), or far more iterations are in flight than
    Little's law expects (a queue is building; short windows cannot show saturation in their
    throughput when iterations outlast the window). Either way its queue would spill into the
    next step and make that step look worse than it is. One rule for single-process and
    distributed runs (in_flight is then the workers' sum).

    Little's law with the step's own mean latency misses a queue that built all through the
    step: the mean grows with it (a demo step at 2X held 8 s p95s, and its queue made the next
    step, at 1.12X, fail every segment). `calm_ms`, each segment's lowest mean latency in the
    run so far, is the reference that does not grow: more than CALM_FACTOR times what the
    offered load would hold at it is a queue to drain too."""
    if system_saturation(step)[0]:
        return True
    segs = step.segments
    expected = sum(seg.offered_rps * (seg.mean_ms or 0.0) / 1000.0 for seg in segs.values())
    if in_flight > 2 * expected + 10:
        return True
    if not calm_ms:
        return False
    calm = sum(
        seg.offered_rps * calm_ms.get(name, seg.mean_ms or 0.0) / 1000.0
        for name, seg in segs.items()
    )
    return in_flight > CALM_FACTOR * calm + 10


def calmest(calm_ms: Mapping[str, float], step: StepResult) -> dict[str, float]:
    """Each segment's lowest mean latency over the steps seen (needs_cool_down's reference);
    a segment with fewer than MIN_REQUESTS in the step leaves its reference as it was."""
    out = dict(calm_ms)
    for name, seg in step.segments.items():
        if seg.mean_ms is not None and seg.requests >= MIN_REQUESTS:
            out[name] = min(out.get(name, math.inf), seg.mean_ms)
    return out


def cool_down_note(index: int) -> str:
    """What the progress view says when arrivals pause after step `index` (0-based)."""
    return (
        f"step {index + 1}: the target could not keep up; arrivals paused until its requests "
        "drain, so that its queue does not spill into the next step"
    )

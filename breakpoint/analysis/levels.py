"""A segment's trusted measurements grouped into load levels, each with its verdict; the bracket
(last pass, first fail); and the repeat noise of log p95 that weights the fits.

Shared by the analysis and the search, which both reason in levels
(docs/design.md#break-definition; the noise: docs/design.md#open-model-fit).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from breakpoint.analysis.criteria import (
    SegmentVerdict,
    is_saturated,
    judge,
    system_saturation,
    throughput_shortfall,
)
from breakpoint.analysis.findings import Level, QualityWarning
from breakpoint.analysis.objectives import worst
from breakpoint.histograms import merge_encoded, percentiles_ms
from breakpoint.plan.profiles import Slo
from breakpoint.plan.steps import same_level
from breakpoint.results import SegmentStep, StepResult

# A p95 read from one step is never more precise than about 1% (histogram resolution, and the
# tail of a 20 s window); repeats that agree better than that are luck.
MIN_SIGMA_LOG = 0.01
# Noise assumed when a run has neither repeats nor enough levels to estimate it from residuals.
DEFAULT_SIGMA_LOG = 0.10
# A level's own repeat variance is shrunk toward the pooled one as if the pool were this many
# extra degrees of freedom: two repeats alone give a variance estimate that is mostly noise.
PRIOR_DF = 4
MIN_DF = 3  # t-noise heavier than 3 degrees of freedom would be dominated by a handful of draws
CRITERIA_PRIORITY = ("errors", "latency", "saturation")


@dataclass(frozen=True)
class _Obs:
    step: int
    multiplier: float
    load: float
    seg: SegmentStep
    verdict: SegmentVerdict
    age_s: float = math.inf  # time under this load at the middle of the measured window
    received: float = 0.0  # the load the target really got (arrivals in the window), 0: unknown
    segments: int = 1  # segments judged in the step (the trend test's share of its p-value)
    overloaded: bool = False  # completed clearly less than offered (the throughput test)
    sampling_sd: float = 0.0  # sd of log p95 from the window's own sample count (p95_sampling_sd)

    @property
    def rate(self) -> float:
        """Where this measurement sits on the load axis: the realised load when it is known.

        A 5 s window at 150 req/s holds 750 +- 27 Poisson arrivals: the realised load differs
        from the planned one by a few percent, as much as the resolution asked of the search.
        """
        return self.received if self.received > 0 else self.load


def _median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if values else None


def _observations(
    steps: Sequence[StepResult], name: str, slo: Slo, notes: list[QualityWarning] | None = None
) -> list[_Obs]:
    """The segment's trusted measurements; untrusted ones become warnings (if notes given)."""
    out: list[_Obs] = []
    for step in steps:
        seg = step.segments.get(name)
        if seg is None:
            continue
        verdict = judge(
            seg,
            slo,
            generator_bound=step.generator.bound,
            system=system_saturation(step),
            measured_s=step.measured_s,
            segments=len(step.segments),
        )
        if verdict.passed is None:
            if notes is not None and not step.generator.bound:
                notes.append(
                    QualityWarning(
                        "few_samples",
                        f"step at {step.multiplier:g}X not used: {verdict.reason}",
                        name,
                        step.index,
                    )
                )
            continue
        age = step.warmup_s + step.measured_s / 2
        out.append(
            _Obs(
                step.index,
                step.multiplier,
                step.load,
                seg,
                verdict,
                age,
                _received(step),
                len(step.segments),
                _overloaded(step, seg),
                p95_sampling_sd(seg, slo),
            )
        )
    return out


def p95_sampling_sd(seg: SegmentStep, slo: Slo) -> float:
    """The standard deviation of log p95 that the window's sample count alone leaves: a p95
    of 40 requests is nearly their second largest, whatever the queue did.

    The percentile q of n samples moves by sqrt(q (1 - q) / n) in probability; the latency
    moves by that times the quantile function's slope, theta / (1 - q) for a tail that is
    exponential between p95 and p99 (theta = (p99 - p95) / ln 5; local, so a bimodal mix of
    API calls and downloads is read within its upper mode): sd(log Q) = sqrt(q / ((1 - q) n))
    theta / Q. For the objective that binds (objectives.worst), its endpoint's own samples;
    0 when unknown. docs/design.md#interval-coverage.
    """
    q, n, p95, p99 = 0.95, seg.requests - seg.error_count, seg.p95_ms, seg.p99_ms
    value = p95
    if slo.objectives:
        w = worst(seg, slo.objectives)
        ep = seg.endpoints.get(w.objective.key) if w is not None else None
        if w is None or ep is None:
            return 0.0
        q, n, value = w.objective.percentile / 100.0, w.samples, w.value_ms
        p95, p99 = ep.p95_ms, ep.p99_ms
    if n <= 0 or not p95 or not p99 or not value or p99 <= p95 or not 0.5 < q < 1.0:
        return 0.0
    theta = (p99 - p95) / math.log(5.0)
    return math.sqrt(q / ((1.0 - q) * n)) * theta / value


def _received(step: StepResult) -> float:
    """Arrivals per second scheduled in the window over all segments (open model); 0: unknown.

    Only trusted as a realisation of the planned load: far from it (a closed model, where the
    offered rate is what users managed to attempt) it is not used.
    """
    offered = sum(s.offered_rps for s in step.segments.values())
    if step.load <= 0 or not 0.8 <= offered / step.load <= 1.25:
        return 0.0
    return offered


def _group(obs: Sequence[_Obs]) -> list[list[_Obs]]:
    groups: list[list[_Obs]] = []
    for o in sorted(obs, key=lambda o: (o.multiplier, o.step)):
        if groups and same_level(groups[-1][0].multiplier, o.multiplier):
            groups[-1].append(o)
        else:
            groups.append([o])
    return groups


def _level(group: Sequence[_Obs], slo: Slo) -> Level:
    failing = [o.verdict.criterion for o in group if o.verdict.passed is False]
    criterion = None
    if failing:
        counts = Counter(failing)
        criterion = max(counts, key=lambda c: (counts[c], -CRITERIA_PRIORITY.index(c or "")))
    p95s = [o.seg.p95_ms for o in group if o.seg.p95_ms is not None and o.seg.p95_ms > 0]
    ratios = [r for o in group if (r := o.seg.completion_ratio) is not None]
    median_p95 = _median(p95s)
    errors = sum(o.seg.error_count + o.seg.unfinished for o in group)
    attempts = sum(o.seg.requests + o.seg.unfinished for o in group)
    pooled = errors / attempts if attempts else 0.0
    # The level fails when most repeats fail. On a tie the pooled evidence decides: the median
    # p95 for latency, all the repeats' requests together for errors. Near the break single
    # repeats straddle the SLO by noise, and "any fail" would bias the break low.
    passed = 2 * len(failing) < len(group)
    if 2 * len(failing) == len(group):
        if criterion == "latency":
            pooled_p95 = _pooled_p95(group)
            tie_p95 = pooled_p95 if pooled_p95 is not None else median_p95
            passed = tie_p95 is not None and tie_p95 <= slo.p95_ms
        elif criterion == "errors":
            passed = pooled <= slo.error_rate and not any(
                o.verdict.criterion == "latency" for o in group if o.verdict.passed is False
            )
        else:
            passed = False
    return Level(
        multiplier=group[0].multiplier,
        load=group[0].load,
        repeats=len(group),
        failed=len(failing),
        passed=passed,
        criterion=criterion,
        p95_median_ms=median_p95,
        p95_min_ms=min(p95s) if p95s else None,
        p95_max_ms=max(p95s) if p95s else None,
        error_rate=pooled,
        errors=errors,
        attempts=attempts,
        completion_ratio=_median(ratios),
        saturated=any(_saturated(o) for o in group),
        overloaded=any(o.overloaded for o in group),
        steps=tuple(o.step for o in group),
        age_s=min(o.age_s for o in group),
    )


def _pooled_p95(group: Sequence[_Obs]) -> float | None:
    """The p95 of every repeat's requests together (their histograms merged); None if any lacks one.

    With two repeats the median is their mean, and a short scout would weigh as much as a full
    step: merging weighs every request alike.
    """
    if len(group) < 2 or not all(o.seg.histogram for o in group):
        return None
    return percentiles_ms(merge_encoded(o.seg.histogram for o in group))["p95_ms"]


def measured_levels(steps: Sequence[StepResult], name: str, slo: Slo) -> tuple[Level, ...]:
    """The segment's trusted levels in increasing multiplier, each with its verdict."""
    return tuple(_level(g, slo) for g in _group(_observations(steps, name, slo)))


def bracket(levels: Sequence[Level]) -> tuple[float | None, float | None]:
    """(last passing level below the first failing one, first failing level); None if absent."""
    last_pass: float | None = None
    for lv in levels:
        if not lv.passed:
            return last_pass, lv.multiplier
        last_pass = lv.multiplier
    return last_pass, None


@dataclass(frozen=True)
class _Noise:
    """Per-observation standard deviation of log p95 and the degrees of freedom behind it."""

    pooled: float | None  # None: no repeats anywhere
    df: float
    by_level: Mapping[tuple[str, float], float]

    def sigma(self, name: str, multiplier: float) -> float:
        for (n, m), s in self.by_level.items():
            if n == name and same_level(m, multiplier):
                return s
        return self.pooled if self.pooled is not None else DEFAULT_SIGMA_LOG


def _noise(obs: Mapping[str, Sequence[_Obs]]) -> _Noise:
    """Pool the within-level variance of log p95 over every segment and level with repeats."""
    ss, df = 0.0, 0
    own: dict[tuple[str, float], tuple[float, int]] = {}
    for name, seg_obs in obs.items():
        for group in _group([o for o in seg_obs if _usable(o)]):
            logs = np.log([_p95(o) for o in group])
            if len(logs) >= 2:
                dev = float(np.sum((logs - logs.mean()) ** 2))
                ss += dev
                df += len(logs) - 1
                own[(name, group[0].multiplier)] = (dev, len(logs) - 1)
    if df == 0:
        return _Noise(None, 0.0, {})
    pooled_var = max(ss / df, MIN_SIGMA_LOG**2)
    by_level = {
        key: max(math.sqrt((PRIOR_DF * pooled_var + dev) / (PRIOR_DF + k)), MIN_SIGMA_LOG)
        for key, (dev, k) in own.items()
    }
    return _Noise(math.sqrt(pooled_var), float(df), by_level)


def _p95(o: _Obs) -> float:
    return float(o.seg.p95_ms or 0.0)


def _usable(o: _Obs) -> bool:
    """Can this measurement inform the latency curve? Saturated steps are not a steady state."""
    return o.seg.p95_ms is not None and o.seg.p95_ms > 0 and not _saturated(o)


def _overloaded(step: StepResult, seg: SegmentStep) -> bool:
    """The target completed clearly less than was offered, for the step or the segment: the
    level is past the capacity, so no rerun could pass it on latency either."""
    if system_saturation(step)[0]:
        return True
    shortfall = throughput_shortfall(
        seg.offered_rps, seg.completed_rps, step.measured_s, seg.mean_ms, step.warmup_s
    )
    return shortfall[0]


def _saturated(o: _Obs) -> bool:
    return is_saturated(o.seg, segments=o.segments)[0]

"""Which of the server's own metrics rose ahead of a segment's break
(docs/design.md#server-signals).

The rule, for a segment that broke, over its trusted levels from the lowest (1X) up to its first
failing level, a metric's value at a level being its per-second samples there pooled (mean and
standard error):

1. A monotone fit (weighted isotonic regression, rising or falling, whichever fits better) of
   the metric against the multiplier stands for its trend: snapshots of a gauge taken once a
   second are noisy, and a dip within the noise is not a reversal.
2. A metric is a candidate when it has a value at the lowest and at the first failing level and
   at least one level between them, its fitted change is at least MIN_CHANGE of the larger end
   and at least Z_CHANGE standard errors, and the fit explains it (the levels' departures from
   it are within noise: chi-square below its 99th percentile).
3. A counter whose rate per unit of load did not grow by more than TRAFFIC_BAND over its 1X
   value is the traffic itself (requests served, bytes sent), or the traffic falling behind the
   load near saturation: it rose because the load rose and says nothing about what gave way, so
   it is not a candidate. A counter growing faster than the load (errors, retries) is. A gauge
   is a level (workers in use, a queue, a pool), never excluded so: it rising with the load is a
   resource filling.
4. Each candidate's *lead* is how early it made its change: its fitted progress (0 at 1X, 1 at
   the failing level) averaged over the multiplier axis (the area under it over the width). A
   steady linear rise gives 0.5; a rise that comes only at the end, as a queue's or a p95's,
   gives little.
5. The break's own series (the segment's p95, or its error rate for an error break) gets a lead
   the same way (a rising fit). A candidate *precedes* the break when its lead exceeds that one
   by MIN_LEAD. The metric named is the one with the largest margin; without any, "no metric
   clearly preceded the break".

Pure: the analysis's levels and per-step values in, data out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy.stats import chi2

from breakpoint.analysis.findings import SegmentAnalysis
from breakpoint.analysis.signals import Kind, StepValue, pooled

MIN_CHANGE = 0.3
Z_CHANGE = 2.0
TRAFFIC_BAND = 0.25
MIN_LEAD = 0.1
MIN_LEVELS = 3
# A standard error is never taken below this share of the series' largest level: a gauge that
# read 0 at every snapshot of a level is not known to infinite precision.
MIN_RELATIVE_SE = 0.01
RULE = (
    "a metric precedes the break when, from 1X to the first failing level, its monotone trend "
    f"changed by at least {MIN_CHANGE:.0%} and {Z_CHANGE:g} standard errors and made its change "
    "earlier than the break's own series (lead, the area under its normalised rise, larger by "
    f"{MIN_LEAD:g} or more); a counter is named only when its rate grew faster than the "
    "load (otherwise it is the traffic)"
)


@dataclass(frozen=True)
class Rise:
    """How one series moved from 1X to the first failing level."""

    metric: str
    kind: str  # "gauge", "counter" (its rate per second) or "break" (the segment's own series)
    multipliers: tuple[float, ...]
    values: tuple[float, ...]
    fitted: tuple[float, ...]  # the monotone fit
    lead: float  # 0..1: how early it made its change (0.5: steadily)
    change: float  # |fitted change| over the larger fitted end, 0..1
    z: float  # fitted change over its standard error (inf: no noise known)
    fits: bool  # the levels depart from the fit within noise
    half_by: float  # the lowest level by which the fit had made half its change

    @property
    def direction(self) -> str:
        return "rose" if self.fitted[-1] >= self.fitted[0] else "fell"


@dataclass(frozen=True)
class Preceded:
    """What preceded one segment's break: the metric named (or None) and the runners-up."""

    profile: str
    named: Rise | None
    reference: Rise | None  # the break's own series
    reference_name: str
    candidates: tuple[Rise, ...]  # every candidate, best margin first (named is the first)
    run_max: Mapping[str, float]  # the largest step max of each series over the run
    reason: str  # why nothing was named (empty when something was)

    @property
    def text(self) -> str:
        if self.named is None or self.reference is None:
            return f"no metric clearly preceded the break: {self.reason}"
        r, ref = self.named, self.reference
        what = f"{r.metric}{' (rate per s)' if r.kind == 'counter' else ''}"
        peak = self.run_max.get(r.metric)
        seen = f"; the most seen in the run: {_num(peak)}" if peak is not None else ""
        return (
            f"{what} {r.direction} from {_num(r.values[0])} at {r.multipliers[0]:.3g}X to "
            f"{_num(r.values[-1])} at {r.multipliers[-1]:.3g}X (the first failing level), half "
            f"of that by {r.half_by:.3g}X, ahead of its {self.reference_name} (lead "
            f"{r.lead:.2f} against {ref.lead:.2f}){seen}"
        )

    def as_dict(self) -> dict[str, object]:
        named = None if self.named is None else _rise_dict(self.named, self.run_max)
        return {
            "metric": None if self.named is None else self.named.metric,
            "named": named,
            "reference": None if self.reference is None else _rise_dict(self.reference, {}),
            "leading": [_rise_dict(c, self.run_max) for c in self.candidates[:3]],
            "text": self.text,
        }


def _num(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.4g}"


def _rise_dict(r: Rise, run_max: Mapping[str, float]) -> dict[str, object]:
    return {
        "metric": r.metric,
        "kind": r.kind,
        "direction": r.direction,
        "at_base": r.values[0],
        "base_multiplier": r.multipliers[0],
        "at_break": r.values[-1],
        "break_multiplier": r.multipliers[-1],
        "rose_by_multiplier": r.half_by,
        "fitted_at_base": r.fitted[0],
        "fitted_at_break": r.fitted[-1],
        "lead": r.lead,
        "change": r.change,
        "run_max": run_max.get(r.metric),
    }


def isotonic(values: Sequence[float], weights: Sequence[float]) -> list[float]:
    """The weighted least-squares non-decreasing fit (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [weighted mean, weight, count]
    for v, w in zip(values, weights, strict=True):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return [b[0] for b in blocks for _ in range(int(b[2]))]


def rise(
    metric: str,
    kind: str,
    multipliers: Sequence[float],
    values: Sequence[float],
    errors: Sequence[float] | None = None,
    *,
    direction: int = 0,
) -> Rise:
    """How a series moved over levels (sorted by multiplier, at least two, the ends different):
    its monotone fit (rising if direction > 0, falling if < 0, else whichever fits better),
    weighted by 1/error^2 (equal weights without errors), and the fit's lead, change and z."""
    m, v = list(multipliers), list(values)
    scale = max(abs(x) for x in v) or 1.0
    se = [max(e, MIN_RELATIVE_SE * scale) for e in errors] if errors else [0.0] * len(v)
    w = [1.0 / e**2 for e in se] if errors else [1.0] * len(v)
    up = isotonic(v, w)
    down = [-x for x in isotonic([-x for x in v], w)]

    def sse(fit: list[float]) -> float:
        return sum(wi * (vi - fi) ** 2 for wi, vi, fi in zip(w, v, fit, strict=True))

    fit = up if direction > 0 or (direction == 0 and sse(up) <= sse(down)) else down
    delta = fit[-1] - fit[0]
    big = max(abs(fit[0]), abs(fit[-1]))
    change = min(1.0, abs(delta) / big) if big > 0 else 0.0
    noise = math.hypot(se[0], se[-1])
    z = abs(delta) / noise if noise > 0 else math.inf
    fits = not errors or sse(fit) <= float(chi2.ppf(0.99, max(1, len(v) - 1)))
    progress = [(x - fit[0]) / delta if delta else 0.0 for x in fit]
    area = sum((m[i + 1] - m[i]) * (progress[i] + progress[i + 1]) / 2 for i in range(len(m) - 1))
    lead = area / (m[-1] - m[0])
    half_by = next((m[i] for i, p in enumerate(progress) if p >= 0.5), m[-1])
    return Rise(metric, kind, tuple(m), tuple(v), tuple(fit), lead, change, z, fits, half_by)


def follows_load(r: Rise) -> bool:
    """A counter's rate per unit of load did not grow by more than TRAFFIC_BAND over its 1X
    value: it followed the load, or fell behind it (throughput lagging near saturation)."""
    if r.fitted[0] <= 0 or r.multipliers[0] <= 0:
        return False
    per_load = (r.fitted[-1] / r.multipliers[-1]) / (r.fitted[0] / r.multipliers[0])
    return per_load <= 1.0 + TRAFFIC_BAND


def preceded(
    seg: SegmentAnalysis,
    metrics: Mapping[str, Mapping[int, StepValue]],
    kinds: Mapping[str, Kind],
) -> Preceded | None:
    """What preceded this segment's break (None when it did not break at a measured level)."""
    if seg.first_fail is None or seg.breaking.label not in ("bracketed", "extrapolated"):
        return None
    levels = sorted(
        (lv for lv in seg.levels if lv.multiplier <= seg.first_fail), key=lambda lv: lv.multiplier
    )
    run_max = {
        key: max(v.max for v in per_step.values()) for key, per_step in metrics.items() if per_step
    }
    errors = seg.breaking.criterion == "errors"
    ref_name = "error rate" if errors else "p95"
    ref_pairs = [
        (lv.multiplier, lv.error_rate if errors else lv.p95_median_ms)
        for lv in levels
        if (lv.error_rate if errors else lv.p95_median_ms) is not None
    ]

    def nothing(reason: str, reference: Rise | None = None) -> Preceded:
        return Preceded(seg.profile, None, reference, ref_name, (), run_max, reason)

    if len(levels) < MIN_LEVELS:
        return nothing(
            f"too few levels measured before it ({len(levels)} up to the first failing one, "
            f"{MIN_LEVELS} needed) to tell what rose first"
        )
    if len(ref_pairs) < 2 or ref_pairs[0][0] != levels[0].multiplier:
        return nothing(f"its {ref_name} was not measured at both ends")
    reference = rise(
        ref_name,
        "break",
        [m for m, _ in ref_pairs],
        [float(x or 0.0) for _, x in ref_pairs],
        direction=1,
    )
    if not metrics:
        return nothing("no metric was scraped during its steps", reference)
    candidates: list[Rise] = []
    changed = 0
    for key in sorted(metrics):
        per_step = metrics[key]
        pairs = []
        for lv in levels:
            value = pooled(per_step[s] for s in lv.steps if s in per_step)
            if value is not None:
                pairs.append((lv.multiplier, value))
        ends = (levels[0].multiplier, levels[-1].multiplier)
        if len(pairs) < MIN_LEVELS or (pairs[0][0], pairs[-1][0]) != ends:
            continue
        r = rise(
            key,
            kinds.get(key, "gauge"),
            [m for m, _ in pairs],
            [x.mean for _, x in pairs],
            [x.sd / math.sqrt(x.n) for _, x in pairs],
        )
        if r.change < MIN_CHANGE or r.z < Z_CHANGE or not r.fits:
            continue
        changed += 1
        if r.kind == "counter" and follows_load(r):
            continue
        if r.lead - reference.lead >= MIN_LEAD:
            candidates.append(r)
    candidates.sort(key=lambda r: (-(r.lead - reference.lead), -r.z, r.metric))
    if not candidates:
        return nothing(
            f"of {len(metrics)} series, {changed} changed clearly (by {MIN_CHANGE:.0%} or more) "
            f"up to {levels[-1].multiplier:.3g}X, none (counters that only follow the load "
            f"left out) ahead of its {ref_name}",
            reference,
        )
    return Preceded(seg.profile, candidates[0], reference, ref_name, tuple(candidates), run_max, "")

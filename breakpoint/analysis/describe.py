"""Description next to the number: where degradation starts (Kneedle), what gave way at the
break (endpoint and latency part), and the fitted curve with its bootstrap band.

Descriptive only: none of it moves the break (docs/design.md#placement).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from breakpoint.analysis.findings import CONFIDENCE, CurvePoint, Diagnosis, Level, _SegmentFit
from breakpoint.plan.profiles import Slo
from breakpoint.plan.steps import same_level
from breakpoint.results import StepResult

GRID_POINTS = 60


def _knee(levels: Sequence[Level]) -> float | None:
    """Where degradation starts, by Kneedle on the median p95; a description, never the break."""
    pts = [(lv.multiplier, lv.p95_median_ms) for lv in levels if lv.p95_median_ms is not None]
    if len(pts) < 3:
        return None
    from kneed import KneeLocator  # imported here: only the analysis needs it

    x, y = zip(*pts, strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kneed warns (not raises) when there is no knee
        try:
            knee = KneeLocator(list(x), list(y), curve="convex", direction="increasing").knee
        except (ValueError, ZeroDivisionError, IndexError):
            return None
    return float(knee) if knee is not None else None


def _diagnose(
    steps: Sequence[StepResult], name: str, slo: Slo, levels: Sequence[Level], at: float | None
) -> Diagnosis | None:
    if not levels:
        return None
    target = at if at is not None else levels[-1].multiplier
    by_index = {s.index: s for s in steps}

    def endpoint_p95(lv: Level) -> dict[str, float]:
        values: dict[str, list[float]] = {}
        for i in lv.steps:
            for ep, st in by_index[i].segments[name].endpoints.items():
                if st.p95_ms is not None:
                    values.setdefault(ep, []).append(st.p95_ms)
        return {ep: float(np.median(v)) for ep, v in values.items()}

    def parts(lv: Level) -> dict[str, float]:
        values: dict[str, list[float]] = {}
        for i in lv.steps:
            for part, ms in by_index[i].segments[name].parts_ms.items():
                values.setdefault(part, []).append(ms)
        return {p: float(np.median(v)) for p, v in values.items()}

    upto = [lv for lv in levels if lv.multiplier <= target or same_level(lv.multiplier, target)]
    first, last = upto[0], upto[-1]
    endpoint, reason, ep_p95 = None, "no per-endpoint data", None
    for lv in upto:
        over = {ep: p for ep, p in endpoint_p95(lv).items() if p > slo.p95_ms}
        if over:
            endpoint = max(over, key=lambda ep: over[ep])
            ep_p95 = over[endpoint]
            reason = (
                f"first endpoint over the SLO: p95 {ep_p95:.0f} ms > {slo.p95_ms:.0f} ms "
                f"at {lv.multiplier:g}X"
            )
            break
    if endpoint is None:
        base, now = endpoint_p95(first), endpoint_p95(last)
        growth = {ep: now[ep] / base[ep] for ep in now if base.get(ep)}
        if growth:
            endpoint = max(growth, key=lambda ep: growth[ep])
            ep_p95 = now[endpoint]
            reason = (
                f"largest p95 growth: x{growth[endpoint]:.1f} from {first.multiplier:g}X "
                f"to {last.multiplier:g}X"
            )
    p_first, p_last = parts(first), parts(last)
    growth_ms = {p: p_last[p] - p_first.get(p, 0.0) for p in p_last}
    part = max(growth_ms, key=lambda p: growth_ms[p]) if growth_ms else None
    return Diagnosis(last.multiplier, endpoint, reason, ep_p95, part, growth_ms)


def _curve(
    sfit: _SegmentFit, levels: Sequence[Level], estimate: float | None
) -> tuple[CurvePoint, ...]:
    if sfit.curve is None or not levels:
        return ()
    top = max(levels[-1].multiplier, estimate or 0.0) * 1.1
    grid = np.linspace(min(levels[0].multiplier, 1.0) * 0.5, top, GRID_POINTS)
    mid = sfit.curve(grid)
    band_lo = band_hi = np.full(len(grid), np.nan)
    if sfit.boot_curves is not None:
        reps = sfit.boot_curves(grid)
        if len(reps) >= 20:
            tail = (1 - CONFIDENCE) / 2 * 100
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns near L
                band_lo = np.nanpercentile(reps, tail, axis=0)
                band_hi = np.nanpercentile(reps, 100 - tail, axis=0)

    def num(x: float) -> float | None:
        return float(x) if math.isfinite(x) else None

    return tuple(
        CurvePoint(float(m), num(y), num(lo), num(hi))
        for m, y, lo, hi in zip(grid, mid, band_lo, band_hi, strict=True)
    )

"""A segment's Break and its label: bracketed (then placed by placement.py), extrapolated,
not_reached or no_verdict, with the warnings that explain the choice.

See docs/design.md#labels-and-intervals.
"""

from __future__ import annotations

from collections.abc import Sequence

from breakpoint.analysis.criteria import MIN_REQUESTS
from breakpoint.analysis.findings import Break, Criterion, QualityWarning
from breakpoint.analysis.levels import bracket
from breakpoint.analysis.placement import SegmentContext, _bracketed, _clip, _percentiles
from breakpoint.plan.steps import same_level

# Beyond the data the functional form is an assumption: widen extrapolated intervals by this.
EXTRAPOLATION_ALLOWANCE = 0.05
FAR_EXTRAPOLATION = 1.5  # estimate more than 1.5x the last trusted level: warn


def _criterion(name: str | None) -> Criterion:
    if name == "errors":
        return "errors"
    return "saturation" if name == "saturation" else "latency"


def _estimate_break(ctx: SegmentContext) -> tuple[Break, float | None]:
    """The segment's Break, and the interpolation estimate kept for the cross-check."""
    name, levels, sfit, plan, notes = ctx.name, ctx.levels, ctx.sfit, ctx.plan, ctx.notes
    last_pass, first_fail = bracket(levels)
    fit_est = sfit.estimate
    lo_boot, hi_boot = _percentiles(sfit.boot) if len(sfit.boot) else (None, None)
    if first_fail is not None:
        fail = next(lv for lv in levels if same_level(lv.multiplier, first_fail))
        criterion = _criterion(fail.criterion)
        if last_pass is None:
            notes.append(
                QualityWarning(
                    "fails_at_lowest_step",
                    f"fails already at the lowest measured step ({first_fail:g}X): the break is "
                    "below it",
                    name,
                    fail.steps[0],
                )
            )
            if criterion == "latency" and fit_est is not None and 0 < fit_est < first_fail:
                return Break(
                    fit_est,
                    _clip(lo_boot, 0.0, first_fail),
                    first_fail,
                    "extrapolated",
                    criterion,
                    "fit (below the lowest step)",
                ), None
            return Break(
                first_fail,
                None,
                first_fail,
                "extrapolated",
                criterion,
                "upper bound (fails at the lowest step)",
            ), None
        passing = next(lv for lv in levels if same_level(lv.multiplier, last_pass))
        return _bracketed(ctx, passing, fail, criterion, lo_boot, hi_boot)
    # No failing level: did the run reach the cap?
    top = levels[-1].multiplier if levels else None
    if top is None:
        return Break(None, None, None, "no_verdict", None, _no_verdict_reason(notes, name)), None
    at_cap = top >= plan.max_multiplier or same_level(top, plan.max_multiplier)
    if fit_est is not None and fit_est < top:
        fit_est = top  # it held at `top`, whatever the curve says
    if not at_cap:
        notes.append(
            QualityWarning(
                "stopped_before_cap",
                f"run stopped at {top:g}X before the cap {plan.max_multiplier:g}X "
                "without a failing "
                "step",
                name,
            )
        )
    if fit_est is None:
        return Break(
            None,
            top,
            None,
            "not_reached",
            None,
            "holds at every trusted step; no degradation to extrapolate",
        ), None
    low = min(lo_boot, fit_est) if lo_boot is not None else fit_est
    high = max(hi_boot, fit_est) if hi_boot is not None else None
    low = max(low * (1 - EXTRAPOLATION_ALLOWANCE), top)
    high = high * (1 + EXTRAPOLATION_ALLOWANCE) if high is not None else None
    if fit_est > FAR_EXTRAPOLATION * top:
        notes.append(
            QualityWarning(
                "far_extrapolation",
                f"estimated break {fit_est:.3g}X is far beyond the last trusted step {top:g}X",
                name,
            )
        )
    if not at_cap and fit_est <= plan.max_multiplier:
        return Break(
            fit_est,
            low,
            high,
            "extrapolated",
            "latency",
            f"fit, extrapolated beyond the last trusted step ({top:g}X)",
        ), None
    return Break(
        fit_est,
        low,
        high,
        "not_reached",
        None,
        f"fit, where it would break beyond the last trusted step ({top:g}X)",
    ), None


def _no_verdict_reason(notes: Sequence[QualityWarning], name: str) -> str:
    """Why a segment has no trusted level, from the warnings that set its steps aside."""
    few = [n for n in notes if n.kind == "few_samples" and n.segment == name]
    bound = [n for n in notes if n.kind == "generator_bound"]
    if few:
        return (
            f"no verdict: {len(few)} step(s) measured too few of its requests "
            f"({few[-1].message.split(': ', 1)[-1]}; a verdict needs {MIN_REQUESTS}); "
            "lengthen --hold-s or raise the baseline or its share"
        )
    if bound:
        return "no verdict: every step was generator-bound (see the warnings)"
    return "no verdict: no step measured it"

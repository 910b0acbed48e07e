"""Where inside its bracket (last pass, first fail) a segment breaks, and the interval: the fit
when it agrees with the measurements, else interpolation; errors by their Poisson fit
(fit_errors.py); a pass measured before the queue settled set aside.

See docs/design.md#placement and docs/design.md#labels-and-intervals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from breakpoint.analysis.findings import (
    CONFIDENCE,
    Break,
    Criterion,
    Level,
    QualityWarning,
    _SegmentFit,
)
from breakpoint.analysis.fit_errors import _fit_errors
from breakpoint.analysis.level_boot import LevelNoise, level_boot, relaxation_s, relaxed_noise
from breakpoint.analysis.levels import MIN_DF, _Noise, _Obs
from breakpoint.plan.profiles import Slo
from breakpoint.plan.steps import Plan, same_level

# The fit must reproduce the measured p95 at the bracket ends within this (log) distance, or
# within 3 noise standard deviations, to be trusted to place the break inside the bracket.
LOCAL_AGREEMENT_LOG = 0.15
# A passing level measured less than this many queue relaxation times after its load began may
# be a transient (the queue had not filled yet): see relaxation_s.
SETTLE_RELAXATIONS = 2.0
# ... unless the queue stayed flat through every run of it (criteria.queue_flat).
# The error-rate fit uses every step within this factor below and above the bracket.
ERROR_WINDOW = 1.25
# Without a measured level above the first fail, the levels' bootstrap may reach this far above.
NO_LEVEL_ABOVE = 0.1
# A first failing level below this share of the fitted capacity L crossed the objective on the
# segment's own headroom (a contended server's wait, a slow network): it does not bound the
# capacity behind the window noise. A saturation break sits at 0.95-1 of L (a fit 4% high: 0.93).
FAR_BELOW_CAPACITY = 0.8
# A failing level offered this much above the ceiling (the most the target completed in one
# saturated window) is past the capacity: the levels' bootstrap never passes it.
PAST_CEILING = 1.1


@dataclass(frozen=True)
class SegmentContext:
    """What placing one segment's break needs: its measurements, its view of the fit, the run.

    `notes` collects the warnings placement raises; `rng` draws the interpolation bootstrap.
    """

    name: str
    slo: Slo
    levels: Sequence[Level]
    obs: Sequence[_Obs]
    sfit: _SegmentFit
    noise: _Noise
    plan: Plan
    ceiling: float  # what the target completed while overloaded (0: never seen)
    rng: np.random.Generator
    boot: int
    notes: list[QualityWarning]
    # What the target completed in each trusted window (open model; step index -> req/s): the
    # capacity it showed, which a pass above the overload ceiling may raise (_unsteady_pass).
    completed: Mapping[int, float] = field(default_factory=dict)
    # The trusted steps whose server queue stayed flat through the window (criteria.queue_flat).
    flat_steps: frozenset[int] = frozenset()
    # The highest load any segment held at without saturating: the server, shared by every
    # segment, carried it steadily (a segment failing below it failed on its own headroom).
    held_load: float = 0.0


def _log_interp(
    x0: float, y0: float | None, x1: float, y1: float | None, target: float
) -> float | None:
    """Where log y, linear in x between two points, reaches target (None if it does not)."""
    if y0 is None or y1 is None or y0 <= 0 or y1 <= 0 or target <= 0:
        return None
    if not (y0 <= target <= y1) or y1 == y0:
        return None
    frac = (math.log(target) - math.log(y0)) / (math.log(y1) - math.log(y0))
    return x0 + frac * (x1 - x0)


def _lin_interp(x0: float, y0: float, x1: float, y1: float, target: float) -> float | None:
    if not (y0 <= target <= y1) or y1 == y0:
        return None
    return x0 + (target - y0) / (y1 - y0) * (x1 - x0)


def _percentiles(values: np.ndarray) -> tuple[float | None, float | None]:
    """Percentile interval of bootstrap estimates; inf (no crossing) counts as 'beyond'."""
    values = values[~np.isnan(values)]
    if len(values) < 20:
        return None, None
    tail = (1 - CONFIDENCE) / 2
    lo, hi = np.quantile(values, [tail, 1 - tail], method="inverted_cdf")
    return (float(lo) if math.isfinite(lo) else None), (float(hi) if math.isfinite(hi) else None)


def _agrees_locally(sfit: _SegmentFit, levels: Sequence[Level], noise: _Noise, name: str) -> bool:
    """Does the fitted curve reproduce the measured (non-saturated) p95 at these levels?"""
    if sfit.curve is None:
        return False
    for lv in levels:
        if lv.saturated or lv.p95_median_ms is None:
            continue
        pred = float(sfit.curve(np.array([lv.multiplier]))[0])
        if not math.isfinite(pred) or pred <= 0:
            return False
        tol = max(LOCAL_AGREEMENT_LOG, 3 * noise.sigma(name, lv.multiplier) / math.sqrt(lv.repeats))
        if abs(math.log(pred / lv.p95_median_ms)) > tol:
            return False
    return True


def _interp_boot(
    lo: Level,
    hi: Level,
    slo_ms: float,
    noise: _Noise,
    name: str,
    rng: np.random.Generator,
    boot: int,
) -> np.ndarray:
    """Bootstrap of the log-linear interpolation: jitter both bracket medians by their noise."""
    if lo.p95_median_ms is None or hi.p95_median_ms is None or boot == 0:
        return np.array([])
    s0 = noise.sigma(name, lo.multiplier) / math.sqrt(lo.repeats)
    s1 = noise.sigma(name, hi.multiplier) / math.sqrt(hi.repeats)
    y0 = lo.p95_median_ms * np.exp(s0 * rng.standard_normal(boot))
    y1 = hi.p95_median_ms * np.exp(s1 * rng.standard_normal(boot))
    # The line through the jittered ends, continued beyond them when they no longer straddle
    # the SLO: a bracket end that passed by a hair may well fail on a rerun, and then the
    # crossing lies outside the measured bracket. A line that does not rise has no crossing.
    rise = np.log(y1) - np.log(y0)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = (math.log(slo_ms) - np.log(y0)) / rise
    out = lo.multiplier + frac * (hi.multiplier - lo.multiplier)
    return np.where(rise > 0, out, np.where(y0 > slo_ms, -math.inf, math.inf))


def _clip(x: float | None, lo: float, hi: float) -> float | None:
    return None if x is None else min(max(x, lo), hi)


def _reach(levels: Sequence[Level], m0: float, m1: float) -> tuple[float, float]:
    """How far an interval may leave the bracket (m0, m1): to the measured levels around it.

    A bracket end is itself a noisy verdict; the level beyond it is the next measured fact.
    Without a level below m0 the interval stops at m0; without one above m1 it may reach one
    bracket width above m1.
    """
    below = [
        lv.multiplier for lv in levels if lv.multiplier < m0 and not same_level(lv.multiplier, m0)
    ]
    above = [
        lv.multiplier for lv in levels if lv.multiplier > m1 and not same_level(lv.multiplier, m1)
    ]
    return (max(below) if below else m0), (min(above) if above else m1 + (m1 - m0))


def _unsteady_pass(ctx: SegmentContext, passing: Level) -> tuple[bool, float]:
    """Was the passing end measured before the queue could settle? (and its relaxation time)

    The capacity is the lower of the fitted L and the ceiling: the throughput the target
    completed while overloaded. A transient pass drags the fitted L up (L must exceed every
    level that passed), the ceiling is what the target really did. But never below what it
    completed in any other window: a target whose throughput falls under overload (sync workers
    held by slow readers, timeouts, a shared CPU) completes less while overloaded than at a
    level below, where the ceiling alone would call steady levels transients. A pass's own
    window does not count: its completions cannot show a capacity above its own load.

    A queue still filling shows in the step itself: the latency rises through the window. A
    pass whose every run was flat (criteria.queue_flat) had settled, whatever the estimated
    capacity says.
    """
    fitted = ctx.sfit.summary.params.get("L") if ctx.sfit.summary.ok else None
    caps = [c for c in (fitted, ctx.ceiling) if c]
    if not caps or not math.isfinite(passing.age_s):
        return False, 0.0
    others = [c for i, c in ctx.completed.items() if i not in passing.steps]
    tau = relaxation_s(passing.multiplier * ctx.plan.baseline, max(min(caps), *others))
    flat = bool(passing.steps) and all(i in ctx.flat_steps for i in passing.steps)
    return passing.age_s < SETTLE_RELAXATIONS * tau and not flat, tau


def _capacity(ctx: SegmentContext, levels: Sequence[Level]) -> float:
    """The load the target saturates at, for the noise's scaling: the lowest of the open fit's L,
    the throughput it completed while overloaded (as _unsteady_pass) and the first failing
    level, but above every level that held without saturating, this segment's or another's (the
    server is shared: a segment whose own network leaves it little headroom fails far below
    it). The first failing level counts only near the fitted L (FAR_BELOW_CAPACITY): a
    contended server's wait crosses an objective well below its limit. Erring low errs wide: a
    fitted L 4% too high halves the noise the levels just below the break are given."""
    fitted = ctx.sfit.summary.params.get("L") if ctx.sfit.summary.ok else None
    fails = [lv.load for lv in levels if not lv.passed]
    first_fail = min(fails) if fails else None
    if fitted and first_fail and first_fail < FAR_BELOW_CAPACITY * fitted:
        first_fail = None  # crossed on the segment's own headroom, far below the fitted limit
    seen = [c for c in (fitted, ctx.ceiling, first_fail) if c]
    held = [lv.load for lv in levels if lv.passed and not lv.saturated]
    held += [ctx.held_load] if ctx.held_load > 0 else []
    cap = min(seen) if seen else 0.0
    return max(cap, 1.02 * max(held)) if held else cap


def _redrawn(
    ctx: SegmentContext, levels: Sequence[Level], below: float, above: float, m1: float
) -> tuple[float | None, float | None]:
    """The 95% interval of the levels' bootstrap (level_boot.py). Without a measured level
    above the first fail, a replicate where it passes reaches the next ramp step's distance
    (a tenth) above it at least: the bracket's width alone may be far narrower."""
    if ctx.boot <= 0:
        return None, None  # the search's point estimates: no interval
    levels = [_past_ceiling(ctx, lv) for lv in levels]
    higher = any(lv.multiplier > m1 and not same_level(lv.multiplier, m1) for lv in levels)
    reach = (below, above if higher else max(above, (1 + NO_LEVEL_ABOVE) * m1))
    again = level_boot(levels, ctx.slo.p95_ms, _level_noise(ctx, levels), ctx.rng, ctx.boot, reach)
    return _percentiles(again) if len(again) else (None, None)


def _past_ceiling(ctx: SegmentContext, lv: Level) -> Level:
    """A failing level offered clearly more than the target ever completed while saturated is
    past the capacity, as one that fell short itself (levels.py): the ceiling, the most of one
    window, errs high, so PAST_CEILING above it the level is overloaded."""
    if not lv.passed and ctx.ceiling > 0 and lv.load > PAST_CEILING * ctx.ceiling:
        return replace(lv, overloaded=True)
    return lv


def _level_noise(ctx: SegmentContext, levels: Sequence[Level]) -> LevelNoise:
    """Each level's window noise (level_boot.relaxed_noise: an arrival rate against a capacity,
    so the open model only), else the repeat noise as the fits use it."""
    relaxed = None
    if ctx.plan.model == "open":
        relaxed = relaxed_noise(levels, ctx.obs, _capacity(ctx, levels), ctx.plan.hold_s)
    if relaxed is not None:
        return relaxed
    sigma = np.array([ctx.noise.sigma(ctx.name, lv.multiplier) for lv in levels])
    return LevelNoise(sigma, max(ctx.noise.df, MIN_DF))


def _bracketed(
    ctx: SegmentContext,
    passing: Level,
    fail: Level,
    criterion: Criterion,
    lo_boot: float | None,
    hi_boot: float | None,
) -> tuple[Break, float | None]:
    """The Break of a segment that passes below its first failing level, placed inside that
    bracket, and the interpolation estimate kept for the cross-check (lo_boot, hi_boot: the
    fit's bootstrap interval)."""
    name, slo, levels, notes = ctx.name, ctx.slo, ctx.levels, ctx.notes
    sfit, noise, baseline = ctx.sfit, ctx.noise, ctx.plan.baseline
    m0, m1 = passing.multiplier, fail.multiplier
    span = f"{m0:g}X-{m1:g}X"
    below, above = _reach(levels, m0, m1)
    if criterion == "errors":
        e0, e1 = passing.error_rate, fail.error_rate
        efit = _fit_errors(ctx.obs, slo.error_rate, m0 / ERROR_WINDOW, m1 * ERROR_WINDOW, baseline)
        if efit is not None:
            at = min(max(efit.estimate, below), above)
            spread = f", overdispersion x{efit.dispersion:.1f}" if efit.dispersion > 1 else ""
            return Break(
                at,
                min(efit.low, at),
                max(efit.high, at),
                "bracketed",
                "errors",
                f"Poisson fit of the error rate over {efit.levels} levels around {span}{spread}",
            ), None
        est = None
        if e0 > 0 and e1 > 0:
            est = _log_interp(m0, e0, m1, e1, slo.error_rate)
        if est is None:
            est = _lin_interp(m0, e0, m1, e1, slo.error_rate)
        est = _clip(est, m0, m1) if est is not None else math.sqrt(m0 * m1)
        return Break(
            est, m0, m1, "bracketed", "errors", f"interpolation of the error rate ({span})"
        ), None
    if criterion == "saturation":
        r0, r1 = passing.completion_ratio, fail.completion_ratio
        est = None
        if r0 is not None and r1 is not None:
            # Completion ratio falls with load: interpolate its shortfall below 1.
            est = _lin_interp(m0, 1 - r0, m1, 1 - r1, 1 - 0.97)
        method = f"interpolation of completed/offered ({span})"
        if est is None:
            est, method = math.sqrt(m0 * m1), f"middle of the bracket ({span})"
        # Saturation is judged within one window: a busy spell can fail a level below the
        # capacity, and a rerun pass it. The levels' bootstrap redraws it with the p95s.
        lo_again, hi_again = _redrawn(ctx, levels, below, above, m1)
        low = min(m0, lo_again) if lo_again is not None else m0
        high = max(m1, hi_again) if hi_again is not None else m1
        return Break(_clip(est, m0, m1), low, high, "bracketed", "saturation", method), None
    unsteady, tau = _unsteady_pass(ctx, passing)
    if unsteady:
        # A pass measured before the queue could fill is no evidence that the level holds: the
        # bracket's steady passing end is the highest level below that settled (or the lowest).
        if math.isinf(tau):
            why = (
                f"at {m0:g}X the load is at or above the capacity the target showed (its queue "
                "never settles): its pass is a transient"
            )
        else:
            why = (
                f"at {m0:g}X the queue needs about {tau:.0f} s to settle but the step was "
                f"measured after {passing.age_s:.0f} s under load (warm-up + half the hold): its "
                f"pass may be a transient; hold steps near the break longer (warm-up of at least "
                f"{2 * tau:.0f} s)"
            )
        first_step = passing.steps[0]
        lower = [lv for lv in levels if lv.multiplier < m0 and not same_level(lv.multiplier, m0)]
        while lower:
            passing = lower.pop()
            if not _unsteady_pass(ctx, passing)[0]:
                break
        notes.append(
            QualityWarning(
                "not_steady",
                f"{why}. The break is placed from the settled level below "
                f"({passing.multiplier:g}X)",
                name,
                first_step,
            )
        )
        m0 = passing.multiplier
        span = f"{m0:g}X-{m1:g}X"
        below, above = _reach(levels, m0, m1)
    interp = _log_interp(m0, passing.p95_median_ms, m1, fail.p95_median_ms, slo.p95_ms)
    fit_est = sfit.estimate
    # Every placement below also covers the levels' own bootstrap (level_boot.py): the verdicts
    # redrawn within the repeat noise, the break placed again. A pass set aside as a transient
    # is not redrawn.
    redrawn = [lv for lv in levels if not m0 < lv.multiplier < m1 or same_level(lv.multiplier, m0)]
    lo_again, hi_again = _redrawn(ctx, redrawn, below, above, m1)
    usable_fit = (
        fit_est is not None
        and not unsteady  # the transient pass pulled the fit: the measurements decide
        and m0 <= fit_est <= m1
        and _agrees_locally(sfit, (passing, fail), noise, name)
    )
    if usable_fit:
        assert fit_est is not None
        low = max(lo_boot, below) if lo_boot is not None else m0
        high = min(hi_boot, above) if hi_boot is not None else m1
        # The bootstrap only knows the noise, not whether the curve's form is right: the
        # interpolation is a second opinion on where the crossing is, so cover it too.
        second = [fit_est] if interp is None else [fit_est, interp]
        second += [x for x in (lo_again, hi_again) if x is not None]
        return Break(
            fit_est,
            min(low, *second),
            max(high, *second),
            "bracketed",
            "latency",
            f"fit, cross-checked by interpolation ({span})",
        ), interp
    if fit_est is not None:
        notes.append(
            QualityWarning(
                "fit_disagrees",
                f"fitted curve crosses the SLO at {fit_est:.3g}X but the measurements bracket the "
                f"break in {span}; using interpolation",
                name,
            )
        )
    if interp is None:
        # The bracket medians do not straddle the SLO (a level decided by a minority of its
        # repeats, or a failure on another criterion): the fit, held inside the bracket, or the
        # bracket's middle.
        if fit_est is not None:
            est, method = min(max(fit_est, m0), m1), f"fit, clipped to the bracket ({span})"
        else:
            est, method = math.sqrt(m0 * m1), f"middle of the bracket ({span})"
        low, high = m0, m1
    else:
        est, method = interp, f"log-linear interpolation ({span})"
        # A line that no longer rises puts the crossing beyond every level (+-inf): as far as
        # the neighbouring levels, not back at the bracket end.
        reps = np.clip(
            _interp_boot(passing, fail, slo.p95_ms, noise, name, ctx.rng, ctx.boot), below, above
        )
        low_i, high_i = _percentiles(reps) if len(reps) else (None, None)
        low = low_i if low_i is not None else m0
        high = high_i if high_i is not None else m1
        if fit_est is not None and m0 <= fit_est <= m1:
            low, high = min(low, fit_est), max(high, fit_est)  # the fit's second opinion
    low = min(low, lo_again) if lo_again is not None else low
    high = max(high, hi_again) if hi_again is not None else high
    return Break(est, min(low, est), max(high, est), "bracketed", "latency", method), interp

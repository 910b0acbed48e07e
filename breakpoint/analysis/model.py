"""Analysis of a run: per-segment breaking points with intervals, fits, and diagnoses (pure).

The breaking point of a segment is the smallest multiplier at which it fails (criteria.judge) in
steady state. Only trusted steps count: a generator-bound step never breaks anything; it produces
a warning instead. What we report:

- **bracketed**: a trusted failing level exists. Latency breaks are placed inside the bracket
  (last passing level, first failing level) by the fitted curve when it agrees with the
  measurements, else by log-linear interpolation of p95 between the bracket ends; error breaks by
  interpolating the error rate; saturation breaks by the completion ratio or the bracket's middle.
  The interval is a seeded bootstrap, kept between the levels measured around the bracket.
- **extrapolated**: no failing level, the run stopped below the cap (generator bound, aborted),
  and the fit predicts a crossing: fit-based, with a wider interval. A segment failing already
  at the lowest step is also extrapolated, with the lowest step as upper bound.
- **not_reached**: the segment held up to the cap; the multiplier is the fit's estimate of where
  it would break, or None when the curve shows no degradation.
- **no_verdict**: no step measured the segment well enough for a verdict (too few requests, or
  only generator-bound steps): nothing is known, and nothing says it holds.

Open model: p95(lambda) = a_s + b_s / (L - lambda), lambda the total arrival rate, L shared by all
segments (they share the server), fitted in log space weighted by repeat variance. Closed model:
the Universal Scalability Law on completed throughput, Little's law for the mean response time,
and the measured p95/mean ratio for the p95. A bad or degenerate fit is a QualityWarning and the
analysis falls back to interpolation or the bracket; it never raises.

Intervals are honest about the bracket itself: its ends are noisy verdicts, so an interval may
reach past them to the neighbouring measured levels when the noise says so (a pass by a hair);
a pass measured before the queue could settle (relaxation_s) is flagged (not_steady) and the
break is placed from the settled level below it instead, by interpolation (the transient pulled
the fit). Error breaks are placed by a Poisson fit of the error rate over the steps around the
bracket, against the load each window really received (arrivals counted, not the planned
level), with the variance scaled by the overdispersion that bursts of errors show, and
Fieller's interval for the crossing; the fit, which weighs every step, may place the break
beyond a bracket end decided by one level's noisy count, up to the next measured level.

Warning kinds: generator_bound, few_samples, partial_step, non_monotone, fails_at_lowest_step,
stopped_before_cap, no_repeats, fit_degenerate, fit_unidentified, fit_poor, fit_disagrees,
far_extrapolation, think_time, not_steady.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from scipy import optimize, stats

from breakpoint.analysis import lsq
from breakpoint.analysis.criteria import (
    MIN_REQUESTS,
    SegmentVerdict,
    is_saturated,
    judge,
    system_saturation,
)
from breakpoint.plan.profiles import Profile, Slo
from breakpoint.plan.steps import Plan, same_level
from breakpoint.results import SegmentStep, StepResult, merge_encoded, percentiles_ms

Label = Literal["bracketed", "extrapolated", "not_reached", "no_verdict"]
Criterion = Literal["latency", "errors", "saturation"]

CONFIDENCE = 0.95
# A p95 read from one step is never more precise than about 1% (histogram resolution, and the
# tail of a 20 s window); repeats that agree better than that are luck.
MIN_SIGMA_LOG = 0.01
# Noise assumed when a run has neither repeats nor enough levels to estimate it from residuals.
DEFAULT_SIGMA_LOG = 0.10
# A level's own repeat variance is shrunk toward the pooled one as if the pool were this many
# extra degrees of freedom: two repeats alone give a variance estimate that is mostly noise.
PRIOR_DF = 4
MIN_DF = 3  # t-noise heavier than 3 degrees of freedom would be dominated by a handful of draws
# L beyond this many times the highest measured rate means no visible approach to saturation.
MAX_L_FACTOR = 100.0
# The fit must reproduce the measured p95 at the bracket ends within this (log) distance, or
# within 3 noise standard deviations, to be trusted to place the break inside the bracket.
LOCAL_AGREEMENT_LOG = 0.15
# Beyond the data the functional form is an assumption: widen extrapolated intervals by this.
EXTRAPOLATION_ALLOWANCE = 0.05
FAR_EXTRAPOLATION = 1.5  # estimate more than 1.5x the last trusted level: warn
GRID_POINTS = 60
# A passing level measured less than this many queue relaxation times after its load began may
# be a transient (the queue had not filled yet): see relaxation_s.
SETTLE_RELAXATIONS = 2.0
# The error-rate fit uses every step within this factor below and above the bracket.
ERROR_WINDOW = 1.25
ERROR_SLOPE_MAX = 60.0  # log-log slope beyond this: errors appear as a step, not a curve
CRITERIA_PRIORITY = ("errors", "latency", "saturation")


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


# --- levels and brackets (shared with search.py) ------------------------------------------------


@dataclass(frozen=True)
class _Obs:
    step: int
    multiplier: float
    load: float
    seg: SegmentStep
    verdict: SegmentVerdict
    age_s: float = math.inf  # time under this load at the middle of the measured window
    received: float = 0.0  # the load the target really got (arrivals in the window), 0: unknown

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
        out.append(_Obs(step.index, step.multiplier, step.load, seg, verdict, age, _received(step)))
    return out


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
        saturated=any(is_saturated(o.seg)[0] for o in group),
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


# --- noise ---------------------------------------------------------------------------------------


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
    return o.seg.p95_ms is not None and o.seg.p95_ms > 0 and not is_saturated(o.seg)[0]


# --- open model fit ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _OpenFit:
    names: tuple[str, ...]
    a_ms: np.ndarray
    b: np.ndarray
    capacity: float  # L, same unit as the load
    ok: bool
    rms_log: float
    chi2_df: float
    points: int
    message: str
    boot: np.ndarray | None = None  # (replicates, 2k+1) parameter vectors


class _OpenProblem:
    """Weighted log-space least squares for p95 = a_s + b_s / (L - lambda)."""

    def __init__(
        self,
        names: Sequence[str],
        idx: np.ndarray,
        lam: np.ndarray,
        logy: np.ndarray,
        sigma: np.ndarray,
        demonstrated: float = 0.0,
    ) -> None:
        self.names = tuple(names)
        self.k = len(names)
        self.idx, self.lam, self.logy, self.sigma = idx, lam, logy, sigma
        self.lam_max = float(lam.max())
        # L is above every rate the curve was measured at, and above any rate the server was
        # seen to complete (a saturated step's completed rate is a floor on its capacity).
        self.floor = max(self.lam_max, demonstrated) * (1 + 1e-6)
        self.lower = np.r_[np.full(2 * self.k, -30.0), self.floor]
        self.upper = np.r_[np.full(2 * self.k, 30.0), self.lam_max * MAX_L_FACTOR]

    def model_log(self, p: np.ndarray) -> np.ndarray:
        a = np.exp(p[: self.k])[self.idx]
        b = np.exp(p[self.k : 2 * self.k])[self.idx]
        return np.log(a + b / (p[-1] - self.lam))

    def residuals(self, p: np.ndarray, logy: np.ndarray) -> np.ndarray:
        return (self.model_log(p) - logy) / self.sigma

    def jacobian(self, p: np.ndarray, logy: np.ndarray) -> np.ndarray:
        a = np.exp(p[: self.k])[self.idx]
        b = np.exp(p[self.k : 2 * self.k])[self.idx]
        gap = p[-1] - self.lam
        f = a + b / gap
        jac = np.zeros((len(self.lam), 2 * self.k + 1))
        rows = np.arange(len(self.lam))
        jac[rows, self.idx] = a / f
        jac[rows, self.k + self.idx] = b / gap / f
        jac[:, -1] = -b / gap**2 / f
        return jac / self.sigma[:, None]

    def start(self) -> np.ndarray:
        """A robust start: for a grid of L, a linear fit of p95 on 1/(L - lambda) per segment."""
        y = np.exp(self.logy)
        best: tuple[float, np.ndarray] | None = None
        for cap in self.floor * (1 + np.geomspace(1e-3, MAX_L_FACTOR - 1.01, 40)):
            x = 1.0 / (cap - self.lam)
            p = np.empty(2 * self.k + 1)
            p[-1] = cap
            for s in range(self.k):
                sel = self.idx == s
                design = np.c_[np.ones(sel.sum()), x[sel]]
                coef = np.linalg.lstsq(design, y[sel], rcond=None)[0]
                a = max(coef[0], 0.05 * float(y[sel].min()))
                b = max(coef[1], 1e-9 * a)
                p[s], p[self.k + s] = math.log(a), math.log(b)
            sse = float(np.sum(self.residuals(p, self.logy) ** 2))
            if best is None or sse < best[0]:
                best = (sse, p)
        assert best is not None
        return np.clip(best[1], self.lower, self.upper)

    def batch(self, targets: np.ndarray) -> Callable[[np.ndarray, np.ndarray], Any]:
        """Residuals and Jacobians of replicates `rows` of `targets` (R, n), for lsq.solve_batch."""

        def fun(p: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            k, n = self.k, len(self.lam)
            a = np.exp(p[:, :k])[:, self.idx]
            b = np.exp(p[:, k : 2 * k])[:, self.idx]
            gap = p[:, -1:] - self.lam
            f = a + b / gap
            res = (np.log(f) - targets[rows]) / self.sigma
            jac = np.zeros((len(p), n, 2 * k + 1))
            cols = np.arange(n)
            jac[:, cols, self.idx] = a / f
            jac[:, cols, k + self.idx] = b / gap / f
            jac[:, :, -1] = -b / gap**2 / f
            return res, jac / self.sigma[:, None]

        return fun

    def solve(self, logy: np.ndarray, x0: np.ndarray) -> tuple[np.ndarray, bool]:
        res = optimize.least_squares(
            self.residuals,
            x0,
            jac=self.jacobian,
            bounds=(self.lower, self.upper),
            args=(logy,),
            method="trf",
            x_scale="jac",
            max_nfev=200,
        )
        return res.x, bool(res.status > 0)


def _fit_open(
    data: Mapping[str, Sequence[_Obs]],
    noise: _Noise,
    baseline: float,
    demonstrated: float,
    rng: np.random.Generator,
    boot: int,
    notes: list[QualityWarning],
) -> _OpenFit | None:
    names: list[str] = []
    idx: list[int] = []
    lam: list[float] = []
    logy: list[float] = []
    sigma: list[float] = []
    for name, seg_obs in data.items():
        usable = [o for o in seg_obs if _usable(o)]
        if len(_group(usable)) < 3:
            continue  # a segment with fewer than 3 levels cannot pin its own a and b
        s = len(names)
        names.append(name)
        for o in usable:
            idx.append(s)
            lam.append(o.multiplier * baseline)
            logy.append(math.log(_p95(o)))
            sigma.append(noise.sigma(name, o.multiplier))
    distinct = len({round(x, 9) for x in lam})
    if not names or distinct < 4 or len(lam) <= 2 * len(names) + 1:
        notes.append(
            QualityWarning(
                "fit_degenerate",
                "too few trusted, non-saturated levels to fit the latency curve (need 4 levels, "
                "3 per segment); breaking points come from the measured brackets only",
            )
        )
        return None
    prob = _OpenProblem(
        names, np.array(idx), np.array(lam), np.array(logy), np.array(sigma), demonstrated
    )
    try:
        p, converged = prob.solve(prob.logy, prob.start())
    except (ValueError, np.linalg.LinAlgError) as exc:
        notes.append(QualityWarning("fit_degenerate", f"latency fit failed: {exc}"))
        return None
    raw = prob.model_log(p) - prob.logy
    dof = len(raw) - len(p)
    chi2_df = float(np.sum((raw / prob.sigma) ** 2) / max(dof, 1))
    if noise.pooled is None:
        # No repeats: the residuals are the only noise estimate we have.
        scale = math.sqrt(max(float(np.sum(raw**2)) / max(dof, 1), MIN_SIGMA_LOG**2))
        if dof < 2:
            scale = DEFAULT_SIGMA_LOG
        prob.sigma = np.full_like(prob.sigma, scale)
        chi2_df = 1.0
        df = float(max(dof, MIN_DF))
    else:
        df = float(max(noise.df, MIN_DF))
    rms = float(np.sqrt(np.mean(raw**2)))
    ok, message = converged, "converged" if converged else "did not converge"
    cap = float(p[-1])
    gap = cap - prob.lam_max
    # Is the approach to saturation visible? The queueing term must be a real part of the p95 at
    # the highest level for some segment, and the distance to L must be known within a factor e.
    a_all, b_all = np.exp(p[: prob.k]), np.exp(p[prob.k : 2 * prob.k])
    growth = float(np.max(b_all / gap / a_all))
    try:
        jac = prob.jacobian(p, prob.logy)
        cov = np.linalg.pinv(jac.T @ jac) * max(chi2_df, 1.0)
        rel_gap_se = math.sqrt(max(cov[-1, -1], 0.0)) / gap
    except np.linalg.LinAlgError:
        rel_gap_se = math.inf
    if not converged:
        notes.append(QualityWarning("fit_degenerate", "latency fit did not converge"))
    elif cap >= prob.upper[-1] * 0.99 or growth < 0.05 or rel_gap_se > 1.0:
        ok = False
        message = "saturation rate not identifiable (no visible degradation)"
        notes.append(
            QualityWarning(
                "fit_unidentified",
                "latency fit cannot locate saturation: "
                f"p95 grows by {growth:.0%} of its floor at the "
                f"highest level; estimates beyond the data are not reported",
            )
        )
    elif chi2_df > 9.0:
        message = f"poor fit (residuals {math.sqrt(chi2_df):.1f}x the repeat noise)"
        notes.append(
            QualityWarning(
                "fit_poor",
                f"latency curve fits the repeats poorly: {message}; "
                "breaks are checked against interpolation",
            )
        )
    boots = None
    if ok and boot > 0:
        fitted = prob.model_log(p)
        # t-distributed noise: one chi-square draw of the noise scale per replicate carries the
        # uncertainty of a variance estimated from few repeats.
        scales = np.sqrt(df / rng.chisquare(df, size=boot))
        y_star = fitted + prob.sigma * scales[:, None] * rng.standard_normal((boot, len(fitted)))
        q, good = lsq.solve_batch(prob.batch(y_star), np.tile(p, (boot, 1)), prob.lower, prob.upper)
        boots = q[good] if good.any() else None
    return _OpenFit(
        tuple(names),
        a_all,
        b_all,
        cap,
        ok,
        rms,
        chi2_df,
        len(raw),
        message,
        boots,
    )


def _open_crossing(a: float, b: float, cap: float, slo_ms: float, baseline: float) -> float | None:
    """Multiplier where a + b/(L - lambda) = SLO; 0 when the floor already misses the SLO."""
    if not all(map(math.isfinite, (a, b, cap))):
        return None
    if slo_ms <= a:
        return 0.0
    return max(cap - b / (slo_ms - a), 0.0) / baseline


# --- closed model fit ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _ClosedFit:
    lam: float
    sigma: float
    kappa: float
    think_s: float
    ok: bool
    rms_log: float
    points: int
    message: str
    offsets_s: Mapping[str, float]
    ratios: Mapping[str, tuple[np.ndarray, np.ndarray]]  # users, p95/mean per level
    boot: np.ndarray | None = None


def _usl(params: np.ndarray, users: np.ndarray) -> np.ndarray:
    lam, sig, kap = math.exp(params[0]), params[1], params[2]
    return lam * users / (1 + sig * (users - 1) + kap * users * (users - 1))


def _fit_closed(
    steps: Sequence[StepResult],
    data: Mapping[str, Sequence[_Obs]],
    plan: Plan,
    think_s: float | None,
    rng: np.random.Generator,
    boot: int,
    notes: list[QualityWarning],
) -> _ClosedFit | None:
    trusted = {o.step for seg_obs in data.values() for o in seg_obs}
    rows = []
    for step in steps:
        if step.index not in trusted or step.load <= 0:
            continue
        segs = [s for s in step.segments.values() if s.requests > 0 and s.mean_ms is not None]
        done = sum(s.completed_rps for s in step.segments.values())
        reqs = sum(s.requests for s in segs)
        if done <= 0 or reqs == 0:
            continue
        mean_s = sum((s.mean_ms or 0.0) * s.requests for s in segs) / reqs / 1000.0
        rows.append((step.load, done, mean_s))
    if len({r[0] for r in rows}) < 4:
        notes.append(
            QualityWarning(
                "fit_degenerate",
                "too few trusted levels to fit the Universal Scalability Law "
                "(need 4); breaking points come from the measured brackets only",
            )
        )
        return None
    users = np.array([r[0] for r in rows], dtype=float)
    thr = np.array([r[1] for r in rows])
    resp = np.array([r[2] for r in rows])
    if think_s is None:
        # Little's law on the whole loop, N = X (R + Z), holds at every level.
        think_s = float(np.median(users / thr - resp))
        if think_s <= 0:
            notes.append(
                QualityWarning(
                    "think_time",
                    f"estimated think time {think_s:.3f} s is not positive; using 0",
                )
            )
            think_s = 0.0
    logx = np.log(thr)

    def residuals(p: np.ndarray, target: np.ndarray) -> np.ndarray:
        return np.log(_usl(p, users)) - target

    order = np.argsort(users)
    x0 = np.array([math.log(thr[order[0]] / users[order[0]]), 1e-3, 1e-6])
    bounds = ([-30.0, 0.0, 0.0], [30.0, 1.0, 1.0])
    try:
        res = optimize.least_squares(residuals, x0, bounds=bounds, args=(logx,), max_nfev=500)
    except ValueError as exc:
        notes.append(QualityWarning("fit_degenerate", f"USL fit failed: {exc}"))
        return None
    p = res.x
    raw = residuals(p, logx)
    rms = float(np.sqrt(np.mean(raw**2)))
    ok = bool(res.status > 0)
    message = "converged" if ok else "did not converge"
    if not ok:
        notes.append(QualityWarning("fit_degenerate", "USL fit did not converge"))
    offsets: dict[str, float] = {}
    ratios: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    by_load = {r[0]: r[2] for r in rows}
    for name, seg_obs in data.items():
        good = [o for o in seg_obs if o.seg.mean_ms and o.seg.p95_ms and o.load in by_load]
        if not good:
            continue
        means_s = [(o.seg.mean_ms or 0.0) / 1000.0 for o in good]
        offsets[name] = float(
            np.median([m - by_load[o.load] for m, o in zip(means_s, good, strict=True)])
        )
        levels = _group(good)
        ratios[name] = (
            np.array([g[0].load for g in levels]),
            np.array([np.median([_p95(o) / (o.seg.mean_ms or 1.0) for o in g]) for g in levels]),
        )
    boots = None
    if ok and boot > 0:
        dof = max(len(raw) - 3, 1)
        sd = max(math.sqrt(float(np.sum(raw**2)) / dof), MIN_SIGMA_LOG)
        df = float(max(dof, MIN_DF))
        fitted = np.log(_usl(p, users))
        scales = np.sqrt(df / rng.chisquare(df, size=boot))
        targets = fitted + sd * scales[:, None] * rng.standard_normal((boot, len(fitted)))

        def batch(q: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            sig, kap = q[:, 1:2], q[:, 2:3]
            denom = 1 + sig * (users - 1) + kap * users * (users - 1)
            res = q[:, 0:1] + np.log(users / denom) - targets[rows]
            jac = np.stack(
                [
                    np.ones_like(res),
                    -(users - 1) / denom,
                    -users * (users - 1) / denom,
                ],
                axis=2,
            )
            return res, jac

        q, fine = lsq.solve_batch(
            batch, np.tile(p, (boot, 1)), np.array(bounds[0]), np.array(bounds[1])
        )
        boots = q[fine] if fine.any() else None
    return _ClosedFit(
        math.exp(p[0]),
        float(p[1]),
        float(p[2]),
        think_s,
        ok,
        rms,
        len(rows),
        message,
        offsets,
        ratios,
        boots,
    )


def _closed_p95_ms(fit: _ClosedFit, params: np.ndarray, name: str, users: np.ndarray) -> np.ndarray:
    """Predicted p95 (ms): Little's law mean response, segment offset, measured p95/mean ratio."""
    mean_s = users / _usl(params, users) - fit.think_s + fit.offsets_s[name]
    at, ratio = fit.ratios[name]
    return np.maximum(mean_s, 0.0) * np.interp(users, at, ratio) * 1000.0


def _closed_crossing(
    fit: _ClosedFit, params: np.ndarray, name: str, slo_ms: float, plan: Plan
) -> float | None:
    if name not in fit.offsets_s:
        return None
    grid = np.linspace(1.0, plan.baseline * plan.hard_cap_multiplier, 800)
    p95 = _closed_p95_ms(fit, params, name, grid)
    above = np.nonzero(p95 >= slo_ms)[0]
    if len(above) == 0:
        return None
    i = int(above[0])
    if i == 0:
        return float(grid[0] / plan.baseline)

    def excess(n: float) -> float:
        return float(_closed_p95_ms(fit, params, name, np.array([n]))[0] - slo_ms)

    return float(optimize.brentq(excess, grid[i - 1], grid[i])) / plan.baseline


# --- per-segment estimation -----------------------------------------------------------------------


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


@dataclass
class _SegmentFit:
    """The fitted model seen from one segment: estimate, bootstrap estimates, curve."""

    summary: FitSummary
    estimate: float | None
    boot: np.ndarray  # crossings, inf = none
    curve: Callable[[np.ndarray], np.ndarray] | None  # multipliers -> p95 ms
    boot_curves: Callable[[np.ndarray], np.ndarray] | None


_NO_FIT = FitSummary("none", False, {}, None, 0, "no fit")


def _segment_fit_open(fit: _OpenFit | None, name: str, slo: Slo, baseline: float) -> _SegmentFit:
    if fit is None or name not in fit.names:
        msg = "too few levels for this segment" if fit is not None else "no fit"
        return _SegmentFit(replace(_NO_FIT, message=msg), None, np.array([]), None, None)
    s = fit.names.index(name)
    a, b, cap = float(fit.a_ms[s]), float(fit.b[s]), fit.capacity
    summary = FitSummary(
        "open a+b/(L-lambda)",
        fit.ok,
        {
            "a_ms": a,
            "b_ms_x_rate": b,
            "L": cap,
            "L_multiplier": cap / baseline,
            "chi2_per_df": fit.chi2_df,
        },
        fit.rms_log,
        fit.points,
        fit.message,
    )
    estimate = _open_crossing(a, b, cap, slo.p95_ms, baseline) if fit.ok else None
    k = len(fit.names)
    boot_params = fit.boot if fit.boot is not None else np.empty((0, 2 * k + 1))
    ba, bb, bl = np.exp(boot_params[:, s]), np.exp(boot_params[:, k + s]), boot_params[:, -1]
    crossings = np.array(
        [
            c if (c := _open_crossing(x, y, z, slo.p95_ms, baseline)) is not None else math.inf
            for x, y, z in zip(ba, bb, bl, strict=True)
        ]
    )

    def curve(m: np.ndarray) -> np.ndarray:
        gap = cap - m * baseline
        return np.where(gap > 0, a + b / np.where(gap > 0, gap, 1.0), np.nan)

    def boot_curves(m: np.ndarray) -> np.ndarray:
        gap = bl[:, None] - m[None, :] * baseline
        return np.where(gap > 0, ba[:, None] + bb[:, None] / np.where(gap > 0, gap, 1.0), np.nan)

    return _SegmentFit(summary, estimate, crossings, curve, boot_curves if len(bl) else None)


def _segment_fit_closed(fit: _ClosedFit | None, name: str, slo: Slo, plan: Plan) -> _SegmentFit:
    if fit is None or name not in fit.offsets_s:
        return _SegmentFit(_NO_FIT, None, np.array([]), None, None)
    params = np.array([math.log(fit.lam), fit.sigma, fit.kappa])
    summary = FitSummary(
        "closed USL",
        fit.ok,
        {
            "lambda": fit.lam,
            "sigma": fit.sigma,
            "kappa": fit.kappa,
            "think_s": fit.think_s,
            "offset_ms": fit.offsets_s[name] * 1000.0,
        },
        fit.rms_log,
        fit.points,
        fit.message,
    )
    estimate = _closed_crossing(fit, params, name, slo.p95_ms, plan) if fit.ok else None
    reps = fit.boot if fit.boot is not None else np.empty((0, 3))
    crossings = np.array(
        [
            c if (c := _closed_crossing(fit, q, name, slo.p95_ms, plan)) is not None else math.inf
            for q in reps
        ]
    )

    def curve(m: np.ndarray) -> np.ndarray:
        return _closed_p95_ms(fit, params, name, np.maximum(m * plan.baseline, 1.0))

    def boot_curves(m: np.ndarray) -> np.ndarray:
        users = np.maximum(m * plan.baseline, 1.0)
        return np.array([_closed_p95_ms(fit, q, name, users) for q in reps])

    return _SegmentFit(summary, estimate, crossings, curve, boot_curves if len(reps) else None)


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


def _criterion(name: str | None) -> Criterion:
    if name == "errors":
        return "errors"
    return "saturation" if name == "saturation" else "latency"


def _clip(x: float | None, lo: float, hi: float) -> float | None:
    return None if x is None else min(max(x, lo), hi)


def _estimate_break(
    name: str,
    slo: Slo,
    levels: Sequence[Level],
    obs: Sequence[_Obs],
    sfit: _SegmentFit,
    noise: _Noise,
    plan: Plan,
    ceiling: float,
    rng: np.random.Generator,
    boot: int,
    notes: list[QualityWarning],
) -> tuple[Break, float | None]:
    """The segment's Break, and the interpolation estimate kept for the cross-check."""
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
        return _bracketed(
            name,
            slo,
            passing,
            fail,
            criterion,
            sfit,
            levels,
            obs,
            noise,
            plan.baseline,
            ceiling,
            rng,
            boot,
            notes,
            lo_boot,
            hi_boot,
        )
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


def relaxation_s(load: float, capacity: float) -> float:
    """Time a queue needs to settle at arrival rate `load` below `capacity` (inf at or above).

    The heavy-traffic relaxation time of a single queue served at rate L, 1 / (L (1 - sqrt(rho))^2)
    (Morse; an M/M/c queue near saturation behaves like one server of rate c mu): about 6 s at
    rho = 0.96 and 400 req/s, 0.2 s at rho = 0.8.
    """
    if capacity <= 0 or load >= capacity:
        return math.inf
    return 1.0 / (capacity * (1 - math.sqrt(load / capacity)) ** 2)


def _unsteady_pass(
    passing: Level, sfit: _SegmentFit, baseline: float, ceiling: float
) -> tuple[bool, float]:
    """Was the passing end measured before the queue could settle? (and its relaxation time)

    The capacity is the lower of the fitted L and the ceiling: the throughput the target
    completed while overloaded. A transient pass drags the fitted L up (L must exceed every
    level that passed), the ceiling is what the target really did.
    """
    caps = [c for c in (sfit.summary.params.get("L") if sfit.summary.ok else None, ceiling) if c]
    if not caps or not math.isfinite(passing.age_s):
        return False, 0.0
    tau = relaxation_s(passing.multiplier * baseline, float(min(caps)))
    return passing.age_s < SETTLE_RELAXATIONS * tau, tau


@dataclass(frozen=True)
class _ErrorFit:
    """log(error rate) = alpha + beta log(multiplier), Poisson likelihood, over nearby steps."""

    estimate: float
    low: float
    high: float
    levels: int
    dispersion: float


def _fit_errors(
    obs: Sequence[_Obs], slo_rate: float, lo_limit: float, hi_limit: float, baseline: float
) -> _ErrorFit | None:
    """Fit the error rate's rise over every step from lo_limit to hi_limit; None if it fails.

    Each step counts (failed requests, attempts); the model is Poisson with a power law in the
    multiplier (blocking and timeout rates rise steeply and smoothly near a break). Errors come
    in bursts (a full queue refuses several arrivals at once), so the variance is scaled by the
    Pearson overdispersion when repeats show more scatter than Poisson. The interval is
    Fieller's for the crossing of the fitted line with log(SLO), t-quantile when the dispersion
    was estimated, limited to the levels fitted.
    """
    used = [
        o
        for o in obs
        if lo_limit * (1 - 1e-9) <= o.multiplier <= hi_limit * (1 + 1e-9)
        and o.seg.requests + o.seg.unfinished > 0
    ]
    # The load axis is the realised load (see _Obs.rate): it explains a window's errors better.
    mult = np.array([o.rate / baseline for o in used], dtype=float)
    failed = np.array([o.seg.error_count + o.seg.unfinished for o in used], dtype=float)
    tried = np.array([o.seg.requests + o.seg.unfinished for o in used], dtype=float)
    distinct = len(_group(used))
    if distinct < 2 or failed.sum() == 0 or np.any(failed / np.maximum(tried, 1) > 0.5):
        return None
    design = np.c_[np.ones(len(mult)), np.log(mult)]
    theta = np.array([math.log(failed.sum() / tried.sum()), 0.0])
    for _ in range(50):
        mu = tried * np.exp(design @ theta)
        info = design.T @ (mu[:, None] * design)
        score = design.T @ (failed - mu)
        try:
            delta = np.linalg.solve(info, score)
        except np.linalg.LinAlgError:
            return None
        theta = theta + delta
        if not np.all(np.isfinite(theta)) or theta[1] > ERROR_SLOPE_MAX:
            return None  # errors only at the top: the rise is a step, not a curve
        if float(np.max(np.abs(delta))) < 1e-10:
            break
    else:
        return None
    alpha, beta = float(theta[0]), float(theta[1])
    if beta <= 0:
        return None
    mu = tried * np.exp(design @ theta)
    dof = len(used) - 2
    pearson = float(np.sum((failed - mu) ** 2 / np.maximum(mu, 1e-12)))
    dispersion = max(pearson / dof, 1.0) if dof > 0 else 1.0
    cov = np.linalg.inv(design.T @ (mu[:, None] * design)) * dispersion
    quantile = (
        float(stats.t.ppf(0.5 + CONFIDENCE / 2, max(dof, 1)))
        if dispersion > 1.0
        else float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
    )
    target = math.log(slo_rate)
    x_hat = (target - alpha) / beta
    # Fieller: the x where |alpha + beta x - target| <= q * se(alpha + beta x).
    q2 = quantile**2
    qa = beta**2 - q2 * cov[1, 1]
    qb = 2 * beta * (alpha - target) - 2 * q2 * cov[0, 1]
    qc = (alpha - target) ** 2 - q2 * cov[0, 0]
    lo_log, hi_log = math.log(lo_limit), math.log(hi_limit)
    disc = qb**2 - 4 * qa * qc
    if qa > 0 and disc >= 0:
        root = math.sqrt(disc)
        x_lo, x_hi = (-qb - root) / (2 * qa), (-qb + root) / (2 * qa)
    else:
        x_lo, x_hi = lo_log, hi_log  # the slope is not known to be positive: no bound inside
    return _ErrorFit(
        math.exp(x_hat),
        math.exp(max(min(x_lo, x_hat), lo_log)),
        math.exp(min(max(x_hi, x_hat), hi_log)),
        distinct,
        dispersion,
    )


def _bracketed(
    name: str,
    slo: Slo,
    passing: Level,
    fail: Level,
    criterion: Criterion,
    sfit: _SegmentFit,
    levels: Sequence[Level],
    obs: Sequence[_Obs],
    noise: _Noise,
    baseline: float,
    ceiling: float,
    rng: np.random.Generator,
    boot: int,
    notes: list[QualityWarning],
    lo_boot: float | None,
    hi_boot: float | None,
) -> tuple[Break, float | None]:
    m0, m1 = passing.multiplier, fail.multiplier
    span = f"{m0:g}X-{m1:g}X"
    below, above = _reach(levels, m0, m1)
    if criterion == "errors":
        e0, e1 = passing.error_rate, fail.error_rate
        efit = _fit_errors(obs, slo.error_rate, m0 / ERROR_WINDOW, m1 * ERROR_WINDOW, baseline)
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
        return Break(_clip(est, m0, m1), m0, m1, "bracketed", "saturation", method), None
    unsteady, tau = _unsteady_pass(passing, sfit, baseline, ceiling)
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
            if not _unsteady_pass(passing, sfit, baseline, ceiling)[0]:
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
            _interp_boot(passing, fail, slo.p95_ms, noise, name, rng, boot), below, above
        )
        low_i, high_i = _percentiles(reps) if len(reps) else (None, None)
        low = low_i if low_i is not None else m0
        high = high_i if high_i is not None else m1
        if fit_est is not None and m0 <= fit_est <= m1:
            low, high = min(low, fit_est), max(high, fit_est)  # the fit's second opinion
    return Break(est, min(low, est), max(high, est), "bracketed", "latency", method), interp


# --- description ----------------------------------------------------------------------------------


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


# --- entry points ---------------------------------------------------------------------------------


def analyse(
    steps: Sequence[StepResult],
    profiles: Sequence[Profile],
    plan: Plan,
    *,
    seed: int = 0,
    boot: int = 400,
    think_s: float | None = None,
) -> Analysis:
    """Breaking point, interval, fit and diagnosis for every profile (see the module docstring).

    `think_s` (closed model only) overrides the think time estimated by Little's law.
    """
    return analyse_slos(
        steps, {p.name: p.slo for p in profiles}, plan, seed=seed, boot=boot, think_s=think_s
    )


def estimate_breaks(
    steps: Sequence[StepResult], slos: Mapping[str, Slo], plan: Plan
) -> dict[str, Break]:
    """Point estimates only (no bootstrap): cheap enough for the search to call after each step."""
    analysis = analyse_slos(steps, slos, plan, boot=0)
    return {name: seg.breaking for name, seg in analysis.segments.items()}


def analyse_slos(
    steps: Sequence[StepResult],
    slos: Mapping[str, Slo],
    plan: Plan,
    *,
    seed: int = 0,
    boot: int = 400,
    think_s: float | None = None,
) -> Analysis:
    """`analyse` for segments given as name -> SLO, in the mapping's order."""
    rng = np.random.default_rng(seed)
    notes: list[QualityWarning] = []
    for step in steps:
        if step.generator.bound:
            why = "; ".join(step.generator.reasons) or "generator saturated"
            notes.append(
                QualityWarning(
                    "generator_bound",
                    f"step at {step.multiplier:g}X measured the load generator, not the target "
                    f"({why}); it is not used",
                    None,
                    step.index,
                )
            )
        if step.partial:
            notes.append(
                QualityWarning(
                    "partial_step",
                    f"step at {step.multiplier:g}X was cut short "
                    f"({step.measured_s:.0f} s measured)",
                    None,
                    step.index,
                )
            )
    obs = {name: _observations(steps, name, slo, notes) for name, slo in slos.items()}
    levels = {name: tuple(_level(g, slo) for g in _group(obs[name])) for name, slo in slos.items()}
    noise = _noise(obs)
    if noise.pooled is None and any(levels.values()):
        notes.append(
            QualityWarning(
                "no_repeats",
                "no level was repeated: the noise is estimated from the fit's "
                "residuals, so intervals are rough",
            )
        )
    ceiling = 0.0  # what the target completed while overloaded: its capacity as measured
    if plan.model == "open":
        trusted = [step for step in steps if not step.generator.bound]

        def completed(step: StepResult) -> float:
            return sum(s.completed_rps for s in step.segments.values())

        ceiling = max(
            (completed(step) for step in trusted if system_saturation(step)[0]), default=0.0
        )
        demonstrated = max((completed(step) for step in trusted), default=0.0)
        open_fit = _fit_open(obs, noise, plan.baseline, demonstrated, rng, boot, notes)
        fits = {
            name: _segment_fit_open(open_fit, name, slo, plan.baseline)
            for name, slo in slos.items()
        }
    else:
        closed_fit = _fit_closed(steps, obs, plan, think_s, rng, boot, notes)
        fits = {
            name: _segment_fit_closed(closed_fit, name, slo, plan) for name, slo in slos.items()
        }

    segments: dict[str, SegmentAnalysis] = {}
    for name, slo in slos.items():
        lv = levels[name]
        for i in range(1, len(lv)):
            if lv[i].passed and not all(x.passed for x in lv[:i]):
                notes.append(
                    QualityWarning(
                        "non_monotone",
                        f"passes at {lv[i].multiplier:g}X after failing at a lower "
                        "level; the break is the lowest failing level",
                        name,
                        lv[i].steps[0],
                    )
                )
                break
        brk, interp = _estimate_break(
            name, slo, lv, obs[name], fits[name], noise, plan, ceiling, rng, boot, notes
        )
        last_pass, first_fail = bracket(lv)
        fail_step = None
        if first_fail is not None:
            fail_level = next(x for x in lv if same_level(x.multiplier, first_fail))
            fail_step = min(fail_level.steps)
        segments[name] = SegmentAnalysis(
            profile=name,
            slo=slo,
            breaking=brk,
            fit=fits[name].summary,
            levels=lv,
            curve=_curve(fits[name], lv, brk.multiplier),
            knee_multiplier=_knee(lv),
            diagnosis=_diagnose(steps, name, slo, lv, first_fail),
            last_pass=last_pass,
            first_fail=first_fail,
            first_fail_step=fail_step,
            fit_multiplier=fits[name].estimate,
            interp_multiplier=interp,
        )
    broken = [
        (s.breaking.multiplier, name)
        for name, s in segments.items()
        if s.breaking.label not in ("not_reached", "no_verdict")
        and s.breaking.multiplier is not None
    ]
    return Analysis(
        model=plan.model,
        baseline=plan.baseline,
        segments=segments,
        warnings=tuple(notes),
        first_to_break=min(broken)[1] if broken else None,
    )


def summary_segments(analysis: Analysis) -> list[dict[str, Any]]:
    """The `segments` list of summary.json (DESIGN.md §11), with a few extra keys."""
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


__all__ = [
    "Analysis",
    "Break",
    "CurvePoint",
    "Diagnosis",
    "FitSummary",
    "Level",
    "QualityWarning",
    "SegmentAnalysis",
    "analyse",
    "analyse_slos",
    "bracket",
    "estimate_breaks",
    "measured_levels",
    "summary_segments",
]

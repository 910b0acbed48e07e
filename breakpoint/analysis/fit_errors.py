"""Error breaks: a Poisson regression of the error rate on log load over the steps around the
bracket, scaled for overdispersion (errors come in bursts), with Fieller's interval for its
crossing of the error SLO.

See docs/design.md#error-rate-fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from breakpoint.analysis.findings import CONFIDENCE
from breakpoint.analysis.levels import _group, _Obs

ERROR_SLOPE_MAX = 60.0  # log-log slope beyond this: errors appear as a step, not a curve


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

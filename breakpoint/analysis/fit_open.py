"""Open model: p95(lambda) = a_s + b_s / (L - lambda), one capacity L shared by every segment
(they share the server), fitted in log space weighted by the repeat noise, with a parametric
bootstrap refitted in one batch (lsq.py).

A bad or unidentified fit is a warning, never an exception (docs/design.md#open-model-fit).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import optimize

from breakpoint.analysis import lsq
from breakpoint.analysis.findings import _NO_FIT, FitSummary, QualityWarning, _SegmentFit
from breakpoint.analysis.levels import (
    DEFAULT_SIGMA_LOG,
    MIN_DF,
    MIN_SIGMA_LOG,
    _group,
    _Noise,
    _Obs,
    _p95,
    _usable,
)
from breakpoint.plan.profiles import Slo

# L beyond this many times the highest measured rate means no visible approach to saturation.
MAX_L_FACTOR = 100.0


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

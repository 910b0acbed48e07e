"""Closed model: the Universal Scalability Law on completed throughput, Little's law for the mean
response time and each segment's measured p95/mean ratio for its p95, with a bootstrap.

A bad fit is a warning, never an exception (docs/design.md#closed-model-fit).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from breakpoint.analysis import lsq
from breakpoint.analysis.findings import _NO_FIT, FitSummary, QualityWarning, _SegmentFit
from breakpoint.analysis.levels import MIN_DF, MIN_SIGMA_LOG, _group, _Obs, _p95
from breakpoint.plan.profiles import Slo
from breakpoint.plan.steps import Plan
from breakpoint.results import StepResult


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

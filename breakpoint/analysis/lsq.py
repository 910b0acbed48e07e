"""Many small bounded least-squares problems solved together (pure numpy).

A parametric bootstrap refits the same model to hundreds of replicate data sets that differ only
in their noise. One scipy `least_squares` call per replicate spends its time in Python overhead
(a 15-parameter problem with 140 residuals costs about 20 ms); Levenberg-Marquardt on all
replicates at once does the same work as a few batched matrix products per iteration.

`solve_batch(fun, p0, lower, upper)` minimises 0.5 * |r_i(p_i)|^2 for every row i of p0, where
`fun(p, rows)` returns the residuals (len(rows), n) and their Jacobian (len(rows), n, P) of the
replicates `rows` at parameters p (len(rows), P). Bounds are kept by projecting every trial
point onto the box, with parameters pressed against a bound frozen for the step; a step is
accepted only when it lowers the cost, so every replicate ends at least as good as its start.
Damping follows Nielsen's rule. Convergence is scipy's: relative cost change below `ftol`, or
a step below `xtol` relative to the parameters, or no descent left (the damping saturated).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Residuals = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

DAMPING_START = 1e-3
DAMPING_MAX = 1e12  # beyond this the step is zero in floating point: nothing lowers the cost


def solve_batch(
    fun: Residuals,
    p0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    max_iter: int = 400,
    ftol: float = 1e-10,
    xtol: float = 1e-9,
) -> tuple[np.ndarray, np.ndarray]:
    """(parameters (R, P), converged (R,) bool) for R problems started at p0 (R, P)."""
    p = np.clip(np.array(p0, dtype=float), lower, upper)
    count, size = p.shape
    everyone = np.arange(count)
    r, jac = fun(p, everyone)
    cost = 0.5 * np.einsum("rn,rn->r", r, r)
    damping = np.full(count, DAMPING_START)
    growth = np.full(count, 2.0)
    converged = np.zeros(count, dtype=bool)
    active = np.ones(count, dtype=bool)
    eye = np.eye(size)
    for _ in range(max_iter):
        rows = np.nonzero(active)[0]
        if len(rows) == 0:
            break
        j, res = jac[rows], r[rows]
        jt = j.transpose(0, 2, 1)
        normal = jt @ j
        grad = (jt @ res[:, :, None])[:, :, 0]
        # A parameter held at a bound by a gradient pushing outward is frozen for this step
        # (its row and column become the identity), so the others move as if it were fixed:
        # projecting a step that wants to leave the box would waste the whole step.
        here = p[rows]
        held = ((here <= lower) & (grad > 0)) | ((here >= upper) & (grad < 0))
        free = ~held
        normal = normal * (free[:, :, None] & free[:, None, :]) + held[:, :, None] * eye
        grad = np.where(held, 0.0, grad)
        # Marquardt's scaling: damp each parameter in proportion to its own curvature.
        diag = np.maximum(np.einsum("rii->ri", normal), 1e-12)
        system = normal + damping[rows, None, None] * diag[:, :, None] * eye
        try:
            step = -np.linalg.solve(system, grad[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            step = _pinv_steps(system, grad)
        trial = np.clip(p[rows] + step, lower, upper)
        moved = trial - p[rows]
        r_new, jac_new = fun(trial, rows)
        cost_new = 0.5 * np.einsum("rn,rn->r", r_new, r_new)
        better = np.isfinite(cost_new) & (cost_new < cost[rows])
        good = rows[better]
        drop = cost[good] - cost_new[better]
        small_drop = drop <= ftol * np.maximum(cost[good], 1e-300)
        small_step = np.linalg.norm(moved[better], axis=1) <= xtol * (
            np.linalg.norm(p[good], axis=1) + xtol
        )
        p[good], r[good], jac[good], cost[good] = (
            trial[better],
            r_new[better],
            jac_new[better],
            cost_new[better],
        )
        # Nielsen's update: the better the quadratic model predicted the drop, the less damping.
        d = step[better]
        predicted = 0.5 * np.einsum(
            "ri,ri->r", d, damping[good, None] * diag[better] * d - grad[better]
        )
        gain = drop / np.maximum(predicted, 1e-300)
        damping[good] *= np.maximum(1 / 3, 1 - (2 * np.minimum(gain, 1.0) - 1) ** 3)
        growth[good] = 2.0
        finished = good[small_drop | small_step]
        bad = rows[~better]
        damping[bad] *= growth[bad]
        growth[bad] *= 2.0
        stuck = bad[damping[bad] > DAMPING_MAX]
        converged[finished] = True
        converged[stuck] = True
        active[finished] = False
        active[stuck] = False
    return p, converged


def _pinv_steps(system: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Steps for systems of which some are singular: the pseudo-inverse, one by one."""
    return -np.einsum("rij,rj->ri", np.linalg.pinv(system), grad)


__all__ = ["solve_batch"]

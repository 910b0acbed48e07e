"""Batched Levenberg-Marquardt (analysis/lsq.py) against scipy's least_squares, one by one."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize

from breakpoint.analysis import lsq
from breakpoint.analysis.fit_open import _OpenProblem

X = np.linspace(0.0, 4.0, 25)


def decay_batch(targets: np.ndarray):
    """y = A exp(-k x) + c with p = (log A, k, c), residuals against each row of targets."""

    def fun(p: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        amp, k, c = np.exp(p[:, 0:1]), p[:, 1:2], p[:, 2:3]
        e = np.exp(-k * X)
        res = amp * e + c - targets[rows]
        jac = np.stack([amp * e, -amp * X * e, np.ones_like(e)], axis=2)
        return res, jac

    return fun


def decay_cost(p: np.ndarray, y: np.ndarray) -> float:
    r = math.exp(p[0]) * np.exp(-p[1] * X) + p[2] - y
    return 0.5 * float(r @ r)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_scipy_replicate_by_replicate(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = np.array([math.log(3.0), 1.3, 0.5])
    clean = math.exp(truth[0]) * np.exp(-truth[1] * X) + truth[2]
    targets = clean + 0.2 * rng.standard_normal((60, len(X)))
    lower, upper = np.array([-5.0, 0.0, -10.0]), np.array([5.0, 10.0, 10.0])
    start = np.tile([0.0, 0.5, 0.0], (60, 1))
    got, ok = lsq.solve_batch(decay_batch(targets), start, lower, upper)
    assert ok.all()
    for i, y in enumerate(targets):
        ref = optimize.least_squares(
            lambda p, y=y: math.exp(p[0]) * np.exp(-p[1] * X) + p[2] - y,
            start[i],
            bounds=(lower, upper),
        )
        assert decay_cost(got[i], y) <= ref.cost * (1 + 1e-6) + 1e-12
        assert got[i] == pytest.approx(ref.x, rel=1e-3, abs=1e-3)


def test_bounds_hold_and_an_active_bound_is_a_solution() -> None:
    # The data want a negative offset; the box forbids it: the answer sits on c = 0 and the
    # other parameters are the best fit given that.
    truth_y = 2.0 * np.exp(-0.8 * X) - 0.7
    targets = np.tile(truth_y, (5, 1))
    lower, upper = np.array([-5.0, 0.0, 0.0]), np.array([5.0, 10.0, 10.0])
    start = np.tile([0.0, 1.0, 1.0], (5, 1))
    got, ok = lsq.solve_batch(decay_batch(targets), start, lower, upper)
    assert ok.all()
    assert np.all(got >= lower) and np.all(got <= upper)
    assert got[:, 2] == pytest.approx(0.0, abs=1e-12)
    ref = optimize.least_squares(
        lambda p: math.exp(p[0]) * np.exp(-p[1] * X) + p[2] - truth_y,
        start[0],
        bounds=(lower, upper),
    )
    assert decay_cost(got[0], truth_y) <= ref.cost * (1 + 1e-6)


def test_rows_that_run_out_of_iterations_are_flagged_and_never_worse() -> None:
    rng = np.random.default_rng(7)
    targets = 3 * np.exp(-1.3 * X) + 0.5 + 0.2 * rng.standard_normal((20, len(X)))
    lower, upper = np.array([-5.0, 0.0, -10.0]), np.array([5.0, 10.0, 10.0])
    start = np.tile([-4.0, 9.0, 5.0], (20, 1))
    got, ok = lsq.solve_batch(decay_batch(targets), start, lower, upper, max_iter=2)
    assert not ok.all()
    for i, y in enumerate(targets):
        assert decay_cost(got[i], y) <= decay_cost(start[i], y)


def test_open_model_bootstrap_refits_equal_scipys() -> None:
    """The shared-L latency model of the analysis: batched refits reach scipy's optimum."""
    rng = np.random.default_rng(3)
    k, cap = 3, 400.0
    lam = np.tile(np.array([40.0, 120.0, 200.0, 280.0, 330.0, 360.0, 375.0]), k)
    idx = np.repeat(np.arange(k), 7)
    a = np.array([30.0, 150.0, 400.0])[idx]
    b = np.array([800.0, 900.0, 700.0])[idx]
    logy = np.log(a + b / (cap - lam)) + 0.05 * rng.standard_normal(len(lam))
    prob = _OpenProblem(["x", "y", "z"], idx, lam, logy, np.full(len(lam), 0.05))
    p, converged = prob.solve(prob.logy, prob.start())
    assert converged
    targets = prob.model_log(p) + 0.05 * rng.standard_normal((40, len(lam)))
    got, ok = lsq.solve_batch(prob.batch(targets), np.tile(p, (40, 1)), prob.lower, prob.upper)
    assert ok.all()
    for i, y in enumerate(targets):
        ref, good = prob.solve(y, p)
        assert good
        mine = float(np.sum(prob.residuals(got[i], y) ** 2))
        theirs = float(np.sum(prob.residuals(ref, y) ** 2))
        assert mine <= theirs * (1 + 1e-5) + 1e-9
        assert got[i, -1] == pytest.approx(ref[-1], rel=1e-3)

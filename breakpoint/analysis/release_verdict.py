"""The verdict for one segment between two releases: statistics over whole runs.

Pure numpy and scipy. Breaks are compared in log space, the unit is a run, and the path taken
depends on how many runs each side has and whether any held (docs/design.md#comparison).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from breakpoint.analysis.release_input import LogBreak

Verdict = Literal["regression", "improvement", "no_change", "inconclusive"]
Method = Literal["bootstrap", "run_intervals", "censored"]

MIN_NOISE_BAND = 0.03
AA_BAND_FACTOR = 2.0
ALPHA = 0.05  # two-sided level of the interval and of the test
POWER = 0.80  # for runs_needed
MIN_RUNS_FOR_TEST = 2  # Welch's t on log breaks needs a spread on each side
TEST_NAME = "welch_t"  # the test that decides with 2+ runs a side (SegmentComparison.test)
BOOTSTRAP_RESAMPLES = 4000
MAX_RUNS_NEEDED = 1000  # beyond this, more runs are not a practical answer
_Z_INTERVAL = float(stats.norm.ppf(1 - ALPHA / 2))
_Z_POWER = float(stats.norm.ppf(POWER))


@dataclass(frozen=True)
class SegmentComparison:
    """The verdict for one segment, with the numbers that support it."""

    profile: str
    verdict: Verdict
    method: Method
    ratio: float | None  # geometric mean new / geometric mean base
    ratio_low: float | None  # interval of the ratio; None when unbounded
    ratio_high: float | None
    p_value: float | None  # Welch's t on log breaks, two-sided; None below 2 runs a side
    noise_band: float  # relative, e.g. 0.03
    aa_spread: float | None  # log-sd between runs (~ coefficient of variation)
    base_multiplier: float | None
    new_multiplier: float | None
    base_runs: int
    new_runs: int
    runs_needed: int | None  # runs per side that would decide; inconclusive only
    note: str = ""
    test: str | None = None  # which test gave p_value ("welch_t"), None without one

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pooled_log_sd(*groups: np.ndarray) -> float | None:
    """The A/A spread: pooled within-side standard deviation of log breaking points (ddof=1;
    only sides with >= 2 uncensored runs count). For spreads of a few percent it equals the
    coefficient of variation of one run's breaking point. None below 2 runs a side."""
    usable = [g for g in groups if len(g) >= 2]
    dof = sum(len(g) - 1 for g in usable)
    if dof == 0:
        return None
    squares = sum(float(np.sum((g - g.mean()) ** 2)) for g in usable)
    return math.sqrt(squares / dof)


def _bootstrap_log_ratio(y_base: np.ndarray, y_new: np.ndarray, seed: int) -> tuple[float, float]:
    """Percentile interval of mean(log new) - mean(log base), resampling runs on each side.

    Each side is sorted and the side that sorts first draws first, so swapping base and new
    reuses the same draws for the same data and mirrors the interval exactly.
    """
    rng = np.random.default_rng(seed)
    sides = {"base": np.sort(y_base), "new": np.sort(y_new)}
    order = sorted(sides, key=lambda name: (len(sides[name]), tuple(sides[name].tolist())))
    means = {}
    for name in order:
        y = sides[name]
        idx = rng.integers(0, len(y), size=(BOOTSTRAP_RESAMPLES, len(y)))
        means[name] = y[idx].mean(axis=1)
    diffs = np.sort(means["new"] - means["base"])
    # Symmetric order statistics (not np.percentile's interpolation) keep the mirror exact.
    k = int(BOOTSTRAP_RESAMPLES * ALPHA / 2)
    return float(diffs[k]), float(diffs[-1 - k])


def _welch(y_base: np.ndarray, y_new: np.ndarray) -> float | None:
    """Two-sided p of Welch's t-test on log breaks; None below 2 runs a side or with no spread.

    Chosen over Mann-Whitney because it can decide with the runs teams make: the exact rank
    test's smallest two-sided p at 3 vs 3 is 0.1, so it never reaches 0.05 there. Breaks are
    close to log-normal between runs (benchmarks/comparison.py measures the false alarms).
    """
    if min(len(y_base), len(y_new)) < MIN_RUNS_FOR_TEST:
        return None
    # Computed here rather than by scipy.stats.ttest_ind, which warns (precision loss) when one
    # side's runs are identical; Welch's statistic is still defined then (from the other side).
    v_base = float(np.var(y_base, ddof=1)) / len(y_base)
    v_new = float(np.var(y_new, ddof=1)) / len(y_new)
    if v_base + v_new <= 0:
        return None  # every run of each side identical: no spread to test against
    t = (float(np.mean(y_new)) - float(np.mean(y_base))) / np.sqrt(v_base + v_new)
    dof = (v_base + v_new) ** 2 / (
        v_base**2 / max(1, len(y_base) - 1) + v_new**2 / max(1, len(y_new) - 1)
    )
    return float(2 * stats.t.sf(abs(t), dof))


def _t_runs(spread: float, distance: float) -> int:
    """Runs a side for Welch's test at ALPHA to find `distance` with POWER (equal spreads)."""
    for n in range(MIN_RUNS_FOR_TEST, MAX_RUNS_NEEDED):
        dof = 2 * n - 2
        need = 2 * (stats.t.ppf(1 - ALPHA / 2, dof) + stats.t.ppf(POWER, dof)) ** 2
        if need * spread**2 / distance**2 <= n:
            return n
    return MAX_RUNS_NEEDED


def _runs_needed(shift: float, spread: float, band: float, runs_now: int) -> int:
    """Runs per side for a 95% interval to settle the question, with 80% power (log space).

    The two-sample size for a difference of means, n = 2 (z_0.975 + z_0.80)^2 s^2 / delta^2,
    where delta is the observed shift when it lies beyond the band (to show it is real) or its
    distance to the band edge when inside (to show it stays inside); showing a change takes
    Welch's test, sized with t quantiles (more runs than the normal formula at a few runs).
    """
    distance = abs(shift) if abs(shift) >= band else band - abs(shift)
    if distance < 1e-9:  # a shift right on the band edge: no number of runs settles it
        return MAX_RUNS_NEEDED
    exact = 2 * (_Z_INTERVAL + _Z_POWER) ** 2 * spread**2 / distance**2
    n = math.ceil(exact) if exact < MAX_RUNS_NEEDED else MAX_RUNS_NEEDED
    if abs(shift) >= band and n < MAX_RUNS_NEEDED:
        n = max(n, _t_runs(spread, distance))
    return min(MAX_RUNS_NEEDED, max(n, runs_now + 1, 2))


def _finite_exp(value: float) -> float | None:
    return math.exp(value) if math.isfinite(value) else None


def _disjoint(
    base: Sequence[LogBreak], new: Sequence[LogBreak], band: float
) -> tuple[float, float]:
    """Log-ratio interval from the runs' own intervals, each widened by the band on both ends."""
    low = min(b.lower for b in new) - band - (max(b.upper for b in base) + band)
    high = max(b.upper for b in new) + band - (min(b.lower for b in base) - band)
    return low, high


def compare_segment(
    profile: str,
    base: Sequence[LogBreak],
    new: Sequence[LogBreak],
    *,
    noise_band: float | None,
    aa_spread: float | None,
    seed: int,
) -> SegmentComparison:
    """One segment's verdict from each side's breaks (one per run).

    Noise band: `noise_band` if given, else max(3%, 2 x the A/A spread), else 3%; `aa_spread`
    replaces the spread estimated from the runs (e.g. from a dedicated A/A campaign).

    * Bootstrap path (>= 2 runs a side, nothing censored): a seeded bootstrap over runs gives a
      95% interval of the ratio, Welch's t-test on log breaks the p-value. Regression: the
      ratio below the band, the interval below 1, and either p < 0.05 or every new run's
      interval (widened by the band) below every base run's (the one-run rule). (With
      so few runs the bootstrap interval alone is optimistic: in A/A simulations 2 vs 2 runs
      gave 9% false regressions on it; benchmarks/comparison.py measures the full rule.)
      No change: the interval inside the band.
    * Run-interval path (one run on a side): each run's interval widened by the band stands in
      for the spread; regression when every new interval lies below every base one. One run a
      side never proves "no change".
    * Censored path (any held run, counted at [what it held, inf)): the run-interval rule; runs
      that all held to the cap on both sides are "no change", but "inconclusive" when any of
      them stopped short of its cap (two runs stopped at 1X prove nothing about 10X).

    runs_needed (inconclusive only, not censored): see `_runs_needed`; with one run a side the
    spread comes from the widened run intervals read as 95% intervals.
    """
    y_base = np.array([b.point for b in base])
    y_new = np.array([b.point for b in new])
    shift = float(y_new.mean() - y_base.mean())
    censored = any(b.censored for b in (*base, *new))

    spread = aa_spread
    if spread is None:
        spread = _pooled_log_sd(
            np.array([b.point for b in base if not b.censored]),
            np.array([b.point for b in new if not b.censored]),
        )
    if noise_band is not None:
        band_rel = noise_band
    else:
        band_rel = max(MIN_NOISE_BAND, AA_BAND_FACTOR * spread if spread is not None else 0.0)
    band = math.log1p(band_rel)

    verdict: Verdict = "inconclusive"
    method: Method
    p_value: float | None = None
    runs_needed: int | None = None
    ratio: float | None = math.exp(shift)
    note = ""
    if censored:
        method = "censored"
        low, high = _disjoint(base, new, band)
        short = [b for b in (*base, *new) if b.short]
        if all(b.censored for b in (*base, *new)):
            ratio, low, high = None, math.nan, math.nan
            if short:
                stops = sorted({round(math.exp(b.point), 6) for b in short})
                note = (
                    f"held on both sides, but {len(short)} of {len(base) + len(new)} runs "
                    f"stopped short of their cap or did not complete "
                    f"(held only to ×{' / ×'.join(f'{c:g}' for c in stops)}): "
                    "not evidence of no change; run again up to the cap"
                )
            else:
                verdict = "no_change"
                caps = sorted({round(math.exp(b.point), 6) for b in (*base, *new)})
                note = f"held up to the cap on both sides (×{' / ×'.join(f'{c:g}' for c in caps)})"
        else:
            if high < 0:
                verdict = "regression"
            elif low > 0:
                verdict = "improvement"
            elif short:
                note = "some runs stopped short of their cap: run them again up to the cap; "
            else:
                note = "a break at or near the cap: raise the cap rather than add runs; "
            note += "runs that held count at the load they held, so the ratio is a bound"
    elif len(base) >= 2 and len(new) >= 2:
        method = "bootstrap"
        low, high = _bootstrap_log_ratio(y_base, y_new, seed)
        p_value = _welch(y_base, y_new)
        # The decider: Welch's test, or every run's widened interval apart (the one-run rule,
        # which decides large shifts that 2 runs a side leave the test too few degrees for).
        apart_low, apart_high = _disjoint(base, new, band)
        significant = p_value is not None and p_value < ALPHA
        down, up = significant or apart_high < 0, significant or apart_low > 0
        if p_value is None:
            note = "no spread between runs to test: a change also needs the run intervals apart"
        if shift < -band and high < 0 and down:
            verdict = "regression"
        elif shift > band and low > 0 and up:
            verdict = "improvement"
        elif -band <= low and high <= band:
            verdict = "no_change"
    else:
        method = "run_intervals"
        low, high = _disjoint(base, new, band)
        if high < 0:
            verdict = "regression"
        elif low > 0:
            verdict = "improvement"
        note = "one run on a side: run intervals widened by the noise band stand in for the spread"

    if verdict == "inconclusive" and method != "censored":
        forecast_spread = spread
        if forecast_spread is None:
            # Read each widened run interval as a 95% interval of a run-to-run spread.
            halves = [(b.upper - b.lower) / 2 + band for b in (*base, *new)]
            forecast_spread = math.sqrt(sum(h * h for h in halves) / len(halves)) / _Z_INTERVAL
        forecast_band = (
            band
            if noise_band is not None
            else math.log1p(max(MIN_NOISE_BAND, AA_BAND_FACTOR * forecast_spread))
        )
        runs_needed = _runs_needed(shift, forecast_spread, forecast_band, min(len(base), len(new)))

    if any(b.status == "extrapolated" for b in (*base, *new)):
        note = "; ".join(filter(None, [note, "some breaks are extrapolated beyond the last step"]))

    return SegmentComparison(
        profile=profile,
        verdict=verdict,
        method=method,
        ratio=ratio,
        ratio_low=_finite_exp(low),
        ratio_high=_finite_exp(high),
        p_value=p_value,
        noise_band=band_rel,
        aa_spread=spread,
        base_multiplier=math.exp(float(y_base.mean())),
        new_multiplier=math.exp(float(y_new.mean())),
        base_runs=len(base),
        new_runs=len(new),
        runs_needed=runs_needed,
        note=note,
        test=TEST_NAME if p_value is not None else None,
    )

"""The latency break's interval from the measured levels themselves: a bootstrap that redraws
every level's p95 within its repeat noise, decides again which levels pass, and places the
break again between the new last pass and first fail.

Why: each level passes or fails by a noisy p95. A bracket end that passed by a hair may fail on
a rerun, and then the crossing lies outside the bracket; a curve fitted through the levels
knows the noise but not whether its own form is right. Redrawing the levels and redoing the
placement sees both. See docs/design.md#interval-coverage.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from breakpoint.analysis.findings import Level
from breakpoint.analysis.levels import MIN_DF, MIN_SIGMA_LOG, PRIOR_DF, _group, _Obs, _p95, _usable

# The spread of log p95 between 20 s windows is K x sqrt(relaxation time / window) with K
# 0.33-1.1 (median 0.57) on simulated M/M/c and M/D/c queues over c = 2-16 and rho 0.8-0.97
# (`benchmarks/coverage.py --calibrate`). The prior for a run's own repeats, worth PRIOR_DF of
# them, is taken above that median: one pair of repeats that agree by luck must not make every
# level look precise. A choice, not a fit: coverage with it is benchmarks/README.md's.
K_PRIOR = 0.8
# Beyond a relaxation time as long as the window the spread stops growing (it was at most
# about 0.5 in log at rho 0.97): the scale is capped there.
MAX_SCALE = 1.0


@dataclass(frozen=True)
class LevelNoise:
    """Standard deviation of log p95 of one window at each level, and its degrees of freedom."""

    sigma: np.ndarray
    df: float


def relaxation_s(load: float, capacity: float) -> float:
    """Time a queue needs to settle at arrival rate `load` below `capacity` (inf at or above).

    The heavy-traffic relaxation time of a single queue served at rate L, 1 / (L (1 - sqrt(rho))^2)
    (Morse; an M/M/c queue near saturation behaves like one server of rate c mu): about 6 s at
    rho = 0.96 and 400 req/s, 0.2 s at rho = 0.8.
    """
    if capacity <= 0 or load >= capacity:
        return math.inf
    return 1.0 / (capacity * (1 - math.sqrt(load / capacity)) ** 2)


def _scale(load: float, capacity: float, window_s: float) -> float:
    """sqrt(relaxation time / window), capped at MAX_SCALE."""
    return min(math.sqrt(relaxation_s(load, capacity) / window_s), MAX_SCALE)


def relaxed_noise(
    levels: Sequence[Level], obs: Sequence[_Obs], capacity: float, window_s: float
) -> LevelNoise | None:
    """The noise of log p95 at each level: k x sqrt(relaxation time / window), plus what the
    window's own sample count leaves (levels.p95_sampling_sd).

    A window's p95 averages the queue over the window; the queue forgets its past over its
    relaxation time, which grows as 1 / (1 - sqrt(rho))^2 near saturation, so the spread of
    log p95 between windows grows as its square root: at 9.7X on an M/M/8 breaking at 9.7X it
    is about 3 times what it is at 9X. k pools K_PRIOR (worth PRIOR_DF repeats) with every
    repeated level of the segment, each divided by its own scale, so a pair of repeats far
    below the break does not set the noise at the break; a level's own repeats are pooled
    with the result as levels.py does. Repeats also differ by their samples: that part is
    taken out before pooling (far below the capacity, where the queue's scale is tiny, it would
    otherwise swell k for every level) and added back per level. None without a capacity.
    """
    if capacity <= 0:
        return None
    usable = [o for o in obs if _usable(o)]

    def factor(load: float) -> float:
        return _scale(load, capacity, window_s) * _server_share(usable, load)

    def sampling(load: float) -> float:
        here = [o.sampling_sd**2 for o in usable if _same_load(o.load, load)]
        return float(np.mean(here)) if here else 0.0

    own: list[tuple[float, float, int]] = []  # (load, queue deviation, degrees of freedom)
    weighted = PRIOR_DF * K_PRIOR**2
    for group in _group(usable):
        if len(group) < 2 or group[0].load >= capacity:
            continue  # at or past the capacity a window is a transient: no steady spread
        logs = np.log([_p95(o) for o in group])
        dev = float(np.sum((logs - logs.mean()) ** 2))
        dev = max(dev - (len(group) - 1) * sampling(group[0].load), 0.0)
        weighted += dev / factor(group[0].load) ** 2
        own.append((group[0].load, dev, len(group) - 1))
    df = sum(d for _, _, d in own)
    k2 = weighted / (PRIOR_DF + df)

    def variance(load: float) -> float:
        prior = k2 * factor(load) ** 2
        mine = [(dev, d) for at, dev, d in own if _same_load(at, load)]
        if mine:
            prior = (PRIOR_DF * prior + mine[0][0]) / (PRIOR_DF + mine[0][1])
        return prior + sampling(load)

    sigma = np.array([max(math.sqrt(variance(lv.load)), MIN_SIGMA_LOG) for lv in levels])
    return LevelNoise(sigma, float(PRIOR_DF + df))


def _same_load(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(b, 1.0)


# A share below this is not trusted to shrink the noise further (the means behind it are rough).
MIN_SERVER_SHARE = 0.1


def _server_share(obs: Sequence[_Obs], load: float) -> float:
    """The share of the segment's mean request time spent at the server at this load (1 when the
    parts are unknown). The queue's state is what varies from window to window; an emulated
    network's time (a 3G download) is the same in every window, so it dilutes the spread of log
    p95 in proportion: a 3G request that is 80% network moves a fifth as much."""
    shares = []
    for o in obs:
        parts = o.seg.parts_ms
        total = sum(parts.values())
        if _same_load(o.load, load) and total > 0 and "server" in parts:
            shares.append(parts["server"] / total)
    if not shares:
        return 1.0
    return min(1.0, max(MIN_SERVER_SHARE, float(np.mean(shares))))


def _other_fails(levels: Sequence[Level], rng: np.random.Generator, boot: int) -> np.ndarray:
    """(boot, levels): does the level fail by saturation or errors in each replicate?

    Its repeats are drawn again with replacement and it fails when at least half of them do
    (a tie fails, as levels.py decides it): a level whose two repeats split can pass on a rerun.
    """
    out = np.zeros((boot, len(levels)), dtype=bool)
    for i, lv in enumerate(levels):
        if _fixed_fail(lv):
            share = lv.failed / lv.repeats if lv.repeats else 1.0
            out[:, i] = 2 * rng.binomial(lv.repeats, share, size=boot) >= lv.repeats
    return out


def _fixed_fail(lv: Level) -> bool:
    """A level that fails whatever its p95 does: saturated, past the capacity (completed clearly
    less than offered: a rerun could not pass it either), or failed by another criterion."""
    if not lv.passed and lv.overloaded:
        return True
    if lv.p95_median_ms is None or lv.p95_median_ms <= 0 or lv.saturated:
        return not lv.passed
    return not lv.passed and lv.criterion not in (None, "latency")


def level_boot(
    levels: Sequence[Level],
    slo_ms: float,
    noise: LevelNoise,
    rng: np.random.Generator,
    boot: int,
    reach: tuple[float, float],
) -> np.ndarray:
    """Replicates of the latency break: every level's median log p95 drawn again (t-noise of
    its own repeat noise over sqrt(repeats), one chi-square draw of the scale per replicate, as
    the fit's bootstrap), the first level above the SLO found again, and the crossing placed by
    log-linear interpolation from the level below it, as the report places it.

    A replicate where the lowest level fails puts the break at reach[0]; one where no level
    fails, at reach[1]: the widest outcomes, never dropped. Empty when nothing can be drawn.
    """
    if boot <= 0 or len(levels) < 2:
        return np.array([])
    lo_reach, hi_reach = reach
    mult = np.array([lv.multiplier for lv in levels])
    logy = np.array([math.log(lv.p95_median_ms) if lv.p95_median_ms else math.nan for lv in levels])
    se = noise.sigma / np.sqrt([lv.repeats for lv in levels])
    df = float(max(noise.df, MIN_DF))
    scale = np.sqrt(df / rng.chisquare(df, size=boot))
    draws = logy + se * scale[:, None] * rng.standard_normal((boot, len(levels)))
    target = math.log(slo_ms)
    with np.errstate(invalid="ignore"):
        fails = _other_fails(levels, rng, boot) | (draws > target)
    fixed = np.array([_fixed_fail(lv) for lv in levels])
    any_fail = fails.any(axis=1)
    first = np.argmax(fails, axis=1)
    rows = np.arange(boot)
    prev = np.maximum(first - 1, 0)
    y0, y1 = draws[rows, prev], draws[rows, first]
    m0, m1 = mult[prev], mult[first]
    rise = y1 - y0
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(rise > 0, (target - y0) / rise, 1.0)
    # A level failing by saturation or errors (or without a p95) says nothing about where
    # latency crossed inside its bracket: anywhere in it, uniformly.
    anywhere = fixed[first] | ~np.isfinite(frac)
    frac = np.clip(np.where(anywhere, rng.uniform(size=boot), frac), 0.0, 1.0)
    out = m0 + frac * (m1 - m0)
    out = np.where(first == 0, np.minimum(lo_reach, mult[0]), out)
    return np.where(any_fail, out, hi_reach)

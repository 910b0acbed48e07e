"""Which release moved a segment's breaking point: change points in a series of releases.

Pure numpy/scipy. Each release is its runs' log breaks with their 95% half-widths. The method
is binary segmentation with a weighted two-sample test (docs/design.md#history-change-points):

* a release's mean log break has variance sigma^2 / n, where sigma^2 is the larger of its runs'
  own interval variance (half-width / 1.96, squared) and the spread between runs of the same
  release, pooled over every release with 2+ runs; so a release of noisy runs weighs less; and
  never less than the scatter of successive releases' means (median absolute difference, robust
  to the step itself), for runs whose intervals understate the noise between runs;
* in a stretch of releases, every split is tested with z = (right mean - left mean) / its
  standard error (inverse-variance weighted means); the largest |z| is a change point when it
  passes the Bonferroni bound for the number of splits tried (alpha 0.05; t quantiles when
  the spread between runs sets the variance) and the shift exceeds the 3% noise floor;
* both sides are searched again, until no stretch holds another.

Chosen over E-divisive means, which needs many more points than the 5 to 20 releases a team
has and cannot use each run's interval; a mean-shift model fits the question ("which release
moved the break"). Runs that held to the cap (a lower bound only) are left out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from scipy import stats

ALPHA = 0.05
MIN_SHIFT = math.log1p(0.03)  # the noise floor shared with the comparison's band
_Z95 = float(stats.norm.ppf(0.975))
_MAD_SCALE = float(stats.norm.ppf(0.75))  # median |N(0, 1)|


@dataclass(frozen=True)
class ReleasePoint:
    """One release: its runs' log breaks and their 95% half-widths (log space)."""

    label: str
    logs: tuple[float, ...]
    halves: tuple[float, ...]


@dataclass(frozen=True)
class ChangePoint:
    """The break moved at release `index` (its first release after the change)."""

    index: int
    label: str
    before: float  # multiplier: weighted geometric mean of the stretch before
    after: float  # of the stretch from this release on
    z: float
    threshold: float  # the |z| it had to pass

    @property
    def ratio(self) -> float:
        return self.after / self.before


def _variances(releases: Sequence[ReleasePoint]) -> tuple[list[float], float | None]:
    """Each release's variance of its mean log break, and the degrees of freedom of the spread
    between runs when that spread set any variance (None: the runs' own intervals did)."""
    squares = dof = 0.0
    for r in releases:
        if len(r.logs) >= 2:
            mean = sum(r.logs) / len(r.logs)
            squares += sum((y - mean) ** 2 for y in r.logs)
            dof += len(r.logs) - 1
    between = squares / dof if dof else 0.0
    used_between = False
    variances = []
    for r in releases:
        own = sum((h / _Z95) ** 2 for h in r.halves) / len(r.halves)
        used_between |= between > own
        variances.append(max(own, between, 1e-12) / len(r.logs))
    return variances, (dof if used_between else None)


def _split(
    means: Sequence[float], variances: Sequence[float], start: int, k: int, end: int
) -> tuple[float, float, float]:
    """z of the shift at k within [start, end), and the weighted means left and right."""
    sides = []
    for lo, hi in ((start, k), (k, end)):
        total = sum(1 / variances[i] for i in range(lo, hi))
        sides.append((sum(means[i] / variances[i] for i in range(lo, hi)) / total, total))
    (left, w_left), (right, w_right) = sides
    return (right - left) / math.sqrt(1 / w_left + 1 / w_right), left, right


def _best_split(
    means: Sequence[float], variances: Sequence[float], start: int, end: int
) -> tuple[int, float, float, float]:
    """The split k (start < k < end) with the largest |z|; (k, z, left mean, right mean)."""
    best = (start, 0.0, 0.0, 0.0)
    for k in range(start + 1, end):
        z, left, right = _split(means, variances, start, k, end)
        if abs(z) > abs(best[1]):
            best = (k, z, left, right)
    return best


def change_points(releases: Sequence[ReleasePoint]) -> list[ChangePoint]:
    """The releases at which the break changed, in order (empty when none is shown)."""
    kept = [i for i, r in enumerate(releases) if r.logs and len(r.logs) == len(r.halves)]
    usable = [releases[i] for i in kept]
    if len(usable) < 2:
        return []
    means = [sum(r.logs) / len(r.logs) for r in usable]
    variances, dof_between = _variances(usable)
    dof: float | None = dof_between
    # The releases' own scatter, from successive differences (one step changes one of them, so
    # their median ignores it): a floor for when the runs' intervals understate the noise
    # between runs and no release has repeats to show it.
    steps = sorted(abs(b - a) for a, b in pairwise(means))
    if len(steps) >= 3:
        scatter = (steps[len(steps) // 2] / (_MAD_SCALE * math.sqrt(2))) ** 2
        if any(scatter > v for v in variances):
            # An estimate from a few differences: t quantiles with their degrees of freedom.
            dof = min(dof, len(steps) - 1) if dof is not None else len(steps) - 1
        variances = [max(v, scatter) for v in variances]
    found: list[ChangePoint] = []
    stretches = [(0, len(usable))]
    while stretches:
        start, end = stretches.pop()
        if end - start < 2:
            continue
        k, z, left, right = _best_split(means, variances, start, end)
        tail = ALPHA / (2 * (end - start - 1))
        threshold = float(stats.norm.isf(tail) if dof is None else stats.t.isf(tail, dof))
        if abs(z) > threshold and abs(right - left) > MIN_SHIFT:
            found.append(
                ChangePoint(k, usable[k].label, math.exp(left), math.exp(right), z, threshold)
            )
            stretches += [(start, k), (k, end)]
    found.sort(key=lambda c: c.index)
    # Before/after are re-read over the final stretches, so neighbours' shifts do not blur them;
    # indices go back to the releases as given (some may have had no usable run).
    edges = [0, *(c.index for c in found), len(usable)]
    final = []
    for i, change in enumerate(found):
        _, left, right = _split(means, variances, edges[i], change.index, edges[i + 2])
        final.append(
            ChangePoint(
                kept[change.index],
                change.label,
                math.exp(left),
                math.exp(right),
                change.z,
                change.threshold,
            )
        )
    return final

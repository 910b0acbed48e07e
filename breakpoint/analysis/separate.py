"""After the brackets: tell the first segment to break apart from the next one (pure).

The report's headline names the segment that breaks first and says whether that is certain:
their intervals are apart only when a level was measured where the first fails and the next
holds, each clearly enough that the noise would not turn it. Refinement (refine.py) narrows
each segment's own bracket; when the first two share one, nothing measured lies between them.
Up to `plan.separate_levels` more steps go there: a level between their estimated breaks,
inside the stretch where both held below and both failed above, then a repeat of the level
that separates them until both its verdicts are decisive. docs/design.md#separating-the-first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from breakpoint.analysis.breaks import estimate_breaks
from breakpoint.analysis.findings import Level
from breakpoint.analysis.levels import bracket, measured_levels
from breakpoint.analysis.refine import RESOLUTION, _margin
from breakpoint.plan.profiles import Slo
from breakpoint.plan.steps import Plan, same_level
from breakpoint.results import StepResult

PHASE = "separate"
# A separating level is run this many times at most unless both its verdicts are decisive.
SEPARATE_RUNS = 2
# A shared stretch narrower than this (relative) has no room for a level clear of both ends.
MIN_GAP = 2 * RESOLUTION


def first_two(
    done: Sequence[StepResult], slos: Mapping[str, Slo], plan: Plan
) -> list[tuple[float, str]]:
    """The two lowest bracketed point estimates as (multiplier, segment), first one first
    (fewer than two: nothing to separate)."""
    breaks = estimate_breaks(done, slos, plan)
    broke = sorted(
        (b.multiplier, name)
        for name, b in breaks.items()
        if b.label == "bracketed" and b.multiplier is not None
    )
    return broke[:2]


def next_separating(
    done: Sequence[StepResult], slos: Mapping[str, Slo], plan: Plan, bound_at: float = math.inf
) -> float | None:
    """The next level to hold to tell the first segment from the next; None when done."""
    spent = sum(1 for s in done if s.phase == PHASE)
    if spent >= plan.separate_levels:
        return None
    pair = first_two(done, slos, plan)
    if len(pair) < 2:
        return None
    (first_at, first), (second_at, second) = pair
    a = _by_level(measured_levels(done, first, slos[first]))
    b = _by_level(measured_levels(done, second, slos[second]))
    apart = [
        (min(_margin(a[m], slos[first]), _margin(b[m], slos[second])), m)
        for m in a
        if m in b and not a[m].passed and b[m].passed and m < bound_at
    ]
    if apart:
        # A level already tells them apart: repeat it until both verdicts are decisive.
        margin, level = max(apart)
        runs = sum(1 for s in done if same_level(s.multiplier, level))
        return level if margin < 1.0 and runs < SEPARATE_RUNS else None
    # Nothing between them: where the first failed the next failed too. Measure inside the
    # stretch where both held below and both failed above, between their estimates.
    low, high = bracket(list(a.values()))
    if low is None or high is None:
        return None
    high = min(high, bound_at)
    if high <= low * (1 + MIN_GAP):
        return None
    guess = math.sqrt(first_at * second_at)
    edge = 1 + RESOLUTION / 2
    level = round(min(max(guess, low * edge), high / edge), 4)
    if any(same_level(level, m) for m in (low, high)):
        return None
    return level


def _by_level(levels: Sequence[Level]) -> dict[float, Level]:
    return {lv.multiplier: lv for lv in levels}

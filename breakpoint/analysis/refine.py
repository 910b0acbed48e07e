"""Refinement and repeats inside the walk's brackets: where the next interior level goes, and
which bracket ends are repeated, so that every break is located to about 4% with an honest
variance next to it.

Used by search.py once the walk has bracketed a segment; see docs/design.md#refinement,
#repeats and #search-constants.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from breakpoint.analysis.breaks import estimate_breaks
from breakpoint.analysis.findings import Level
from breakpoint.analysis.levels import bracket, measured_levels
from breakpoint.plan.profiles import Slo
from breakpoint.plan.steps import Plan, PlannedStep, same_level
from breakpoint.results import StepResult

# Target relative width of a refined bracket: 5% is asked (docs/design.md#performance-targets);
# aim inside it.
RESOLUTION = 0.04
SLACK = 0.001  # levels are rounded, and [8, 9] needs cells of 4.004%
# ... and never settle for wider than the asked 5% when refinement can avoid it.
GOAL = 0.05
# Refinement levels go this far (relative) below or above the estimated break, so that their
# verdicts are clear and two of them straddle the break.
HEDGE = RESOLUTION / 2
WALK_PHASES = ("ramp", "beyond")  # the walk's steps; refinement and repeats are the others
# Verdicts no repeat would overturn: p95 this factor from the SLO, an error rate this factor
# from the error SLO, or clearly saturated (completion below DECISIVE_COMPLETION).
DECISIVE = 1.5
ERROR_DECISIVE = 2.0
DECISIVE_COMPLETION = 0.9
# A walk end whose verdict is this close to flipping (a share of the decisive distance, in log
# terms: p95 within 1.5 ** 0.25 = 1.11 of the SLO) is repeated before refining inside it. A
# repeat costs a full step; refinement in a wrong bracket about four, so it pays only when a
# flip is likelier than about 1 in 4.
MARGINAL = 0.25
# Error verdicts rest on counts of rare events (Poisson, and bursty), and a scout counts few: a
# walk end within 2 ** 0.75 = 1.68 of the error SLO is confirmed before refining.
MARGINAL_ERRORS = 0.75


@dataclass(frozen=True)
class _Bracket:
    low: float
    high: float
    segments: tuple[str, ...]


def _confirmed_bound(done: Sequence[StepResult]) -> float:
    """The lowest level at which the generator was the bottleneck twice (inf: none)."""
    counts: dict[float, int] = {}
    for s in done:
        if s.generator.bound:
            key = next((k for k in counts if same_level(k, s.multiplier)), s.multiplier)
            counts[key] = counts.get(key, 0) + 1
    return min((m for m, n in counts.items() if n >= 2), default=math.inf)


class Refinement:
    """The search after the walk: `next_step(done)` refines or repeats inside its brackets."""

    def __init__(self, plan: Plan, slos: Mapping[str, Slo], walk: Sequence[PlannedStep]) -> None:
        self.plan = plan
        self.slos = slos
        self.ramp = walk  # the walk's levels: brackets lie between them

    def _is_walk_level(self, multiplier: float) -> bool:
        return any(same_level(p.multiplier, multiplier) for p in self.ramp)

    def _brackets(self, done: Sequence[StepResult]) -> list[_Bracket]:
        """Distinct brackets between walk levels (their repeats included, interior levels not)."""
        walk = [s for s in done if self._is_walk_level(s.multiplier)]
        found: dict[tuple[float, float], list[str]] = {}
        for name, slo in self.slos.items():
            low, high = bracket(measured_levels(walk, name, slo))
            if low is None or high is None:
                continue  # never failed, or failed at the lowest level: nothing to refine
            key = next(
                (k for k in found if same_level(k[0], low) and same_level(k[1], high)), (low, high)
            )
            found.setdefault(key, []).append(name)
        return [_Bracket(lo, hi, tuple(names)) for (lo, hi), names in sorted(found.items())]

    def next_step(self, done: Sequence[StepResult]) -> PlannedStep | None:
        """The next refinement or repeat step; None when every bracket is done."""
        bound_at = _confirmed_bound(done)
        for br in self._brackets(done):
            step = self._next_in_bracket(done, br, bound_at)
            if step is not None:
                return step
        return None

    def _next_in_bracket(
        self, done: Sequence[StepResult], br: _Bracket, bound_at: float
    ) -> PlannedStep | None:
        interior = _distinct(
            s.multiplier
            for s in done
            if s.phase not in WALK_PHASES
            and br.low < s.multiplier < br.high
            and not same_level(s.multiplier, br.low)
            and not same_level(s.multiplier, br.high)
        )
        # A walk level that passed only as a scout says little next to a break: a short step
        # near saturation ends before the queue has filled (placement.relaxation_s: about 6 s at
        # 96% of capacity), so it passes levels that fail in steady state. Hold the bracket's
        # passing end in full before refining above it.
        if br.low < bound_at and not self._held_in_full(done, br.low):
            return self._full(br.low, "repeat")
        if not interior:
            # Confirm a bracket end whose verdict is marginal before refining inside it: if the
            # verdict turns, the bracket moves and interior levels here would be wasted.
            for end in (br.low, br.high):
                if (
                    end < bound_at
                    and not self._settled(done, br, end)
                    and self._margin(done, br, end, MARGINAL, MARGINAL_ERRORS) < 1.0
                ):
                    return self._full(end, "repeat")
        if len(interior) < self.plan.refine_levels and not self._closed(done, br, bound_at):
            level = self._place(done, br, bound_at, self.plan.refine_levels - len(interior))
            if level is not None and not any(same_level(level, m) for m in interior):
                return self._full(level, "refine")
        return self._next_repeat(done, br, interior, bound_at)

    def _held_in_full(self, done: Sequence[StepResult], level: float) -> bool:
        """Has this level run at least once with the plan's full warm-up (not as a scout)?"""
        return any(
            same_level(s.multiplier, level)
            and not s.generator.bound
            and s.warmup_s >= self.plan.warmup_s * (1 - 1e-6)
            for s in done
        )

    def _next_repeat(
        self, done: Sequence[StepResult], br: _Bracket, interior: list[float], bound_at: float
    ) -> PlannedStep | None:
        """Repeat what decides each segment's final bracket: its ends, unless decisive."""
        if self.plan.refine_repeats < 2:
            return None
        ends: list[float] = []
        for name in br.segments:
            low, high = bracket(measured_levels(done, name, self.slos[name]))
            ends += [
                m
                for m in (low, high)
                if m is not None
                and (br.low < m < br.high or same_level(m, br.low) or same_level(m, br.high))
            ]
        ends = _distinct(ends)
        # Interior ends first, least decisive first: if one turns, the bracket moves and a
        # walk end may no longer bound it.
        order = sorted(
            ends,
            key=lambda m: (self._is_walk_level(m), self._margin(done, br, m), m),
        )
        for level in order:
            if (
                level < bound_at
                and not self._settled(done, br, level)
                and self._margin(done, br, level) < 1.0
            ):
                return self._full(level, "repeat")
        # Every end decisive: still repeat the least decisive level once, so that the analysis
        # has an honest variance near this break (docs/design.md#repeats), unless one was repeated
        # already.
        levels = [m for m in _distinct([*interior, *ends]) if m < bound_at]
        if any(self._runs(done, m) >= 2 for m in levels):
            return None
        margins = [(self._margin(done, br, m), m) for m in levels]
        finite = [(g, m) for g, m in margins if math.isfinite(g)]
        if not finite:
            return None
        return self._full(min(finite)[1], "repeat")

    @staticmethod
    def _runs(done: Sequence[StepResult], level: float) -> int:
        return sum(1 for s in done if same_level(s.multiplier, level))

    def _settled(self, done: Sequence[StepResult], br: _Bracket, level: float) -> bool:
        """Has the level run refine_repeats times, or do its runs agree enough that the rest
        could not overturn the majority for any segment of the bracket?"""
        repeats = self.plan.refine_repeats
        if self._runs(done, level) >= repeats:
            return True
        for name in br.segments:
            for lv in measured_levels(done, name, self.slos[name]):
                if same_level(lv.multiplier, level):
                    agree = max(lv.failed, lv.repeats - lv.failed)
                    if 2 * agree <= repeats:
                        return False
        return True

    def _margin(
        self,
        done: Sequence[StepResult],
        br: _Bracket,
        level: float,
        latency: float = 1.0,
        errors: float = 1.0,
    ) -> float:
        """The least decisive verdict at this level over the bracket's segments (>= 1: none
        could flip; -inf when no segment has a trusted verdict there)."""
        margins = [
            _margin(lv, self.slos[name], latency, errors)
            for name in br.segments
            for lv in measured_levels(done, name, self.slos[name])
            if same_level(lv.multiplier, level)
        ]
        return min(margins, default=-math.inf)

    def _sub_brackets(
        self, done: Sequence[StepResult], br: _Bracket, bound_at: float
    ) -> list[tuple[str, float, float]]:
        """Each segment's current bracket, kept inside the walk's bracket and below a bound."""
        out = []
        for name in br.segments:
            low, high = bracket(measured_levels(done, name, self.slos[name]))
            low = br.low if low is None or low < br.low else low
            high = br.high if high is None or high > br.high else high
            high = min(high, bound_at)
            if high > low and not same_level(high, low):
                out.append((name, low, high))
        return out

    def _width(self, br: _Bracket, bound_at: float) -> float:
        """The cell width refinement aims at in this bracket: RESOLUTION, or the narrowest that
        plan.refine_levels levels can guarantee when that is wider but within GOAL."""
        high = min(br.high, bound_at)
        need = (high / br.low) ** (1 / (self.plan.refine_levels + 1)) - 1
        return need if RESOLUTION < need <= GOAL else RESOLUTION

    def _closed(self, done: Sequence[StepResult], br: _Bracket, bound_at: float) -> bool:
        """Is every segment of the bracket located to the bracket's width already?"""
        width = self._width(br, bound_at)
        return all(
            high <= low * (1 + width + SLACK)
            for _, low, high in self._sub_brackets(done, br, bound_at)
        )

    def _place(
        self, done: Sequence[StepResult], br: _Bracket, bound_at: float, left: int
    ) -> float | None:
        """The next interior level, `left` levels (this one included) still to place.

        In the widest sub-bracket [low, high] the level goes about HEDGE from the estimated
        break (breaks.estimate_breaks), where its verdict should be clear; after a refinement
        level, on the side of the break that level did not cover. It stays inside the zones
        (_closing_zones) from which the levels left can still cut [low, high] into cells of
        at most the bracket's width whatever the verdicts, even one turned by a repeat. A
        bracket too wide for any such guarantee gets the level at least RESOLUTION inside.
        """
        subs = self._sub_brackets(done, br, bound_at)
        if not subs:
            return None
        name, low, high = max(subs, key=lambda t: t[2] / t[1])
        zones = _closing_zones(low, high, left)
        if not zones:  # too wide to guarantee: at least RESOLUTION from both ends
            lo_ok, hi_ok = low * (1 + RESOLUTION), high / (1 + RESOLUTION)
            if lo_ok > hi_ok:  # already narrow: bisect for more data near the break
                lo_ok = hi_ok = math.sqrt(low * high)
            zones = [(lo_ok, hi_ok)]
        estimate = estimate_breaks(done, {name: self.slos[name]}, self.plan)[name].multiplier
        guess = estimate if estimate is not None else math.sqrt(low * high)
        guess = min(max(guess, low), high)
        # The side not yet covered: after an interior level passed (it is now the low end of
        # the sub-bracket) the next one should land above the break, and vice versa.
        runs = [s for s in done if s.phase == "refine" and low <= s.multiplier <= high]
        side = 0
        if runs:
            last = max(runs, key=lambda s: s.index).multiplier
            side = 1 if same_level(last, low) else -1 if same_level(last, high) else 0
        # Candidates: in each zone, the point nearest HEDGE below the estimate and the point
        # nearest HEDGE above it.
        candidates: list[tuple[float, int]] = []
        for a, b in zones:
            if a <= min(b, guess):
                candidates.append((min(max(guess * (1 - HEDGE), a), b, guess), -1))
            if max(a, guess) <= b:
                candidates.append((min(max(guess * (1 + HEDGE), a, guess), b), 1))
        preferred = [c for c in candidates if side == 0 or c[1] == side] or candidates
        if not preferred:
            return None

        def score(c: tuple[float, int]) -> tuple[float, int]:
            # Farther than HEDGE from the estimate costs precision, nearer costs a clear
            # verdict (the estimate is itself uncertain); a tie goes below the break.
            d = abs(math.log(c[0] / guess))
            return (math.inf if d == 0 else HEDGE / d + d / HEDGE, c[1])

        level = round(min(preferred, key=score)[0], 4)
        if not (br.low < level < br.high) or same_level(level, low) or same_level(level, high):
            return None
        return level

    def _full(self, multiplier: float, phase: str) -> PlannedStep:
        return PlannedStep(multiplier, phase, self.plan.warmup_s, self.plan.hold_s)


def _log_ratio(value: float, reference: float) -> float:
    if reference <= 0:
        return math.inf if value > 0 else -math.inf
    return math.log(value / reference) if value > 0 else -math.inf


def _margin(level: Level, slo: Slo, latency: float = 1.0, errors: float = 1.0) -> float:
    """How far the level's verdict is from flipping, as a share of the decisive distance in log
    terms (>= 1: p95 a factor DECISIVE from the SLO, errors a factor ERROR_DECISIVE from the
    error SLO, on the side of the verdict; inf: clearly saturated). `latency` and `errors`
    scale the decisive distances (MARGINAL and MARGINAL_ERRORS for the marginal ones)."""
    if (
        not level.passed
        and level.saturated
        and (level.completion_ratio or 1.0) < DECISIVE_COMPLETION
    ):
        return math.inf
    by_errors = _log_ratio(level.error_rate, slo.error_rate) / (errors * math.log(ERROR_DECISIVE))
    p95 = level.p95_median_ms
    by_latency = (
        None if p95 is None else _log_ratio(p95, slo.p95_ms) / (latency * math.log(DECISIVE))
    )
    if level.passed:
        return min(-by_errors, math.inf if by_latency is None else -by_latency)
    return max(by_errors, -math.inf if by_latency is None else by_latency)


def _decisive(level: Level, slo: Slo) -> bool:
    """A verdict no repeat would overturn (see _margin)."""
    return _margin(level, slo) >= 1.0


def _closing_zones(low: float, high: float, left: int) -> list[tuple[float, float]]:
    """Where a level may go in [low, high] so that `left` levels (it included) can cut the
    bracket into cells of at most RESOLUTION whatever the verdicts (or of the narrowest width
    that allows, up to GOAL): the level splits [low, high] into `below` and `above` cells, and
    the other left - 1 levels cut both sides, wherever the break turns out to be. With two
    levels: one side is a cell already, the other gets the second level. Empty when even GOAL
    is out of reach."""
    width = max(RESOLUTION, (high / low) ** (1 / (left + 1)) - 1)
    if width > GOAL * (1 + 1e-9):
        return []
    grow = math.log1p(width) * (1 + 1e-9)
    edge = 1 + RESOLUTION / 4  # never closer than this to a measured end
    zones = []
    for below in range(1, left + 1):  # cells left below the level
        above = left + 1 - below
        a = max(high / math.exp(above * grow), low * edge)
        b = min(low * math.exp(below * grow), high / edge)
        if a <= b:
            zones.append((a, b))
    return zones


def _distinct(values: object) -> list[float]:
    out: list[float] = []
    for v in sorted(values):  # type: ignore[call-overload]
        if not any(same_level(v, o) for o in out):
            out.append(float(v))
    return out

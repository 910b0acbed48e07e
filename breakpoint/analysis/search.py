"""The adaptive search: which load level to hold next, given what has been measured (pure).

Policy (deterministic given the results, so a run can be replayed and the plan printed):

1. **Walk** ramp(plan): 1X, 2X, ... then x1.5 beyond, up to max_multiplier, until every segment has
   a trusted failing step, the cap is reached, or a step is generator-bound (going higher would
   measure the generator, not the target).
   Far from any break a ramp step only has to show that it passes, so it is a **scout**: warm-up
   and hold are cut to SCOUT_FRACTION of the plan's. A ramp step is held in full when it is the
   first one, when the next p95 predicted from the growth of its excess over the lowest level's
   comes near the SLO (above NEAR_SLO of it; a constant network floor neither dilutes the growth
   nor fakes one, and an excess within FLAT_NOISE of the floor counts as flat), when errors exceed
   half the error SLO, after any failure, or when the fitted curve puts a break within reach (the
   next level at or above NEAR_ESTIMATE x the estimated break; a fit that puts the break at or
   below a level that held is ignored).
2. **Refine** each distinct bracket (last trusted pass, first trusted fail) of the walk, merging
   brackets shared by several segments (the server is shared, so they often coincide), with up
   to plan.refine_levels interior levels placed one after the other in the widest segment's
   current sub-bracket, about HEDGE from the estimated break (model.estimate_breaks: the fit when
   it agrees with the measurements, else interpolation) where the verdict should be clear: the
   first on either side (below on a tie), the next on the side the last level did not cover, so
   that two levels straddle the break. Each level stays where the levels left can still cut the
   bracket into cells of at most RESOLUTION whatever the verdicts, even one turned by a repeat
   (_closing_zones; [7X, 8X] needs 4.55%, still within GOAL); refinement stops once every
   segment of the bracket is located that finely. Before anything else, a passing end seen only
   as a scout is held in full: a short step next to saturation ends before the queue has filled
   (model.relaxation_s) and passes levels that fail in steady state (a real M/M/8 run passed
   10X, 0.5% over capacity, in a 2 s + 5 s scout).
3. **Repeat** the levels that end a segment's final bracket (interior first, least decisive first,
   then walk levels) to plan.refine_repeats runs, unless their verdict is decisive (p95 a factor
   DECISIVE from the SLO, errors a factor ERROR_DECISIVE from the error SLO, or clearly saturated)
   or the runs so far agree by a majority the remaining ones cannot overturn: near the break only
   repeats give honest variance; a step at 20 times the SLO would fail again. If every end is
   decisive, the least decisive level near the break is still repeated once, so the analysis has a
   variance from there. A walk end whose verdict is marginal (within MARGINAL of the decisive
   distance for p95, MARGINAL_ERRORS for errors) is repeated before any interior level: if
   noise had flipped it, the bracket moves (and the walk may resume) instead of refinement
   being spent in the wrong place; a less marginal end is repeated only if it still ends a
   final bracket after refinement. A segment failing already at the lowest level has that
   level repeated before anything else.

Measured with simulate() against known systems, 5% lognormal p95 noise per step, binomial error
counts over a 20 s hold, 20 seeds, plan defaults (5 s + 20 s steps, scouts 2 s + 8 s), load-time
over a linear ramp of full steps at 5% of the true break from 1X up to it, as
benchmarks/accuracy.py counts it; mean (max), the policy before this one first:

    M/M/8, 20 ms, break 9.68X              0.50 (0.55) -> 0.43 (0.44)
    the same + 100 ms network, 9.43X       0.54 (0.57) -> 0.50 (0.54)
    M/M/8/16, 1% errors, 7.57X             0.48 (0.50) -> 0.48 (0.55)
    M/M/8/8 (Erlang B), 1% errors, 3.91X   0.46 (0.51) -> 0.47 (0.58)

(holding a scouted passing end in full costs 0.03-0.05 of these; without it 0.39, 0.47, 0.46,
0.43).

Every final bracket is at most 5% wide and within 1.5% of the truth (3% for Erlang B, whose
blocking grows only ~5x as fast as the load: error noise flips verdicts that close to it); before,
a flipped level left brackets up to 9% wide in 6 of 20 M/M/8/16 runs and 1 of 20 with network
time. Brackets are no longer narrower than needed: the M/M/8 ones are 4% wide where they were 2%
(the simulated analysis estimate moves from 0.1% to 0.3% off on average). Four segments with
distinct breaks (0/50/100/150 ms added, 9.68X to 9.02X, against linear_ramp_load_time_s) take
0.62 on average (0.69 before), up to 0.72: the 150 ms segment breaks right at the walk level 9X,
whose verdict then needs a repeat and, when it fails, a bracket of its own below it.

Refinement steps are held in full and use phases "refine" (first run) and "repeat".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from breakpoint.analysis.breaks import estimate_breaks
from breakpoint.analysis.findings import Level
from breakpoint.analysis.levels import bracket, measured_levels
from breakpoint.analysis.sizing import Pace, initial_paces, learn_paces, size_step
from breakpoint.plan.profiles import Profile, Slo, normalised_shares
from breakpoint.plan.steps import Plan, PlannedStep, ramp, same_level, worst_case_steps
from breakpoint.results import StepResult

# Target relative width of a refined bracket: DESIGN §10 asks for 5%; aim inside it.
RESOLUTION = 0.04
SLACK = 0.001  # levels are rounded, and [8, 9] needs cells of 4.004%
GOAL = 0.05  # ... and never settle for wider than DESIGN's 5% when refinement can avoid it
# Refinement levels go this far (relative) below or above the estimated break, so that their
# verdicts are clear and two of them straddle the break.
HEDGE = RESOLUTION / 2
SCOUT_FRACTION = 0.4  # scouting steps: this share of the plan's warm-up and hold
SCOUT_MIN_HOLD_S = 5.0  # ... but never a hold shorter than this (or the plan's own hold)
NEAR_SLO = 0.9  # predicted next p95 above this share of the SLO: hold in full
FLAT_NOISE = 0.1  # p95 within this share above the lowest level's: flat (noise, not growth)
NEAR_ESTIMATE = 0.7  # next level at or above this share of the estimated break: hold in full
WALK_PHASES = ("ramp", "beyond")
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


class Search:
    """The controller's policy: `next_step(done)` returns the next level to hold, or None."""

    def __init__(
        self, plan: Plan, slos: Mapping[str, Slo], paces: Sequence[Pace] | None = None
    ) -> None:
        self.plan = plan
        self.slos = dict(slos)
        self.ramp = ramp(plan)
        # With paces, every step is lengthened for the slowest segment (sizing.py).
        self.paces = list(paces) if paces else None

    @classmethod
    def for_profiles(cls, plan: Plan, profiles: Sequence[Profile], *, emulate: bool) -> Search:
        """The search of a real run: SLOs from the profiles, steps sized for their segments."""
        shares = normalised_shares(profiles)
        paces = initial_paces(profiles, shares, model=plan.model, emulate=emulate)
        return cls(plan, {p.name: p.slo for p in profiles}, paces)

    # --- the walk ---------------------------------------------------------------------------------

    def _walk_done(self, done: Sequence[StepResult]) -> bool:
        if _confirmed_bound(done) < math.inf:
            return True
        levels = {n: measured_levels(done, n, slo) for n, slo in self.slos.items()}
        every_failed = all(any(not lv.passed for lv in lvs) for lvs in levels.values())
        ran = [s.multiplier for s in done]
        remaining = [p for p in self.ramp if not any(same_level(p.multiplier, m) for m in ran)]
        return every_failed or not remaining

    def _next_walk(self, done: Sequence[StepResult]) -> PlannedStep | None:
        # A level whose only run was generator-bound is run again (a transient such as a
        # neighbour's CPU burst should not end the search); bound twice, the walk stops.
        ran = [s.multiplier for s in done if not s.generator.bound]
        for planned in self.ramp:
            if not any(same_level(planned.multiplier, m) for m in ran):
                return planned if self._hold_in_full(done, planned) else self._scout(planned)
        return None

    def _scout(self, step: PlannedStep) -> PlannedStep:
        return scout_of(step)

    def _hold_in_full(self, done: Sequence[StepResult], step: PlannedStep) -> bool:
        if not done:
            return True  # 1X is the reference every growth is measured from
        # The latest run of the two highest walk levels (repeats of a level collapse into one).
        walk = sorted(
            (s for s in done if s.phase in WALK_PHASES), key=lambda s: (s.multiplier, s.index)
        )
        last = walk[-1] if walk else max(done, key=lambda s: s.index)
        lower = [
            s
            for s in walk
            if s.multiplier < last.multiplier and not same_level(s.multiplier, last.multiplier)
        ]
        prev = lower[-1] if lower else None
        for name, slo in self.slos.items():
            seg = last.segments.get(name)
            if seg is None:
                continue
            if seg.error_rate > 0.5 * slo.error_rate:
                return True
            if seg.p95_ms is None:
                continue
            # Predict the next p95 by continuing the growth (geometric) of its excess over the
            # lowest level's: a constant network floor neither dilutes the growth nor, when
            # flat, makes one; an excess within FLAT_NOISE of the floor is flat.
            predicted = seg.p95_ms
            before = prev.segments.get(name) if prev is not None else None
            first = walk[0].segments.get(name) if walk else None
            if (
                prev is not None
                and before is not None
                and before.p95_ms is not None
                and first is not None
                and first.p95_ms
            ):
                floor = first.p95_ms
                excess, noise = seg.p95_ms - floor, FLAT_NOISE * floor
                if excess > noise:
                    growth = max(excess / max(before.p95_ms - floor, noise), 1.0)
                    span = (step.multiplier - last.multiplier) / (last.multiplier - prev.multiplier)
                    predicted = floor + excess * growth ** max(span, 1.0)
            if predicted > NEAR_SLO * slo.p95_ms:
                return True
        levels = {n: measured_levels(done, n, slo) for n, slo in self.slos.items()}
        if any(not lv.passed for lvs in levels.values() for lv in lvs):
            return True
        # A fitted break at or below a level that held is the fit contradicting the
        # measurements (estimate_breaks clips it to that level): it says nothing about the next.
        estimates = [
            b.multiplier
            for name, b in estimate_breaks(done, self.slos, self.plan).items()
            if b.multiplier is not None
            and (not levels[name] or b.multiplier > levels[name][-1].multiplier * (1 + 1e-6))
        ]
        return bool(estimates) and step.multiplier >= NEAR_ESTIMATE * min(estimates)

    # --- refinement -------------------------------------------------------------------------------

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

    def _next_refine(self, done: Sequence[StepResult]) -> PlannedStep | None:
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
        # near saturation ends before the queue has filled (model.relaxation_s: about 6 s at
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
        # has an honest variance near this break (DESIGN §6), unless one was repeated already.
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
        break (model.estimate_breaks), where its verdict should be clear; after a refinement
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

    # --- entry point ------------------------------------------------------------------------------

    def next_step(self, done: Sequence[StepResult]) -> PlannedStep | None:
        """The next level to hold given every step measured so far; None when the search is over."""
        step = self._choose(done)
        if step is None or self.paces is None:
            return step
        paces = learn_paces(self.paces, done)
        return size_step(step, self.plan.load_at(step.multiplier), paces, self.plan).step

    def _choose(self, done: Sequence[StepResult]) -> PlannedStep | None:
        confirm = self._confirm_lowest(done)
        if confirm is not None:
            return confirm
        if not self._walk_done(done):
            step = self._next_walk(done)
            if step is not None:
                return step
        return self._next_refine(done)

    def _confirm_lowest(self, done: Sequence[StepResult]) -> PlannedStep | None:
        """A segment failing at the lowest level has no bracket: repeat that level to be sure."""
        if not done or any(s.generator.bound for s in done):
            return None
        lowest = self.ramp[0].multiplier
        runs = sum(1 for s in done if same_level(s.multiplier, lowest))
        if runs == 0 or runs >= self.plan.refine_repeats:
            return None
        for name, slo in self.slos.items():
            levels = measured_levels(done, name, slo)
            if (
                levels
                and same_level(levels[0].multiplier, lowest)
                and not levels[0].passed
                and not _decisive(levels[0], slo)
            ):
                return self._full(lowest, "repeat")
        return None


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


def scout_of(step: PlannedStep) -> PlannedStep:
    """The scouting version of a walk step (before sizing for slow segments)."""
    hold = max(step.hold_s * SCOUT_FRACTION, min(step.hold_s, SCOUT_MIN_HOLD_S))
    return replace(step, warmup_s=step.warmup_s * SCOUT_FRACTION, hold_s=hold)


def _distinct(values: object) -> list[float]:
    out: list[float] = []
    for v in sorted(values):  # type: ignore[call-overload]
        if not any(same_level(v, o) for o in out):
            out.append(float(v))
    return out


def describe_policy(plan: Plan) -> str:
    """A few lines for `breakpoint plan`: the ramp, the refinement, and the budget."""
    levels = ", ".join(f"{p.multiplier:g}X" for p in ramp(plan))
    per_bracket = plan.refine_levels * plan.refine_repeats + 2 * (plan.refine_repeats - 1)
    scout_hold = max(plan.hold_s * SCOUT_FRACTION, min(plan.hold_s, SCOUT_MIN_HOLD_S))
    one_repeat = (
        ", and at least one level near each break is repeated" if plan.refine_repeats > 1 else ""
    )
    return "\n".join(
        [
            f"ramp: {levels} (1X = {plan.baseline:g} {plan.unit}); stops once every segment has "
            "failed, at the cap, or when the load generator becomes the bottleneck",
            f"each step: {plan.warmup_s:g} s warm-up (discarded) + {plan.hold_s:g} s measured; "
            f"ramp steps far from any break are scouts: {plan.warmup_s * SCOUT_FRACTION:g} s + "
            f"{scout_hold:g} s (both lengthened for slow or sparse segments, as shown above)",
            f"refinement: up to {plan.refine_levels} levels inside each bracket (last pass, "
            f"first fail), about {HEDGE:.0%} either side of the estimated break, placed so that "
            f"they close a bracket narrow enough for them to {RESOLUTION:.0%}-{GOAL:.0%} whatever "
            f"the verdicts (fewer once it is closed); the levels that end a segment's final "
            f"bracket run {plan.refine_repeats}x "
            f"unless their verdict is decisive (p95 {DECISIVE:g}x from the SLO, errors "
            f"{ERROR_DECISIVE:g}x, or saturated){one_repeat} (at most {per_bracket} steps per "
            "bracket; brackets shared by segments are refined once)",
            f"budget: {worst_case_steps(plan, 1)} steps at most for one segment, "
            f"+{per_bracket} per "
            "extra bracket (more only if a repeat overturns a bracket end and the walk "
            "resumes); "
            f"hard cap {plan.max_multiplier:g}X",
        ]
    )


Oracle = Callable[[float], StepResult]


def simulate_results(
    plan: Plan, slos: Mapping[str, Slo], oracle: Oracle, *, max_steps: int | None = None
) -> list[StepResult]:
    """Run the policy against oracle(multiplier) -> StepResult; the results, restamped per step."""
    search = Search(plan, slos)
    # A true bound: each walk level runs at most refine_repeats times, and each pair of
    # neighbouring walk levels is refined at most once.
    walk = len(ramp(plan))
    bound = walk * plan.refine_repeats + (walk - 1) * plan.refine_levels * plan.refine_repeats
    limit = max_steps if max_steps is not None else bound
    done: list[StepResult] = []
    while len(done) < limit:
        step = search.next_step(done)
        if step is None:
            break
        measured = oracle(step.multiplier)
        done.append(
            replace(
                measured,
                index=len(done),
                multiplier=step.multiplier,
                load=plan.load_at(step.multiplier),
                phase=step.phase,
                warmup_s=step.warmup_s,
                measured_s=step.hold_s,
            )
        )
    return done


def simulate(plan: Plan, slos: Mapping[str, Slo], oracle: Oracle) -> list[PlannedStep]:
    """The steps the policy would run against a known system (tests and benchmarks)."""
    return [
        PlannedStep(r.multiplier, r.phase, r.warmup_s, r.measured_s)
        for r in simulate_results(plan, slos, oracle)
    ]


def load_time_s(steps: Sequence[PlannedStep]) -> float:
    """Total time under load: every step's warm-up and hold."""
    return sum(s.duration_s for s in steps)


def linear_ramp_load_time_s(plan: Plan, resolution: float = 0.05) -> float:
    """Load-time of the linear ramp that locates a break m to `resolution`.

    Such a ramp (k6's "breakpoint test" made into stairs) climbs in steps of resolution x m from
    resolution x m, each held like a plan step, and needs 1/resolution steps to reach m whatever m
    is.
    """
    return math.ceil(1 / resolution - 1e-9) * (plan.warmup_s + plan.hold_s)

"""The adaptive search: which load level to hold next, given what has been measured (pure).

Policy (deterministic given the results, so a run can be replayed and the plan printed):

1. **Walk** ramp(plan): 1X, 2X, ... then x1.5 beyond, up to max_multiplier, until every segment has
   a trusted failing step, the cap is reached, or a step is generator-bound (going higher would
   measure the generator, not the target).
   Far from any break a ramp step only has to show that it passes, so it is a **scout**: warm-up
   and hold are cut to SCOUT_FRACTION of the plan's. A ramp step is held in full when it is the
   first one, when the next p95 predicted from the last two steps' growth comes near the SLO
   (above NEAR_SLO of it), when errors exceed half the error SLO, after any failure, or when the
   fitted curve puts a break within reach (the next level at or above NEAR_ESTIMATE x the
   estimated break).
2. **Refine** each distinct bracket (last trusted pass, first trusted fail) of the walk, merging
   brackets shared by several segments (the server is shared, so they often coincide), with
   plan.refine_levels interior levels placed one after the other: each at the current estimate of
   the break (model.estimate_breaks: the fit when it agrees with the measurements, else
   interpolation), but at least RESOLUTION (relative) inside the current sub-bracket, so that a
   good estimate closes the bracket to RESOLUTION in two levels (one each side of the break).
3. **Repeat**: every interior level runs plan.refine_repeats times in all, and so do the ends of
   each segment's final bracket when they are walk levels, unless their verdict is decisive (p95
   a factor DECISIVE from the SLO, clearly saturated, or errors double the SLO): near the break
   only repeats give honest variance; a step at 20 times the SLO would fail again. Undecided
   walk ends are repeated before any interior level: if noise had flipped one, the bracket moves
   (and the walk may resume) instead of refinement being spent in the wrong place. A segment
   failing already at the lowest level has that level repeated before anything else.

Measured with simulate() against DESIGN §6's M/M/c target (tests/test_search.py): one bracket is
located to under 4% in 0.46-0.52 of a linear ramp's load-time at 5% resolution; four segments
with distinct breaks (0/50/100/150 ms added) take 0.54 without noise and 0.66 on average with 5%
p95 noise, because noise splits their breaks over two walk brackets.

Refinement steps are held in full and use phases "refine" (first run) and "repeat".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from .config import Plan, PlannedStep, ramp, same_level, worst_case_steps
from .criteria import judge_step
from .model import Level, bracket, estimate_breaks, measured_levels
from .profiles import Slo
from .results import StepResult

# Target relative width of a refined bracket: DESIGN §10 asks for 5%; aim inside it.
RESOLUTION = 0.04
SCOUT_FRACTION = 0.4  # scouting steps: this share of the plan's warm-up and hold
SCOUT_MIN_HOLD_S = 5.0  # ... but never a hold shorter than this (or the plan's own hold)
NEAR_SLO = 0.9  # predicted next p95 above this share of the SLO: hold in full
NEAR_ESTIMATE = 0.7  # next level at or above this share of the estimated break: hold in full
WALK_PHASES = ("ramp", "beyond")
# Bracket ends this far from the SLO (p95 ratio) are not repeated: noise cannot flip them.
DECISIVE = 1.5
DECISIVE_COMPLETION = 0.9


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

    def __init__(self, plan: Plan, slos: Mapping[str, Slo]) -> None:
        self.plan = plan
        self.slos = dict(slos)
        self.ramp = ramp(plan)

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
        hold = max(step.hold_s * SCOUT_FRACTION, min(step.hold_s, SCOUT_MIN_HOLD_S))
        return replace(step, warmup_s=step.warmup_s * SCOUT_FRACTION, hold_s=hold)

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
            # Predict the next p95 by continuing the last step's growth (geometrically); a
            # segment whose p95 is mostly network time is flat, however close to its SLO.
            predicted = seg.p95_ms
            before = prev.segments.get(name) if prev is not None else None
            if prev is not None and before is not None and before.p95_ms:
                per_level = max(seg.p95_ms / before.p95_ms, 1.0)
                span = (step.multiplier - last.multiplier) / (last.multiplier - prev.multiplier)
                predicted = seg.p95_ms * per_level ** max(span, 1.0)
            if predicted > NEAR_SLO * slo.p95_ms:
                return True
        levels = {n: measured_levels(done, n, slo) for n, slo in self.slos.items()}
        if any(not lv.passed for lvs in levels.values() for lv in lvs):
            return True
        estimates = [
            b.multiplier
            for b in estimate_breaks(done, self.slos, self.plan).values()
            if b.multiplier is not None
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
        if not interior:
            # Confirm a bracket end that noise could flip before refining inside it: if the
            # verdict turns, the bracket moves and interior levels here would be wasted.
            for end in (br.low, br.high):
                runs = sum(1 for s in done if same_level(s.multiplier, end))
                if (
                    end < bound_at
                    and runs < self.plan.refine_repeats
                    and not self._decisive_end(done, br, end)
                ):
                    return self._full(end, "repeat")
        if len(interior) < self.plan.refine_levels:
            level = self._place(done, br, bound_at)
            if level is not None and not any(same_level(level, m) for m in interior):
                return self._full(level, "refine")
        # Repeats: interior levels, then the walk levels that end a segment's final bracket.
        ends: list[float] = []
        for name in br.segments:
            low, high = bracket(measured_levels(done, name, self.slos[name]))
            ends += [
                m
                for m in (low, high)
                if m is not None and (same_level(m, br.low) or same_level(m, br.high))
            ]
        for level in [*interior, *_distinct(ends)]:
            if level >= bound_at or (level not in interior and self._decisive_end(done, br, level)):
                continue
            runs = sum(1 for s in done if same_level(s.multiplier, level))
            if runs < self.plan.refine_repeats:
                return self._full(level, "repeat")
        return None

    def _decisive_end(self, done: Sequence[StepResult], br: _Bracket, level: float) -> bool:
        """Is this walk level far enough from every SLO of the bracket that a repeat is moot?"""
        for name in br.segments:
            slo = self.slos[name]
            for lv in measured_levels(done, name, slo):
                if same_level(lv.multiplier, level) and not _decisive(lv, slo):
                    return False
        return True

    def _place(self, done: Sequence[StepResult], br: _Bracket, bound_at: float) -> float | None:
        """The next interior level: at the estimated break, at least RESOLUTION from the ends."""
        estimates = estimate_breaks(done, {n: self.slos[n] for n in br.segments}, self.plan)
        best: tuple[float, float, float, float | None, str] | None = None
        for name in br.segments:
            low, high = bracket(measured_levels(done, name, self.slos[name]))
            # The current sub-bracket, kept inside the walk's bracket.
            low = br.low if low is None or low < br.low else low
            high = br.high if high is None or high > br.high else high
            if high <= low:
                continue
            width = (high - low) / high
            if best is None or width > best[0]:
                best = (width, low, high, estimates[name].multiplier, name)
        if best is None:
            return None
        _, low, high, estimate, name = best
        high = min(high, bound_at)
        inner_lo, inner_hi = low * (1 + RESOLUTION), high * (1 - RESOLUTION)
        if inner_lo >= inner_hi:
            level = math.sqrt(low * high)  # already narrow: bisect for more data near the break
        else:
            guess = estimate if estimate is not None else math.sqrt(low * high)
            # Hedge toward the side not yet covered: after an interior level failed, the break
            # is below it and the next level should land below the break, and vice versa.
            latest = [s for s in done if s.phase == "refine" and br.low < s.multiplier < br.high]
            if latest:
                last = max(latest, key=lambda s: s.index)
                verdict = judge_step(last, {name: self.slos[name]}).get(name)
                if verdict is not None and verdict.passed is not None:
                    guess *= 1 + RESOLUTION / 2 if verdict.passed else 1 - RESOLUTION / 2
            level = min(max(guess, inner_lo), inner_hi)
        level = round(level, 4)
        if not (br.low < level < br.high) or same_level(level, low) or same_level(level, high):
            return None
        return level

    def _full(self, multiplier: float, phase: str) -> PlannedStep:
        return PlannedStep(multiplier, phase, self.plan.warmup_s, self.plan.hold_s)

    # --- entry point ------------------------------------------------------------------------------

    def next_step(self, done: Sequence[StepResult]) -> PlannedStep | None:
        """The next level to hold given every step measured so far; None when the search is over."""
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


def _decisive(level: Level, slo: Slo) -> bool:
    """A verdict no repeat would overturn: p95 a factor DECISIVE away from the SLO, or clearly
    saturated, or an error rate double the SLO."""
    if level.saturated and (level.completion_ratio or 1.0) < DECISIVE_COMPLETION:
        return not level.passed
    if level.criterion == "errors" or level.error_rate > slo.error_rate:
        return level.error_rate > 2 * slo.error_rate
    p95 = level.p95_median_ms
    if p95 is None:
        return False
    return p95 > DECISIVE * slo.p95_ms if not level.passed else p95 < slo.p95_ms / DECISIVE


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
    return "\n".join(
        [
            f"ramp: {levels} (1X = {plan.baseline:g} {plan.unit}); stops once every segment has "
            "failed, at the cap, or when the load generator becomes the bottleneck",
            f"each step: {plan.warmup_s:g} s warm-up (discarded) + {plan.hold_s:g} s measured; "
            f"ramp steps far from any break are scouts: {plan.warmup_s * SCOUT_FRACTION:g} s + "
            f"{scout_hold:g} s",
            f"refinement: {plan.refine_levels} levels inside each bracket (last pass, first fail), "
            f"placed at the estimated break and at least {RESOLUTION:.0%} from the bracket ends; "
            f"each run {plan.refine_repeats}x, and the final bracket's ends repeated to "
            f"{plan.refine_repeats}x (at most {per_bracket} steps per bracket; brackets shared by "
            "segments are refined once)",
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

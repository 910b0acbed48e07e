"""The adaptive search: which load level to hold next, given every step measured so far (pure).

It walks up the ramp (scouting far from any break, holding in full near one), then hands each
bracket (last pass, first fail) to refine.py to narrow and repeat. Deterministic given the
results, so `breakpoint plan` can describe it and sim/simulate.py can replay it against known
systems. The policy and its constants: docs/design.md#search.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from breakpoint.analysis.breaks import estimate_breaks
from breakpoint.analysis.levels import measured_levels
from breakpoint.analysis.refine import (
    DECISIVE,
    ERROR_DECISIVE,
    GOAL,
    HEDGE,
    RESOLUTION,
    WALK_PHASES,
    Refinement,
    _confirmed_bound,
    _decisive,
)
from breakpoint.analysis.separate import PHASE as SEPARATE
from breakpoint.analysis.separate import next_separating
from breakpoint.analysis.sizing import Pace, initial_paces, learn_paces, size_step
from breakpoint.plan.profiles import Profile, Slo, normalised_shares
from breakpoint.plan.steps import Plan, PlannedStep, ramp, same_level, worst_case_steps
from breakpoint.results import StepResult

SCOUT_FRACTION = 0.4  # scouting steps: this share of the plan's warm-up and hold
SCOUT_MIN_HOLD_S = 5.0  # ... but never a hold shorter than this (or the plan's own hold)
NEAR_SLO = 0.9  # predicted next p95 above this share of the SLO: hold in full
FLAT_NOISE = 0.1  # p95 within this share above the lowest level's: flat (noise, not growth)
NEAR_ESTIMATE = 0.7  # next level at or above this share of the estimated break: hold in full


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
        # After the walk, brackets are refined and their ends repeated (refine.py).
        self.refinement = Refinement(plan, self.slos, self.ramp)

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
        # As in _next_walk: a level whose only run was generator-bound has not been run yet.
        ran = [s.multiplier for s in done if not s.generator.bound]
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
        step = self.refinement.next_step(done)
        if step is not None or self.plan.separate_levels == 0:
            return step
        level = next_separating(done, self.slos, self.plan, _confirmed_bound(done))
        return None if level is None else self._full(level, SEPARATE)

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


def scout_of(step: PlannedStep) -> PlannedStep:
    """The scouting version of a walk step (before sizing for slow segments)."""
    hold = max(step.hold_s * SCOUT_FRACTION, min(step.hold_s, SCOUT_MIN_HOLD_S))
    return replace(step, warmup_s=step.warmup_s * SCOUT_FRACTION, hold_s=hold)


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
            *(
                [
                    f"separating the first: up to {plan.separate_levels} steps between the first "
                    "segment to break and the next, once every bracket is refined, so that a "
                    "level tells them apart (or shows it cannot)"
                ]
                if plan.separate_levels
                else []
            ),
            f"budget: {worst_case_steps(plan, 1)} steps at most for one segment, "
            f"+{per_bracket} per "
            "extra bracket (more only if a repeat overturns a bracket end and the walk "
            "resumes); "
            f"hard cap {plan.max_multiplier:g}X",
        ]
    )

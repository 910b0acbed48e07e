"""The search run against a known system instead of a target: oracle(multiplier) -> StepResult.

Tests and benchmarks use it to measure what the policy costs (load-time, against the linear
ramp a breakpoint test would climb) and how well it locates known breaks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from breakpoint.analysis.search import Search
from breakpoint.plan.profiles import Slo
from breakpoint.plan.steps import Plan, PlannedStep, ramp
from breakpoint.results import StepResult

Oracle = Callable[[float], StepResult]


def simulate_results(
    plan: Plan, slos: Mapping[str, Slo], oracle: Oracle, *, max_steps: int | None = None
) -> list[StepResult]:
    """Run the policy against oracle(multiplier) -> StepResult; the results, restamped per step."""
    search = Search(plan, slos)
    # A true bound: each walk level runs at most refine_repeats times, each pair of
    # neighbouring walk levels is refined at most once, and each separating level may be
    # repeated as a bracket end.
    walk = len(ramp(plan))
    bound = walk * plan.refine_repeats + (walk - 1) * plan.refine_levels * plan.refine_repeats
    bound += plan.separate_levels * plan.refine_repeats
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

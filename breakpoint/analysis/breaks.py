"""The analysis of a run: for every segment, its breaking point with an interval, the fitted
curve, the knee and a diagnosis (pure numpy/scipy; a bad fit is a warning, never an exception).

`analyse` is the entry point; `estimate_breaks` is the cheap version the search calls after each
step. The pipeline: levels.py, then fit_open.py or fit_closed.py, labels.py and placement.py,
describe.py; the method is in docs/design.md#analysis.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from breakpoint.analysis.criteria import queue_flat, system_saturation
from breakpoint.analysis.describe import _curve, _diagnose, _knee
from breakpoint.analysis.findings import Analysis, Break, QualityWarning, SegmentAnalysis
from breakpoint.analysis.fit_closed import _fit_closed, _segment_fit_closed
from breakpoint.analysis.fit_open import _fit_open, _segment_fit_open
from breakpoint.analysis.labels import _estimate_break
from breakpoint.analysis.levels import _group, _level, _noise, _observations, bracket
from breakpoint.analysis.objectives import view_steps
from breakpoint.analysis.placement import SegmentContext
from breakpoint.plan.profiles import Profile, Slo
from breakpoint.plan.steps import Plan, same_level
from breakpoint.results import StepResult


def analyse(
    steps: Sequence[StepResult],
    profiles: Sequence[Profile],
    plan: Plan,
    *,
    seed: int = 0,
    boot: int = 400,
    think_s: float | None = None,
) -> Analysis:
    """Breaking point, interval, fit and diagnosis for every profile (see the module docstring).

    `think_s` (closed model only) overrides the think time estimated by Little's law.
    """
    return analyse_slos(
        steps, {p.name: p.slo for p in profiles}, plan, seed=seed, boot=boot, think_s=think_s
    )


def estimate_breaks(
    steps: Sequence[StepResult], slos: Mapping[str, Slo], plan: Plan
) -> dict[str, Break]:
    """Point estimates only (no bootstrap): cheap enough for the search to call after each step."""
    analysis = analyse_slos(steps, slos, plan, boot=0)
    return {name: seg.breaking for name, seg in analysis.segments.items()}


def analyse_slos(
    steps: Sequence[StepResult],
    slos: Mapping[str, Slo],
    plan: Plan,
    *,
    seed: int = 0,
    boot: int = 400,
    think_s: float | None = None,
) -> Analysis:
    """`analyse` for segments given as name -> SLO, in the mapping's order."""
    rng = np.random.default_rng(seed)
    notes: list[QualityWarning] = []
    # Objectives per endpoint / page view: the fits see each step's pressure (objectives.py).
    steps, slos = view_steps(steps, slos)
    for step in steps:
        if step.generator.bound:
            why = "; ".join(step.generator.reasons) or "generator saturated"
            notes.append(
                QualityWarning(
                    "generator_bound",
                    f"step at {step.multiplier:g}X measured the load generator, not the target "
                    f"({why}); it is not used",
                    None,
                    step.index,
                )
            )
        if step.partial:
            notes.append(
                QualityWarning(
                    "partial_step",
                    f"step at {step.multiplier:g}X was cut short "
                    f"({step.measured_s:.0f} s measured)",
                    None,
                    step.index,
                )
            )
    obs = {name: _observations(steps, name, slo, notes) for name, slo in slos.items()}
    levels = {name: tuple(_level(g, slo) for g in _group(obs[name])) for name, slo in slos.items()}
    noise = _noise(obs)
    if noise.pooled is None and any(levels.values()):
        notes.append(
            QualityWarning(
                "no_repeats",
                "no level was repeated: the noise is estimated from the fit's "
                "residuals, so intervals are rough",
            )
        )
    ceiling = 0.0  # what the target completed while overloaded: its capacity as measured
    completed_by_step: dict[int, float] = {}  # ... and in every trusted window (open model)
    trusted = [step for step in steps if not step.generator.bound]
    flat_steps = frozenset(step.index for step in trusted if queue_flat(step))
    if plan.model == "open":

        def completed(step: StepResult) -> float:
            return sum(s.completed_rps for s in step.segments.values())

        ceiling = max(
            (completed(step) for step in trusted if system_saturation(step)[0]), default=0.0
        )
        completed_by_step = {step.index: completed(step) for step in trusted}
        demonstrated = max(completed_by_step.values(), default=0.0)
        open_fit = _fit_open(obs, noise, plan.baseline, demonstrated, rng, boot, notes)
        fits = {
            name: _segment_fit_open(open_fit, name, slo, plan.baseline)
            for name, slo in slos.items()
        }
    else:
        closed_fit = _fit_closed(steps, obs, plan, think_s, rng, boot, notes)
        fits = {
            name: _segment_fit_closed(closed_fit, name, slo, plan) for name, slo in slos.items()
        }

    held_load = max(
        (x.load for lv in levels.values() for x in lv if x.passed and not x.saturated), default=0.0
    )
    segments: dict[str, SegmentAnalysis] = {}
    for name, slo in slos.items():
        lv = levels[name]
        for i in range(1, len(lv)):
            if lv[i].passed and not all(x.passed for x in lv[:i]):
                notes.append(
                    QualityWarning(
                        "non_monotone",
                        f"passes at {lv[i].multiplier:g}X after failing at a lower "
                        "level; the break is the lowest failing level",
                        name,
                        lv[i].steps[0],
                    )
                )
                break
        ctx = SegmentContext(
            name,
            slo,
            lv,
            obs[name],
            fits[name],
            noise,
            plan,
            ceiling,
            rng,
            boot,
            notes,
            completed_by_step,
            flat_steps,
            held_load,
        )
        brk, interp = _estimate_break(ctx)
        last_pass, first_fail = bracket(lv)
        fail_step = None
        if first_fail is not None:
            fail_level = next(x for x in lv if same_level(x.multiplier, first_fail))
            fail_step = min(fail_level.steps)
            if brk.criterion == "latency" and slo.objectives:
                crossed = Counter(
                    o.verdict.objective
                    for o in obs[name]
                    if same_level(o.multiplier, first_fail) and o.verdict.objective
                )
                if crossed:
                    brk = replace(brk, objective=crossed.most_common(1)[0][0])
        segments[name] = SegmentAnalysis(
            profile=name,
            slo=slo,
            breaking=brk,
            fit=fits[name].summary,
            levels=lv,
            curve=_curve(fits[name], lv, brk.multiplier),
            knee_multiplier=_knee(lv),
            diagnosis=_diagnose(steps, name, slo, lv, first_fail),
            last_pass=last_pass,
            first_fail=first_fail,
            first_fail_step=fail_step,
            fit_multiplier=fits[name].estimate,
            interp_multiplier=interp,
        )
    broken = [
        (s.breaking.multiplier, name)
        for name, s in segments.items()
        if s.breaking.label not in ("not_reached", "no_verdict")
        and s.breaking.multiplier is not None
    ]
    return Analysis(
        model=plan.model,
        baseline=plan.baseline,
        segments=segments,
        warnings=tuple(notes),
        first_to_break=min(broken)[1] if broken else None,
    )

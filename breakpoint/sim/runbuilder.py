"""A realistic stored run without sending any load, for report tests and benchmarks.

`simulate_run()` measures steps of a simulated system (stepbuilder.py: one M/M/c server shared by
every segment, latencies from the network model) in the controller's shape: the ramp (1X, 2X, ...)
until every segment failed or the cap, then refinement levels inside each bracket and repeats, up
to `RunSpec.steps` in all. `build_run()` writes them as a real run does, through the writer the
caller passes (load/writer.py's RunWriter: sim may import only plan and analysis).

Everything is seeded: the same spec gives the same records (apart from run id and clock).
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from breakpoint import __version__
from breakpoint.analysis.criteria import judge_step
from breakpoint.plan.profiles import Profile, builtin_profiles, normalised_shares
from breakpoint.plan.steps import Plan, ramp, same_level
from breakpoint.results import GeneratorHealth, StepResult
from breakpoint.sim.stepbuilder import Server, costs_of, segment_step


@dataclass(frozen=True)
class RunSpec:
    """What to build: at most `steps` steps of the first `segments` built-in profiles (or
    `profiles`) against `server`; a status other than "complete" marks the last step partial."""

    steps: int = 20
    segments: int = 7
    seed: int = 1
    server: Server = field(default_factory=Server)
    baseline_rps: float = 40.0
    max_multiplier: float = 10.0
    hold_s: float = 20.0
    label: str = "built"
    status: str = "complete"
    stop_reason: str | None = None
    blocked_hosts: Mapping[str, int] = field(default_factory=dict)
    profiles: Sequence[Profile] | None = None


@dataclass(frozen=True)
class SimulatedRun:
    """A run's run.json fields and its steps, in the order they ran, before anything is written."""

    spec: RunSpec
    plan: Plan
    info: dict[str, Any]
    steps: list[StepResult]
    finished_at: float


class RunSink(Protocol):
    """What build_run needs of a run writer (load/writer.py's RunWriter)."""

    path: Path

    def append(self, step: StepResult, *, final: bool) -> None: ...

    def update(self, **fields: Any) -> None: ...

    def close(self) -> None: ...


WriterFactory = Callable[[Path, str, Mapping[str, Any]], RunSink]


def _built_in_profiles(count: int = 7) -> list[Profile]:
    """The first `count` built-in profiles (slowest network first), opt-in ones included."""
    return list(builtin_profiles().values())[:count]


class _Simulator:
    """Measures one step of the simulated system, like the recorder would."""

    def __init__(
        self, plan: Plan, profiles: Sequence[Profile], server: Server, rng: np.random.Generator
    ) -> None:
        self.plan = plan
        self.profiles = list(profiles)
        self.shares = normalised_shares(profiles)
        self.costs = {p.name: costs_of(p) for p in profiles}
        self.server = server
        self.rng = rng
        self.started_at = 1_790_000_000.0

    def measure(
        self, index: int, multiplier: float, phase: str, *, partial: bool = False
    ) -> StepResult:
        hold_s = self.plan.hold_s * (0.45 if partial else 1.0)
        total_rps = self.plan.load_at(multiplier)
        segments = {
            p.name: segment_step(
                self.rng,
                p,
                self.costs[p.name],
                self.shares[p.name],
                total_rps,
                self.server,
                max(1.0, math.floor(hold_s)),
            )
            for p in self.profiles
        }
        cpu = min(75.0, 8.0 + 0.12 * total_rps) * float(self.rng.uniform(0.9, 1.1))
        started = self.started_at
        self.started_at += self.plan.warmup_s + self.plan.hold_s + 1.0
        return StepResult(
            index=index,
            multiplier=multiplier,
            load=total_rps,
            phase=phase,
            started_at=started,
            warmup_s=self.plan.warmup_s,
            measured_s=max(1.0, math.floor(hold_s)),
            segments=segments,
            generator=GeneratorHealth(
                cpu_pct_max=cpu * 1.2,
                cpu_pct_mean=cpu,
                loop_lag_p99_ms=float(self.rng.uniform(1.0, 6.0)),
                schedule_lag_p99_ms=float(self.rng.uniform(0.5, 4.0)),
            ),
            partial=partial,
        )


def _first_fails(steps: Sequence[StepResult], profiles: Sequence[Profile]) -> dict[str, float]:
    slos = {p.name: p.slo for p in profiles}
    fails: dict[str, float] = {}
    for step in sorted(steps, key=lambda s: s.multiplier):
        for name, verdict in judge_step(step, slos).items():
            if verdict.passed is False and name not in fails:
                fails[name] = step.multiplier
    return fails


def _refinement(plan: Plan, walk: Sequence[float], fails: Mapping[str, float]) -> list[tuple]:
    """Refinement levels and repeats inside each distinct walk bracket, lowest first."""
    planned: list[tuple[float, str]] = []
    for high in sorted(set(fails.values())):
        below = [m for m in walk if m < high and not same_level(m, high)]
        if not below:
            planned.append((high, "repeat"))
            continue
        low = below[-1]
        inner = [
            round(low + (high - low) * (i + 1) / (plan.refine_levels + 1), 3)
            for i in range(plan.refine_levels)
        ]
        for m in inner:
            planned += [(m, "refine")] + [(m, "repeat")] * (plan.refine_repeats - 1)
        planned += [(low, "repeat"), (high, "repeat")] * (plan.refine_repeats - 1)
    return planned


def _info(spec: RunSpec, plan: Plan, profiles: Sequence[Profile]) -> dict[str, Any]:
    """run.json's fields as a run of the shop scenario against the embedded target has them."""
    return {
        "model": plan.model,
        "plan": plan.to_dict(),
        "profiles": [p.as_dict() for p in profiles],
        "shares": normalised_shares(profiles),
        "scenario": {
            "path": "scenarios/shop.py",
            "fingerprint": f"built-{spec.seed}",
            "user_classes": ["ShopUser"],
        },
        "host": "http://127.0.0.1:8089",
        "target": {
            "kind": "embedded",
            "workers": spec.server.workers,
            "service_ms": spec.server.service_ms,
            "seed": spec.seed,
            "capacity_rps": spec.server.capacity_rps,
        },
        "emulation": True,
        "generator": {"workers": 0},
        "versions": {
            "breakpoint": __version__,
            "locust": "2.47.0",
            "python": platform.python_version(),
        },
        "git_rev": None,
    }


def simulate_run(spec: RunSpec | None = None) -> SimulatedRun:
    """The steps a run would measure against the simulated system (see the module docstring).

    A run where nothing breaks has only its ramp; otherwise repeats cycle until `steps` ran.
    """
    spec = spec if spec is not None else RunSpec()
    chosen = list(spec.profiles) if spec.profiles is not None else _built_in_profiles(spec.segments)
    plan = Plan(
        model="open",
        baseline=spec.baseline_rps,
        max_multiplier=spec.max_multiplier,
        warmup_s=5.0,
        hold_s=spec.hold_s,
        seed=spec.seed,
    )
    sim = _Simulator(plan, chosen, spec.server, np.random.default_rng(spec.seed))
    interrupted = spec.status != "complete"
    done: list[StepResult] = []

    def run(multiplier: float, phase: str) -> None:
        last = interrupted and len(done) == spec.steps - 1
        done.append(sim.measure(len(done), multiplier, phase, partial=last))

    walk: list[float] = []
    for planned in ramp(plan):
        if len(done) >= spec.steps:
            break
        run(planned.multiplier, planned.phase)
        walk.append(planned.multiplier)
        if len(_first_fails(done, chosen)) == len(chosen):
            break
    queue = _refinement(plan, walk, _first_fails(done, chosen))
    if queue:
        i = 0
        while len(done) < spec.steps:
            multiplier, phase = queue[i % len(queue)]
            run(multiplier, phase if i < len(queue) else "repeat")
            i += 1
    return SimulatedRun(spec, plan, _info(spec, plan, chosen), done, sim.started_at)


def build_run(out_dir: Path, spec: RunSpec | None = None, *, writer: WriterFactory) -> Path:
    """Write a simulated run folder under `out_dir` and return its path (no report: publish()).

    Each step is appended provisional then final, as a run does; `writer` is RunWriter.
    """
    built = simulate_run(spec)
    sink = writer(out_dir, built.spec.label, built.info)
    for step in built.steps:
        sink.append(step, final=False)
        sink.append(step, final=True)
    sink.update(
        status=built.spec.status,
        stop_reason=built.spec.stop_reason,
        finished_at=built.finished_at,
        steps=len(built.steps),
        blocked_hosts=dict(built.spec.blocked_hosts),
    )
    sink.close()
    return sink.path

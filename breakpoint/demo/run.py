"""`breakpoint demo`: the embedded target + the bundled scenario + the default profiles.

Starts the target in a child process on 127.0.0.1, runs the search with a short plan, writes the
report and stops the target, whatever happens in between.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from breakpoint.demo.service import Distribution
from breakpoint.demo.target import TargetConfig, start_target_process
from breakpoint.plan.objectives import PAGE_VIEW, Objective, describe
from breakpoint.plan.objectives import apply as apply_objectives
from breakpoint.plan.profiles import default_profile_names, resolve_profiles
from breakpoint.plan.steps import Plan

if TYPE_CHECKING:
    from breakpoint.progress import Progress

DEMO_BASELINE_RPS = 40.0
# What a product team would set (docs/design.md#demo): one product-wide objective on what the
# person waits for, a page view, one on the API, plus each profile's own client timeout (a
# request past it fails). The API's 1 s leaves the low-end 3G user (about 0.57 s of its own
# network and device per call at 1X) the least headroom.
DEMO_OBJECTIVES = (
    Objective(PAGE_VIEW, 95.0, 6000.0, "breakpoint demo"),
    Objective("/api/page", 95.0, 1000.0, "breakpoint demo"),
    Objective("/api/search", 95.0, 1000.0, "breakpoint demo"),
)
# A synchronous server (gunicorn sync workers: slow readers hold workers) whose service slows
# with contention, so the wait grows from low load on and each segment's headroom gives it its
# own break (docs/design.md#demo); the contention limit is near 4X.
DEMO_WORKERS = 128
DEMO_SERVICE_MS = 80.0
DEMO_CONTENTION = 0.057
DEMO_DISTRIBUTION: Distribution = "constant"


def bundled_scenario() -> Path:
    """scenarios/shop.py: inside the wheel, or in the repository for an editable install."""
    packaged = Path(__file__).resolve().parents[1] / "builtin_scenarios" / "shop.py"
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / "scenarios" / "shop.py"


def demo_plan(*, quick: bool, seed: int = 1) -> Plan:
    if quick:
        # 1X to 4X in whole steps (the target's contention limit is near 4X), then two
        # refinement levels per bracket (with one, low-end 3G's interval met desktop's in 3 of 3
        # runs; with two in 1 of 3: benchmarks/README.md); steps follow the slowest segment (a
        # 3G 200 KB download is 5 s), so each lasts about 20 s.
        return Plan(
            model="open",
            baseline=DEMO_BASELINE_RPS,
            max_multiplier=10.0,
            linear_until=4.0,
            beyond_factor=1.5,
            warmup_s=1.0,
            hold_s=3.0,
            refine_levels=2,
            refine_repeats=1,
            # Then up to two steps between the first segment and the next (analysis/separate.py):
            # low-end and mid-tier 3G's intervals met by 0.01-0.02X in 2 of 3 runs without.
            separate_levels=2,
            seed=seed,
        )
    return Plan(
        model="open",
        baseline=DEMO_BASELINE_RPS,
        max_multiplier=10.0,
        warmup_s=2.0,
        hold_s=6.0,
        # Two levels per bracket, repeated: with four (and two separating steps more) a run
        # took 8.5 minutes, 19 steps of about 22 s (docs/design.md#demo).
        refine_levels=2,
        refine_repeats=2,
        # Then up to two steps between the first segment and the next (analysis/separate.py).
        separate_levels=2,
        seed=seed,
    )


def demo_target_config(*, service_ms: float = DEMO_SERVICE_MS, seed: int = 1) -> TargetConfig:
    """The demo's target: sync workers whose service slows with contention (docs/design.md#demo)."""
    return TargetConfig(
        workers=DEMO_WORKERS,
        service_ms=service_ms,
        seed=seed,
        port=0,
        sync_workers=True,
        contention=DEMO_CONTENTION,
        distribution=DEMO_DISTRIBUTION,
    )


def run_demo(
    *,
    quick: bool,
    out_dir: Path,
    service_ms: float = DEMO_SERVICE_MS,
    label: str = "demo",
    say: Callable[[str], None] = print,
    seed: int = 1,
    progress: Progress | None = None,
) -> Path:
    """Run the demo; returns the path of its HTML report."""
    from breakpoint.load.process import patch_early

    # gevent's monkey-patching before the target's reader thread exists (see patch_early).
    patch_early()

    from breakpoint.analysis.search import Search
    from breakpoint.load.run import RunInterrupted, execute
    from breakpoint.load.settings import RunSettings
    from breakpoint.output.publish import publish

    plan = demo_plan(quick=quick, seed=seed)
    profiles = apply_objectives(resolve_profiles(default_profile_names()), DEMO_OBJECTIVES)
    config = demo_target_config(service_ms=service_ms, seed=seed)
    with start_target_process(config) as target:
        say(f"demo target: {target.url} ({config.describe()})")
        say(
            f"objectives: {describe(DEMO_OBJECTIVES)} for every segment, and each profile's "
            "client timeout"
        )
        settings = RunSettings(
            scenario=bundled_scenario(),
            host=target.url,
            plan=plan,
            profiles=profiles,
            label=label,
            out_dir=out_dir,
            emulate=True,
            # The target's own signals, so the report names what rose before each break.
            metrics_urls=(f"{target.url}/metrics",),
            target_info={
                "kind": "embedded",
                "workers": config.workers,
                "sync_workers": config.sync_workers,
                "contention": config.contention,
                "service_ms": config.service_ms,
                "seed": config.seed,
                "capacity_rps": config.capacity_rps,
            },
        )
        try:
            run_dir = execute(
                settings,
                Search.for_profiles(plan, profiles, emulate=True),
                say=say,
                progress=progress,
            )
        except RunInterrupted as stopped:
            run_dir = stopped.path
        held = target.stats()
        _note_target(run_dir, held)
    return publish(run_dir)


def _note_target(run_dir: Path, stats: dict[str, object]) -> None:
    """Record the service time the target really held (timers wake late) in run.json."""
    import json

    from breakpoint.runs.store import RUN_FILE, write_json

    path = run_dir / RUN_FILE
    info = json.loads(path.read_text(encoding="utf-8"))
    info.setdefault("target", {})["held"] = {
        k: stats.get(k)
        for k in (
            "held_service_ms_mean",
            "held_service_ms_count",
            "requests_total",
            "rejected_503",
            "max_queue_length",
        )
    }
    write_json(path, info)

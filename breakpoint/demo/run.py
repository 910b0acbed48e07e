"""`breakpoint demo`: the embedded target + the bundled scenario + the default profiles.

Starts the target in a child process on 127.0.0.1, runs the search with a short plan, writes the
report and stops the target, whatever happens in between.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

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
# request past it fails). The API's 1.5 s leaves the low-end 3G user (about 1 s of network per
# call) the least headroom: with 2 s every segment broke between 1.6X and 2X in no steady
# order; with 1.5 s 3G broke below desktop in every run seen (docs/design.md#demo).
DEMO_OBJECTIVES = (
    Objective(PAGE_VIEW, 95.0, 6000.0, "breakpoint demo"),
    Objective("/api/page", 95.0, 1500.0, "breakpoint demo"),
    Objective("/api/search", 95.0, 1500.0, "breakpoint demo"),
)
# A synchronous server (gunicorn sync workers): a worker is held until its response is written,
# so slow readers consume capacity; enough workers that 1X uses a few of them.
DEMO_WORKERS = 8


def bundled_scenario() -> Path:
    """scenarios/shop.py: inside the wheel, or in the repository for an editable install."""
    packaged = Path(__file__).resolve().parents[1] / "builtin_scenarios" / "shop.py"
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / "scenarios" / "shop.py"


def demo_plan(*, quick: bool, seed: int = 1) -> Plan:
    if quick:
        # 1X, 2X, 4X, 8X, 10X until every segment failed, then two refinement levels (with
        # one, where it landed decided the finding: at 1.15X it separated 3G from desktop, at
        # 1.77X it did not); steps follow the slowest segment (a 3G 200 KB download is 5 s).
        return Plan(
            model="open",
            baseline=DEMO_BASELINE_RPS,
            max_multiplier=10.0,
            linear_until=2.0,
            beyond_factor=2.0,
            warmup_s=1.0,
            hold_s=3.0,
            refine_levels=2,
            refine_repeats=1,
            seed=seed,
        )
    return Plan(
        model="open",
        baseline=DEMO_BASELINE_RPS,
        max_multiplier=10.0,
        warmup_s=2.0,
        hold_s=6.0,
        # Every segment breaks between 1X and 2X: four levels there let the slowest segment's
        # bracket close below the others' (with two, five of six segments shared [1.3X, 2X]).
        refine_levels=4,
        refine_repeats=2,
        # Then up to four steps between the first segment and the next (analysis/separate.py):
        # refinement narrows each segment's own bracket, the headline is about their order. Not
        # in --quick: in five quick runs with three such steps, none came apart from the next
        # segment, for about 50 s more (docs/design.md#demo).
        separate_levels=4,
        seed=seed,
    )


def run_demo(
    *,
    quick: bool,
    out_dir: Path,
    service_ms: float = 20.0,
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
    config = TargetConfig(
        workers=DEMO_WORKERS, service_ms=service_ms, seed=seed, port=0, sync_workers=True
    )
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

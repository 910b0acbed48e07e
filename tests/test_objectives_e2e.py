"""End to end: behind synchronous workers the low-end 3G user breaks clearly before desktop
broadband, under one product-wide objective (docs/design.md#demo).

The demo's target (sync workers whose service slows as more requests are in it, so the wait
grows from low load on: docs/design.md#contention) and the product-wide objectives of
`breakpoint demo` (the API's p95 < 1 s, page view p95 < 6 s, each profile's client timeout),
with two segments: android-lowend-3g, whose own network and device take about 0.57 s of each
search request at 1X, and desktop-broadband. The scenario is the bundled shop without its 200 KB
asset, so the steps stay a few seconds long; the break is on the API's objectives either way.

Asserted: 3G is named first, on a latency objective, at a lower multiplier, with the 95%
intervals apart (meeting at one end counts: docs/design.md#why-first), and at the level where it
first failed desktop held, measured in the same steps. The plan has two separating steps
between the two (analysis/separate.py). In eleven runs of this set-up from a throwaway script
(observations, not a kept benchmark; 2026-11-30, seeds 3-13, 55-117 s each) the intervals were
apart in all eleven, one of them meeting at 2X; 3G broke at 1.30-1.60X, desktop at 2.55-2.87X.
Without the separating steps they were apart in 2 of 5. With only the load desktop held counted
in the capacity behind the window noise (before a first fail far below the fitted L stopped
bounding it: docs/design.md#interval-coverage), 0 of 5 without them and 3 of 5 with them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from breakpoint.analysis.search import Search
from breakpoint.demo.run import DEMO_OBJECTIVES, demo_target_config
from breakpoint.demo.target import start_target_process
from breakpoint.load.run import execute
from breakpoint.load.settings import RunSettings
from breakpoint.output.publish import publish
from breakpoint.plan.objectives import apply as apply_objectives
from breakpoint.plan.profiles import resolve_profiles
from breakpoint.plan.steps import Plan

pytestmark = pytest.mark.e2e

SHOP_API = Path(__file__).resolve().parent / "scenarios" / "shop_api.py"


def test_low_end_3g_breaks_clearly_before_desktop_behind_sync_workers(tmp_path: Path) -> None:
    profiles = apply_objectives(
        resolve_profiles(["android-lowend-3g", "desktop-broadband"]), DEMO_OBJECTIVES
    )
    # 1X to 4X in whole steps (3G's objective is crossed between 1X and 2X, desktop's between 2X
    # and 3X), then two refinement levels inside each bracket and up to two separating steps.
    plan = Plan(
        model="open",
        baseline=40.0,
        max_multiplier=6.0,
        linear_until=4.0,
        warmup_s=1.0,
        hold_s=3.0,
        refine_levels=2,
        refine_repeats=1,
        separate_levels=2,
        seed=3,
    )
    with start_target_process(demo_target_config(seed=3)) as target:
        settings = RunSettings(
            scenario=SHOP_API,
            host=target.url,
            plan=plan,
            profiles=profiles,
            label="objectives",
            out_dir=tmp_path,
            emulate=True,
        )
        run_dir = execute(settings, Search.for_profiles(plan, profiles, emulate=True))
    publish(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    breaks = {s["profile"]: s["break"] for s in summary["segments"]}
    low, desk = breaks["android-lowend-3g"], breaks["desktop-broadband"]
    detail = f"3G {low}; desktop {desk}; warnings {[w['kind'] for w in summary['warnings']]}"
    assert summary["first_to_break"] == "android-lowend-3g", detail
    segs = {s["profile"]: s for s in summary["segments"]}
    # 3G may fail at the lowest level (at 1X its search p95 is about 86-94% of the objective; not
    # seen in eleven runs): then its break is at most 1X, below desktop all the same.
    low_at_1x = segs["android-lowend-3g"]["first_fail_multiplier"] == 1.0
    for b in (desk,) if low_at_1x else (low, desk):
        assert b["label"] == "bracketed", detail
    for b in (low, desk):
        assert b["criterion"] == "latency", detail
        assert b["objective"] in {o.label for o in DEMO_OBJECTIVES}, detail
    assert low["multiplier"] < desk["multiplier"], detail
    lead = summary["first_lead"]
    assert lead["next"] == "desktop-broadband" and lead["beside"]["next_held"] is True, lead
    assert low["high"] is not None and desk["low"] is not None, detail
    assert low["high"] <= desk["low"], detail
    assert lead["apart"] is True and lead["clearly_first"] is True, lead
    digest = (run_dir / "summary.md").read_text()
    assert "First to break: android-lowend-3g" in digest
    assert "clearly first" in digest

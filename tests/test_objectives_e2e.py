"""End to end: behind synchronous workers the low-end 3G user breaks before desktop broadband,
under one product-wide objective (docs/design.md#demo).

The demo's target (sync workers whose service slows as more requests are in it, so the wait
grows from low load on: docs/design.md#contention) and the product-wide objectives of
`breakpoint demo` (the API's p95 < 1 s, page view p95 < 6 s, each profile's client timeout),
with two segments: android-lowend-3g, whose own network and device take about 0.57 s of each
search request at 1X, and desktop-broadband. The scenario is the bundled shop without its 200 KB
asset, so the steps stay a few seconds long; the break is on the API's objectives either way.

Asserted: 3G is named first, on a latency objective, at a lower multiplier (1.37-1.68X against
desktop's 2.71-2.87X in three runs of this set-up from a throwaway script, not a kept
benchmark: seeds 3-5, 56-58 s each, 2026-11-30), and at
the level where it first failed desktop held, measured in the same steps; the headline calls the
order certain exactly when the intervals are apart. Not asserted: that they are apart. 3G's
interval began at 1X and reached 2.14-2.73X, desktop's began at 1.86-1.99X: apart in none of the
three runs, nor in two with 6 s holds (68 s each). The full demo, which repeats its refinement
levels and adds separating steps, had them apart in 3 of 3 runs (docs/design.md#demo); issue 16
stays open on this test.
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
    # and 3X), then two refinement levels inside each bracket.
    plan = Plan(
        model="open",
        baseline=40.0,
        max_multiplier=6.0,
        linear_until=4.0,
        warmup_s=1.0,
        hold_s=3.0,
        refine_levels=2,
        refine_repeats=1,
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
    if segs["android-lowend-3g"]["first_fail_multiplier"] == 1.0:
        # Failed at the lowest level (at 1X its search p95 is about 86% of the objective): below
        # desktop all the same, and said as such.
        assert segs["desktop-broadband"]["last_pass_multiplier"] >= 1.0, detail
        return
    for b in (low, desk):
        assert b["label"] == "bracketed" and b["criterion"] == "latency", detail
        assert b["objective"] in {o.label for o in DEMO_OBJECTIVES}, detail
    assert low["multiplier"] < desk["multiplier"], detail
    lead = summary["first_lead"]
    assert lead["next"] == "desktop-broadband" and lead["beside"]["next_held"] is True, lead
    apart = low["high"] is not None and desk["low"] is not None and low["high"] < desk["low"]
    assert lead["apart"] is apart and lead["clearly_first"] is apart, lead
    digest = (run_dir / "summary.md").read_text()
    assert "First to break: android-lowend-3g" in digest
    assert ("clearly first" in digest) is apart
    assert apart or "not certain" in lead["text"], lead

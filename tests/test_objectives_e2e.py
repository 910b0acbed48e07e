"""End to end: behind synchronous workers the low-end 3G user breaks first (design.md#objectives).

`breakpoint demo --quick`: the embedded target holds a worker until its response is written
(sync workers), the bundled scenario runs over the six default profiles under one product-wide
set of objectives (page view and API p95) plus each profile's client timeout. Slow readers hold
workers, the server's wait grows from moderate load on, and android-lowend-3g, whose network
already takes most of the API objective, must break first, at a lower multiplier than
desktop-broadband, and the headline must claim the order only when the intervals are apart.

Not asserted: that the intervals are apart, or the criterion. In --quick the intervals were apart
in most runs, not all: in one CI run the 3G break came from timeouts with an interval reaching 2X,
in another from the within-step trend test (saturation) at 1.08X. Issue 16 keeps that open.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from breakpoint.demo.run import DEMO_OBJECTIVES, run_demo

pytestmark = pytest.mark.e2e


def test_low_end_3g_breaks_first_behind_sync_workers(tmp_path: Path) -> None:
    report = run_demo(quick=True, out_dir=tmp_path, say=lambda _: None)
    summary = json.loads((report.parent / "summary.json").read_text())
    breaks = {s["profile"]: s["break"] for s in summary["segments"]}
    low, desk = breaks["android-lowend-3g"], breaks["desktop-broadband"]
    if summary["first_to_break"] is None:
        # The generator bound the walk before any break (seen once in CI): the run must say so
        # rather than claim that nothing broke. Issue 16 keeps the demo's steadiness open.
        kinds = {w["kind"] for w in summary["warnings"]}
        assert {"generator_bound", "stopped_before_cap"} <= kinds, (kinds, breaks)
        assert "not evidence that they hold" in (report.parent / "summary.md").read_text()
        return
    assert summary["first_to_break"] == "android-lowend-3g", breaks
    # By its latency objective (named), timeouts, or (the within-step trend test misfiring on
    # bursty sync-worker steps, issue 16) saturation.
    assert low["label"] == "bracketed" and low["criterion"] is not None, low
    if low["criterion"] == "latency":
        assert low["objective"] in {o.label for o in DEMO_OBJECTIVES}
    assert low["multiplier"] < desk["multiplier"], (low, desk)
    # The headline claims the order only as far as the intervals support it.
    lead = summary["first_lead"]
    following = breaks[lead["next"]]
    apart = low["high"] is not None and following["low"] is not None
    apart = apart and low["high"] < following["low"]
    assert lead["apart"] is apart, (lead, low, following)
    digest = (report.parent / "summary.md").read_text()
    assert "First to break: android-lowend-3g" in digest
    assert apart or "not certain" in digest + lead["text"], lead

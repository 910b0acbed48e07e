"""End to end: behind synchronous workers the low-end 3G user breaks before desktop broadband
(docs/design.md#demo).

`breakpoint demo --quick`: the embedded target holds a worker until its response is written
(sync workers), the bundled scenario runs over the six default profiles under one product-wide
set of objectives (page view p95 < 6 s, the API's p95 < 1.5 s) plus each profile's client
timeout. Slow readers hold workers, the server's wait grows from moderate load on, and
android-lowend-3g, whose network already takes about 1 s of each API call, breaks on a latency
objective at a lower multiplier than desktop-broadband (1.22X vs 1.27X, 1.48X vs 1.49X, 1.40X
vs 1.71X, 1.44X vs 1.61X in four runs); in a fifth it failed at 1X already, where a burst of
slow readers took its API p95 over 1.5 s (desktop: 1.58X). The headline claims the lead only as
far as the intervals support it.

Not asserted: that the intervals are apart, or that 3G is named first. The wait of this target
jumps near its capacity (in one run every segment held at 1.47X with API p95s of 1.0-1.4 s and
failed at 1.50X at 2.5 s and more), so every segment's break lies within a few percent of the
others' and which one crosses first is close to chance (docs/design.md#demo). Issue 16 stays
open on that.
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
        # The generator bound the walk before any break (seen once in CI, on a loaded machine):
        # the run must say so rather than claim that nothing broke.
        kinds = {w["kind"] for w in summary["warnings"]}
        assert {"generator_bound", "stopped_before_cap"} <= kinds, (kinds, breaks)
        assert "not evidence that they hold" in (report.parent / "summary.md").read_text()
        return
    detail = f"3G {low}; desktop {desk}"
    assert low["criterion"] == "latency", detail
    assert low["objective"] in {o.label for o in DEMO_OBJECTIVES}, detail
    segs = {s["profile"]: s for s in summary["segments"]}
    if low["label"] != "bracketed":
        # Failed at the lowest level (a burst of slow readers at 1X): below desktop all the
        # same, and said as such.
        assert segs["android-lowend-3g"]["first_fail_multiplier"] == 1.0, detail
        assert segs["desktop-broadband"]["last_pass_multiplier"] >= 1.0, detail
        return
    assert low["multiplier"] < desk["multiplier"], detail
    # The headline claims the lead over the next segment only as far as the intervals support.
    first = breaks[summary["first_to_break"]]
    lead = summary["first_lead"]
    following = breaks[lead["next"]]
    apart = first["high"] is not None and following["low"] is not None
    apart = apart and first["high"] < following["low"]
    assert lead["apart"] is apart, (lead, first, following)
    digest = (report.parent / "summary.md").read_text()
    assert f"First to break: {summary['first_to_break']}" in digest
    assert apart or "not certain" in digest + lead["text"], lead

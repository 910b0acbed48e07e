"""End to end: behind synchronous workers the low-end 3G user breaks first (design.md#objectives).

`breakpoint demo --quick`: the embedded target holds a worker until its response is written
(sync workers), the bundled scenario runs over the six default profiles under one product-wide
set of objectives (page view and API p95) plus each profile's client timeout. Slow readers hold
workers, the server's wait grows from moderate load on, and android-lowend-3g, whose network
already takes most of the API objective, must break at a lower multiplier than desktop-broadband,
its 95% interval clear of the desktop's, the break naming the objective it crossed.
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
    assert summary["first_to_break"] == "android-lowend-3g", breaks
    assert low["label"] == "bracketed" and low["criterion"] == "latency", low
    assert low["objective"] in {o.label for o in DEMO_OBJECTIVES}
    # A lower multiplier than desktop-broadband, the intervals apart.
    assert desk["low"] is not None and low["high"] is not None
    assert low["high"] < desk["low"], (low, desk)
    # The headline's claim agrees: why (its own network) and how far ahead, intervals apart.
    why = next(s["why"] for s in summary["segments"] if s["profile"] == "android-lowend-3g")
    assert why["part"] == "network"
    assert summary["first_lead"]["apart"] is True
    assert "First to break: android-lowend-3g" in (report.parent / "summary.md").read_text()

"""Roadmap answers (analysis/roadmap.py, docs/design.md#roadmap): headroom over the expected
peak and the capacity each segment needs to hold a target, on synthetic breaks with known
answers, checked against queueing truth, and through a published run (summary.json, summary.md,
report.html, `breakpoint report --expected-peak`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from breakpoint.analysis.findings import Break
from breakpoint.analysis.roadmap import (
    ACTIONS,
    RoadmapAsked,
    fix_first,
    headroom_of,
    roadmap_settings,
)
from breakpoint.cli.main import main
from breakpoint.load.writer import RunWriter
from breakpoint.output.publish import MARKDOWN_FILE, REPORT_FILE, SUMMARY_FILE, publish
from breakpoint.sim import queueing as q
from breakpoint.sim.runbuilder import RunSpec, build_run


def brk(m: float | None, low: float | None, high: float | None, label: str) -> Break:
    return Break(m, low, high, label, "latency" if m else None, "test")  # type: ignore[arg-type]


def test_a_bracketed_break_gives_headroom_and_capacity_with_swapped_interval_ends() -> None:
    h = headroom_of("s", brk(5.0, 4.5, 5.5, "bracketed"), 5.0, expected_peak=2.0, target=10.0)
    assert h.basis == "break"
    assert (h.headroom, h.headroom_low, h.headroom_high) == pytest.approx((2.5, 2.25, 2.75))
    assert (h.capacity, h.capacity_low, h.capacity_high) == pytest.approx((2.0, 10 / 5.5, 10 / 4.5))


def test_a_break_above_the_target_needs_less_than_today() -> None:
    h = headroom_of("s", brk(12.5, 12.0, 13.0, "bracketed"), 13, expected_peak=1.0, target=10.0)
    assert h.capacity == pytest.approx(0.8) and h.headroom == pytest.approx(12.5)


def test_an_open_ended_extrapolation_gives_one_sided_intervals() -> None:
    h = headroom_of("s", brk(14.0, 11.0, None, "extrapolated"), 10, expected_peak=1.0, target=10)
    assert h.headroom_high is None and h.capacity_low is None
    assert h.headroom_low == pytest.approx(11.0) and h.capacity_high == pytest.approx(10 / 11)


def test_a_segment_that_held_gives_bounds_and_one_without_verdict_nothing() -> None:
    held = headroom_of("s", brk(None, 10.0, None, "not_reached"), 10.0, expected_peak=4, target=20)
    assert held.basis == "held" and held.headroom is None and held.capacity is None
    assert held.headroom_low == pytest.approx(2.5) and held.capacity_high == pytest.approx(2.0)
    none = headroom_of("s", brk(None, None, None, "no_verdict"), None, expected_peak=1, target=10)
    assert none.basis == "none" and none.to_dict()["capacity_factor"] is None


def test_capacity_factor_holds_the_target_on_queueing_truth() -> None:
    """An M/M/8 service (20 ms) behind a 150 ms network: 1X = 40 req/s, p95 SLO 250 ms. The
    factor the roadmap gives for 10X, applied as that many copies of the service, puts the
    segment's p95 at 10X right at its SLO (Erlang C), and the headroom is the break / peak."""
    c, service_s, base_rps, slo_ms, network_ms = 8, 0.020, 40.0, 250.0, 150.0
    b = q.break_rate(c, service_s, slo_ms, added_ms=network_ms) / base_rps
    h = headroom_of("s", brk(b, b, b, "bracketed"), b, expected_peak=3.0, target=10.0)
    assert h.headroom == pytest.approx(b / 3.0)
    per_copy_rps = 10.0 * base_rps / h.capacity  # type: ignore[operator]
    p95_ms = network_ms + 1000 * q.sojourn_p95_s(c, service_s, per_copy_rps)
    assert p95_ms == pytest.approx(slo_ms, rel=1e-3)
    # With 10% fewer copies the segment no longer holds 10X.
    fewer_rps = 10.0 * base_rps / (0.9 * h.capacity)  # type: ignore[operator]
    assert network_ms + 1000 * q.sojourn_p95_s(c, service_s, fewer_rps) > slo_ms


def test_settings_come_from_the_command_line_then_the_run_then_the_defaults() -> None:
    assert roadmap_settings({}) == (1.0, 10.0)
    stored = {"roadmap": {"expected_peak": 3.0, "target_multiplier": 12.0}}
    assert roadmap_settings(stored) == (3.0, 12.0)
    assert roadmap_settings(stored, RoadmapAsked(expected_peak=2.0)) == (2.0, 12.0)


def summary_segment(name: str, m: float | None, label: str, **extra: object) -> dict:
    return {"profile": name, "break": {"multiplier": m, "label": label}, **extra}


def test_fix_first_lists_broken_segments_least_headroom_first_with_cause_and_action() -> None:
    segments = [
        summary_segment(
            "desktop", 6.0, "bracketed",
            diagnosis={"endpoint": "/api/page", "part": "server", "multiplier": 6.5,
                       "part_growth_ms": {"server": 400.0}},
        ),
        summary_segment(
            "lowend-3g", 2.0, "bracketed",
            diagnosis={"endpoint": "/static/asset.bin", "part": "server", "multiplier": 2.2,
                       "part_growth_ms": {"server": 900.0}},
            why={"part": "network", "own_share": 0.7},
        ),
        summary_segment("held", None, "not_reached"),
    ]  # fmt: skip
    ranked = [
        headroom_of("lowend-3g", brk(2.0, 1.8, 2.2, "bracketed"), 2.2, expected_peak=1, target=10),
        headroom_of("desktop", brk(6.0, 5.5, 6.5, "bracketed"), 6.5, expected_peak=1, target=10),
        headroom_of("held", brk(None, 10, None, "not_reached"), 10, expected_peak=1, target=10),
    ]
    items = fix_first(segments, ranked)
    assert [i["profile"] for i in items] == ["lowend-3g", "desktop"]  # the held one is not listed
    first, second = items
    assert first["endpoint"] == "/static/asset.bin" and first["cause"] == "network"
    assert first["action"] == ACTIONS["network"]
    assert "server time grew +900 ms by 2.2X" in first["text"]  # the part that grew, too
    assert second["cause"] == "server wait" and second["action"] == ACTIONS["server wait"]
    assert "/api/page degrades first" in second["text"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = RunSpec(steps=14, segments=4)
    return build_run(tmp_path_factory.mktemp("reports"), spec, writer=RunWriter)


def test_a_published_run_ranks_segments_by_headroom_and_keeps_what_was_asked(
    run_dir: Path,
) -> None:
    publish(run_dir, roadmap=RoadmapAsked(expected_peak=2.0, target_multiplier=8.0))
    summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    plan_for = summary["roadmap"]
    assert (plan_for["expected_peak"], plan_for["target_multiplier"]) == (2.0, 8.0)
    breaks = {s["profile"]: s["break"] for s in summary["segments"]}
    rows = plan_for["segments"]
    assert {r["profile"] for r in rows} == set(breaks)
    ranked = [r["headroom"] for r in rows if r["basis"] == "break"]
    assert ranked == sorted(ranked) and ranked
    for row in rows:
        b = breaks[row["profile"]]
        if row["basis"] == "break":
            assert row["headroom"] == pytest.approx(b["multiplier"] / 2.0)
            assert row["capacity_factor"] * b["multiplier"] == pytest.approx(8.0)
    assert "Roadmap (expected peak 2X, target 8X)" in (run_dir / MARKDOWN_FILE).read_text()
    html = (run_dir / REPORT_FILE).read_text()
    assert 'id="roadmap"' in html and "capacity to hold 8X" in html
    broke = [r["profile"] for r in rows if r["basis"] == "break"]
    assert [f["profile"] for f in plan_for["fix_first"]] == broke
    assert (
        "What to fix first" in html
        and "What to fix first:" in (run_dir / MARKDOWN_FILE).read_text()
    )
    # Re-rendered without options: the run keeps planning for what it was asked.
    assert main(["report", str(run_dir)]) == 0
    again = json.loads((run_dir / SUMMARY_FILE).read_text())["roadmap"]
    assert (again["expected_peak"], again["target_multiplier"]) == (2.0, 8.0)
    assert main(["report", str(run_dir), "--target-multiplier", "20"]) == 0
    changed = json.loads((run_dir / SUMMARY_FILE).read_text())["roadmap"]
    assert (changed["expected_peak"], changed["target_multiplier"]) == (2.0, 20.0)
    assert all(
        math.isclose(r["capacity_factor"] * breaks[r["profile"]]["multiplier"], 20.0)
        for r in changed["segments"]
        if r["basis"] == "break"
    )


def test_bad_roadmap_values_are_usage_errors(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(run_dir), "--expected-peak", "0"]) == 2
    assert "--expected-peak" in capsys.readouterr().err

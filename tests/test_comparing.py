"""Tests for breakpoint.output.comparison: `compare` and `history` on stored runs, without any load.

Runs are written straight to disk (run.json + summary.json with known breaking points), so the
verdicts are known in advance; two tests also store measured steps without a summary (a killed
run) to exercise publishing before comparing and the comparison embedded in the new run's report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from breakpoint.cli.main import main
from breakpoint.plan.profiles import resolve_profiles
from breakpoint.plan.steps import Plan
from breakpoint.results import SegmentStep, StepResult
from breakpoint.runs.index import INDEX_FILE
from breakpoint.runs.store import write_json

LOWEND = "android-lowend-3g"
DESKTOP = "desktop-broadband"
FINGERPRINT = {
    "scenario": "5c3a1f0e9b2d4c6a",
    "profiles": "e85ebf0740d967d4",
    "plan": "7338096c7b60e136",
    "target": "embedded workers=8",
    "model": "open",
    "emulation": True,
}
T0 = 1_700_000_000.0  # a fixed epoch: runs are ordered by created_at


def write_run(
    out_dir: Path,
    label: str,
    breaks: Mapping[str, float | None],
    *,
    n: int,
    half_width: float = 0.05,
    fingerprint: Mapping[str, Any] | None = None,
    status: str = "complete",
    cap: float = 10.0,
) -> Path:
    """A published run: run.json + summary.json; a break of None held up to the cap."""
    run_id = f"{n:03d}-{label.replace('<', '').replace('>', '').replace('/', '')}"
    folder = out_dir / run_id
    folder.mkdir(parents=True)
    created_at = T0 + 3600 * n
    info = {
        "schema": 1,
        "run_id": run_id,
        "label": label,
        "created_at": created_at,
        "status": status,
        "model": "open",
        "git_rev": f"abc{n:04d}",
        "versions": {"breakpoint": "0.1.0"},
    }
    segments = []
    for profile, value in breaks.items():
        if value is None:
            brk = {"multiplier": None, "low": cap, "high": None, "label": "not_reached"}
            brk["criterion"] = None
        else:
            brk = {
                "multiplier": value,
                "low": value * (1 - half_width),
                "high": value * (1 + half_width),
                "label": "bracketed",
                "criterion": "latency",
            }
        segments.append({"profile": profile, "break": brk})
    broken = [(v, p) for p, v in breaks.items() if v is not None]
    summary = {
        **info,
        "baseline": {"value": 40.0, "unit": "req/s"},
        "max_multiplier": cap,
        "first_to_break": min(broken)[1] if broken else None,
        "fingerprint": {**FINGERPRINT, **(fingerprint or {})},
        "segments": segments,
        "steps": [],
        "warnings": [],
    }
    write_json(folder / "run.json", info)
    write_json(folder / "summary.json", summary)
    return folder


def write_release(
    out_dir: Path, label: str, values: Sequence[float], *, start: int, **kwargs: Any
) -> list[Path]:
    """Several runs of one release; the desktop segment never breaks."""
    return [
        write_run(out_dir, label, {LOWEND: v, DESKTOP: None}, n=start + i, **kwargs)
        for i, v in enumerate(values)
    ]


def measured_run(out_dir: Path, label: str, break_x: float, *, n: int) -> Path:
    """A killed run: run.json and steps whose p95 crosses the SLO at break_x; no summary."""
    plan = Plan(model="open", baseline=40.0, max_multiplier=10.0, warmup_s=1.0, hold_s=3.0, seed=1)
    profile = resolve_profiles([DESKTOP])[0]
    slo = profile.slo.p95_ms
    # p95 = a + b / (L - m) with L chosen so that p95 reaches the SLO at break_x.
    a, b = 0.4 * slo, 0.6 * slo
    capacity = break_x + b / (slo - a)
    run_id = f"{n:03d}-{label}-killed"
    folder = out_dir / run_id
    folder.mkdir(parents=True)
    info = {
        "schema": 1,
        "run_id": run_id,
        "label": label,
        "created_at": T0 + 3600 * n,
        "status": "interrupted",
        "stop_reason": "interrupted (SIGTERM)",
        "model": "open",
        "plan": plan.to_dict(),
        "profiles": [profile.as_dict()],
        "shares": {DESKTOP: 1.0},
        "scenario": {"path": "shop.py", "fingerprint": "f" * 16, "user_classes": ["Shop"]},
        "host": "http://127.0.0.1:9",
        "target": {"kind": "embedded", "workers": 8},
        "emulation": True,
        "versions": {"breakpoint": "0.1.0"},
        "git_rev": None,
    }
    write_json(folder / "run.json", info)
    lines = []
    for i, m in enumerate([1.0, 2.0, 4.0, 6.0, 8.0, 10.0]):
        p95 = a + b / (capacity - m) if m < capacity else 50 * slo
        seg = SegmentStep(
            segment=DESKTOP,
            requests=int(120 * m),
            errors={},
            offered_rps=40 * m,
            completed_rps=40 * min(m, capacity),
            p50_ms=p95 / 2,
            p90_ms=p95 * 0.9,
            p95_ms=p95,
            p99_ms=p95 * 1.3,
            max_ms=p95 * 2,
            mean_ms=p95 / 1.8,
        )
        step = StepResult(
            index=i,
            multiplier=m,
            load=40 * m,
            phase="ramp",
            started_at=info["created_at"] + 4 * i,
            warmup_s=1.0,
            measured_s=3.0,
            segments={DESKTOP: seg},
        )
        lines += [json.dumps({**rec, "final": True}) for rec in step.records()]
    (folder / "steps.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def comparison_folders(out_dir: Path) -> list[Path]:
    return sorted(out_dir.glob("compare-*"))


# --------------------------------------------------------------------------------------------
# compare: verdicts and exit codes


@pytest.mark.parametrize(
    ("base", "new", "verdict", "code"),
    [
        pytest.param(
            [9.6, 9.8, 9.7, 9.65], [6.7, 6.9, 6.8, 6.75], "regression", 3, id="regression"
        ),
        pytest.param([9.6, 9.8, 9.7, 9.65], [9.7, 9.62, 9.75, 9.68], "no_change", 0, id="a-a"),
        pytest.param([6.7, 6.9, 6.8, 6.75], [9.6, 9.8, 9.7, 9.65], "improvement", 0, id="faster"),
    ],
)
def test_compare_labels_gives_verdict_and_exit_code(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    base: list[float],
    new: list[float],
    verdict: str,
    code: int,
) -> None:
    """Comparing two labels of four runs each exits 3 only on a regression and says why."""
    write_release(tmp_path, "v1", base, start=0)
    write_release(tmp_path, "v2", new, start=10)
    got, out, _ = run_cli(capsys, "compare", "v1", "v2", "--out", str(tmp_path))
    assert got == code
    lines = out.strip().splitlines()
    (folder,) = comparison_folders(tmp_path)
    assert lines[-1] == str(folder)  # the comparison folder is printed last
    assert folder.name.startswith("compare-v1-vs-v2-")
    document = json.loads((folder / "comparison.json").read_text())
    assert document["verdict"] == verdict and document["exit_code"] == code
    assert document["schema"] == 1 and len(document["base_runs"]) == 4
    by_profile = {s["profile"]: s for s in document["segments"]}
    assert by_profile[LOWEND]["verdict"] == verdict
    assert by_profile[DESKTOP]["verdict"] == "no_change"  # held to the cap on both sides
    assert any(line.startswith(f"verdict: {verdict.replace('_', ' ')}") for line in lines) or (
        verdict == "regression" and any(line.startswith("verdict: REGRESSION") for line in lines)
    )
    table = "\n".join(lines)
    assert LOWEND in table and "p" in table and "runs needed" in table
    html = (folder / "comparison.html").read_text()
    assert "<svg" in html and verdict.replace("_", " ") in html


def test_one_run_a_side_small_shift_is_inconclusive_with_runs_needed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 5% shift with one run a side cannot be decided: exit 0 and how many runs would."""
    write_run(tmp_path, "v1", {LOWEND: 9.7}, n=0)
    write_run(tmp_path, "v2", {LOWEND: 9.2}, n=1)
    code, out, _ = run_cli(capsys, "compare", "v1", "v2", "--out", str(tmp_path))
    assert code == 0
    (folder,) = comparison_folders(tmp_path)
    segment = json.loads((folder / "comparison.json").read_text())["segments"][0]
    assert segment["verdict"] == "inconclusive" and segment["method"] == "run_intervals"
    assert isinstance(segment["runs_needed"], int) and segment["runs_needed"] >= 2
    row = next(line for line in out.splitlines() if line.startswith(LOWEND))
    assert "inconclusive" in row and row.split()[-1] == str(segment["runs_needed"])
    assert f"about {segment['runs_needed']} runs a side would decide" in out


def test_one_run_a_side_large_drop_is_a_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 30% drop far outside both runs' intervals fails even with a single run a side."""
    base = write_run(tmp_path, "v1", {LOWEND: 9.7}, n=0)
    new = write_run(tmp_path, "v2", {LOWEND: 6.8}, n=1)
    # Run ids and run folders work as references too.
    code, out, _ = run_cli(capsys, "compare", base.name, str(new), "--out", str(tmp_path))
    assert code == 3
    assert "verdict: REGRESSION: android-lowend-3g breaks at 0.701" in out


@pytest.mark.parametrize(
    ("new_values", "forced_code"),
    [pytest.param([6.8], 3, id="regression"), pytest.param([9.7], 0, id="same")],
)
def test_incomparable_runs_are_refused_unless_forced(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    new_values: list[float],
    forced_code: int,
) -> None:
    """Runs of different plans exit 2 with the reason; --force compares them with a warning."""
    write_release(tmp_path, "v1", [9.7], start=0)
    write_release(tmp_path, "v2", new_values, start=1, fingerprint={"plan": "0123456789abcdef"})
    code, out, err = run_cli(capsys, "compare", "v1", "v2", "--out", str(tmp_path))
    assert code == 2
    assert "different plan" in err and "--force" in err and "Traceback" not in err + out
    assert comparison_folders(tmp_path) == []
    code, out, _ = run_cli(capsys, "compare", "v1", "v2", "--out", str(tmp_path), "--force")
    assert code == forced_code
    assert "warning: different plan" in out


def test_a_run_without_emulation_is_not_compared_with_an_emulated_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The comparability rule (runs/summary.py) includes emulation, and compare applies it."""
    write_release(tmp_path, "v1", [9.7], start=0)
    write_release(tmp_path, "v2", [9.7], start=1, fingerprint={"emulation": False})
    code, out, err = run_cli(capsys, "compare", "v1", "v2", "--out", str(tmp_path))
    assert code == 2 and "different emulation: base True vs new False" in err
    code, out, _ = run_cli(capsys, "compare", "v1", "v2", "--out", str(tmp_path), "--force")
    assert code == 0 and "warning: different emulation" in out


def test_unknown_label_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown reference exits 2 with one line naming it, and writes nothing."""
    write_release(tmp_path, "v1", [9.7], start=0)
    code, out, err = run_cli(capsys, "compare", "v1", "v9", "--out", str(tmp_path))
    assert code == 2 and "Traceback" not in out + err
    assert "'v9'" in err and len(err.strip().splitlines()) == 1
    assert comparison_folders(tmp_path) == []


def test_no_common_segment_is_inconclusive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs measuring different segments (forced past the profiles check) decide nothing."""
    write_run(tmp_path, "v1", {LOWEND: 9.7}, n=0)
    write_run(tmp_path, "v2", {DESKTOP: 6.8}, n=1, fingerprint={"profiles": "0" * 16})
    code, out, _ = run_cli(capsys, "compare", "v1", "v2", "--out", str(tmp_path), "--force")
    assert code == 0
    assert "no segment was measured on both sides" in out
    assert "segments measured on one side only" in out


def test_runs_stopped_below_their_cap_are_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A segment that "held" only because its run stopped early is called out, not silent."""
    write_run(tmp_path, "v1", {LOWEND: None}, n=0, cap=10.0)
    short = write_run(tmp_path, "v2", {LOWEND: None}, n=1, cap=10.0)
    summary = json.loads((short / "summary.json").read_text())
    summary["segments"][0]["break"]["low"] = 2.0  # the last trusted step, far below the cap
    write_json(short / "summary.json", summary)
    code, out, _ = run_cli(capsys, "compare", "v1", "v2", "--out", str(tmp_path))
    assert code == 0
    assert f"warning: new run {short.name} stopped at 2X, below its cap 10X" in out
    assert "verdict: inconclusive" in out and "verdict: no change" not in out
    (folder,) = comparison_folders(tmp_path)
    assert "stopped at 2X" in (folder / "comparison.html").read_text()
    segment = json.loads((folder / "comparison.json").read_text())["segments"][0]
    assert segment["verdict"] == "inconclusive" and "stopped short" in segment["note"]


def test_three_runs_a_side_decide_with_welchs_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With three runs a side (`run --repeat 3`) Welch's test decides, and its p-value is shown."""
    write_release(tmp_path, "v1", [9.6, 9.8, 9.7], start=0)
    write_release(tmp_path, "v2", [8.6, 8.8, 8.7], start=10)
    code, out, _ = run_cli(capsys, "compare", "v1", "v2", "--out", str(tmp_path))
    (folder,) = comparison_folders(tmp_path)
    segment = json.loads((folder / "comparison.json").read_text())["segments"][0]
    assert segment["method"] == "bootstrap" and segment["test"] == "welch_t"
    assert segment["p_value"] < 0.001
    row = next(line for line in out.splitlines() if line.startswith(LOWEND))
    assert "(3)" in row and f" {segment['p_value']:.3g} " in row
    # A 10% drop: the ±5% run intervals widened by the band overlap, so the old rule could not
    # decide it at 3 vs 3; the test over the runs does.
    assert code == 3
    assert "p-value" in (folder / "comparison.html").read_text()


def test_same_runs_on_both_sides_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Comparing a label with itself is a mistake, not an A/A test."""
    write_release(tmp_path, "v1", [9.7, 9.6], start=0)
    code, _, err = run_cli(capsys, "compare", "v1", "v1", "--out", str(tmp_path))
    assert code == 2 and "both sides" in err


def test_noise_band_option_reaches_the_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wide --noise-band turns a 10% drop between tight releases into no regression."""
    write_release(tmp_path, "v1", [9.6, 9.8, 9.7, 9.65], start=0)
    write_release(tmp_path, "v2", [8.7, 8.8, 8.75, 8.72], start=10)
    assert run_cli(capsys, "compare", "v1", "v2", "--out", str(tmp_path))[0] == 3
    code, _, _ = run_cli(
        capsys, "compare", "v1", "v2", "--out", str(tmp_path), "--noise-band", "0.2"
    )
    assert code == 0
    documents = [
        json.loads((f / "comparison.json").read_text()) for f in comparison_folders(tmp_path)
    ]
    assert sorted(d["segments"][0]["noise_band"] for d in documents)[-1] == 0.2


def test_run_without_summary_or_steps_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run killed before its first step cannot be compared: named directly it exits 2; reached
    through its label it is skipped with a warning while the label has other runs."""
    write_release(tmp_path, "v1", [9.7], start=0)
    write_release(tmp_path, "v2", [9.6], start=1)
    empty = write_run(tmp_path, "v2", {LOWEND: 9.0}, n=2, status="interrupted")
    (empty / "summary.json").unlink()
    code, _, err = run_cli(capsys, "compare", "v1", empty.name, "--out", str(tmp_path))
    assert code == 2 and "no measured steps" in err and "Traceback" not in err
    code, out, _ = run_cli(capsys, "compare", "v1", "v2", "--out", str(tmp_path))
    assert code == 0
    assert f"skipping {empty.name}" in out and "no measured steps" in out


def test_killed_runs_are_published_then_compared_and_embedded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs without summary.json but with measured steps are published first; the new run's
    report then shows the comparison section."""
    measured_run(tmp_path, "fast", 9.0, n=0)
    slow = measured_run(tmp_path, "slow", 5.0, n=1)
    code, out, _ = run_cli(capsys, "compare", "fast", "slow", "--out", str(tmp_path))
    assert code == 3, out
    assert "publishing it first" in out
    summary = json.loads((slow / "summary.json").read_text())
    assert summary["comparison"]["verdict"] == "regression"
    assert summary["comparison"]["base_label"] == "fast"
    report = (slow / "report.html").read_text()
    assert 'id="comparison"' in report and "Compared with fast" in report
    (folder,) = comparison_folders(tmp_path)
    html = (folder / "comparison.html").read_text()
    assert f'href="../{slow.name}/report.html"' in html
    assert out.strip().splitlines()[-1] == str(folder)


def test_a_new_run_that_held_is_embedded_with_its_open_interval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new run that held against a base that broke: the ratio interval is open above, and
    the new run's report still renders the comparison (it once failed on the missing bound)."""
    measured_run(tmp_path, "base", 7.0, n=0)
    new = measured_run(tmp_path, "new", 14.0, n=1)  # holds up to its last step, 10X
    code, out, _ = run_cli(capsys, "compare", "base", "new", "--out", str(tmp_path))
    assert code == 0, out
    (folder,) = comparison_folders(tmp_path)
    segment = json.loads((folder / "comparison.json").read_text())["segments"][0]
    assert segment["ratio_low"] is not None and segment["ratio_high"] is None
    assert "–∞]" in next(line for line in out.splitlines() if line.startswith(DESKTOP))
    report = (new / "report.html").read_text()
    assert 'id="comparison"' in report and "interval open above" in report


def test_publishing_indexes_the_run_and_a_broken_index_does_not_fail_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`report` (like `run` and `demo`) updates the run index; an index it cannot write is
    skipped, since the index catches up with the folders on its next read."""
    import sqlite3

    run = measured_run(tmp_path, "v1", 7.0, n=0)
    code, out, _ = run_cli(capsys, "report", str(run))
    assert code == 0 and out.strip().endswith("report.html")
    with sqlite3.connect(tmp_path / INDEX_FILE) as conn:
        rows = conn.execute("SELECT path, has_summary FROM runs").fetchall()
    assert rows == [(run.name, 1)]

    other = tmp_path / "elsewhere"
    broken = measured_run(other, "v1", 7.0, n=1)
    (other / INDEX_FILE).mkdir()  # not a database, and not removable as one
    code, out, _ = run_cli(capsys, "report", str(broken))
    assert code == 0 and (broken / "summary.json").is_file()


def test_labels_are_escaped_in_the_comparison_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A label holding markup appears escaped in comparison.html, never as a live element."""
    evil = "<script>alert(1)</script>"
    write_release(tmp_path, "v1", [9.7], start=0)
    write_release(tmp_path, evil, [6.8], start=1)
    code, _, _ = run_cli(capsys, "compare", "v1", evil, "--out", str(tmp_path))
    assert code == 3
    (folder,) = comparison_folders(tmp_path)
    html = (folder / "comparison.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html


# --------------------------------------------------------------------------------------------
# history


def test_history_lists_runs_in_time_order_with_breaks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table has one line per run, oldest first, with each segment's break and status."""
    write_release(tmp_path, "v2", [6.8], start=5)
    write_release(tmp_path, "v1", [9.7, 9.6], start=0)
    killed = write_run(tmp_path, "v3", {LOWEND: 6.0}, n=9, status="interrupted")
    (killed / "summary.json").unlink()
    code, out, _ = run_cli(capsys, "history", "--out", str(tmp_path))
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["time", "label"] and LOWEND in lines[0] and DESKTOP in lines[0]
    labels = [line.split()[2] for line in lines[1:5]]  # after the date and the time
    assert labels == ["v1", "v1", "v2", "v3"]
    assert "9.7X" in lines[1] and "≥10X" in lines[1] and LOWEND in lines[1]
    assert "interrupted (unpublished)" in lines[4]
    assert (tmp_path / INDEX_FILE).is_file()


def test_history_html_is_a_self_contained_trend_report_with_escaped_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--html writes one file with a trend chart per segment; markup in labels is escaped."""
    evil = "<script>alert('x')</script>"
    write_release(tmp_path, "v1", [9.7, 9.6], start=0)
    write_release(tmp_path, evil, [6.8], start=5)
    write_release(tmp_path, "v3 $x$", [7.5], start=7)  # dollars would be mathtext in matplotlib
    target = tmp_path / "site" / "trend.html"
    code, out, _ = run_cli(capsys, "history", "--out", str(tmp_path), "--html", str(target))
    assert code == 0
    assert out.strip().splitlines()[-1] == str(target)
    html = target.read_text()
    assert "<script" not in html and "&lt;script&gt;" in html
    assert html.count("<svg") == 2  # one chart per segment
    assert "v3 $x$" in html
    assert "<link" not in html and " src=" not in html  # nothing loaded at view time


def test_history_of_an_empty_or_missing_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty reports folder says so (exit 0); a missing one is a usage error (exit 2)."""
    code, out, _ = run_cli(capsys, "history", "--out", str(tmp_path))
    assert code == 0 and "no runs under" in out
    code, _, err = run_cli(capsys, "history", "--out", str(tmp_path / "nope"))
    assert code == 2 and "no such reports folder" in err


def test_history_rebuilds_a_deleted_index_and_sees_new_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The index is a cache: deleted, it is rebuilt; a run added behind its back still shows."""
    write_release(tmp_path, "v1", [9.7], start=0)
    run_cli(capsys, "history", "--out", str(tmp_path))
    (tmp_path / INDEX_FILE).unlink()
    write_release(tmp_path, "v2", [6.8], start=1)
    code, out, _ = run_cli(capsys, "history", "--out", str(tmp_path))
    assert code == 0 and "v1" in out and "v2" in out
    assert (tmp_path / INDEX_FILE).is_file()


def test_comparing_does_not_import_locust() -> None:
    """compare and history work on stored runs: importing them must not monkey-patch."""
    code = (
        "import sys, breakpoint.output.comparison, breakpoint.runs.index; "
        "bad = [m for m in ('locust', 'gevent') if m in sys.modules]; "
        "sys.exit(', '.join(bad) or None)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr

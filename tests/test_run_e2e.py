"""End to end: `breakpoint run` against the embedded target on 127.0.0.1, then stopped midway."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from breakpoint.cli.main import main
from breakpoint.demo.target import TargetProcess
from breakpoint.runs.store import load_run

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]
SHOP = str(ROOT / "scenarios" / "shop.py")


def _final_steps(run_dir: Path) -> set[int]:
    steps = set()
    path = run_dir / "steps.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if rec.get("final"):
                steps.add(rec["step"])
    return steps


def test_quick_run_writes_contract_outputs(
    demo_target: TargetProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A short run stores one record per step per segment and a summary following the contract."""
    code = main(
        [
            "run",
            SHOP,
            "--host",
            demo_target.url,
            "--baseline-rps",
            "30",
            "--max-multiplier",
            "2",
            "--warmup-s",
            "0.5",
            "--hold-s",
            "2",
            "--profiles",
            "desktop-broadband,mobile-fast4g",
            "--no-emulation",
            "--label",
            "e2e",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    run_dir = Path(last)
    assert run_dir.parent == tmp_path
    stored = load_run(run_dir)
    assert [s.multiplier for s in stored.steps][:2] == [1.0, 2.0]
    for step in stored.steps:
        assert set(step.segments) == {"desktop-broadband", "mobile-fast4g"}
        assert all(seg.requests > 0 for seg in step.segments.values())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["schema"] == 1 and summary["label"] == "e2e" and summary["model"] == "open"
    for seg in summary["segments"]:
        assert {"multiplier", "low", "high", "label", "criterion"} <= set(seg["break"])
        assert seg["break"]["label"] in ("bracketed", "extrapolated", "not_reached")
    for step in summary["steps"]:
        for numbers in step["segments"].values():
            assert {
                "p50_ms",
                "p95_ms",
                "p99_ms",
                "error_rate",
                "offered_rps",
                "completed_rps",
            } <= set(numbers)
    first = summary["steps"][0]["segments"]["desktop-broadband"]
    # 30 req/s, about half for this segment: offered and completed agree when nothing breaks.
    assert first["offered_rps"] == pytest.approx(15, rel=0.5)
    assert first["completed_rps"] == pytest.approx(first["offered_rps"], rel=0.15)
    html = (run_dir / "report.html").read_text()
    assert "desktop-broadband" in html and "mobile-fast4g" in html and "<svg" in html


def _start_run(target_url: str, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "breakpoint",
            "run",
            SHOP,
            "--host",
            target_url,
            "--baseline-rps",
            "20",
            "--max-multiplier",
            "10",
            "--warmup-s",
            "0.5",
            "--hold-s",
            "1.5",
            "--profiles",
            "desktop-broadband",
            "--no-emulation",
            "--out",
            str(out),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _wait_for_final_steps(out: Path, count: int, proc: subprocess.Popen[str]) -> Path:
    deadline = time.time() + 60
    while time.time() < deadline:
        runs = [p for p in out.iterdir() if p.is_dir()] if out.exists() else []
        if runs and len(_final_steps(runs[0])) >= count:
            return runs[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    raise AssertionError("the run did not finish two steps in time")


def test_killed_run_keeps_its_steps_and_is_reportable(
    demo_target: TargetProcess, tmp_path: Path
) -> None:
    """SIGKILL after two steps leaves both steps on disk, and `report` renders the partial run."""
    proc = _start_run(demo_target.url, tmp_path)
    try:
        run_dir = _wait_for_final_steps(tmp_path, 2, proc)
    finally:
        proc.kill()
        proc.communicate()
    stored = load_run(run_dir)
    assert len(stored.steps) >= 2
    assert stored.info["status"] == "running"  # it never got to say otherwise
    assert main(["report", str(run_dir)]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert len(summary["steps"]) >= 2
    assert any(w["kind"] == "partial_run" for w in summary["warnings"])


def test_sigterm_closes_the_step_writes_the_run_and_exits_130(
    demo_target: TargetProcess, tmp_path: Path
) -> None:
    """SIGTERM mid-run closes the current step as partial, writes the report and exits 130."""
    proc = _start_run(demo_target.url, tmp_path)
    run_dir = _wait_for_final_steps(tmp_path, 1, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert out.strip().splitlines()[-1] == str(run_dir)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "interrupted" and "SIGTERM" in info["stop_reason"]
    stored = load_run(run_dir)
    assert stored.steps[-1].partial
    assert (run_dir / "report.html").is_file()

"""End to end: `breakpoint surge` against an embedded M/M/c target on 127.0.0.1, checked
against the fluid model, then re-rendered by `breakpoint report` without locust."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from breakpoint.analysis.surge import fluid_recovery_s
from breakpoint.cli.main import main
from breakpoint.demo.target import TargetConfig, TargetProcess, start_target_process

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]
PAGE_ONLY = str(ROOT / "tests" / "scenarios" / "page_only.py")

WORKERS, SERVICE_MS = 4, 40.0  # capacity 100 req/s
BASELINE_RPS, TO, FOR_S = 50.0, 3.0, 10.0
# The fluid model with the nominal numbers: the surge builds (150 - 100) x 10 = 500 requests,
# which drain at 100 - 50 = 50 a second after the drop.
NOMINAL_MODEL_S = 10.0


@pytest.fixture
def surge_target() -> Iterator[TargetProcess]:
    """A target of the test's own: 4 workers x 40 ms (100 req/s), exponential service."""
    with start_target_process(
        TargetConfig(workers=WORKERS, service_ms=SERVICE_MS, seed=11)
    ) as target:
        yield target


def test_surge_recovers_as_the_fluid_model_says(
    surge_target: TargetProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 3X surge for 10 s on a 100 req/s target at 1X = 50 req/s: the measured recovery is
    within 25% of the fluid model (nominally 10 s; computed from the target's held service
    time and the arrivals actually offered); the run folder follows the contract and
    `breakpoint report` re-renders it without importing locust."""
    assert fluid_recovery_s(
        capacity_rps=100, baseline_rps=BASELINE_RPS, surge_rps=150, surge_s=FOR_S
    ) == pytest.approx(NOMINAL_MODEL_S)
    started = time.monotonic()
    code = main(
        [
            "surge",
            PAGE_ONLY,
            "--host",
            surge_target.url,
            "--baseline-rps",
            str(BASELINE_RPS),
            "--to",
            str(TO),
            "--for-s",
            str(FOR_S),
            "--baseline-s",
            "8",
            "--warmup-s",
            "1",
            "--profiles",
            "desktop-broadband",
            "--no-emulation",
            "--slo-p95-ms",
            "500",
            "--seed",
            "5",
            "--label",
            "surge-e2e",
            "--out",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    run_dir = Path(out.strip().splitlines()[-1])
    assert run_dir.parent == tmp_path
    assert time.monotonic() - started < 90

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["kind"] == "surge" and summary["status"] == "complete"
    [seg] = summary["segments"]
    assert seg["profile"] == "desktop-broadband" and seg["label"] == "recovered", seg
    assert not any(s["generator_bound"] for s in summary["steps"]), summary["warnings"]

    # The model from what happened: the target's capacity from the service it really held,
    # the arrivals actually offered in each phase and the surge's measured length.
    stats = surge_target.stats()
    capacity = WORKERS / stats["held_service_ms_mean"] * 1000.0
    phase = {s["phase"]: s for s in summary["steps"]}
    surge_rps = phase["surge"]["segments"]["desktop-broadband"]["offered_rps"]
    baseline_rps = phase["recovery"]["segments"]["desktop-broadband"]["offered_rps"]
    model = fluid_recovery_s(
        capacity_rps=capacity,
        baseline_rps=baseline_rps,
        surge_rps=surge_rps,
        surge_s=phase["surge"]["measured_s"],
    )
    assert model is not None and model > 5, (capacity, surge_rps, baseline_rps)
    measured = seg["recovery_s"]
    print(f"fluid model {model:.1f} s (nominal {NOMINAL_MODEL_S:g} s), measured {measured:.1f} s")
    assert abs(measured - model) <= 0.25 * model, (measured, model, seg)
    assert seg["interval"]["low_s"] <= measured
    assert seg["surge_p95_ms"] > 500 and seg["peak_backlog"] > 200

    report = run_dir / "report.html"
    assert "Second by second" in report.read_text()
    report.unlink()
    probe = (
        "import sys; from breakpoint.cli.main import main; "
        f"code = main(['report', {str(run_dir)!r}]); "
        "assert 'locust' not in sys.modules and 'gevent' not in sys.modules; sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert report.is_file() and "time to recover" in report.read_text()
    again = json.loads((run_dir / "summary.json").read_text())
    assert again["segments"][0]["recovery_s"] == measured

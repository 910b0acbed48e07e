"""Acceptance: the break found in an M/M/c target matches Erlang C (docs/design.md#analysis).

The embedded target with c = 8 workers and exponential service of mean S = 20 ms, fed Poisson
arrivals on GET /api/page only, is an M/M/8 queue. With 1X = 40 req/s and an SLO of p95 < 250 ms
its true break is 9.68X. The truth is computed from the service time the target reports it
actually held (asyncio timers wake late; the seed's draws have their own mean), not from the
20 ms asked for.

Step timings (5 s warm-up, 10 s hold; about 3 minutes): the break is at 97% of capacity, where a
short step has not reached steady state, the arrival count of a window is Poisson (about 2% off
the nominal rate in 10 s), and a step after a failing one inherits its queue. Replaying the
search on a simulated M/M/8 queue, 5 s + 10 s steps land within 5% in about 97% of seeds; 3 s +
5 s steps (2 minutes) in about 90%, and with those this test failed 2 of 3 real runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from breakpoint.cli.main import main
from breakpoint.demo.target import TargetConfig, TargetProcess, start_target_process
from breakpoint.sim import queueing

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "ground_truth.py"
WORKERS = 8
SERVICE_MS = 20.0
BASELINE_RPS = 40.0
SLO_P95_MS = 250.0
PROFILE = "desktop-broadband"


@pytest.fixture
def mmc_target() -> Iterator[TargetProcess]:
    """A fresh M/M/8 target, so its held service time is this run's alone."""
    config = TargetConfig(workers=WORKERS, service_ms=SERVICE_MS, seed=5)
    with start_target_process(config) as target:
        yield target


def test_break_of_an_mmc_target_is_within_5_percent_of_erlang_c(
    mmc_target: TargetProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`breakpoint run` brackets the M/M/8 target's break within 5% of the Erlang C truth."""
    code = main(
        [
            "run",
            str(SCENARIO),
            "--host",
            mmc_target.url,
            "--baseline-rps",
            str(BASELINE_RPS),
            "--slo-p95-ms",
            str(SLO_P95_MS),
            "--profiles",
            PROFILE,
            "--no-emulation",
            "--warmup-s",
            "5",
            "--hold-s",
            "10",
            "--max-multiplier",
            "12",
            "--seed",
            "5",
            "--label",
            "ground-truth",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    held_ms = mmc_target.stats()["held_service_ms_mean"]
    assert held_ms is not None
    truth = queueing.break_rate(WORKERS, held_ms / 1000.0, SLO_P95_MS) / BASELINE_RPS
    # The held time is the asked-for 20 ms within sampling noise, so the truth is the 9.68X of
    # docs/design.md#ground-truths.
    assert truth == pytest.approx(9.68, rel=0.03)

    summary = json.loads((run_dir / "summary.json").read_text())
    (segment,) = summary["segments"]
    found = segment["break"]
    measured = ", ".join(
        f"{step['multiplier']:g}X: p95 {numbers['p95_ms'] or 0:.0f} ms at "
        f"{numbers['offered_rps'] / BASELINE_RPS:.2f}X offered"
        for step in summary["steps"]
        for numbers in step["segments"].values()
    )
    detail = (
        f"estimate {found['multiplier']}X [{found['low']}, {found['high']}] "
        f"({found['label']}, {found['criterion']}) vs truth {truth:.3f}X "
        f"(held service {held_ms:.3f} ms); steps: {measured}"
    )
    assert found["label"] == "bracketed", detail
    assert found["multiplier"] == pytest.approx(truth, rel=0.05), detail

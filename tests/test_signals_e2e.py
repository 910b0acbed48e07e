"""End to end: `breakpoint run --metrics-url` on the embedded M/M/c target names its busy workers
as what rose before the latency break (docs/design.md#server-signals).

The target has c = 4 workers and exponential service of mean 20 ms (capacity 200 req/s); 1X is
40 req/s of GET /api/page and the SLO p95 < 75 ms. Erlang C puts the p95 at 60, 61, 67 and 95 ms
at 1X to 4X (utilisation 0.2 to 0.8), so the break is a latency break near 3.5X, below
saturation (5X): the workers in use (0.8 per 1X, Little's law) rise steadily from 1X, while the
queue and the p95 rise only near the break. (With 8 workers the M/M/8 knee is so sharp that the
p95 at 4X read 260 ms in one run and 148 ms in its repeat: the break was missed. At 20 req/s and
40 ms, with 5 s holds, about 100 requests a level, the 1X p95 read 136 ms against Erlang's 120
in one CI run and 104 ms at 2X, the p95's own rise looked early, and busy workers were not named
in about one run of three: twice the rate and 6 s holds give each level about 2.4 times the
requests.) About 55 s.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from breakpoint.cli.main import main
from breakpoint.demo.target import TargetConfig, TargetProcess, start_target_process

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "ground_truth.py"
BUSY = "breakpoint_target_busy_workers"


@pytest.fixture
def mmc_target() -> Iterator[TargetProcess]:
    with start_target_process(TargetConfig(workers=4, service_ms=20.0, seed=3)) as target:
        yield target


def test_busy_workers_are_named_for_the_latency_break(
    mmc_target: TargetProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run scrapes the target's /metrics each second, breaks on latency, and names the
    busy-workers gauge as the metric whose rise preceded the break, in summary.json and on
    stdout; the scrapes are not requests of the service."""
    code = main(
        [
            "run",
            str(SCENARIO),
            "--host",
            mmc_target.url,
            "--baseline-rps",
            "40",
            "--slo-p95-ms",
            "75",
            "--profiles",
            "desktop-broadband",
            "--no-emulation",
            "--warmup-s",
            "2",
            "--hold-s",
            "6",
            "--max-multiplier",
            "6",
            "--refine-levels",
            "1",
            "--refine-repeats",
            "1",
            "--seed",
            "3",
            "--metrics-url",
            f"{mmc_target.url}/metrics",
            "--out",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    run_dir = Path(out.strip().splitlines()[-1])
    summary = json.loads((run_dir / "summary.json").read_text())
    (segment,) = summary["segments"]
    steps = ", ".join(
        f"{s['multiplier']:g}X p95 {n['p95_ms'] or 0:.0f} ms"
        for s in summary["steps"]
        for n in s["segments"].values()
    )
    signals = summary["signals"]
    detail = f"break {segment['break']}; steps: {steps}; signals: {signals['segments']}"
    assert segment["break"]["label"] in ("bracketed", "extrapolated"), detail
    assert segment["break"]["criterion"] in ("latency", "saturation"), detail
    assert segment["preceded_by"]["metric"] == BUSY, detail
    named = segment["preceded_by"]["named"]
    assert named["at_break"] > named["at_base"] and named["run_max"] <= 4, detail
    assert f"server metrics: desktop-broadband: {BUSY} rose from" in out
    assert signals["scrapes"]["failed"] == 0 and signals["scrapes"]["ok"] > 0, signals["scrapes"]
    assert "/metrics" not in mmc_target.stats()["requests"]

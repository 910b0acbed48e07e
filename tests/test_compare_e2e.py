"""End to end: the demo target as a release and as a slower one on 127.0.0.1; `compare` fails.

The demo target is an M/M/8 queue: at 20 ms per request it holds 400 req/s, at 40 ms only 200,
so with 1X = 80 req/s and a p95 SLO of 250 ms the break falls from about 4.8X to about 2.4X
(Erlang C). Whatever the noise of a short run, that is a regression, and `compare` must exit 3.
The runs use one segment without emulation, so the generator stays far from its own limits
even on a busy 2-core machine.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
BUDGET_S = 170.0  # the whole test, both runs included
ROOT = Path(__file__).resolve().parents[1]


def _breakpoint(*args: str, deadline: float) -> subprocess.CompletedProcess[str]:
    """`python -m breakpoint ARGS` in a child process, bounded by the test's deadline."""
    return subprocess.run(
        [sys.executable, "-m", "breakpoint", *args],
        capture_output=True,
        text=True,
        timeout=max(1.0, deadline - time.monotonic()),
        check=False,
    )


def _last_line(done: subprocess.CompletedProcess[str]) -> Path:
    assert done.stdout.strip(), done.stderr[-3000:]
    return Path(done.stdout.strip().splitlines()[-1])


def test_a_slower_release_is_a_regression(tmp_path: Path) -> None:
    """The target at 20 ms, then at 40 ms: `compare fast slow` exits 3 and says so."""
    from breakpoint.demo.target import TargetConfig, start_target_process

    deadline = time.monotonic() + BUDGET_S
    # The same address for both releases: a run's target fingerprint is its URL.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runs = {}
    for label, service_ms in (("fast", 20.0), ("slow", 40.0)):
        config = TargetConfig(workers=8, service_ms=service_ms, port=port)
        with start_target_process(config) as target:
            done = _breakpoint(
                "run",
                str(ROOT / "scenarios" / "ground_truth.py"),
                "--host",
                target.url,
                "--baseline-rps",
                "80",
                "--slo-p95-ms",
                "250",
                "--profiles",
                "desktop-broadband",
                "--no-emulation",
                "--warmup-s",
                "1",
                "--hold-s",
                "4",
                "--max-multiplier",
                "8",
                "--out",
                str(tmp_path),
                "--label",
                label,
                deadline=deadline,
            )
        assert done.returncode == 0, f"run {label}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        run_dir = _last_line(done)
        assert (run_dir / "report.html").is_file()
        runs[label] = run_dir
    assert (tmp_path / "index.sqlite").is_file()  # publishing indexed the runs

    done = _breakpoint("compare", "fast", "slow", "--out", str(tmp_path), deadline=deadline)
    assert done.returncode == 3, f"{done.stdout}\n{done.stderr[-3000:]}"
    assert "verdict: REGRESSION" in done.stdout
    folder = _last_line(done)
    document = json.loads((folder / "comparison.json").read_text())
    assert document["verdict"] == "regression"
    assert {s["verdict"] for s in document["segments"]} & {"regression"}
    assert (folder / "comparison.html").is_file()
    # The slower release's own report now carries the comparison.
    assert 'id="comparison"' in (runs["slow"] / "report.html").read_text()

    # History reads the index that publishing kept; its trend report charts both releases.
    html = tmp_path / "history.html"
    done = _breakpoint("history", "--out", str(tmp_path), "--html", str(html), deadline=deadline)
    assert done.returncode == 0, done.stderr[-3000:]
    assert " fast " in done.stdout and " slow " in done.stdout
    assert _last_line(done) == html
    trend = html.read_text()
    assert "<svg" in trend and "fast" in trend and "slow" in trend

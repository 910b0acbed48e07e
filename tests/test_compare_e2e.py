"""End to end: two quick demos (a release and a slower one) on 127.0.0.1, then `compare` fails.

The demo target is an M/M/8 queue: at 20 ms per request it holds 400 req/s (10X the demo's 1X
of 40 req/s); at 40 ms only 200 req/s, so every segment breaks at about half the load. Whatever
the noise of a quick run, that is a regression, and `compare` must exit 3.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
BUDGET_S = 115.0  # the whole test, both demos included


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
    """demo (20 ms) then demo --service-ms 40: `compare fast slow` exits 3 and says so."""
    deadline = time.monotonic() + BUDGET_S
    runs = {}
    for label, extra in (("fast", ()), ("slow", ("--service-ms", "40"))):
        done = _breakpoint(
            "demo", "--quick", "--out", str(tmp_path), "--label", label, *extra, deadline=deadline
        )
        assert done.returncode == 0, f"demo {label}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        report = _last_line(done)
        assert report.name == "report.html" and report.is_file()
        runs[label] = report.parent
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

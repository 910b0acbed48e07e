"""The server's own signals in a published run (docs/design.md#server-signals): a simulated run
with a metrics.jsonl gets a `signals` section and `preceded_by` in summary.json, a line in
summary.md and a section in the report; a run without one (made before `--metrics-url`) is
published exactly as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from breakpoint.load.writer import RunWriter
from breakpoint.output.publish import MARKDOWN_FILE, REPORT_FILE, SUMMARY_FILE, publish
from breakpoint.runs.metrics_file import METRICS_FILE
from breakpoint.runs.store import load_run
from breakpoint.sim.runbuilder import RunSpec, build_run

SPEC = RunSpec(steps=12, segments=3, hold_s=10.0)


def _write_metrics(run: Path) -> None:
    """One scrape a second over the run: workers in use rising in proportion to the load
    (in a pool of 8), a queue that only grows near saturation, the requests served (a counter
    growing with the load) and the pool's size; one scrape failed."""
    steps = load_run(run).steps
    start = min(s.started_at for s in steps)
    end = max(s.started_at + s.warmup_s + s.measured_s for s in steps)

    def multiplier_at(t: float) -> float:
        active = [s for s in steps if s.started_at <= t]
        return max(active, key=lambda s: s.started_at).multiplier if active else 1.0

    times, busy, queue, served, size = [], [], [], [], []
    total = 0.0
    t = start
    while t <= end:
        m = multiplier_at(t)
        times.append(t)
        busy.append(min(8.0, 0.95 * m))
        queue.append(0.002 * m**4)
        total += 40.0 * m
        served.append(total)
        size.append(8.0)
        t += 1.0
    lines = [
        {"kind": "metrics_source", "url": 0, "address": "http://127.0.0.1:9/metrics"},
        {
            "kind": "metrics_batch",
            "url": 0,
            "t": times,
            "types": {"busy": "gauge", "queue": "gauge", "size": "gauge"}
            | {"served_total": "counter"},
            "values": {"busy": busy, "queue": queue, "size": size, "served_total": served},
            "failed": [[start + 0.5, "no answer within 0.5 s"]],
            "cost_ms": [[2.0, 0.3] for _ in times],
        },
    ]
    (run / METRICS_FILE).write_text("".join(json.dumps(x) + "\n" for x in lines))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same simulated run twice: with scraped metrics and without (an older run)."""
    with_metrics = build_run(tmp_path_factory.mktemp("with"), SPEC, writer=RunWriter)
    _write_metrics(with_metrics)
    publish(with_metrics)
    without = build_run(tmp_path_factory.mktemp("without"), SPEC, writer=RunWriter)
    publish(without)
    return with_metrics, without


def test_summary_names_the_pool_for_the_first_break(runs: tuple[Path, Path]) -> None:
    """The workers in use, rising from 1X, are named for the first segment to break; the
    failed scrape is counted and warned about."""
    summary = json.loads((runs[0] / SUMMARY_FILE).read_text())
    signals = summary["signals"]
    first = summary["first_to_break"]
    assert first is not None
    entry = signals["segments"][first]
    assert entry["metric"] == "busy"
    assert entry["named"]["at_base"] < entry["named"]["at_break"]
    assert entry["text"].startswith("busy rose from ")
    (seg,) = [s for s in summary["segments"] if s["profile"] == first]
    assert seg["preceded_by"]["metric"] == "busy"
    assert signals["scrapes"]["failed"] == 1 and signals["scrapes"]["ok"] > 0
    assert any(w["kind"] == "metrics" and "1 of" in w["message"] for w in summary["warnings"])
    assert signals["table"]["metrics"][0] == {"metric": "busy", "kind": "gauge"}
    assert len(signals["table"]["steps"]) == len(summary["steps"])


def test_digest_and_report_say_what_preceded_the_break(runs: tuple[Path, Path]) -> None:
    """summary.md lists it under the server metrics; the report has its section and table."""
    md = (runs[0] / MARKDOWN_FILE).read_text()
    assert "Server metrics (" in md and ": busy rose from " in md
    html = (runs[0] / REPORT_FILE).read_text()
    assert '<section id="signals">' in html and "busy (gauge)" in html
    assert "not proof of a cause" in html


def test_a_run_without_metrics_is_published_as_before(runs: tuple[Path, Path]) -> None:
    """No metrics.jsonl: no signals section, no preceded_by, no report section."""
    summary = json.loads((runs[1] / SUMMARY_FILE).read_text())
    assert "signals" not in summary
    assert all("preceded_by" not in s for s in summary["segments"])
    assert '<section id="signals">' not in (runs[1] / REPORT_FILE).read_text()
    assert "Server metrics" not in (runs[1] / MARKDOWN_FILE).read_text()

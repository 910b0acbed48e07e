"""summary.json's `signals` section: the server metrics scraped during a run (`--metrics-url`),
per step, and for each segment that broke the metric whose rise preceded its break
(analysis/precedes.py; docs/design.md#server-signals). A run without scraped metrics (made
without `--metrics-url`, or before it existed) has no such section.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from breakpoint.analysis.findings import Analysis
from breakpoint.analysis.precedes import RULE, Preceded, preceded
from breakpoint.analysis.signals import Kind, StepValue, aggregate, windows_of
from breakpoint.results import StepResult
from breakpoint.runs.metrics_file import StoredMetrics, read_metrics

MAX_SHOWN = 5  # series in the per-step table: the ones named, then the other leaders


def signals_section(
    run_dir: Path, steps: Sequence[StepResult], analysis: Analysis
) -> dict[str, Any] | None:
    """The `signals` section of the run in `run_dir` (None: it scraped no metrics)."""
    stored = read_metrics(run_dir)
    if stored is None:
        return None
    return build_signals(stored, steps, analysis)


def build_signals(
    stored: StoredMetrics, steps: Sequence[StepResult], analysis: Analysis
) -> dict[str, Any]:
    windows = windows_of(
        (s.index, s.multiplier, s.started_at, s.warmup_s, s.measured_s) for s in steps
    )
    per_step = aggregate(stored.series, windows)
    kinds: dict[str, Kind] = {k: s.kind for k, s in stored.series.items()}
    found = {
        name: p for name, seg in analysis.segments.items() if (p := preceded(seg, per_step, kinds))
    }
    shown = _shown(found.values(), per_step)
    ok = sum(s.ok for s in stored.sources)
    failed = sum(s.failed for s in stored.sources)
    return {
        "urls": [s.address for s in stored.sources],
        "scrapes": {"ok": ok, "failed": failed, "per_url": [s.as_dict() for s in stored.sources]},
        "series": len(stored.series),
        "rule": RULE,
        "segments": {name: p.as_dict() for name, p in found.items()},
        "table": {
            "metrics": [{"metric": k, "kind": kinds[k]} for k in shown],
            "steps": [
                {
                    "step": s.index,
                    "multiplier": s.multiplier,
                    "values": {
                        k: per_step[k][s.index].as_dict() for k in shown if s.index in per_step[k]
                    },
                }
                for s in steps
            ],
        },
        "warnings": list(stored.warnings) + _scrape_warnings(stored),
    }


def _shown(
    found: Sequence[Preceded] | Any, per_step: Mapping[str, Mapping[int, StepValue]]
) -> list[str]:
    """The series worth a column: every one named, then the other candidates, best first."""
    keys: list[str] = []
    found = list(found)
    for p in found:
        if p.named is not None and p.named.metric not in keys:
            keys.append(p.named.metric)
    for p in found:
        for c in p.candidates:
            if c.metric not in keys:
                keys.append(c.metric)
    return [k for k in keys if k in per_step][:MAX_SHOWN]


def _scrape_warnings(stored: StoredMetrics) -> list[str]:
    out = []
    for s in stored.sources:
        if s.ok == 0:
            out.append(
                f"--metrics-url {s.address}: never answered ({s.failed} scrapes failed; last: "
                f"{s.last_error or 'unknown'}): no server metrics from it"
            )
        elif s.failed:
            out.append(
                f"--metrics-url {s.address}: {s.failed} of {s.ok + s.failed} scrapes failed "
                f"(last: {s.last_error or 'unknown'}); steps lacking its samples are left out"
            )
        if s.dropped_series:
            out.append(
                f"--metrics-url {s.address}: {s.dropped_series} series beyond the first "
                "1000 were not kept"
            )
    return out

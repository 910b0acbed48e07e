"""The server's own signals in words and a table (summary.md, stdout at the end of a run, the
report's section): for each segment that broke, the metric whose rise preceded its break, or
that none clearly did; and the leading metrics per step (docs/design.md#server-signals).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def signal_lines(signals: Mapping[str, Any] | None) -> list[str]:
    """One line per segment judged, `segment: text` (empty without signals)."""
    if not signals:
        return []
    return [f"{name}: {entry['text']}" for name, entry in signals.get("segments", {}).items()]


def scrape_line(signals: Mapping[str, Any]) -> str:
    """How the scraping went: scrapes answered and failed, and what parsing cost."""
    scrapes = signals.get("scrapes", {})
    parse = [u["parse_ms"]["max"] for u in scrapes.get("per_url", []) if u["parse_ms"]["max"]]
    cost = f"; parsing held the event loop at most {max(parse):.1f} ms a scrape" if parse else ""
    return (
        f"{signals.get('series', 0)} series from {len(signals.get('urls', []))} URL(s), "
        f"{scrapes.get('ok', 0)} scrapes answered, {scrapes.get('failed', 0)} failed{cost}"
    )


def markdown_lines(signals: Mapping[str, Any] | None) -> list[str]:
    """summary.md's part: what preceded each break."""
    if not signals:
        return []
    lines = ["", f"Server metrics ({scrape_line(signals)}):", ""]
    lines += [f"- {line}" for line in signal_lines(signals)] or ["- no segment broke"]
    return lines


def table(signals: Mapping[str, Any] | None) -> tuple[list[str], list[tuple[float, list[str]]]]:
    """The report's table: the leading metrics' names, and per step its multiplier and each
    one's mean over the step's measured window (max in brackets; a counter as a rate per s)."""
    if not signals:
        return [], []
    metrics = [m["metric"] for m in signals["table"]["metrics"]]
    kinds = {m["metric"]: m["kind"] for m in signals["table"]["metrics"]}
    heads = [f"{k} ({'rate/s' if kinds[k] == 'counter' else 'gauge'})" for k in metrics]
    rows = []
    for step in signals["table"]["steps"]:
        cells = []
        for k in metrics:
            v = step["values"].get(k)
            cells.append("–" if v is None else f"{v['mean']:.3g} ({v['max']:.3g})")
        rows.append((float(step["multiplier"]), cells))
    return heads, rows


def run_lines(run_dir: Path) -> list[str]:
    """The lines of a published run's summary.json (empty when it has no signals)."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return signal_lines(summary.get("signals")) if isinstance(summary, dict) else []

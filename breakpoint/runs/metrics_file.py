"""`metrics.jsonl`, the server metrics scraped during a run (`--metrics-url`), read back.

Written by load/scrape.py through the run writer: per URL, a `metrics_source` line, then
`metrics_batch` lines of a few seconds each (the scrape times, each series' raw values aligned
with them, null where a scrape lacked it, its kind, failed scrapes with their reason, and what
each scrape cost). A torn last line is skipped, like steps.jsonl's. A run made without
`--metrics-url`, or before it existed, has no such file: `read_metrics` then returns None.
(docs/design.md#server-signals)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from breakpoint.analysis.signals import Kind, SeriesSamples

METRICS_FILE = "metrics.jsonl"


def shown(url: str) -> str:
    """A scraped URL as stored and printed: no credentials, no query (either may hold a secret)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass
class SourceStats:
    """One scraped URL: scrapes that answered and that failed, the last failure, the cost."""

    address: str
    ok: int = 0
    failed: int = 0
    last_error: str | None = None
    fetch_ms: list[float] = field(default_factory=list)  # wall time of each answered scrape
    parse_ms: list[float] = field(default_factory=list)  # time parsing held the event loop
    dropped_series: int = 0

    def as_dict(self) -> dict[str, Any]:
        def stat(values: list[float]) -> dict[str, float | None]:
            ordered = sorted(values)
            return {
                "mean": sum(ordered) / len(ordered) if ordered else None,
                "p50": ordered[len(ordered) // 2] if ordered else None,
                "max": ordered[-1] if ordered else None,
            }

        return {
            "url": self.address,
            "ok": self.ok,
            "failed": self.failed,
            "last_error": self.last_error,
            "fetch_ms": stat(self.fetch_ms),
            "parse_ms": stat(self.parse_ms),
            "dropped_series": self.dropped_series,
        }


@dataclass(frozen=True)
class StoredMetrics:
    """Every series scraped during a run, and how each URL's scraping went."""

    sources: tuple[SourceStats, ...]
    series: Mapping[str, SeriesSamples]
    warnings: tuple[str, ...] = ()


def read_metrics(run_dir: Path) -> StoredMetrics | None:
    """The run's scraped metrics, or None when it has none."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return None
    sources: dict[int, SourceStats] = {}
    raw: dict[tuple[int, str], tuple[Kind, list[float], list[float]]] = {}
    warnings: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            _read_line(rec, sources, raw)
        except (ValueError, KeyError, TypeError, AttributeError):
            warnings.append(f"{path}:{number}: unreadable metrics line skipped (torn write?)")
    tagged = len(sources) > 1
    series: dict[str, SeriesSamples] = {}
    for (url, key), (kind, ts, vs) in sorted(raw.items()):
        name = f"{key} @{_where(sources[url].address)}" if tagged and url in sources else key
        order = sorted(range(len(ts)), key=ts.__getitem__)
        series[name] = SeriesSamples(
            name, kind, tuple(ts[i] for i in order), tuple(vs[i] for i in order)
        )
    return StoredMetrics(tuple(sources[i] for i in sorted(sources)), series, tuple(warnings))


def _where(address: str) -> str:
    parts = urlsplit(address)
    return f"{parts.netloc}{parts.path}"


def _read_line(
    rec: Mapping[str, Any],
    sources: dict[int, SourceStats],
    raw: dict[tuple[int, str], tuple[Kind, list[float], list[float]]],
) -> None:
    kind = rec.get("kind")
    url = int(rec["url"])
    if kind == "metrics_source":
        sources[url] = SourceStats(str(rec["address"]))
        return
    if kind != "metrics_batch":
        return
    source = sources.setdefault(url, SourceStats(f"url {url}"))
    times = [float(t) for t in rec["t"]]
    types = rec.get("types", {})
    for key, values in rec.get("values", {}).items():
        series_kind: Kind = "counter" if types.get(key) == "counter" else "gauge"
        entry = raw.setdefault((url, str(key)), (series_kind, [], []))
        for t, v in zip(times, values, strict=True):
            if v is not None:
                entry[1].append(t)
                entry[2].append(float(v))
    failed = rec.get("failed", [])
    source.ok += len(times)
    source.failed += len(failed)
    if failed:
        source.last_error = str(failed[-1][1])
    for fetch_ms, parse_ms in rec.get("cost_ms", []):
        source.fetch_ms.append(float(fetch_ms))
        source.parse_ms.append(float(parse_ms))
    source.dropped_series = max(source.dropped_series, int(rec.get("dropped_series", 0)))

"""Scraping the server's own metrics during a run (`--metrics-url`): one GET per URL per second.

Runs in the controller's process (the master of a distributed run), one greenlet per URL, off
the measurement's hot path: the GET is cooperative (gevent-patched sockets) with a short
timeout, so it never holds the event loop while waiting; only parsing does, and that time is
measured and stored with each scrape. The text is parsed by prometheus_client's parser. Series
are kept as raw values (a counter's total, a gauge's level; histogram buckets, summary quantiles
and `_created` samples are left out, a histogram's or summary's `_sum` and `_count` kept as
counters, an untyped `_total` read as a counter) and appended to metrics.jsonl every few
seconds through the run writer, so a run cut short keeps what it scraped. A scrape that fails
or times out is counted with its reason and never stops the run
(docs/design.md#server-signals).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gevent
from prometheus_client.parser import text_string_to_metric_families

from breakpoint.load.writer import RunWriter
from breakpoint.runs.metrics_file import METRICS_FILE, shown

SCRAPE_EVERY_S = 1.0
TIMEOUT_S = 0.5  # well under the period: a slow endpoint costs a missing sample, not a late one
FLUSH_EVERY = 5  # scrapes per metrics.jsonl line
MAX_BYTES = 4_000_000
MAX_SERIES = 1000  # per URL; more are counted as dropped
WARN_AFTER = 3  # failures in a row, before any answer, that earn a warning
# Samples of these types or suffixes are not series of their own: buckets and quantiles are a
# distribution's shape; `_created` is a timestamp.
_SKIPPED_TYPES = ("info", "stateset")
_COUNTED_SUFFIXES = ("_total", "_count", "_sum")


def flatten(text: str) -> tuple[dict[str, float], dict[str, str]]:
    """Each series' value and kind ("gauge" or "counter") in one scrape; ValueError when the
    text is not the Prometheus text format."""
    values: dict[str, float] = {}
    kinds: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        if family.type in _SKIPPED_TYPES:
            continue
        for sample in family.samples:
            name = sample.name
            if name.endswith(("_bucket", "_created")) or "quantile" in sample.labels:
                continue
            if family.type in ("counter", "histogram", "summary"):
                if not name.endswith(_COUNTED_SUFFIXES):
                    continue
                kind = "counter"
            elif family.type == "unknown" and name.endswith("_total"):
                kind = "counter"  # untyped, but named as Prometheus names counters
            else:
                kind = "gauge"  # gauge, gaugehistogram's _gcount/_gsum, unknown
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            key = f"{name}{{{labels}}}" if labels else name
            values[key] = float(sample.value)
            kinds[key] = kind
    return values, kinds


@dataclass
class _Source:
    """One URL being scraped: its batch not yet written, and its counts."""

    index: int
    url: str
    ok: int = 0
    failed: int = 0
    in_a_row: int = 0
    warned: bool = False
    t: list[float] = field(default_factory=list)
    rows: list[dict[str, float]] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)
    failures: list[tuple[float, str]] = field(default_factory=list)
    cost_ms: list[tuple[float, float]] = field(default_factory=list)
    dropped: int = 0

    def batch(self) -> dict[str, Any] | None:
        if not self.t and not self.failures:
            return None
        keys = sorted({k for row in self.rows for k in row})
        record = {
            "kind": "metrics_batch",
            "url": self.index,
            "t": self.t,
            "types": {k: self.kinds[k] for k in keys},
            "values": {k: [row.get(k) for row in self.rows] for k in keys},
            "failed": self.failures,
            "cost_ms": self.cost_ms,
            "dropped_series": self.dropped,
        }
        self.t, self.rows, self.failures, self.cost_ms = [], [], [], []
        return record


class MetricsScraper:
    """Scrapes each URL once a second into the run folder until stopped."""

    def __init__(
        self,
        urls: Sequence[str],
        writer: RunWriter,
        *,
        warn: Callable[[str], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sources = [_Source(i, url) for i, url in enumerate(urls)]
        self.writer = writer
        self.warn = warn
        self.clock = clock
        self._greenlets: list[Any] = []
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._open = opener.open
        for source in self.sources:
            line = {"kind": "metrics_source", "url": source.index, "address": shown(source.url)}
            writer.append_line(METRICS_FILE, line)

    def start(self) -> list[Any]:
        """The scraping greenlets (one per URL), started."""
        self._greenlets = [gevent.spawn(self._loop, s) for s in self.sources]
        return list(self._greenlets)

    def stop(self) -> dict[str, Any]:
        """Stop scraping, queue what is left for writing, and say how it went (for run.json)."""
        gevent.killall(self._greenlets, block=True, timeout=2)
        for source in self.sources:
            self._flush(source)
        return {
            "urls": [shown(s.url) for s in self.sources],
            "scrapes": [
                {"url": shown(s.url), "ok": s.ok, "failed": s.failed} for s in self.sources
            ],
        }

    def scrape_once(self, source: _Source) -> None:
        """One GET and parse; the result (or the failure) goes into the source's batch."""
        started = time.perf_counter()
        at = self.clock()
        try:
            with self._open(source.url, timeout=TIMEOUT_S) as response:
                body = response.read(MAX_BYTES + 1)
            if len(body) > MAX_BYTES:
                raise ValueError(f"answer larger than {MAX_BYTES // 1_000_000} MB")
            fetched = time.perf_counter()
            values, kinds = flatten(body.decode("utf-8", errors="replace"))
            parse_ms = (time.perf_counter() - fetched) * 1000.0
        except Exception as exc:  # a failed scrape is counted, never raised: the run goes on
            self._failed(source, at, _reason(exc))
            return
        if len(values) > MAX_SERIES:
            source.dropped = max(source.dropped, len(values) - MAX_SERIES)
            values = dict(sorted(values.items())[:MAX_SERIES])
        source.ok += 1
        source.in_a_row = 0
        source.t.append(at)
        source.rows.append(values)
        source.kinds.update({k: kinds[k] for k in values})
        source.cost_ms.append(((fetched - started) * 1000.0, parse_ms))

    def _failed(self, source: _Source, at: float, reason: str) -> None:
        source.failed += 1
        source.in_a_row += 1
        source.failures.append((at, reason))
        if source.ok == 0 and source.in_a_row >= WARN_AFTER and not source.warned:
            source.warned = True
            self.warn(
                f"--metrics-url {shown(source.url)}: no answer in {source.in_a_row} scrapes "
                f"({reason}); the run goes on, without this server's metrics until it answers"
            )

    def _loop(self, source: _Source) -> None:
        next_at = time.monotonic()
        while True:
            self.scrape_once(source)
            if len(source.t) + len(source.failures) >= FLUSH_EVERY:
                self._flush(source)
            next_at += SCRAPE_EVERY_S
            now = time.monotonic()
            next_at = max(next_at, now)  # a scrape overran its second: skip ahead, no burst
            gevent.sleep(next_at - now)

    def _flush(self, source: _Source) -> None:
        record = source.batch()
        if record is not None:
            self.writer.append_line(METRICS_FILE, record)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) or "timed out" in str(exc):
        return f"no answer within {TIMEOUT_S:g} s"
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    text = str(getattr(exc, "reason", "") or exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:200]

"""Scraping `--metrics-url` (load/scrape.py) against real sockets on 127.0.0.1: the embedded
target's /metrics is read and stored; a refused connection, a server that never answers, a page
that is not the text format and a 404 are each counted as a failed scrape with its reason, warned
about once when the URL never answered, and never raised (docs/design.md#server-signals)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import gevent
import pytest

from breakpoint.demo.target import TargetProcess
from breakpoint.load.scrape import WARN_AFTER, MetricsScraper
from breakpoint.load.writer import RunWriter
from breakpoint.runs.metrics_file import read_metrics


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"http://127.0.0.1:{server.getsockname()[1]}/metrics"


@pytest.fixture
def closed_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/metrics"


def test_good_and_failing_urls_are_scraped_counted_and_stored(
    demo_target: TargetProcess, silent_url: str, closed_url: str, tmp_path: Path
) -> None:
    """One scrape per URL per call: the target's series are stored with their kinds and cost;
    every failure is counted with its reason; a URL that never answered is warned about once."""
    urls = [
        f"{demo_target.url}/metrics",
        closed_url,
        silent_url,
        f"{demo_target.url}/api/search?q=x",  # JSON, not the text format
        f"{demo_target.url}/no-metrics-here",  # 404
    ]
    writer = RunWriter(tmp_path, "scrape", {})
    warnings: list[str] = []
    scraper = MetricsScraper(urls, writer, warn=warnings.append)
    for _ in range(WARN_AFTER + 1):
        for source in scraper.sources:
            scraper.scrape_once(source)
    done = scraper.stop()
    writer.close()

    assert [s["ok"] for s in done["scrapes"]] == [WARN_AFTER + 1, 0, 0, 0, 0]
    assert [s["failed"] for s in done["scrapes"]] == [0, *[WARN_AFTER + 1] * 4]
    assert len(warnings) == 4  # once per URL that never answered
    assert all("--metrics-url" in w and "the run goes on" in w for w in warnings)
    stored = read_metrics(writer.path)
    assert stored is not None
    good, refused, silent, not_text, missing = stored.sources
    assert "refused" in (refused.last_error or "").lower()
    assert silent.last_error == "no answer within 0.5 s"
    assert "ValueError" in (not_text.last_error or "")
    assert missing.last_error == "HTTP 404 Not Found"
    assert good.ok == WARN_AFTER + 1 and len(good.parse_ms) == WARN_AFTER + 1
    busy = next(k for k in stored.series if k.startswith("breakpoint_target_busy_workers"))
    assert stored.series[busy].kind == "gauge" and len(stored.series[busy].t) == WARN_AFTER + 1
    served = [k for k in stored.series if k.startswith("breakpoint_target_requests_total")]
    assert served and all(stored.series[k].kind == "counter" for k in served)


def test_the_background_loop_scrapes_about_once_a_second_until_stopped(
    demo_target: TargetProcess, tmp_path: Path
) -> None:
    """Started, it scrapes in its own greenlet while others run; stopped, its reads are on disk."""
    writer = RunWriter(tmp_path, "scrape", {})
    scraper = MetricsScraper([f"{demo_target.url}/metrics"], writer, warn=pytest.fail)
    greenlets = scraper.start()
    gevent.sleep(2.5)
    assert all(not g.dead for g in greenlets)
    done = scraper.stop()
    writer.close()
    assert all(g.dead for g in greenlets)
    ok = done["scrapes"][0]["ok"]
    assert 2 <= ok <= 4, done  # once a second over 2.5 s, never a burst
    stored = read_metrics(writer.path)
    assert stored is not None and stored.sources[0].ok == ok

"""The demo target's own signals in the Prometheus text format, served at GET /metrics.

What a real server would expose about the model the target implements (service.py): its worker
count, the workers held now, the requests waiting for one now (gauges, read at the moment of the
scrape), and the responses of its service paths by path and status (a counter that never
resets). Formatted by prometheus_client, not by hand. A scrape holds no worker and is not counted
as a request of the service (docs/design.md#server-signals).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
PREFIX = "breakpoint_target"


class _Snapshot:
    """The values of one scrape, as the collector generate_latest() reads."""

    def __init__(
        self, workers: int, busy: int, queue_length: int, served: Mapping[tuple[str, int], int]
    ) -> None:
        self.workers, self.busy, self.queue_length = workers, busy, queue_length
        self.served = dict(served)

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(f"{PREFIX}_workers", "Workers of the service.", value=self.workers)
        yield GaugeMetricFamily(
            f"{PREFIX}_busy_workers", "Workers held by a request now.", value=self.busy
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_queue_length", "Requests waiting for a worker now.", value=self.queue_length
        )
        served = CounterMetricFamily(
            f"{PREFIX}_requests",
            "Responses of the service's paths, by path and status.",
            labels=("path", "code"),
        )
        for (path, code), count in sorted(self.served.items()):
            served.add_metric((path, str(code)), count)
        yield served


def exposition(
    *, workers: int, busy: int, queue_length: int, served: Mapping[tuple[str, int], int]
) -> bytes:
    """The /metrics body for these values."""
    return generate_latest(_Snapshot(workers, busy, queue_length, served))

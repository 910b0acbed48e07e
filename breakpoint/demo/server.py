"""The demo target's asyncio HTTP/1.1 service: routes, counters (/__stats) and admin calls.

By default a worker (service.py) is held only for the service time; the response is written after
the worker is released, as an asynchronous server hands its bytes to the kernel and moves on. A
client that reads slowly then holds its connection (seen in the drain statistics), not a worker,
so network emulation adds latency without changing the capacity. With `sync_workers` a worker is
held until the response is written (drain() returned), as gunicorn's sync workers or a
thread-per-request server do: slow readers then consume capacity (docs/design.md#sync-workers).
Run it in its own process (target.py) so it shares no GIL with the load generator; never imports
locust or gevent.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from breakpoint.demo.exposition import METRICS_CONTENT_TYPE, exposition
from breakpoint.demo.service import (
    ASSET_COST,
    PAGE_COST,
    SEARCH_COST,
    CompensatedTimer,
    ServiceSampler,
    TargetConfig,
    WorkerPool,
)
from breakpoint.demo.wire import (
    BAD_REQUEST,
    BINARY,
    HEAD_TOO_LARGE,
    JSON,
    MAX_HEAD_BYTES,
    TEXT,
    BadRequestError,
    Request,
    Response,
    build_bodies,
    discard_body,
    json_bytes,
    parse_head,
    response_head,
)
from breakpoint.errors import TargetError

LISTEN_BACKLOG = 4096
# Unsent bytes the kernel may queue per connection (TCP_NOTSENT_LOWAT; SO_SNDBUF stays default).
# Loopback's 64 KB MTU makes Linux autotune the send buffer to about 4 MB at once, so a slow reader
# would never block the server on a 200 KB response; on a real NIC (1500-byte MTU) the kernel holds
# far less. Bounding the unsent part restores that: with a reader's small receive window about
# 70 KB sits in the kernel and the rest waits in the server, where drain() feels it.
KERNEL_UNSENT_LIMIT_BYTES = 65_536
_WORKER_PATHS = {
    "/api/page": PAGE_COST,
    "/api/search": SEARCH_COST,
    "/static/asset.bin": ASSET_COST,
}
_BODY_OK_PATHS = frozenset({"/api/page", "/api/search"})


@dataclass
class _EndpointStats:
    """Counters for one endpoint; the drain time is from starting to write to drain() returning."""

    requests: int = 0
    drain_count: int = 0
    drain_total_s: float = 0.0
    drain_max_s: float = 0.0


@dataclass
class _Counters:
    """Everything /__admin/reset clears."""

    endpoints: dict[str, _EndpointStats] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    held_count: int = 0
    held_total_ms: float = 0.0  # per unit cost
    drawn_total_ms: float = 0.0  # per unit cost
    rejected_503: int = 0
    stalls: int = 0
    started: float = field(default_factory=time.perf_counter)

    def endpoint(self, key: str) -> _EndpointStats:
        stats = self.endpoints.get(key)
        if stats is None:
            stats = self.endpoints[key] = _EndpointStats()
        return stats


class TargetServer:
    """The demo target in the current event loop: start(), stats(), stop()."""

    def __init__(self, config: TargetConfig | None = None) -> None:
        self.config = config if config is not None else TargetConfig()
        self.port: int | None = None
        self._pool = WorkerPool(self.config.workers, self.config.max_queue)
        self._sampler = ServiceSampler(
            self.config.service_ms, self.config.distribution, self.config.seed
        )
        self._timer = CompensatedTimer()
        self._counters = _Counters()
        self._bodies = build_bodies()
        self._server: asyncio.Server | None = None
        self._connection_tasks: set[asyncio.Task[Any]] = set()
        self._connections_total = 0
        self._in_flight = 0
        self._in_service = 0  # requests holding a worker for their service time now
        self._stall_until = 0.0
        # Responses of the service's own paths by (path, status), never reset: the counter
        # /metrics exposes (a Prometheus counter only ever grows).
        self._served: dict[tuple[str, int], int] = {}

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        if self.port is None:
            raise TargetError("the demo target is not started")
        return f"http://{self.config.host}:{self.port}"

    async def start(self) -> int:
        """Start listening and return the bound port."""
        try:
            self._server = await asyncio.start_server(
                self._handle_connection,
                self.config.host,
                self.config.port,
                limit=MAX_HEAD_BYTES,
                backlog=LISTEN_BACKLOG,
            )
        except OSError as exc:
            raise TargetError(
                f"cannot listen on {self.config.host}:{self.config.port}: {exc.strerror or exc}"
            ) from exc
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        """Stop accepting, close every connection and wait for their handlers to end."""
        if self._server is not None:
            self._server.close()
        tasks = list(self._connection_tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def reset(self) -> None:
        """Clear the counters (not the live queue, the stall or the random sequence)."""
        self._counters = _Counters()
        self._pool.max_queue_length = self._pool.queue_length

    def stall(self, ms: float) -> None:
        """Make every request that starts service during the next ms wait until the stall ends."""
        self._stall_until = max(self._stall_until, time.perf_counter() + ms / 1000.0)
        self._counters.stalls += 1

    def stats(self) -> dict[str, Any]:
        """The counters served at /__stats (held and drawn service times, queue, drains)."""
        counters = self._counters
        config = self.config
        held_count = counters.held_count
        endpoints = sorted(counters.endpoints.items())
        return {
            "requests": {key: stats.requests for key, stats in endpoints},
            "requests_total": sum(stats.requests for _, stats in endpoints),
            "statuses": {str(code): n for code, n in sorted(counters.statuses.items())},
            "held_service_ms_mean": counters.held_total_ms / held_count if held_count else None,
            "held_service_ms_count": held_count,
            "drawn_service_ms_mean": counters.drawn_total_ms / held_count if held_count else None,
            "timer_overshoot_ms": self._timer.overshoot_s * 1000.0,
            "service_ms": config.service_ms,
            "distribution": config.distribution,
            "seed": config.seed,
            "workers": config.workers,
            "sync_workers": config.sync_workers,
            "capacity_rps": config.capacity_rps,
            "max_queue": config.max_queue,
            "queue_length": self._pool.queue_length,
            "max_queue_length": self._pool.max_queue_length,
            "busy_workers": self._pool.busy,
            "in_flight": self._in_flight,
            "rejected_503": counters.rejected_503,
            "stalls": counters.stalls,
            "stall_remaining_ms": max(0.0, self._stall_until - time.perf_counter()) * 1000.0,
            "connections_open": len(self._connection_tasks),
            "connections_total": self._connections_total,
            "uptime_s": time.perf_counter() - counters.started,
            "drain_ms": {
                key: {
                    "count": stats.drain_count,
                    "mean": stats.drain_total_s / stats.drain_count * 1000.0
                    if stats.drain_count
                    else None,
                    "max": stats.drain_max_s * 1000.0,
                }
                for key, stats in endpoints
                if stats.drain_count
            },
        }

    async def _handle_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connection_tasks.add(task)
        self._connections_total += 1
        sock = writer.get_extra_info("socket")
        if sock is not None and hasattr(socket, "TCP_NOTSENT_LOWAT"):
            with contextlib.suppress(OSError):
                sock.setsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, KERNEL_UNSENT_LIMIT_BYTES
                )
        try:
            await self._serve_connection(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the client went away; nothing to answer
        except asyncio.CancelledError:
            # Only stop() cancels a connection. Ending the task normally keeps asyncio's stream
            # callback (which calls task.exception()) from logging every cancelled connection.
            pass
        finally:
            if task is not None:
                self._connection_tasks.discard(task)
            writer.close()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if exc.partial.strip():
                    await self._respond(writer, BAD_REQUEST, keep_alive=False)
                return
            except asyncio.LimitOverrunError:
                await self._respond(writer, HEAD_TOO_LARGE, keep_alive=False)
                return
            try:
                # Clients may send stray CRLFs between requests (RFC 9112 section 2.2).
                head = head.lstrip(b"\r\n")
                if not head:
                    continue
                request = parse_head(head)
                if request.content_length or request.chunked:
                    await discard_body(reader, request)
            except BadRequestError:
                await self._respond(writer, BAD_REQUEST, keep_alive=False)
                return
            self._in_flight += 1
            held = False  # a sync worker still held: released once the response is written
            try:
                response, held = await self._dispatch(request)
                await self._respond(writer, response, keep_alive=request.keep_alive)
            finally:
                if held:
                    self._pool.release()
                self._in_flight -= 1
            if not request.keep_alive:
                return

    async def _dispatch(self, request: Request) -> tuple[Response, bool]:
        """The response, and whether a worker is still held for writing it (sync workers)."""
        path = request.path
        cost = _WORKER_PATHS.get(path)
        if cost is None:
            return self._other(request), False
        if request.method != "GET" and not (request.method == "POST" and path in _BODY_OK_PATHS):
            return (path, 405, TEXT, b"method not allowed"), False
        keep = self.config.sync_workers
        if not await self._serve(cost, keep=keep):
            self._counters.rejected_503 += 1
            return (path, 503, JSON, b'{"error":"overloaded"}'), False
        if path == "/api/page":
            return (path, 200, JSON, self._bodies["page"]), keep
        if path == "/api/search":
            return (path, 200, JSON, self._search_body(request.query)), keep
        return (path, 200, BINARY, self._bodies["asset"]), keep

    def _other(self, request: Request) -> Response:
        path = request.path
        method = request.method
        if path == "/health":
            return path, 200, TEXT, b"ok"
        if path == "/__stats" and method == "GET":
            return path, 200, JSON, json_bytes(self.stats())
        if path == "/metrics" and method == "GET":
            return path, 200, METRICS_CONTENT_TYPE, self.metrics_text()
        if path == "/__admin/stall" and method == "POST":
            values = urllib.parse.parse_qs(request.query).get("ms", [])
            try:
                ms = float(values[0])
            except (IndexError, ValueError):
                return path, 400, TEXT, b"expected ?ms=N"
            if not 0 <= ms <= 600_000:
                return path, 400, TEXT, b"ms must be between 0 and 600000"
            self.stall(ms)
            return path, 200, JSON, json_bytes({"stalled_ms": ms})
        if path == "/__admin/reset" and method == "POST":
            self.reset()
            return path, 200, JSON, b'{"reset":true}'
        if path in ("/__stats", "/metrics", "/__admin/stall", "/__admin/reset"):
            return path, 405, TEXT, b"method not allowed"
        return "(not found)", 404, TEXT, b"not found"

    def metrics_text(self) -> bytes:
        """The Prometheus text exposition served at /metrics (demo/exposition.py)."""
        return exposition(
            workers=self.config.workers,
            busy=self._pool.busy,
            queue_length=self._pool.queue_length,
            served=self._served,
        )

    def _search_body(self, query: str) -> bytes:
        q = urllib.parse.parse_qs(query).get("q", [""])[0][:200]
        # Splice the echoed query into pre-rendered results: the 8 KB are not re-encoded per call.
        return b'{"query":' + json_bytes(q) + b',"results":' + self._bodies["search_results"] + b"}"

    async def _serve(self, cost: float, *, keep: bool = False) -> bool:
        """Hold a worker for one service time (and, `keep`, still held on return: the caller
        releases it); False if the queue is full (answer 503)."""
        if not await self._pool.acquire():
            return False
        try:
            while (wait_s := self._stall_until - time.perf_counter()) > 0:
                await asyncio.sleep(wait_s)  # the stall is not service: it is not measured
            # Contention: slower by sigma for every other request in service (service.py).
            slowdown = 1.0 + self.config.contention * self._in_service
            drawn_ms = self._sampler.draw_ms(cost) * slowdown
            self._in_service += 1
            try:
                held_s = await self._timer.hold(drawn_ms / 1000.0)
            finally:
                self._in_service -= 1
        except BaseException:
            self._pool.release()
            raise
        if not keep:
            self._pool.release()
        counters = self._counters
        counters.held_count += 1
        counters.held_total_ms += held_s * 1000.0 / (cost * slowdown)
        counters.drawn_total_ms += drawn_ms / (cost * slowdown)
        return True

    async def _respond(
        self, writer: asyncio.StreamWriter, response: Response, *, keep_alive: bool
    ) -> None:
        key, status, content_type, body = response
        head = response_head(status, content_type, len(body), keep_alive)
        start = time.perf_counter()
        if len(body) <= 16384:
            writer.write(head + body)  # one send for small responses
        else:
            writer.write(head)
            writer.write(body)  # no copy of a large body just to prepend the head
        # drain() blocks while the client reads slowly: that is the connection a slow user holds.
        await writer.drain()
        drain_s = time.perf_counter() - start
        if key in _WORKER_PATHS:
            self._served[key, status] = self._served.get((key, status), 0) + 1
        if key == "/metrics":
            return  # a scrape is not a request of the service: /__stats does not count it
        counters = self._counters
        stats = counters.endpoint(key)
        stats.requests += 1
        stats.drain_count += 1
        stats.drain_total_s += drain_s
        stats.drain_max_s = max(stats.drain_max_s, drain_s)
        counters.statuses[status] = counters.statuses.get(status, 0) + 1

"""The embedded demo target: an HTTP/1.1 server on 127.0.0.1 whose capacity is known in advance.

It is the ground truth that breakpoint's analysis is checked against (DESIGN.md section 6): c
workers behind one strict FIFO queue, each request holding a worker for a service time drawn from
a seeded exponential (or constant) distribution with mean S. With exponential service and Poisson
arrivals it is an M/M/c queue whose latency percentiles follow from Erlang C.

Choices that make the queueing model hold, and why:

- The queue is an explicit deque of futures and a released worker is handed directly to the
  oldest waiter, so service order is strictly first come, first served (asyncio.Semaphore makes
  no such promise when a newcomer races a woken waiter).
- A worker is held only for the service time. Writing the response happens after the worker is
  released, as in a real application server that hands its bytes to the kernel and moves on; a
  slow-reading client therefore holds its connection (visible in the drain statistics) but not a
  worker, and network emulation adds to latency without changing the server's capacity.
- Responses go out through writer.write + await writer.drain, so a client that reads slowly
  blocks drain (measured per endpoint in /__stats). SO_SNDBUF keeps its default, but the kernel's
  unsent queue is bounded with TCP_NOTSENT_LOWAT (see KERNEL_UNSENT_LIMIT_BYTES): on loopback
  Linux otherwise buffers megabytes per connection and no slow reader would ever be felt.
- asyncio timers wake about 0.8 ms late (the selector rounds its timeout up to whole ms), which
  would turn 20 ms of service into about 20.8 ms. The timer keeps an EWMA of its own overshoot
  and sleeps that much less, and the time a worker is actually held is measured and reported
  (held_service_ms_mean in /__stats), so tests compare with queueing theory using what the
  server really did. Service times shorter than the overshoot cannot be honoured by a timer;
  they yield once, and the reported held time says so.

Only the standard library is used (asyncio streams), and locust/gevent are never imported: the
target runs in its own process (start_target_process) so it shares no GIL with the load generator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from breakpoint.errors import BreakpointError, ConfigError, TargetError

Distribution = Literal["exponential", "constant"]
DISTRIBUTIONS: tuple[Distribution, ...] = ("exponential", "constant")

# Generous enough for real clients' headers, small enough that garbage cannot grow memory.
MAX_HEAD_BYTES = 64 * 1024
LISTEN_BACKLOG = 4096
ASSET_BYTES = 204_800
# Unsent bytes the kernel may queue per connection (TCP_NOTSENT_LOWAT; SO_SNDBUF stays default).
# Loopback's 64 KB MTU makes Linux autotune the send buffer to about 4 MB at once, so a slow reader
# would never block the server on a 200 KB response; on a real NIC (1500-byte MTU) the kernel holds
# far less. Bounding the unsent part restores that: with a reader's small receive window about
# 70 KB sits in the kernel and the rest waits in the server, where drain() feels it.
KERNEL_UNSENT_LIMIT_BYTES = 65_536
# Cost factors: service time = draw (mean S) x cost, so /api/page's mean service time is S.
PAGE_COST = 1.0
SEARCH_COST = 2.5
ASSET_COST = 0.25


@dataclass(frozen=True)
class TargetConfig:
    """How the demo target behaves: its workers, service time, randomness and listening address."""

    workers: int = 8
    service_ms: float = 20.0
    seed: int = 1
    port: int = 0  # 0: let the kernel pick a free port (start() returns it)
    host: str = "127.0.0.1"
    # Requests allowed to wait for a worker; beyond it the answer is an immediate 503, giving a
    # target that breaks through errors rather than latency. None: unbounded.
    max_queue: int | None = None
    distribution: Distribution = "exponential"

    def __post_init__(self) -> None:
        source = "target"
        if self.workers < 1:
            raise ConfigError("must be at least 1", source=source, field="workers")
        if not self.service_ms > 0:
            raise ConfigError("must be a positive number of ms", source=source, field="service_ms")
        if not 0 <= self.port <= 65535:
            raise ConfigError("must be between 0 and 65535", source=source, field="port")
        if self.max_queue is not None and self.max_queue < 0:
            raise ConfigError("must be 0 or more (or unset)", source=source, field="max_queue")
        if self.distribution not in DISTRIBUTIONS:
            raise ConfigError(
                f"must be one of {', '.join(DISTRIBUTIONS)}", source=source, field="distribution"
            )

    @property
    def capacity_rps(self) -> float:
        """Requests per second the workers can complete on /api/page: c / S."""
        return self.workers / self.service_ms * 1000.0

    def describe(self) -> str:
        """One line stating the capacity and what it follows from."""
        queue_note = "" if self.max_queue is None else f", max queue {self.max_queue}"
        return (
            f"capacity {self.capacity_rps:.1f} req/s ({self.workers} workers x "
            f"{self.service_ms} ms mean service, {self.distribution}, seed {self.seed}"
            f"{queue_note})"
        )


class ServiceSampler:
    """Draws service times from one seeded generator, so a seed fixes the whole sequence."""

    def __init__(
        self, mean_ms: float, distribution: Distribution = "exponential", seed: int = 1
    ) -> None:
        self.mean_ms = mean_ms
        self.distribution = distribution
        self._rng = random.Random(seed)
        self._rate = 1.0 / mean_ms

    def draw_ms(self, cost: float = 1.0) -> float:
        """The next service time in ms for a request of the given cost factor."""
        if self.distribution == "constant":
            return self.mean_ms * cost
        return self._rng.expovariate(self._rate) * cost


class CompensatedTimer:
    """Holds for a requested duration on average, despite asyncio's late wake-ups.

    It sleeps (target - expected overshoot), where the expectation is an EWMA of the overshoot
    measured on earlier sleeps, and returns the time actually held.
    """

    # Overshoot seen on an idle loop; the EWMA corrects it within a few dozen sleeps.
    INITIAL_OVERSHOOT_S = 0.0008
    # A lagging loop is not a late timer: beyond this the estimate would swallow real service.
    MAX_OVERSHOOT_S = 0.005
    ALPHA = 0.05

    def __init__(self) -> None:
        self.overshoot_s = self.INITIAL_OVERSHOOT_S

    async def hold(self, duration_s: float) -> float:
        """Sleep about duration_s and return the seconds actually spent."""
        start = time.perf_counter()
        request_s = duration_s - self.overshoot_s
        if request_s <= 0:
            # Shorter than a timer can resolve: yield once so other work runs, as service would.
            await asyncio.sleep(0)
            return time.perf_counter() - start
        await asyncio.sleep(request_s)
        held_s = time.perf_counter() - start
        observed = held_s - request_s
        estimate = self.overshoot_s + self.ALPHA * (observed - self.overshoot_s)
        self.overshoot_s = min(max(estimate, 0.0), self.MAX_OVERSHOOT_S)
        return held_s


class WorkerPool:
    """c workers behind one strict FIFO queue, with an optional bound on the queue."""

    def __init__(self, workers: int, max_queue: int | None = None) -> None:
        self.workers = workers
        self.max_queue = max_queue
        self._free = workers
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.max_queue_length = 0

    @property
    def queue_length(self) -> int:
        """Requests waiting for a worker now."""
        return len(self._waiters)

    @property
    def busy(self) -> int:
        """Workers held now."""
        return self.workers - self._free

    async def acquire(self) -> bool:
        """Wait for a worker in arrival order; False (at once) if the queue is full."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        if self.max_queue is not None and len(self._waiters) >= self.max_queue:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.max_queue_length = max(self.max_queue_length, len(self._waiters))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # A worker was handed over just as we were cancelled: pass it on, do not leak it.
                self.release()
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise
        return True

    def release(self) -> None:
        """Hand the worker to the oldest waiter, or return it to the pool."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


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


@dataclass(frozen=True)
class _Request:
    """The parts of a request the target needs."""

    method: str
    path: str
    query: str
    keep_alive: bool
    content_length: int
    chunked: bool


class _BadRequestError(Exception):
    """The request cannot be parsed; answer 400 and close the connection."""


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}
_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"
_BINARY = "application/octet-stream"
_WORKER_PATHS = {
    "/api/page": PAGE_COST,
    "/api/search": SEARCH_COST,
    "/static/asset.bin": ASSET_COST,
}
_BODY_OK_PATHS = frozenset({"/api/page", "/api/search"})
# (statistics key, status, content type, body)
_Response = tuple[str, int, str, bytes]
_BAD_REQUEST: _Response = ("(bad request)", 400, _TEXT, b"bad request")
_HEAD_TOO_LARGE: _Response = ("(bad request)", 400, _TEXT, b"request head too large")


@lru_cache(maxsize=256)
def _response_head(status: int, content_type: str, length: int, keep_alive: bool) -> bytes:
    # Cached because almost every response repeats one of a handful of heads.
    connection = "keep-alive" if keep_alive else "close"
    return (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\nServer: breakpoint-demo\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n"
        f"Connection: {connection}\r\n\r\n"
    ).encode("latin-1")


def _parse_head(head: bytes) -> _Request:
    """Parse a request line and headers; raise _BadRequestError on anything malformed."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes any byte
        raise _BadRequestError from exc
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise _BadRequestError
    method, target, version = parts
    if not method.isalpha() or not method.isupper() or version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _BadRequestError
    if target.startswith(("http://", "https://")):
        # Absolute form (what a proxy would send): keep only the path and query.
        target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
    if not target.startswith("/"):
        raise _BadRequestError
    path, _, query = target.partition("?")
    connection = ""
    content_length = 0
    chunked = False
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name[-1] in " \t" or line[0] in " \t":
            raise _BadRequestError
        lowered = name.lower()
        if lowered == "connection":
            connection = value.strip().lower()
        elif lowered == "content-length":
            value = value.strip()
            if not value.isdigit():
                raise _BadRequestError
            content_length = int(value)
        elif lowered == "transfer-encoding":
            if value.strip().lower() != "chunked":
                raise _BadRequestError
            chunked = True
    if chunked and content_length:
        raise _BadRequestError  # both framings at once is a request-smuggling shape: refuse
    # HTTP/1.1 connections persist unless closed; HTTP/1.0 ones only if asked to.
    keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    return _Request(method, path, query, keep_alive, content_length, chunked)


async def _discard_body(reader: asyncio.StreamReader, request: _Request) -> None:
    """Read and drop the request body so the next request on the connection starts cleanly."""
    remaining = request.content_length
    while remaining > 0:
        chunk = await reader.read(min(remaining, 65536))
        if not chunk:
            raise asyncio.IncompleteReadError(b"", remaining)
        remaining -= len(chunk)
    if not request.chunked:
        return
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise _BadRequestError from exc
        if size == 0:
            break
        await reader.readexactly(size + 2)
    while (await reader.readuntil(b"\r\n")) != b"\r\n":
        pass  # trailer fields


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _items_of_size(kind: str, target_bytes: int) -> list[dict[str, Any]]:
    """Deterministic items whose JSON is about target_bytes long."""
    items: list[dict[str, Any]] = []
    size = 2
    while size < target_bytes:
        i = len(items)
        item = {
            "id": i + 1,
            "kind": kind,
            "title": f"{kind.title()} result number {i + 1}",
            "price_cents": 199 + (i * 7919) % 9000,
            "in_stock": i % 3 != 0,
            "summary": "Deterministic demo content so every run transfers the same bytes.",
        }
        items.append(item)
        size += len(_json_bytes(item)) + 1
    return items


def _build_bodies() -> dict[str, bytes]:
    page = _json_bytes({"page": 1, "items": _items_of_size("page", 2000)})
    search_results = _json_bytes(_items_of_size("search", 8100))
    return {
        "page": page,
        "search_results": search_results,
        # Seeded random bytes: identical across runs, and not compressible by a clever client.
        "asset": random.Random(0).randbytes(ASSET_BYTES),
    }


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
        self._bodies = _build_bodies()
        self._server: asyncio.Server | None = None
        self._connection_tasks: set[asyncio.Task[Any]] = set()
        self._connections_total = 0
        self._in_flight = 0
        self._in_service = 0
        self._stall_until = 0.0

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
        """The counters served at /__stats (see the module docstring for what they prove)."""
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
                    await self._respond(writer, _BAD_REQUEST, keep_alive=False)
                return
            except asyncio.LimitOverrunError:
                await self._respond(writer, _HEAD_TOO_LARGE, keep_alive=False)
                return
            try:
                # Clients may send stray CRLFs between requests (RFC 9112 section 2.2).
                head = head.lstrip(b"\r\n")
                if not head:
                    continue
                request = _parse_head(head)
                if request.content_length or request.chunked:
                    await _discard_body(reader, request)
            except _BadRequestError:
                await self._respond(writer, _BAD_REQUEST, keep_alive=False)
                return
            self._in_flight += 1
            try:
                response = await self._dispatch(request)
                await self._respond(writer, response, keep_alive=request.keep_alive)
            finally:
                self._in_flight -= 1
            if not request.keep_alive:
                return

    async def _dispatch(self, request: _Request) -> _Response:
        path = request.path
        method = request.method
        cost = _WORKER_PATHS.get(path)
        if cost is not None:
            if method != "GET" and not (method == "POST" and path in _BODY_OK_PATHS):
                return path, 405, _TEXT, b"method not allowed"
            if not await self._serve(cost):
                self._counters.rejected_503 += 1
                return path, 503, _JSON, b'{"error":"overloaded"}'
            if path == "/api/page":
                return path, 200, _JSON, self._bodies["page"]
            if path == "/api/search":
                return path, 200, _JSON, self._search_body(request.query)
            return path, 200, _BINARY, self._bodies["asset"]
        if path == "/health":
            return path, 200, _TEXT, b"ok"
        if path == "/__stats" and method == "GET":
            return path, 200, _JSON, _json_bytes(self.stats())
        if path == "/__admin/stall" and method == "POST":
            values = urllib.parse.parse_qs(request.query).get("ms", [])
            try:
                ms = float(values[0])
            except (IndexError, ValueError):
                return path, 400, _TEXT, b"expected ?ms=N"
            if not 0 <= ms <= 600_000:
                return path, 400, _TEXT, b"ms must be between 0 and 600000"
            self.stall(ms)
            return path, 200, _JSON, _json_bytes({"stalled_ms": ms})
        if path == "/__admin/reset" and method == "POST":
            self.reset()
            return path, 200, _JSON, b'{"reset":true}'
        if path in ("/__stats", "/__admin/stall", "/__admin/reset"):
            return path, 405, _TEXT, b"method not allowed"
        return "(not found)", 404, _TEXT, b"not found"

    def _search_body(self, query: str) -> bytes:
        q = urllib.parse.parse_qs(query).get("q", [""])[0][:200]
        # Splice the echoed query into pre-rendered results: the 8 KB are not re-encoded per call.
        return (
            b'{"query":' + _json_bytes(q) + b',"results":' + self._bodies["search_results"] + b"}"
        )

    async def _serve(self, cost: float) -> bool:
        """Hold a worker for one service time; False if the queue is full (answer 503)."""
        if not await self._pool.acquire():
            return False
        try:
            while (wait_s := self._stall_until - time.perf_counter()) > 0:
                await asyncio.sleep(wait_s)  # the stall is not service: it is not measured
            drawn_ms = self._sampler.draw_ms(cost)
            held_s = await self._timer.hold(drawn_ms / 1000.0)
        finally:
            self._pool.release()
        counters = self._counters
        counters.held_count += 1
        counters.held_total_ms += held_s * 1000.0 / cost
        counters.drawn_total_ms += drawn_ms / cost
        return True

    async def _respond(
        self, writer: asyncio.StreamWriter, response: _Response, *, keep_alive: bool
    ) -> None:
        key, status, content_type, body = response
        head = _response_head(status, content_type, len(body), keep_alive)
        start = time.perf_counter()
        if len(body) <= 16384:
            writer.write(head + body)  # one send for small responses
        else:
            writer.write(head)
            writer.write(body)  # no copy of a large body just to prepend the head
        # drain() blocks while the client reads slowly: that is the connection a slow user holds.
        await writer.drain()
        drain_s = time.perf_counter() - start
        counters = self._counters
        stats = counters.endpoint(key)
        stats.requests += 1
        stats.drain_count += 1
        stats.drain_total_s += drain_s
        stats.drain_max_s = max(stats.drain_max_s, drain_s)
        counters.statuses[status] = counters.statuses.get(status, 0) + 1


async def serve(config: TargetConfig | None = None) -> TargetServer:
    """Start a demo target in the running event loop; stop it with `await server.stop()`."""
    server = TargetServer(config)
    await server.start()
    return server


def _raise_open_files_limit() -> None:
    # Thousands of concurrent connections need thousands of descriptors; the soft limit is often
    # 1024 while the hard limit allows more.
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = 65536 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))


def _summary(stats: dict[str, Any]) -> str:
    held = stats["held_service_ms_mean"]
    totals = (
        f"{stats['requests_total']} responses, {stats['rejected_503']} rejected with 503 "
        f"(configured service {stats['service_ms']} ms)"
    )
    if held is None:
        return f"held service time: none measured; {totals}"
    return (
        f"held service time {held:.3f} ms mean per unit cost over "
        f"{stats['held_service_ms_count']} services; {totals}"
    )


def run_target(config: TargetConfig, out: Callable[[str], object] = print) -> int:
    """Serve until SIGINT/SIGTERM (the `breakpoint target` command); returns the exit code 0.

    Prints `listening on http://HOST:PORT` first (scripts wait for it), then the capacity line,
    and on stop a summary of the service time actually held.
    """
    _raise_open_files_limit()
    return asyncio.run(_run_until_signalled(config, out))


async def _run_until_signalled(config: TargetConfig, out: Callable[[str], object]) -> int:
    def emit(line: str) -> None:
        out(line)
        sys.stdout.flush()  # a parent process is waiting on a pipe for this line

    server = TargetServer(config)
    await server.start()
    emit(f"listening on {server.url}")
    emit(config.describe())
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stopped.set)
    try:
        await stopped.wait()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        await server.stop()
    emit(_summary(server.stats()))
    return 0


# Loopback only: never route the target's own admin traffic through a configured proxy.
_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class TargetProcess:
    """A demo target running in a child process (so it shares no GIL with the load generator)."""

    def __init__(self, process: subprocess.Popen[str], port: int, lines: queue.Queue[str | None]):
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.output: list[str] = []
        self._lines = lines

    def _request(self, method: str, path: str, timeout_s: float = 5.0) -> dict[str, Any]:
        request = urllib.request.Request(
            self.url + path, method=method, data=b"" if method == "POST" else None
        )
        with _NO_PROXY_OPENER.open(request, timeout=timeout_s) as response:
            result: dict[str, Any] = json.loads(response.read())
        return result

    def stats(self) -> dict[str, Any]:
        """The target's /__stats."""
        return self._request("GET", "/__stats")

    def stall(self, ms: float) -> None:
        """Stall every worker for the next ms (see TargetServer.stall)."""
        self._request("POST", f"/__admin/stall?ms={ms}")

    def reset(self) -> None:
        """Clear the target's counters."""
        self._request("POST", "/__admin/reset")

    def stop(self, timeout_s: float = 5.0) -> int:
        """SIGTERM, wait, kill if needed; returns the exit code and keeps the output lines."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.output.extend(_collect_rest(self._lines, timeout_s))
        return self.process.returncode

    def __enter__(self) -> TargetProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _collect_rest(lines: queue.Queue[str | None], timeout_s: float) -> list[str]:
    """The exited child's remaining output lines."""
    rest: list[str] = []
    # A grandchild holding stdout open must not hang us: give up after timeout_s.
    with contextlib.suppress(queue.Empty):
        while (line := lines.get(timeout=timeout_s)) is not None:
            rest.append(line)
    return rest


def _pump_lines(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    stream.close()  # only this thread reads the pipe, so only it may close it
    lines.put(None)  # end of output


def _wait_for_listening(lines: queue.Queue[str | None], timeout_s: float) -> tuple[int, list[str]]:
    """Read the child's lines until `listening on`; returns the port and the lines seen."""
    deadline = time.monotonic() + timeout_s
    seen: list[str] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TargetError(f"the demo target printed no 'listening on' line in {timeout_s} s")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            raise TargetError("the demo target exited before listening")
        seen.append(line)
        if line.startswith("listening on "):
            try:
                return int(line.rsplit(":", 1)[1]), seen
            except ValueError as exc:
                raise TargetError(f"unexpected line from the demo target: {line}") from exc


def start_target_process(
    config: TargetConfig | None = None, timeout_s: float = 10.0
) -> TargetProcess:
    """Start `python -m breakpoint.demo.target` and wait for its `listening on` line."""
    config = config if config is not None else TargetConfig()
    argv = [
        sys.executable, "-m", "breakpoint.demo.target",
        "--workers", str(config.workers),
        "--service-ms", repr(config.service_ms),
        "--port", str(config.port),
        "--seed", str(config.seed),
        "--host", config.host,
        "--distribution", config.distribution,
    ]  # fmt: skip
    if config.max_queue is not None:
        argv += ["--max-queue", str(config.max_queue)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # Let the child import this very package even when it is not installed.
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    lines: queue.Queue[str | None] = queue.Queue()
    # The child's stderr goes to a file: read only to explain a failed start, and it can never
    # fill a pipe and block the child.
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as stderr:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
        threading.Thread(target=_pump_lines, args=(process.stdout, lines), daemon=True).start()
        try:
            port, seen = _wait_for_listening(lines, timeout_s)
        except TargetError as exc:
            if process.poll() is None:
                process.kill()
            process.wait()
            stderr.seek(0)
            detail = stderr.read().strip().splitlines()[-1:]
            raise TargetError(f"{exc}{': ' + detail[0] if detail else ''}") from exc
    # Closing our copy of the stderr file is fine: the child keeps its own descriptor.
    target = TargetProcess(process, port, lines)
    target.output.extend(seen)
    return target


def main(argv: list[str] | None = None) -> int:
    """`python -m breakpoint.demo.target`: the target without the click CLI (child processes)."""
    defaults = TargetConfig()
    parser = argparse.ArgumentParser(
        prog="python -m breakpoint.demo.target",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--service-ms", type=float, default=defaults.service_ms)
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--max-queue", type=int, default=defaults.max_queue)
    parser.add_argument("--distribution", choices=DISTRIBUTIONS, default=defaults.distribution)
    args = parser.parse_args(argv)
    try:
        config = TargetConfig(
            workers=args.workers,
            service_ms=args.service_ms,
            seed=args.seed,
            port=args.port,
            host=args.host,
            max_queue=args.max_queue,
            distribution=args.distribution,
        )
        return run_target(config)
    except BreakpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.exit_status)


if __name__ == "__main__":
    raise SystemExit(main())

"""Per-user network and device emulation around Locust's HTTP clients (HttpUser, FastHttpUser).

`install(user, profile, rng=...)` replaces `user.client.request` (through which `get`, `post`, ...,
`rest` all go) with one that makes every request of the user's unchanged locustfile take as long
as it would on the profile's device and network, following `netmodel`:

1. Wait for one of the user's connections to the host (at most `max_connections`, 6 like Chrome
   on HTTP/1.1). An idle kept-alive connection is reused (warm); otherwise a new one costs the
   set-up round trips (TCP, + TLS for https). Idle connections expire after
   `IDLE_CONNECTION_TIMEOUT_S`, and their congestion window restarts after an RTO of idleness.
2. Sleep half a round trip plus the upload time (and any drawn retransmissions), then send the
   real request: the server sees it when it would have arrived.
3. Read the response streamed, in chunks, sleeping to a token-bucket schedule at down_kbps that
   starts half a round trip after the headers and, on a cold window, waits a round trip between
   slow-start windows. The user's sockets have a small receive buffer (`RCVBUF_BYTES`), so the
   server's writes block while the emulated user reads slowly: a slow user really holds a
   connection on the server.
4. Sleep the device's processing time, which delays the user's next action.

Locust is then told the whole experienced time (`request_meta["response_time"]`, which alone
would be the time to headers), and the request's context carries its parts for any
`events.request` listener: `bp_emulated` (True), `bp_network_ms`, `bp_device_ms` (the server's
part is response_time - network - device), and `bp_new_connection`, `bp_request_bytes`,
`bp_response_bytes`, `bp_loss_ms` (retransmission delay drawn for this request). The user's own
`context()` is kept. (The client reports a request once it has the headers, so its
`request_event` is replaced by a tap that holds that report back until the emulator has
completed it; every other report passes straight through.) A request that overruns the
profile's `timeout_s` fails with `EmulatedTimeout` ("timed out", status 0) after exactly
timeout_s, and its connection is closed.
A scenario's `catch_response=True` and `success()` / `failure()`, `name=` and
`rename_request()` behave as without emulation.

Opting out, and adding a scenario's own device cost:

- `bp_emulate = False` on a user class: its users are not emulated at all.
- `context={"bp_emulate": False}` on one request: that request is sent as is.
- Requests the scenario streams itself (`stream=True`) are sent as is (no pacing, no device time).
- `bp_device_ms = {"/api/search": 30, "checkout": 50}` on a user class: extra device time per
  request name (the `name=` given, else the URL path without query), in milliseconds on a 1x
  device, multiplied by the profile's cpu_slowdown; a number instead of a mapping applies to every
  request. `context={"bp_device_cost_ms": 30}` adds the same for one request.

Not modelled: uploads trickling into the server (the upload time passes before the request is
sent), HTTP/2 multiplexing, redirect hops on FastHttpUser (on HttpUser each hop costs 1 RTT).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import random
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import gevent
import requests
from gevent import getcurrent
from gevent.lock import Semaphore

from . import netmodel
from .profiles import Profile

# Receive buffer asked for on the user's sockets (Linux doubles it, to about 8 KB). Without it the
# kernel absorbed about 94 KB per connection and the server barely felt a slow reader (DESIGN §12).
RCVBUF_BYTES = 4096
# Idle kept-alive connections are reopened after this long: between common server keep-alive
# timeouts (Node and Apache 5 s, nginx 75 s) and browsers' (Chrome keeps used sockets minutes).
IDLE_CONNECTION_TIMEOUT_S = 60.0
# Bytes read per paced step: at least one small socket buffer, and at most ~10 ms of the link so
# fast profiles do not sleep thousands of times per response.
_MIN_CHUNK_BYTES = 4096
_MAX_CHUNK_BYTES = 65536
_CHUNK_MS = 10.0

_perf = time.perf_counter


class EmulatedTimeout(requests.exceptions.Timeout):
    """The request took longer than the profile's client timeout (timeout_s).

    A requests `Timeout` (so HttpUser's catch_response handling takes it) and an `OSError` (so
    FastHttpUser's does): the same error on both clients, classified as a timeout.
    """


class EmulatedConnectionError(requests.exceptions.ConnectionError):
    """The connection failed while the emulated user was reading the response body."""


class _DeadlineExceeded(BaseException):
    """Raised by the per-request watchdog. A BaseException so that neither client swallows it."""


class _Connection:
    __slots__ = ("cwnd_bytes", "idle_since")

    def __init__(self, cwnd_bytes: float, idle_since: float) -> None:
        self.cwnd_bytes = cwnd_bytes
        self.idle_since = idle_since


class _HostConnections:
    """One user's connections to one host: a semaphore bounds the busy ones, idle ones wait."""

    __slots__ = ("idle", "slots", "tls")

    def __init__(self, max_connections: int, tls: bool) -> None:
        self.slots = Semaphore(max_connections)
        self.idle: list[_Connection] = []
        self.tls = tls


class _EventTap:
    """Stands in for a client's request event, to hold back reports the emulator completes.

    Without catch_response the client reports a request as soon as it has the headers; the
    emulator registers the greenlet in `held` around the client call, the report lands there,
    and the emulator fires it once the body, the device time and the parts are known. Reports
    from other greenlets, and from catch_response blocks ending, pass straight through.
    """

    __slots__ = ("event", "held")

    def __init__(self, event: Any) -> None:
        self.event = event
        self.held: dict[Any, dict[str, Any] | None] = {}

    def fire(self, **kwargs: Any) -> None:
        held = self.held
        if held:
            me = getcurrent()
            if me in held and held[me] is None:
                held[me] = kwargs
                return
        self.event.fire(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.event, name)  # add_listener and the rest of EventHook


class _Watchdog:
    """Throws _DeadlineExceeded into a greenlet when its request overruns the client timeout.

    One libev timer per user, re-armed with again() (a fresh gevent.Timeout per request costs
    about 2 us; re-starting a cancelled one keeps its old remaining time). A user whose own
    greenlets overlap requests gets gevent.Timeout for the overlapping ones.
    """

    __slots__ = ("_timer", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._timer = gevent.get_hub().loop.timer(seconds, seconds)

    def arm(self, greenlet: Any) -> Any:
        if self._timer.active:
            return _TimeoutWatchdog(self.seconds)
        self._timer.again(_throw_deadline, greenlet, update=True)
        return self

    def disarm(self) -> None:
        self._timer.stop()


class _TimeoutWatchdog:
    __slots__ = ("_timeout",)

    def __init__(self, seconds: float) -> None:
        self._timeout = gevent.Timeout(seconds, _DeadlineExceeded)
        self._timeout.start()

    def disarm(self) -> None:
        self._timeout.close()


def _throw_deadline(greenlet: Any) -> None:
    greenlet.throw(_DeadlineExceeded)


class _Emulator:
    """The emulation state of one user: its profile, random draws and connections."""

    def __init__(
        self, user: Any, client: Any, profile: Profile, rng: random.Random, *, fast: bool
    ) -> None:
        self.user = user
        self.client = client
        self.profile = profile
        self.network = profile.network
        self.rng = rng
        self.fast = fast
        self.original: Callable[..., Any] = client.request
        self._signature: inspect.Signature | None = None
        n = profile.network
        self.paced = math.isfinite(n.down_kbps)
        self.random_network = n.jitter_ms > 0 or n.loss_pct > 0
        self.timeout_s = n.timeout_s
        self.initial_cwnd = netmodel.initial_cwnd_bytes(n)
        self.idle_restart_s = netmodel.rto_ms(n) / 1000.0
        per_ms = n.down_kbps / 8.0 if self.paced else math.inf
        self.chunk_bytes = int(min(_MAX_CHUNK_BYTES, max(_MIN_CHUNK_BYTES, per_ms * _CHUNK_MS)))
        costs = getattr(type(user), "bp_device_ms", None)
        self.device_default_ms = float(costs) if isinstance(costs, int | float) else 0.0
        self.device_costs: Mapping[str, float] = costs if isinstance(costs, Mapping) else {}
        self.hosts: dict[str, _HostConnections] = {}
        self.watchdog = _Watchdog(n.timeout_s)
        # Schedules by (window, RTT): a warm window settles at its cap, so they repeat.
        self._schedules: dict[tuple[float, float], netmodel.DownloadSchedule] = {}
        tap = client.request_event
        self.tap: _EventTap = tap if isinstance(tap, _EventTap) else _EventTap(tap)
        self.base_key, self.base_tls = self._key_of(client.base_url or "")
        self.timeouts = 0

    # -- connections ---------------------------------------------------------------------------
    @staticmethod
    def _key_of(url: str) -> tuple[str, bool]:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}", parts.scheme == "https"

    def _host(self, url: str) -> _HostConnections:
        if url.startswith(("http://", "https://")):
            key, tls = self._key_of(url)
        else:
            key, tls = self.base_key, self.base_tls
        host = self.hosts.get(key)
        if host is None:
            host = self.hosts[key] = _HostConnections(self.network.max_connections, tls)
        return host

    def _take(self, host: _HostConnections, now: float) -> tuple[_Connection, bool]:
        """A warm idle connection (most recently used first), else a new one."""
        idle = host.idle
        if idle:
            conn = idle.pop()
            if now - conn.idle_since <= IDLE_CONNECTION_TIMEOUT_S:
                if now - conn.idle_since > self.idle_restart_s:
                    conn.cwnd_bytes = self.initial_cwnd  # slow-start restart after idle
                return conn, False
            idle.clear()  # older ones expired too
        return _Connection(self.initial_cwnd, now), True

    # -- the request ---------------------------------------------------------------------------
    def _bind(
        self, method: Any, url: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """Positional arguments differ between the two clients: name them all."""
        if self._signature is None:
            self._signature = inspect.signature(self.original)
        bound = self._signature.bind(method, url, *args, **kwargs)
        named = dict(bound.arguments)
        named.pop("method", None)
        named.pop("url", None)
        named.update(named.pop("kwargs", {}))
        return named

    def _device_extra_ms(self, name: str | None, url: str, ctx: Mapping[str, Any] | None) -> float:
        extra = self.device_default_ms
        costs = self.device_costs
        if costs:
            key = name or self.client.request_name or url
            cost = costs.get(key)
            if cost is None and "?" in key:
                cost = costs.get(key.split("?", 1)[0])
            if cost is None and key.startswith(("http://", "https://")):
                cost = costs.get(urlsplit(key).path)
            extra += float(cost or 0.0)
        if ctx:
            extra += float(ctx.get("bp_device_cost_ms", 0.0) or 0.0)
        return extra

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if args:
            kwargs = self._bind(method, url, args, kwargs)
        ctx: dict[str, Any] | None = kwargs.get("context")
        if kwargs.get("stream") or (ctx and ctx.get("bp_emulate") is False):
            return self.original(method, url, **kwargs)

        # The user's context() is read once, here, and passed on (it may consume state, such
        # as the arrival lag): the client's own call then changes nothing, and a request that
        # times out before the client read it still reports it.
        user_ctx = self.user.context()
        merged = {**user_ctx, **ctx} if ctx else dict(user_ctx)
        kwargs["context"] = merged
        catch = bool(kwargs.get("catch_response", False))
        if self.paced:
            kwargs["stream"] = True
        name = kwargs.get("name")
        network = self.network
        rng = self.rng
        request_bytes = netmodel.REQUEST_HEAD_BYTES + len(url)
        if "data" in kwargs or "json" in kwargs or "files" in kwargs or "payload" in kwargs:
            request_bytes += _body_bytes(kwargs)

        t0 = _perf()
        host = self._host(url)
        me = getcurrent()
        watchdog = self.watchdog.arm(me)
        response: Any = None
        meta: dict[str, Any] | None = None
        conn: _Connection | None = None
        new = False
        reuse = False
        acquired = False
        loss_ms = 0.0
        t_send = t_head = t0
        try:
            host.slots.acquire()
            acquired = True
            conn, new = self._take(host, _perf())
            rtt = netmodel.sample_rtt_ms(network, rng) if self.random_network else network.rtt_ms
            pre_ms = rtt / 2.0 + netmodel.transfer_ms(request_bytes, network.up_kbps)
            if new:
                rtts = netmodel.setup_rtts(new_connection=True, tls=host.tls)
                if self.random_network:
                    pre_ms += sum(netmodel.sample_rtt_ms(network, rng) for _ in range(rtts))
                    loss_ms += netmodel.sample_handshake_loss_ms(network, rng, tls=host.tls)
                else:
                    pre_ms += rtts * rtt
            if network.loss_pct > 0:
                loss_ms += sum(d for _, d in netmodel.sample_losses(network, request_bytes, rng))
            t_due = t0 + (pre_ms + loss_ms) / 1000.0
            _sleep_until(t_due)

            t_send = _perf()
            if catch:
                response = self.original(method, url, **kwargs)
                meta = response.request_meta
            else:
                # The client reports the request as soon as it has the headers: hold that
                # report back until the body, device time and parts are known.
                held = self.tap.held
                held[me] = None
                try:
                    response = self.original(method, url, **kwargs)
                finally:
                    meta = held.pop(me, None)
            t_head = _perf()
            if meta is None:  # not reported by the client: nothing to complete
                return response

            # The response timeline starts from when the request was due, not from when a late
            # timer let it go: the server's own time is kept, the sleep's lateness is not.
            late_s = max(0.0, t_send - t_due)
            body, wire_bytes, t_net_end, reuse, down_loss_ms, error = self._receive(
                response, conn, rtt, t_head - late_s
            )
            loss_ms += down_loss_ms
            if t_net_end > t0 + self.timeout_s:
                _sleep_until(t_net_end)  # the watchdog fires during this sleep
        except _DeadlineExceeded:
            reuse = False
            return self._timed_out(
                response, meta, method, url, name, merged, catch, t0, t_send, t_head
            )
        finally:
            watchdog.disarm()
            if acquired:
                if conn is not None and reuse:
                    host.idle.append(conn)
                host.slots.release()

        extra_ms = (
            self._device_extra_ms(name, url, ctx)
            if self.device_costs or self.device_default_ms or ctx
            else 0.0
        )
        device_ms = netmodel.device_ms(self.profile.device, len(body), extra_ms=extra_ms)
        _sleep_until(t_net_end + device_ms / 1000.0)
        total_ms = (_perf() - t0) * 1000.0
        server_ms = (t_head - t_send) * 1000.0

        meta["response_time"] = total_ms
        meta["response_length"] = len(body)
        c = meta["context"]
        c["bp_emulated"] = True
        c["bp_network_ms"] = total_ms - server_ms - device_ms
        c["bp_device_ms"] = device_ms
        c["bp_new_connection"] = new
        c["bp_request_bytes"] = request_bytes
        c["bp_response_bytes"] = wire_bytes
        c["bp_loss_ms"] = loss_ms
        if error is not None:
            if catch:
                response.error = error  # raised by raise_for_status() when the block ends
            else:
                meta["exception"] = error
        if not catch:
            self.tap.event.fire(**meta)
        return response

    def _receive(
        self, response: Any, conn: _Connection, rtt_ms: float, t_head: float
    ) -> tuple[bytes, int, float, bool, float, Exception | None]:
        """Read the body to the pacing schedule.

        Returns (body, wire bytes, network end, reusable, drawn loss delay, read error). t_head
        is when the response left the server in emulated time; the network end is the
        perf_counter time at which the emulated last byte arrives.
        """
        t_first = t_head + rtt_ms / 2000.0
        raw = response._response if self.fast else response.raw
        if raw is None:  # no response at all: the connection failed
            return b"", 0, t_first, False, 0.0, None
        headers = response.headers
        if not self.fast and response.history:
            t_first += len(response.history) * rtt_ms / 1000.0  # each redirect hop: 1 RTT
        # Will the connection stay open (no "Connection: close")? Asked of the parsers, which
        # already know, rather than of the headers again.
        reuse = (
            raw.should_keep_alive()
            if self.fast
            else not getattr(raw._original_response, "will_close", False)
        )
        if not self.paced:
            # An unlimited link: the client read the body at full speed, and the head's size
            # would change nothing (it is not counted).
            body = response.content or b""
            conn.idle_since = t_first
            return body, len(body), t_first, reuse, 0.0, None
        head_bytes = _head_bytes(headers)

        network = self.network
        key = (conn.cwnd_bytes, rtt_ms)
        schedule = self._schedules.get(key)
        if schedule is None:
            if len(self._schedules) > 64:
                self._schedules.clear()
            schedule = self._schedules[key] = netmodel.DownloadSchedule(
                network, conn.cwnd_bytes, rtt_ms=rtt_ms
            )
        stalls: list[tuple[float, float]] = []
        if network.loss_pct > 0:
            declared = headers.get("content-length")
            total = head_bytes + (int(declared) if declared and declared.isdigit() else 0)
            stalls = netmodel.sample_losses(network, total, self.rng, rtt_ms=rtt_ms)
        stall_at = 0
        stall_ms = 0.0
        chunk = self.chunk_bytes
        parts: list[bytes] = []
        wire = head_bytes
        error: Exception | None = None
        try:
            if self.fast:
                while data := raw.read(chunk):
                    parts.append(data)
                    wire += len(data)
                    while stall_at < len(stalls) and stalls[stall_at][0] < wire:
                        stall_ms += stalls[stall_at][1]
                        stall_at += 1
                    if raw.message_complete and not raw._body_buffer:
                        break  # all read: the last step's sleep is taken with the device time
                    _sleep_until(t_first + (schedule.due_ms(wire) + stall_ms) / 1000.0)
            else:
                while data := raw.read(chunk, decode_content=True):
                    parts.append(data)
                    wire = head_bytes + raw.tell()
                    while stall_at < len(stalls) and stalls[stall_at][0] < wire:
                        stall_ms += stalls[stall_at][1]
                        stall_at += 1
                    _sleep_until(t_first + (schedule.due_ms(wire) + stall_ms) / 1000.0)
        except Exception as exc:  # any failure to read is this request's error
            error = EmulatedConnectionError(f"reading the response failed: {exc!r}")
            reuse = False
        body = b"".join(parts)
        if self.fast:
            encoding = headers.get("content-encoding")
            if encoding is None or encoding.lower() == "identity":
                response._cached_content = body
            else:  # let geventhttpclient decode it, as .content would have
                raw._body_buffer.extend(body)
        else:
            response._content = body
            response._content_consumed = True
        t_end = t_first + (schedule.due_ms(wire) + stall_ms) / 1000.0
        conn.cwnd_bytes = schedule.cwnd_after(wire)
        conn.idle_since = t_end
        loss_ms = sum(d for _, d in stalls) if stalls else 0.0
        return body, wire, t_end, reuse, loss_ms, error

    def _timed_out(
        self,
        response: Any,
        meta: dict[str, Any] | None,
        method: str,
        url: str,
        name: str | None,
        merged: dict[str, Any],
        catch: bool,
        t0: float,
        t_send: float,
        t_head: float,
    ) -> Any:
        """Abort the real exchange and report the request as an EmulatedTimeout.

        Whatever the client made of the exchange (a response, its held report) is dropped: the
        emulated user gave up, so the result is a failed response with status 0, reported once.
        """
        self.timeouts += 1
        if response is not None:
            # Closing a connection that already broke may fail too: that changes nothing.
            with contextlib.suppress(Exception):
                if self.fast:
                    if response._response is not None:
                        response._response.release()
                else:
                    response.close()
        ctx = meta["context"] if meta is not None else merged
        name = (meta or {}).get("name") or name or self.client.request_name or url
        error = EmulatedTimeout(
            f"timed out after {self.timeout_s:g} s (profile {self.profile.name} timeout_s)"
        )
        total_ms = (_perf() - t0) * 1000.0
        server_ms = max(0.0, (t_head - t_send) * 1000.0)
        ctx["bp_emulated"] = True
        ctx["bp_network_ms"] = total_ms - server_ms
        ctx["bp_device_ms"] = 0.0
        failed_meta: dict[str, Any] = {
            "request_type": method,
            "name": name,
            "context": ctx,
            "exception": None,
            "start_time": time.time() - total_ms / 1000.0,
            "url": url,
            "response_time": total_ms,
            "response_length": 0,
        }
        event = self.tap.event
        out: Any
        if self.fast:
            from locust.contrib.fasthttp import ErrorResponse, ResponseContextManager

            request = self.client.client._make_request(self.client._build_url(url), method=method)
            failed = ErrorResponse(request, error)
            failed_meta["response"] = failed
            out = ResponseContextManager(failed, event, failed_meta, catch)
        else:
            from locust.clients import ResponseContextManager as HttpResponseContextManager

            failed_http = HttpResponseContextManager(error)
            failed_meta["response"] = failed_http
            out = HttpResponseContextManager.wrap_response(
                failed_http, request_event=event, request_meta=failed_meta, catch_response=catch
            )
        if not catch:
            failed_meta["exception"] = error
            event.fire(**failed_meta)
        return out


class _Overshoot:
    """How late gevent's timers wake, learnt as they go (shared: the event loop is shared).

    libev's epoll backend rounds timeouts up to whole milliseconds, so a bare sleep ends about
    0.5-1 ms late; at 40 ms of RTT that alone would be a 2% error. Sleeps ask for that much less.
    """

    ALPHA = 0.05
    # A loop busy with other users is not a late timer: beyond this the estimate would eat into
    # real delays (and hide a saturated generator, which the recorder must see instead).
    MAX_S = 0.003
    estimate_s = 0.0005


def _sleep_until(deadline: float) -> None:
    """Sleep to an absolute perf_counter time, so overshoots do not accumulate across steps."""
    estimate = _Overshoot.estimate_s
    while (delay := deadline - _perf()) > estimate:
        asked = delay - estimate
        before = _perf()
        gevent.sleep(asked)
        late = (_perf() - before) - asked
        estimate += _Overshoot.ALPHA * (late - estimate)
        estimate = min(max(estimate, 0.0), _Overshoot.MAX_S)
    _Overshoot.estimate_s = estimate


def _head_bytes(headers: Any) -> int:
    """Bytes of the status line and headers, as they crossed the link."""
    # "HTTP/1.1 200 OK\r\n" + "Name: value\r\n" per header + "\r\n"
    return 19 + sum(len(k) + len(v) + 4 for k, v in headers.items())


def _body_bytes(kwargs: Mapping[str, Any]) -> int:
    """Best-effort size of the request body (data, json or files) before it is encoded."""
    data = kwargs.get("data")
    if data is None:
        data = kwargs.get("payload")
    size = 0
    if isinstance(data, bytes | bytearray | str):
        size += len(data)
    elif isinstance(data, Mapping):
        size += sum(len(str(k)) + len(str(v)) + 2 for k, v in data.items())
    json_body = kwargs.get("json")
    if json_body is not None and not data:
        import json

        size += len(json.dumps(json_body))
    files = kwargs.get("files")
    if files:
        values = files.values() if isinstance(files, Mapping) else (f[1] for f in files)
        for value in values:
            content = value[1] if isinstance(value, tuple) else value
            if isinstance(content, bytes | str):
                size += len(content)
            else:
                try:
                    size += int(content.seek(0, 2))
                    content.seek(0)
                except (AttributeError, OSError, ValueError):
                    pass
    return size


def _set_small_receive_buffer(client: Any, *, fast: bool) -> None:
    """Ask for RCVBUF_BYTES on every socket the client opens (before connect, so it counts)."""
    option = (socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
    if fast:
        pool = client.client.clientpool
        if getattr(pool, "_bp_small_rcvbuf", False):
            return
        get_client = pool.get_client

        def get_client_small_rcvbuf(url: Any) -> Any:
            http_client = get_client(url)
            connections = http_client._connection_pool
            if not getattr(connections, "_bp_small_rcvbuf", False):
                create = connections._create_tcp_socket

                def create_tcp_socket(family: int, socktype: int, protocol: int) -> Any:
                    sock = create(family, socktype, protocol)
                    sock.setsockopt(*option)
                    return sock

                connections._create_tcp_socket = create_tcp_socket
                connections._bp_small_rcvbuf = True
            return http_client

        pool.get_client = get_client_small_rcvbuf
        pool._bp_small_rcvbuf = True
        return
    from urllib3.connection import HTTPConnection

    for adapter in client.adapters.values():
        manager = getattr(adapter, "poolmanager", None)
        if manager is None:
            continue
        options = list(
            manager.connection_pool_kw.get("socket_options")
            or HTTPConnection.default_socket_options
        )
        if option not in options:
            manager.connection_pool_kw["socket_options"] = [*options, option]


def install(user: Any, profile: Profile, *, rng: random.Random) -> None:
    """Make user.client emulate the profile for every request (see the module docstring).

    Users whose class sets `bp_emulate = False`, and users without an HttpSession or
    FastHttpSession client, are left as they are. Installing twice replaces the first.
    """
    if not getattr(type(user), "bp_emulate", True):
        return
    from locust.clients import HttpSession
    from locust.contrib.fasthttp import FastHttpSession

    client: Any = getattr(user, "client", None)
    if not isinstance(client, FastHttpSession | HttpSession):
        return
    fast = isinstance(client, FastHttpSession)
    client = user.client  # as Any again: its request method is replaced below
    previous: _Emulator | None = getattr(user, "_bp_emulator", None)
    if previous is not None:
        client.request = previous.original
    emulator = _Emulator(user, client, profile, rng, fast=fast)
    if emulator.paced:
        _set_small_receive_buffer(client, fast=fast)
    client.request = emulator.request
    client.request_event = emulator.tap
    user._bp_emulator = emulator


def emulator_of(user: Any) -> Any:
    """The emulation installed on a user, or None (for tests and diagnostics)."""
    return getattr(user, "_bp_emulator", None)

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

from breakpoint.plan import netmodel
from breakpoint.plan.profiles import Profile

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
_ABSOLUTE = ("http://", "https://")
# Request arguments that carry a body (HttpUser's data/json/files, FastHttpUser's payload).
_BODY_ARGUMENTS = frozenset(("data", "json", "files", "payload"))


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
    """One emulated connection: its congestion window, and since when it has been idle.

    `schedule` is the pacing schedule of its last response, reused while the window and the
    round trip stay the same (a warm window settles at its cap), and `memo` that schedule's
    (wire bytes, due ms, window after) for the last response's size: the same endpoint answers
    with the same size again and again.
    """

    __slots__ = ("cwnd_bytes", "idle_since", "memo", "schedule")

    def __init__(self, cwnd_bytes: float, idle_since: float) -> None:
        self.cwnd_bytes = cwnd_bytes
        self.idle_since = idle_since
        self.schedule: netmodel.DownloadSchedule | None = None
        self.memo: tuple[int, float, float] = (-1, 0.0, 0.0)


class _HostConnections:
    """One user's connections to one host: a semaphore bounds the busy ones, idle ones wait."""

    __slots__ = ("idle", "slots", "tls")

    def __init__(self, max_connections: int, tls: bool) -> None:
        self.slots = Semaphore(max_connections)
        self.idle: list[_Connection] = []
        self.tls = tls


_AWAITED: Any = object()  # in _EventTap.held: the greenlet's report has not come yet


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
        # greenlet -> its held report, or _AWAITED until the client has reported
        self.held: dict[Any, Any] = {}

    def fire(self, **kwargs: Any) -> None:
        held = self.held
        if held:
            me = getcurrent()
            if held.get(me) is _AWAITED:
                held[me] = kwargs
                return
        self.event.fire(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.event, name)  # add_listener and the rest of EventHook


class _TimeoutWatchdog:
    """The watchdog of a request that overlaps another of the same user (see _Emulator)."""

    __slots__ = ("_timeout",)

    def __init__(self, seconds: float) -> None:
        self._timeout = gevent.Timeout(seconds, _DeadlineExceeded)
        self._timeout.start()

    def disarm(self) -> None:
        self._timeout.close()


def _throw_deadline(greenlet: Any) -> None:
    greenlet.throw(_DeadlineExceeded)


class _Emulator:
    """The emulation state of one user: its profile, random draws and connections.

    `request` runs once per request of every emulated user, so it is written for speed: the
    profile's constants are read into attributes here, and the steps that cost nothing at a
    profile's values (a sleep already due, a schedule already known) are skipped inline.
    """

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
        self.lossy = n.loss_pct > 0
        self.rtt_ms = n.rtt_ms
        self.up_kbps = n.up_kbps
        self.up_limited = math.isfinite(n.up_kbps)
        self.timeout_s = n.timeout_s
        self.initial_cwnd = netmodel.initial_cwnd_bytes(n)
        self.idle_restart_s = netmodel.rto_ms(n) / 1000.0
        d = profile.device
        self.device_base_ms = d.base_ms
        self.device_ms_per_kb = d.ms_per_kb
        self.cpu_slowdown = d.cpu_slowdown
        per_ms = n.down_kbps / 8.0 if self.paced else math.inf
        self.chunk_bytes = int(min(_MAX_CHUNK_BYTES, max(_MIN_CHUNK_BYTES, per_ms * _CHUNK_MS)))
        costs = getattr(type(user), "bp_device_ms", None)
        self.device_default_ms = float(costs) if isinstance(costs, int | float) else 0.0
        self.device_costs: Mapping[str, float] = costs if isinstance(costs, Mapping) else {}
        self.device_extra = bool(self.device_costs or self.device_default_ms)
        self.hosts: dict[str, _HostConnections] = {}
        # The watchdog: throws _DeadlineExceeded into a greenlet whose request overruns the
        # client timeout. One libev timer per user, re-armed with again() for each request (a
        # fresh gevent.Timeout per request costs about 2 us; re-starting a cancelled one keeps
        # its old remaining time). A user whose own greenlets overlap requests gets a
        # _TimeoutWatchdog for the overlapping ones.
        self._timer = gevent.get_hub().loop.timer(n.timeout_s, n.timeout_s)
        # Schedules by (window, RTT): a warm window settles at its cap, so they repeat.
        self._schedules: dict[tuple[float, float], netmodel.DownloadSchedule] = {}
        tap = client.request_event
        self.tap: _EventTap = tap if isinstance(tap, _EventTap) else _EventTap(tap)
        self._report = self.tap.event.fire
        self.base_key, self.base_tls = self._key_of(client.base_url or "")
        self.base_host = self.hosts[self.base_key] = _HostConnections(
            n.max_connections, self.base_tls
        )
        if fast and _ghc_headers_readable():
            self._receive = self._receive_fast
        else:
            self._receive = self._receive_streamed
        self.timeouts = 0

    # -- connections ---------------------------------------------------------------------------
    @staticmethod
    def _key_of(url: str) -> tuple[str, bool]:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}", parts.scheme == "https"

    def _host(self, url: str) -> _HostConnections:
        """The connections of an absolute URL's host (relative URLs go to base_host)."""
        key, tls = self._key_of(url)
        host = self.hosts.get(key)
        if host is None:
            host = self.hosts[key] = _HostConnections(self.network.max_connections, tls)
        return host

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
            if cost is None and key.startswith(_ABSOLUTE):
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
        catch = kwargs.get("catch_response")
        if self.paced:
            kwargs["stream"] = True
        name = kwargs.get("name")
        request_bytes = netmodel.REQUEST_HEAD_BYTES + len(url)
        if not _BODY_ARGUMENTS.isdisjoint(kwargs):
            request_bytes += _body_bytes(kwargs)

        # The emulated request begins now: Locust is told this wall-clock time as its start,
        # not the later moment the client sends it after the set-up sleeps.
        t0 = _perf()
        wall0 = time.time()
        host = self._host(url) if url.startswith(_ABSOLUTE) else self.base_host
        me = getcurrent()
        timer = self._timer
        overlap: _TimeoutWatchdog | None = None
        if timer.active:  # another greenlet of this user is mid-request
            overlap = _TimeoutWatchdog(self.timeout_s)
        else:
            timer.again(_throw_deadline, me, update=True)
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
            # A warm idle connection (most recently used first), else a new one.
            now = _perf()
            idle = host.idle
            if idle:
                conn = idle.pop()
                idle_s = now - conn.idle_since
                if idle_s > IDLE_CONNECTION_TIMEOUT_S:
                    idle.clear()  # older ones expired too
                    conn = None
                elif idle_s > self.idle_restart_s:
                    conn.cwnd_bytes = self.initial_cwnd  # slow-start restart after idle
            if conn is None:
                conn = _Connection(self.initial_cwnd, now)
                new = True
            if self.random_network:
                network = self.network
                rng = self.rng
                rtt = netmodel.sample_rtt_ms(network, rng)
                pre_ms = rtt / 2.0 + netmodel.transfer_ms(request_bytes, network.up_kbps)
                if new:
                    rtts = netmodel.setup_rtts(new_connection=True, tls=host.tls)
                    pre_ms += sum(netmodel.sample_rtt_ms(network, rng) for _ in range(rtts))
                    loss_ms += netmodel.sample_handshake_loss_ms(network, rng, tls=host.tls)
                if self.lossy:
                    loss_ms += sum(
                        d for _, d in netmodel.sample_losses(network, request_bytes, rng)
                    )
            else:
                rtt = self.rtt_ms
                pre_ms = rtt / 2.0
                if self.up_limited:  # netmodel.transfer_ms
                    pre_ms += request_bytes * 8.0 / self.up_kbps
                if new:
                    pre_ms += netmodel.setup_rtts(new_connection=True, tls=host.tls) * rtt
            t_due = t0 + (pre_ms + loss_ms) / 1000.0
            t_send = _perf()
            if t_due - t_send > _Overshoot.estimate_s:
                _sleep_until(t_due)
                t_send = _perf()

            if catch:
                response = self.original(method, url, **kwargs)
                meta = response.request_meta
            else:
                # The client reports the request as soon as it has the headers: hold that
                # report back until the body, device time and parts are known.
                held = self.tap.held
                held[me] = _AWAITED
                try:
                    response = self.original(method, url, **kwargs)
                finally:
                    meta = held.pop(me, None)
                    if meta is _AWAITED:
                        meta = None
            t_head = _perf()
            if meta is None:  # not reported by the client: nothing to complete
                return response

            # The response timeline starts from when the request was due, not from when a late
            # timer let it go: the server's own time is kept, the sleep's lateness is not. Its
            # first byte arrives half a round trip after it left the server.
            late_s = t_send - t_due
            t_first = (t_head - late_s if late_s > 0.0 else t_head) + rtt / 2000.0
            body_bytes, wire_bytes, t_net_end, reuse, down_loss_ms, error = self._receive(
                response, conn, rtt, t_first
            )
            loss_ms += down_loss_ms
            if t_net_end > t0 + self.timeout_s:
                _sleep_until(t_net_end)  # the watchdog fires during this sleep
        except _DeadlineExceeded:
            reuse = False
            return self._timed_out(
                response, meta, method, url, name, merged, bool(catch), t0, wall0, t_send, t_head
            )
        finally:
            if overlap is None:
                timer.stop()
            else:
                overlap.disarm()
            if acquired:
                if reuse and conn is not None:
                    host.idle.append(conn)
                host.slots.release()

        # netmodel.device_ms, with the scenario's own cost for this request
        extra_ms = self._device_extra_ms(name, url, ctx) if self.device_extra or ctx else 0.0
        device_ms = (
            self.device_base_ms + self.device_ms_per_kb * body_bytes / 1024.0 + extra_ms
        ) * self.cpu_slowdown
        t_end = t_net_end + device_ms / 1000.0
        now = _perf()
        if t_end - now > _Overshoot.estimate_s:
            _sleep_until(t_end)
            now = _perf()
        total_ms = (now - t0) * 1000.0
        server_ms = (t_head - t_send) * 1000.0

        meta["response_time"] = total_ms
        meta["response_length"] = body_bytes
        meta["start_time"] = wall0
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
            self._report(**meta)
        return response

    def _schedule(self, conn: _Connection, rtt_ms: float) -> netmodel.DownloadSchedule:
        """The pacing schedule for the connection's window and this round trip."""
        key = (conn.cwnd_bytes, rtt_ms)
        schedule = self._schedules.get(key)
        if schedule is None:
            if len(self._schedules) > 64:
                self._schedules.clear()
            schedule = self._schedules[key] = netmodel.DownloadSchedule(
                self.network, conn.cwnd_bytes, rtt_ms=rtt_ms
            )
        conn.schedule = schedule
        conn.memo = (-1, 0.0, 0.0)
        return schedule

    def _stalls(self, declared: Any, head_bytes: int, rtt_ms: float) -> list[tuple[float, float]]:
        """Lost packets drawn for a response of head_bytes + its declared content-length."""
        size = int(declared) if isinstance(declared, str) and declared.isdigit() else 0
        return netmodel.sample_losses(self.network, head_bytes + size, self.rng, rtt_ms=rtt_ms)

    def _receive_fast(
        self, response: Any, conn: _Connection, rtt_ms: float, t_first: float
    ) -> tuple[int, int, float, bool, float, Exception | None]:
        """FastHttpUser's body read to the pacing schedule.

        Returns (body bytes, wire bytes, network end, reusable, drawn loss delay, read error).
        t_first is the perf_counter time at which the response's first byte arrives in emulated
        time; the network end is when its last byte does.
        """
        raw = response._response
        if raw is None:  # no response at all: the connection failed
            return 0, 0, t_first, False, 0.0, None
        # Will the connection stay open (no "Connection: close")? Asked of the parser.
        reuse = raw.should_keep_alive()
        if not self.paced:
            # An unlimited link: the client read the body at full speed, and the head's size
            # would change nothing (it is not counted).
            size = len(response.content or b"")
            conn.idle_since = t_first
            return size, size, t_first, reuse, 0.0, None
        headers = response.headers
        wire = 19  # _ghc_head_bytes(headers), inline
        for line in dict.values(headers):
            if type(line) is tuple:
                wire += len(line[0]) + len(line[1]) + 4
            else:
                for field, value in line:
                    wire += len(field) + len(value) + 4
        schedule = conn.schedule
        if schedule is None or schedule.cwnd_bytes != conn.cwnd_bytes or schedule.rtt_ms != rtt_ms:
            schedule = self._schedule(conn, rtt_ms)
        stalls = None
        if self.lossy:
            stalls = self._stalls(_ghc_header(headers, "content-length"), wire, rtt_ms)
        stall_ms = 0.0
        error: Exception | None = None
        encoding = dict.get(headers, "content-encoding")  # _ghc_header, inline
        identity = encoding is None or (
            type(encoding) is tuple and encoding[1].lower() == "identity"
        )
        if raw.message_complete:
            # The whole body came with the headers (it fitted in the client's first read): there
            # is nothing to pace between reads, only its end below.
            buffer = raw._body_buffer
            size = len(buffer)
            if identity:
                response._cached_content = bytes(buffer)
                buffer.clear()
            # else: left in the buffer, for geventhttpclient to decode as .content would have
            wire += size
            if stalls:
                stall_ms = sum(d for at, d in stalls if at < wire)
        else:
            parts: list[bytes] = []
            chunk = self.chunk_bytes
            stall_at = 0
            try:
                while data := raw.read(chunk):
                    parts.append(data)
                    wire += len(data)
                    if stalls:
                        while stall_at < len(stalls) and stalls[stall_at][0] < wire:
                            stall_ms += stalls[stall_at][1]
                            stall_at += 1
                    if raw.message_complete and not raw._body_buffer:
                        break  # all read: the last step's sleep is taken with the device time
                    due = t_first + (schedule.due_ms(wire) + stall_ms) / 1000.0
                    if due - _perf() > _Overshoot.estimate_s:
                        _sleep_until(due)
            except Exception as exc:  # any failure to read is this request's error
                error = EmulatedConnectionError(f"reading the response failed: {exc!r}")
                reuse = False
            body = b"".join(parts)
            size = len(body)
            if identity:
                response._cached_content = body
            else:  # let geventhttpclient decode it, as .content would have
                raw._body_buffer.extend(body)
        memo = conn.memo
        if memo[0] != wire:
            memo = conn.memo = (wire, schedule.due_ms(wire), schedule.cwnd_after(wire))
        t_end = t_first + (memo[1] + stall_ms) / 1000.0
        conn.cwnd_bytes = memo[2]
        conn.idle_since = t_end
        if stalls:
            return size, wire, t_end, reuse, sum(d for _, d in stalls), error
        return size, wire, t_end, reuse, 0.0, error

    def _receive_streamed(
        self, response: Any, conn: _Connection, rtt_ms: float, t_first: float
    ) -> tuple[int, int, float, bool, float, Exception | None]:
        """HttpUser's body read to the pacing schedule (see _receive_fast for what it returns).

        Also FastHttpUser's, should geventhttpclient's headers ever not be readable as
        _ghc_head_bytes expects.
        """
        fast = self.fast
        raw = response._response if fast else response.raw
        if raw is None:  # no response at all: the connection failed
            return 0, 0, t_first, False, 0.0, None
        headers = response.headers
        if not fast and response.history:
            t_first += len(response.history) * rtt_ms / 1000.0  # each redirect hop: 1 RTT
        reuse = (
            raw.should_keep_alive()
            if fast
            else not getattr(raw._original_response, "will_close", False)
        )
        if not self.paced:
            size = len(response.content or b"")
            conn.idle_since = t_first
            return size, size, t_first, reuse, 0.0, None
        head_bytes = _head_bytes(headers)
        schedule = self._schedule(conn, rtt_ms)
        stalls = (
            self._stalls(headers.get("content-length"), head_bytes, rtt_ms) if self.lossy else []
        )
        stall_at = 0
        stall_ms = 0.0
        chunk = self.chunk_bytes
        parts: list[bytes] = []
        wire = head_bytes
        error: Exception | None = None
        try:
            while data := (raw.read(chunk) if fast else raw.read(chunk, decode_content=True)):
                parts.append(data)
                wire = wire + len(data) if fast else head_bytes + raw.tell()
                while stall_at < len(stalls) and stalls[stall_at][0] < wire:
                    stall_ms += stalls[stall_at][1]
                    stall_at += 1
                if fast and raw.message_complete and not raw._body_buffer:
                    break  # all read: the last step's sleep is taken with the device time
                due = t_first + (schedule.due_ms(wire) + stall_ms) / 1000.0
                if due - _perf() > _Overshoot.estimate_s:
                    _sleep_until(due)
        except Exception as exc:  # any failure to read is this request's error
            error = EmulatedConnectionError(f"reading the response failed: {exc!r}")
            reuse = False
        body = b"".join(parts)
        if fast:
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
        return len(body), wire, t_end, reuse, loss_ms, error

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
        wall0: float,
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
            "start_time": wall0,
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


# geventhttpclient's Headers is a dict of lower-cased field name -> (field, value), or a list of
# such pairs for a repeated field. Read there directly, its fields cost a fraction of what its
# public methods do (they lower-case the name, and get() raises KeyError for a missing one).
def _ghc_head_bytes(headers: Any) -> int:
    """_head_bytes of geventhttpclient's Headers (every line, repeated fields included)."""
    n = 19
    for line in dict.values(headers):
        if type(line) is tuple:
            n += len(line[0]) + len(line[1]) + 4
        else:
            for field, value in line:
                n += len(field) + len(value) + 4
    return n


def _ghc_header(headers: Any, lower_name: str) -> str | None:
    """A field of geventhttpclient's Headers by its lower-case name (a repeated one joined)."""
    line = dict.get(headers, lower_name)
    if line is None:
        return None
    if type(line) is tuple:
        return line[1]
    return ", ".join(value for _, value in line)


_GHC_READABLE: list[bool] = []


def _ghc_headers_readable() -> bool:
    """Whether the installed geventhttpclient stores its headers as _ghc_head_bytes reads them."""
    if not _GHC_READABLE:
        from geventhttpclient.header import Headers

        h = Headers()
        h.add("Set-Cookie", "a=1")
        h.add("set-cookie", "b=2")
        h.add("Content-Length", "12")
        _GHC_READABLE.append(
            isinstance(h, dict)
            and _ghc_head_bytes(h) == _head_bytes(h)
            and _ghc_header(h, "content-length") == "12"
            and _ghc_header(h, "set-cookie") == "a=1, b=2"
            and _ghc_header(h, "content-encoding") is None
        )
    return _GHC_READABLE[0]


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


def _small_rcvbuf_sockets(http_client: Any) -> None:
    """Make a geventhttpclient HTTPClient ask for RCVBUF_BYTES on every socket it opens."""
    connections = http_client._connection_pool
    if getattr(connections, "_bp_small_rcvbuf", False):
        return
    create = connections._create_tcp_socket

    def create_tcp_socket(family: int, socktype: int, protocol: int) -> Any:
        sock = create(family, socktype, protocol)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
        return sock

    connections._create_tcp_socket = create_tcp_socket
    connections._bp_small_rcvbuf = True


class _SmallRcvbufClients(dict[Any, Any]):
    """HTTPClientPool.clients whose every HTTPClient asks for the small receive buffer."""

    def __init__(self, clients: Mapping[Any, Any]) -> None:
        super().__init__()
        for key, http_client in clients.items():
            self[key] = http_client

    def __setitem__(self, key: Any, http_client: Any) -> None:
        _small_rcvbuf_sockets(http_client)
        super().__setitem__(key, http_client)


def _set_small_receive_buffer(client: Any, *, fast: bool) -> None:
    """Ask for RCVBUF_BYTES on every socket the client opens (before connect, so it counts)."""
    if fast:
        # geventhttpclient's pool of HTTPClients (one per host) keeps them in a dict: each one
        # added to it gets the option on the sockets of its connection pool. (Rather than
        # wrapping get_client, which every request calls.)
        pool = client.client.clientpool
        if not isinstance(pool.clients, _SmallRcvbufClients):
            pool.clients = _SmallRcvbufClients(pool.clients)
        return
    from urllib3.connection import HTTPConnection

    option = (socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
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

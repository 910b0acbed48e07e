"""Per-user network and device emulation around Locust's HTTP clients (HttpUser, FastHttpUser).

`install(user, profile, rng=...)` replaces `user.client.request` (through which `get`, `post`,
... `rest` all go) so that every request of the unchanged locustfile takes as long as it would
on the profile's device and network (`plan/netmodel.py`; the steps are in
docs/design.md#emulated-request): wait for one of the user's connections (new ones cost their
set-up round trips), sleep half a round trip plus the upload, send the real request, read the
body to the pacing schedule through a small receive buffer (emulate_read.py: the slow reader
really holds the server's connection), then sleep the device time.

Locust is told the whole experienced time (`response_time`) and when it began (`start_time`,
before the set-up sleeps); the context carries the parts (`bp_network_ms`, `bp_device_ms`,
`bp_new_connection`, `bp_request_bytes`, `bp_response_bytes`, `bp_loss_ms`). A request past the
profile's `timeout_s` fails with `EmulatedTimeout` after exactly timeout_s. `catch_response`,
`name=` and `rename_request()` behave as without emulation.

Opting out: `bp_emulate = False` on a user class, `context={"bp_emulate": False}` on a request,
or `stream=True` (sent as is). Extra device work: `bp_device_ms = {"name": ms}` (or a number) on
a user class, `context={"bp_device_cost_ms": ms}` on a request, scaled by the CPU slowdown.
Not modelled: uploads trickling into the server, HTTP/2, redirect hops on FastHttpUser.
"""

from __future__ import annotations

import inspect
import math
import random
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import gevent
from gevent import getcurrent

from breakpoint.load.emulate_parts import (  # noqa: F401 - EmulatedTimeout is public here
    _AWAITED,
    EmulatedConnectionError,
    EmulatedTimeout,
    _body_bytes,
    _Connection,
    _DeadlineExceeded,
    _EventTap,
    _ghc_headers_readable,
    _HostConnections,
    _Overshoot,
    _perf,
    _set_small_receive_buffer,
    _sleep_until,
    _throw_deadline,
    _TimeoutWatchdog,
)
from breakpoint.load.emulate_read import PacedReads
from breakpoint.plan import netmodel
from breakpoint.plan.profiles import Profile

# Idle kept-alive connections are reopened after this long: between common server keep-alive
# timeouts (Node and Apache 5 s, nginx 75 s) and browsers' (Chrome keeps used sockets minutes).
IDLE_CONNECTION_TIMEOUT_S = 60.0
# Bytes read per paced step: at least one small socket buffer, and at most ~10 ms of the link so
# fast profiles do not sleep thousands of times per response.
_MIN_CHUNK_BYTES = 4096
_MAX_CHUNK_BYTES = 65536
_CHUNK_MS = 10.0

_ABSOLUTE = ("http://", "https://")
# Request arguments that carry a body (HttpUser's data/json/files, FastHttpUser's payload).
_BODY_ARGUMENTS = frozenset(("data", "json", "files", "payload"))


class _Emulator(PacedReads):
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
        self._max_conn = n.max_connections
        self.dropped = False  # a connection was closed since the last arrival (arrive())
        self.base_host = self.hosts[self.base_key] = _HostConnections(
            n.max_connections, self.base_tls
        )
        if fast and _ghc_headers_readable():
            self._receive = self._receive_fast
        else:
            self._receive = self._receive_streamed
        self.timeouts = 0

    # -- connections ---------------------------------------------------------------------------
    def arrive(self, think_s: float) -> None:
        """An open-model arrival: the person behind it last used their connections one think
        time ago (docs/design.md#connections-per-arrival). Idle connections are aged to it (a new
        connection past 60 s, slow start again past one RTO) and a pooled user without one to the
        base host gets the connection that person already holds, so the share of new
        connections follows the scenario, not how many users the generator happens to keep."""
        now = _perf()
        since = now - max(0.0, think_s)
        for host in self.hosts.values():
            for conn in host.idle:
                conn.idle_since = since
        base = self.base_host
        dropped, self.dropped = self.dropped, False
        if not dropped and not base.idle and base.slots.counter == self._max_conn:
            # Its window has settled (a kept-alive connection's, as netmodel.predict assumes);
            # past one RTO the request restarts it from the initial window anyway.
            base.idle.append(_Connection(math.inf, since))

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
                else:
                    self.dropped = True  # closed: the person's next page view reconnects
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

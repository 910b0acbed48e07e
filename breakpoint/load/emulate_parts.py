"""The pieces of the emulation below the request: connections, the client report tap, the
per-request deadline, precise sleeps, byte counts and small receive buffers (see emulate.py)."""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from typing import Any

import gevent
import requests
from gevent import getcurrent
from gevent.lock import Semaphore

from breakpoint.plan import netmodel

# Receive buffer asked for on the user's sockets (Linux doubles it, to about 8 KB). Without it the
# kernel absorbed about 94 KB per connection and the server barely felt a slow reader
# (docs/design.md#field-notes).
RCVBUF_BYTES = 4096

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

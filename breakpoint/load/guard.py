"""The host allow-list: a scenario's requests to any other host are blocked before they leave.

A locustfile can call absolute URLs (a payment provider, an analytics beacon). Under load that
would load a third party by accident, so every user's client only sends to the target's host
(and hosts the user allowed with --allow-host); anything else raises BlockedHostError inside
the task without a byte sent, and is counted so the run can report it.

Three layers (docs/design.md#host-guard): `install` checks each request of `user.client` before
emulation; `guarding_sessions` checks every request that leaves through `requests` (every
HttpSession the scenario opens, each redirect hop, `requests.get` used directly) and every hop
of a FastHttpSession, for the run's duration; `reported` checks the request events of custom
clients, which were already sent (counted as reached, never measured). Not covered: other
libraries (urllib, http.client, raw sockets, gRPC, database drivers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit


class BlockedHostError(Exception):
    """Raised in the scenario's task instead of sending a request to a host not allowed."""


def _host_port(url: str) -> tuple[str, int | None]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None and parts.scheme in ("http", "https"):
        port = 443 if parts.scheme == "https" else 80
    return host, port


class HostGuard:
    """Decides whether a URL may be requested, and counts what was blocked."""

    def __init__(self, target: str, allowed: Iterable[str] = ()) -> None:
        self._allowed = {_host_port(target)}
        self._any_port: set[str] = set()
        for entry in allowed:
            if "://" in entry:
                self._allowed.add(_host_port(entry))
            else:
                self._any_port.add(entry.lower().split(":")[0])
        self.blocked: dict[str, int] = {}
        self._known: dict[str, bool] = {}
        # Requests to other hosts that custom clients reported after sending them.
        self.reached: dict[str, int] = {}

    def allows(self, url: str) -> bool:
        if "://" not in url:
            return True  # relative: resolved against the client's base URL (checked on send)
        # Every request is checked (on the client, on send, in its event): remember the answer
        # per scheme and authority (the text urlsplit reads the host and port from).
        scheme, _, rest = url.partition("://")
        key = scheme + "://" + rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
        known = self._known.get(key)
        if known is None:
            host, port = _host_port(url)
            known = (host, port) in self._allowed or host in self._any_port
            if len(self._known) < 1024:
                self._known[key] = known
        return known

    def check(self, url: str) -> None:
        if not self.allows(url):
            host = urlsplit(url).netloc or url
            self.blocked[host] = self.blocked.get(host, 0) + 1
            raise BlockedHostError(
                f"request to {host} blocked by the host allow-list (only the target may be "
                "loaded; allow it with --allow-host if that is intended)"
            )

    def reported(self, url: Any) -> bool:
        """A request event's URL: True if it may be measured; a request to another host that
        a custom client already sent is counted in `reached` (it could not be blocked)."""
        if not isinstance(url, str) or self.allows(url):
            return True
        host = urlsplit(url).netloc or url
        self.reached[host] = self.reached.get(host, 0) + 1
        return False

    def install(self, user: Any) -> None:
        """Wrap user.client.request (after any emulation) so every request is checked first.

        Users without a client with a `request` method (a plain User measuring itself through
        events.request) are left alone: their HTTP goes through guarding_sessions, if at all.
        """
        client = getattr(user, "client", None)
        inner: Callable[..., Any] | None = getattr(client, "request", None)
        if client is None or not callable(inner):
            return

        def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            # Relative URLs go to the client's base URL: checked as they are sent.
            self.check(url)
            return inner(method, url, *args, **kwargs)

        client.request = request


@contextmanager
def guarding_sessions(guard: HostGuard) -> Iterator[None]:
    """Check every request sent through `requests` or a FastHttpSession while the block runs.

    `requests.Session.send` is where every HttpSession (the user's client, sessions the scenario
    opens itself, Session objects and `requests.get`) sends each request, redirect hops
    included; `LocustUserAgent._urlopen` is the same for FastHttpSession. Both raise
    BlockedHostError before connecting.
    """
    import requests
    from locust.contrib.fasthttp import LocustUserAgent

    send = requests.Session.send
    urlopen = LocustUserAgent._urlopen

    def guarded_send(session: Any, request: Any, **kwargs: Any) -> Any:
        guard.check(request.url)
        return send(session, request, **kwargs)

    def guarded_urlopen(agent: Any, request: Any) -> Any:
        guard.check(request.url)
        return urlopen(agent, request)

    requests.Session.send = guarded_send  # type: ignore[method-assign,assignment]
    LocustUserAgent._urlopen = guarded_urlopen  # type: ignore[method-assign]
    try:
        yield
    finally:
        requests.Session.send = send  # type: ignore[method-assign]
        LocustUserAgent._urlopen = urlopen  # type: ignore[method-assign]


def blocked_totals(guard: HostGuard, source: object) -> dict[str, int]:
    """Requests the allow-list blocked, here and (distributed) on the workers."""
    total = dict(guard.blocked)
    for host, n in getattr(source, "blocked", {}).items():
        total[host] = total.get(host, 0) + n
    return total

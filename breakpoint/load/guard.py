"""The host allow-list: a scenario's requests to any other host are blocked before they leave.

A locustfile can call absolute URLs (a payment provider, an analytics beacon). Under load that
would load a third party by accident, so every user's client only sends to the target's host
(and hosts the user allowed with --allow-host); anything else raises BlockedHostError inside
the task without a byte sent, and is counted so the run can report it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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

    def allows(self, url: str) -> bool:
        if "://" not in url:
            return True  # relative: resolved against the target host by Locust
        host, port = _host_port(url)
        return (host, port) in self._allowed or host in self._any_port

    def check(self, url: str) -> None:
        if not self.allows(url):
            host = urlsplit(url).netloc or url
            self.blocked[host] = self.blocked.get(host, 0) + 1
            raise BlockedHostError(
                f"request to {host} blocked by the host allow-list (only the target may be "
                "loaded; allow it with --allow-host if that is intended)"
            )

    def install(self, user: Any) -> None:
        """Wrap user.client.request (after any emulation) so every request is checked first."""
        client = user.client
        inner: Callable[..., Any] = client.request

        def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            self.check(url)
            return inner(method, url, *args, **kwargs)

        client.request = request

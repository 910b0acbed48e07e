"""A target on loopback hides slow readers from the server (docs/design.md#loopback).

Over loopback the kernel's buffers take a whole response from the server at once (Linux
autotunes the send buffer to megabytes on the 64 KB-MTU loopback), so a server's worker or
connection is released while an emulated 3G user is still reading: measured with gunicorn sync
workers, 11 ms held for a 200 KB response that took the reader 5 s, against about 1 s (up to
1.9 s) over a veth pair between network namespaces. Pure: names in, one sentence out.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Iterable

from breakpoint.plan.profiles import Profile

# Profiles at or below this download rate read a 200 KB response for over a second: slow enough
# that a server's worker held while they read would matter.
SLOW_DOWN_KBPS = 2000.0


def is_loopback(host_url: str) -> bool:
    """True for http(s)://localhost..., 127.0.0.0/8 and ::1."""
    host = urllib.parse.urlsplit(host_url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def slow_readers(profiles: Iterable[Profile]) -> list[str]:
    return [p.name for p in profiles if p.network.down_kbps <= SLOW_DOWN_KBPS]


def loopback_note(host_url: str | None, profiles: Iterable[Profile]) -> str | None:
    """The warning for a run whose slow-reading segments hit a target on loopback (None: no
    reason to warn). `host_url` None: the host is not known yet (`breakpoint plan`)."""
    slow = slow_readers(profiles)
    if not slow or (host_url is not None and not is_loopback(host_url)):
        return None
    where = "if the target is on this machine (loopback), " if host_url is None else ""
    return (
        f"{where}{', '.join(slow)} read slowly, but loopback's kernel buffers take a whole "
        "response from the server at once: the server's worker or connection is released while "
        "they still read, so a server that holds a worker per response (gunicorn sync, "
        "thread-per-request) is measured better than it is. To measure it for real, run the "
        "load generator on another host, or the target in a network namespace (a veth pair)"
    )

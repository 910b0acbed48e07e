"""Checks made before any load is sent: target reachable, store writable, file descriptors.

Each check raises a UsageError with one line saying what is wrong and how to fix it. The
scenario is checked by importing it (scenario.load_scenario), profiles by loading them.
"""

from __future__ import annotations

import resource
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from breakpoint.errors import StoreError, TargetError, UsageError

# Each user holds up to a few sockets; keep a margin for the process itself.
FDS_PER_USER = 2
FD_MARGIN = 256


def check_host_url(host: str) -> tuple[str, int]:
    parsed = urlparse(host)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UsageError(f"--host: {host!r} is not a URL like http://127.0.0.1:8089")
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        raise UsageError(f"--host: {host!r} has an invalid port") from None
    return parsed.hostname, port


def check_target(host: str, *, timeout_s: float = 3.0) -> None:
    """The target accepts a TCP connection (one connection, no request: nothing is loaded)."""
    hostname, port = check_host_url(host)
    try:
        with socket.create_connection((hostname, port), timeout=timeout_s):
            pass
    except TimeoutError:
        raise TargetError(
            f"--host {host}: no answer within {timeout_s:g} s; is the target up "
            "and reachable from here?"
        ) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise TargetError(
            f"--host {host}: cannot connect ({reason}); is the target running? "
            "(`breakpoint target` starts the demo one)"
        ) from None


def check_store(out_dir: Path) -> None:
    """The reports folder exists or can be created, and is writable."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise StoreError(
            f"--out {out_dir}: not writable ({exc.strerror}); choose another folder with --out"
        ) from None


def ensure_fd_limit(users: int) -> int:
    """Raise the soft open-files limit toward what `users` need; return the users it allows.

    When the hard limit is lower than needed, the user guardrail is lowered to fit (the caller
    says so) rather than letting the run fail with "too many open files" mid-step.
    """
    needed = users * FDS_PER_USER + FD_MARGIN
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return users
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    allowed = (target - FD_MARGIN) // FDS_PER_USER
    if allowed < 1:
        raise UsageError(
            f"the open-files limit ({hard}) is too low to run any users; raise it with "
            "`ulimit -n 4096`"
        )
    return min(users, allowed)

"""What one request is, for the record: its failure kind (the target's, or the generator's own)
and the endpoint name it is stored under (query values redacted).
"""

from __future__ import annotations

import errno
from typing import Any


def redact_name(name: str) -> str:
    """An endpoint name without query values: `/search?q=x&api_key=s` -> `/search?q=*&api_key=*`.

    Locust names a request after its URL when the scenario gives no name=, so credentials in a
    query string would otherwise be stored and shown. It also groups the same endpoint.
    """
    if "?" not in name:
        return name
    path, _, query = name.partition("?")
    keys = [part.split("=", 1)[0] for part in query.split("&") if part]
    return path + "?" + "&".join(f"{k}=*" for k in keys)


# The generator's own limits, not the target's: a request that failed for one of these says
# nothing about the target (the step is flagged generator-bound instead).
_GENERATOR_ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.EADDRNOTAVAIL)


def classify_error(exception: BaseException | None, response: Any) -> str | None:
    """Kind of failure of one request: timeout, connection, http_4xx/5xx, blocked, generator,
    other. `generator` is the load generator running out of file descriptors, buffers or
    local ports: a fault of the generator, never of the target."""
    status = getattr(response, "status_code", None) or 0
    if exception is None:
        return None if status < 400 else ("http_5xx" if status >= 500 else "http_4xx")
    name = type(exception).__name__.lower()
    text = str(exception).lower()
    cause: BaseException | None = exception
    for _ in range(4):  # the OSError may be wrapped (requests' ConnectionError, ...)
        if cause is None:
            break
        if isinstance(cause, OSError) and cause.errno in _GENERATOR_ERRNOS:
            return "generator"
        cause = cause.__cause__ or cause.__context__
    if "too many open files" in text or "cannot assign requested address" in text:
        return "generator"
    if "blocked" in name or "hostnotallowed" in name:
        return "blocked"
    if "timeout" in name or "timed out" in text or "timeout" in text:
        return "timeout"
    if 400 <= status < 500:
        return "http_4xx"
    if status >= 500:
        return "http_5xx"
    if isinstance(exception, ConnectionError | OSError) or any(
        word in name or word in text
        for word in ("connection", "refused", "reset", "broken pipe", "remote end closed")
    ):
        return "connection"
    return "other"

"""HTTP/1.1 on the wire for the demo target: request heads parsed strictly, request bodies
discarded, response heads, and the fixed response bodies every run transfers.

Only the standard library: the target must not share locust's gevent patching.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# Generous enough for real clients' headers, small enough that garbage cannot grow memory.
MAX_HEAD_BYTES = 64 * 1024
ASSET_BYTES = 204_800


@dataclass(frozen=True)
class Request:
    """The parts of a request the target needs."""

    method: str
    path: str
    query: str
    keep_alive: bool
    content_length: int
    chunked: bool


class BadRequestError(Exception):
    """The request cannot be parsed; answer 400 and close the connection."""


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
BINARY = "application/octet-stream"
# (statistics key, status, content type, body)
Response = tuple[str, int, str, bytes]
BAD_REQUEST: Response = ("(bad request)", 400, TEXT, b"bad request")
HEAD_TOO_LARGE: Response = ("(bad request)", 400, TEXT, b"request head too large")


@lru_cache(maxsize=256)
def response_head(status: int, content_type: str, length: int, keep_alive: bool) -> bytes:
    # Cached because almost every response repeats one of a handful of heads.
    connection = "keep-alive" if keep_alive else "close"
    return (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\nServer: breakpoint-demo\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n"
        f"Connection: {connection}\r\n\r\n"
    ).encode("latin-1")


def parse_head(head: bytes) -> Request:
    """Parse a request line and headers; raise BadRequestError on anything malformed."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes any byte
        raise BadRequestError from exc
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise BadRequestError
    method, target, version = parts
    if not method.isalpha() or not method.isupper() or version not in ("HTTP/1.1", "HTTP/1.0"):
        raise BadRequestError
    if target.startswith(("http://", "https://")):
        # Absolute form (what a proxy would send): keep only the path and query.
        target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
    if not target.startswith("/"):
        raise BadRequestError
    path, _, query = target.partition("?")
    connection = ""
    content_length = 0
    chunked = False
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name[-1] in " \t" or line[0] in " \t":
            raise BadRequestError
        lowered = name.lower()
        if lowered == "connection":
            connection = value.strip().lower()
        elif lowered == "content-length":
            value = value.strip()
            if not value.isdigit():
                raise BadRequestError
            content_length = int(value)
        elif lowered == "transfer-encoding":
            if value.strip().lower() != "chunked":
                raise BadRequestError
            chunked = True
    if chunked and content_length:
        raise BadRequestError  # both framings at once is a request-smuggling shape: refuse
    # HTTP/1.1 connections persist unless closed; HTTP/1.0 ones only if asked to.
    keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    return Request(method, path, query, keep_alive, content_length, chunked)


async def discard_body(reader: asyncio.StreamReader, request: Request) -> None:
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
            raise BadRequestError from exc
        if size == 0:
            break
        await reader.readexactly(size + 2)
    while (await reader.readuntil(b"\r\n")) != b"\r\n":
        pass  # trailer fields


def json_bytes(value: object) -> bytes:
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
        size += len(json_bytes(item)) + 1
    return items


def build_bodies() -> dict[str, bytes]:
    page = json_bytes({"page": 1, "items": _items_of_size("page", 2000)})
    search_results = json_bytes(_items_of_size("search", 8100))
    return {
        "page": page,
        "search_results": search_results,
        # Seeded random bytes: identical across runs, and not compressible by a clever client.
        "asset": random.Random(0).randbytes(ASSET_BYTES),
    }

"""Tests for the embedded demo target: HTTP behaviour, queueing ground truth, stalls and drains."""

from __future__ import annotations

import asyncio
import json
import resource
import socket
import time
from collections.abc import Awaitable, Callable

import pytest

from breakpoint.demo.server import TargetServer
from breakpoint.demo.service import CompensatedTimer, ServiceSampler, TargetConfig, WorkerPool
from breakpoint.demo.target import start_target_process
from breakpoint.demo.wire import ASSET_BYTES
from breakpoint.errors import ConfigError, TargetError

Response = tuple[int, dict[str, str], bytes]


async def _read_response(reader: asyncio.StreamReader) -> Response:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers["content-length"]))
    return status, headers, body


async def _exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    extra: str = "",
) -> Response:
    length = f"Content-Length: {len(body)}\r\n" if body else ""
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: t\r\n{length}{extra}\r\n".encode() + body)
    return await _read_response(reader)


def _with_server(config: TargetConfig, scenario: Callable[[TargetServer], Awaitable[None]]) -> None:
    """Run scenario(server) against an in-process target, then stop it."""

    async def main() -> None:
        server = TargetServer(config)
        await server.start()
        try:
            await asyncio.wait_for(scenario(server), timeout=20)
        finally:
            await server.stop()

    asyncio.run(main())


async def _connect(server: TargetServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    assert server.port is not None
    return await asyncio.open_connection("127.0.0.1", server.port)


def test_endpoints_answer_on_one_keep_alive_connection() -> None:
    """Every endpoint answers with its status and size, all over one persistent connection."""

    async def scenario(server: TargetServer) -> None:
        reader, writer = await _connect(server)
        status, headers, body = await _exchange(reader, writer, "GET", "/api/page")
        assert status == 200
        assert headers["content-type"] == "application/json"
        assert headers["connection"] == "keep-alive"
        assert 1500 <= len(body) <= 2600
        json.loads(body)
        status, _, body = await _exchange(reader, writer, "GET", "/api/search?q=blue%20shoes")
        assert status == 200
        assert 7000 <= len(body) <= 9500
        assert json.loads(body)["query"] == "blue shoes"
        status, _, body = await _exchange(reader, writer, "GET", "/static/asset.bin")
        assert (status, len(body)) == (200, ASSET_BYTES)
        _, _, again = await _exchange(reader, writer, "GET", "/static/asset.bin")
        assert again == body
        assert await _exchange(reader, writer, "GET", "/health") == (
            200,
            {
                "server": "breakpoint-demo",
                "content-type": "text/plain; charset=utf-8",
                "content-length": "2",
                "connection": "keep-alive",
            },
            b"ok",
        )
        status, _, _ = await _exchange(reader, writer, "GET", "/no/such/thing")
        assert status == 404
        status, _, _ = await _exchange(reader, writer, "POST", "/api/page", body=b"x" * 5000)
        assert status == 200
        status, _, _ = await _exchange(reader, writer, "POST", "/api/search?q=a", body=b"{}")
        assert status == 200
        status, _, body = await _exchange(reader, writer, "GET", "/__stats")
        stats = json.loads(body)
        assert stats["connections_total"] == 1
        assert stats["requests"]["/api/page"] == 2
        assert stats["requests"]["/static/asset.bin"] == 2
        assert stats["held_service_ms_count"] == 6
        assert stats["capacity_rps"] == pytest.approx(8000.0)
        writer.close()

    _with_server(TargetConfig(service_ms=1.0), scenario)


def test_chunked_body_is_discarded_and_connection_reused() -> None:
    """A chunked request body is read and dropped, so the next request parses cleanly."""

    async def scenario(server: TargetServer) -> None:
        reader, writer = await _connect(server)
        writer.write(
            b"POST /api/page HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\n\r\n"
        )
        assert (await _read_response(reader))[0] == 200
        assert (await _exchange(reader, writer, "GET", "/health"))[2] == b"ok"
        writer.close()

    _with_server(TargetConfig(service_ms=1.0), scenario)


@pytest.mark.parametrize(
    ("request_head", "closes"),
    [
        pytest.param(b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n", True, id="close-1.1"),
        pytest.param(b"GET /health HTTP/1.0\r\n\r\n", True, id="default-1.0"),
        pytest.param(
            b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", False, id="keep-alive-1.0"
        ),
    ],
)
def test_connection_header_is_honoured(request_head: bytes, closes: bool) -> None:
    """The server closes after the response exactly when the request asks for it."""

    async def scenario(server: TargetServer) -> None:
        reader, writer = await _connect(server)
        writer.write(request_head)
        status, headers, _ = await _read_response(reader)
        assert status == 200
        assert headers["connection"] == ("close" if closes else "keep-alive")
        if closes:
            assert await asyncio.wait_for(reader.read(), timeout=2) == b""
        else:
            assert (await _exchange(reader, writer, "GET", "/health"))[0] == 200
        writer.close()

    _with_server(TargetConfig(service_ms=1.0), scenario)


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(b"HELLO\r\n\r\n", id="no-target"),
        pytest.param(b"GET /health HTTP/9.9\r\n\r\n", id="bad-version"),
        pytest.param(b"GET health HTTP/1.1\r\n\r\n", id="relative-target"),
        pytest.param(b"GET /health HTTP/1.1\r\nno colon here\r\n\r\n", id="bad-header"),
        pytest.param(b"POST /api/page HTTP/1.1\r\nContent-Length: ten\r\n\r\n", id="bad-length"),
        pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", id="tls-hello"),
    ],
)
def test_malformed_request_gets_400_and_close(garbage: bytes) -> None:
    """A malformed request is answered with 400 and the connection is closed."""

    async def scenario(server: TargetServer) -> None:
        reader, writer = await _connect(server)
        writer.write(garbage)
        status, headers, _ = await _read_response(reader)
        assert (status, headers["connection"]) == (400, "close")
        assert await asyncio.wait_for(reader.read(), timeout=2) == b""
        writer.close()

    _with_server(TargetConfig(service_ms=1.0), scenario)


def test_thousands_of_concurrent_connections_are_served() -> None:
    """Two thousand connections open at once each get their answer."""
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 4500:
        pytest.skip("needs about 4000 open files (client and server ends in one process)")

    async def scenario(server: TargetServer) -> None:
        connections = await asyncio.gather(*(_connect(server) for _ in range(2000)))
        responses = await asyncio.gather(
            *(_exchange(r, w, "GET", "/api/page") for r, w in connections)
        )
        assert all(status == 200 for status, _, _ in responses)
        assert server.stats()["connections_open"] == 2000
        for _, writer in connections:
            writer.close()

    _with_server(TargetConfig(service_ms=0.5), scenario)


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        pytest.param("workers", {"workers": 0}, id="no-workers"),
        pytest.param("service_ms", {"service_ms": 0.0}, id="zero-service"),
        pytest.param("port", {"port": 70000}, id="port-range"),
        pytest.param("max_queue", {"max_queue": -1}, id="negative-queue"),
        pytest.param("distribution", {"distribution": "pareto"}, id="unknown-distribution"),
        pytest.param("contention", {"contention": -0.1}, id="negative-contention"),
    ],
)
def test_config_rejects_bad_values(field: str, kwargs: dict[str, object]) -> None:
    """An invalid setting raises ConfigError naming the field."""
    with pytest.raises(ConfigError) as caught:
        TargetConfig(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_sampler_is_seeded() -> None:
    """The same seed draws the same service-time sequence; another seed draws another."""
    first = ServiceSampler(20.0, "exponential", seed=7)
    second = ServiceSampler(20.0, "exponential", seed=7)
    other = ServiceSampler(20.0, "exponential", seed=8)
    draws = [first.draw_ms() for _ in range(1000)]
    assert draws == [second.draw_ms() for _ in range(1000)]
    assert draws != [other.draw_ms() for _ in range(1000)]
    assert sum(draws) / len(draws) == pytest.approx(20.0, rel=0.1)
    assert ServiceSampler(20.0, "constant").draw_ms(2.5) == 50.0


def test_worker_pool_is_strict_fifo() -> None:
    """Waiters get a released worker in arrival order, and a full queue refuses at once."""

    async def scenario() -> None:
        pool = WorkerPool(workers=1, max_queue=3)
        order: list[int] = []

        async def client(i: int) -> None:
            assert await pool.acquire()
            order.append(i)
            await asyncio.sleep(0)
            pool.release()

        assert await pool.acquire()
        tasks = [asyncio.create_task(client(i)) for i in range(3)]
        await asyncio.sleep(0)
        assert pool.queue_length == 3
        assert not await pool.acquire()  # the fourth waiter would exceed max_queue
        pool.release()
        await asyncio.gather(*tasks)
        assert order == [0, 1, 2]
        assert (pool.busy, pool.max_queue_length) == (0, 3)

    asyncio.run(scenario())


def test_timer_compensates_its_overshoot() -> None:
    """Holding 5 ms many times averages 5 ms, not 5 ms plus the loop's late wake-up."""

    async def scenario() -> float:
        timer = CompensatedTimer()
        held = [await timer.hold(0.005) for _ in range(60)]
        return sum(held[10:]) / len(held[10:])

    assert asyncio.run(scenario()) == pytest.approx(0.005, rel=0.05)


def test_max_queue_answers_503_when_overloaded() -> None:
    """With one worker and room for one waiter, extra concurrent requests get an immediate 503."""

    async def scenario(server: TargetServer) -> None:
        connections = await asyncio.gather(*(_connect(server) for _ in range(4)))

        async def timed(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> tuple[int, float]:
            start = time.perf_counter()
            status, _, _ = await _exchange(reader, writer, "GET", "/api/page")
            return status, time.perf_counter() - start

        results = await asyncio.gather(*(timed(r, w) for r, w in connections))
        statuses = sorted(status for status, _ in results)
        assert statuses == [200, 200, 503, 503]
        assert all(elapsed < 0.1 for status, elapsed in results if status == 503)
        stats = server.stats()
        assert (stats["rejected_503"], stats["max_queue_length"]) == (2, 1)
        for _, writer in connections:
            writer.close()

    _with_server(
        TargetConfig(workers=1, service_ms=200.0, max_queue=1, distribution="constant"), scenario
    )


def test_metrics_show_busy_workers_and_queue_and_are_not_counted_as_requests() -> None:
    """/metrics (Prometheus text) shows the workers held and the requests waiting at the moment
    of the scrape, counts served responses by path and status, and is itself neither counted in
    /__stats nor holding a worker."""

    async def scenario(server: TargetServer) -> None:
        from prometheus_client.parser import text_string_to_metric_families

        def values(body: bytes) -> dict[str, float]:
            out = {}
            for family in text_string_to_metric_families(body.decode()):
                assert family.type in ("gauge", "counter"), family.name
                for sample in family.samples:
                    labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                    out[f"{sample.name}{{{labels}}}"] = sample.value
            return out

        connections = await asyncio.gather(*(_connect(server) for _ in range(4)))
        probe_reader, probe_writer = await _connect(server)
        status, headers, body = await _exchange(probe_reader, probe_writer, "GET", "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        idle = values(body)
        assert idle["breakpoint_target_workers{}"] == 2
        assert idle["breakpoint_target_busy_workers{}"] == 0
        assert idle["breakpoint_target_queue_length{}"] == 0
        for _, writer in connections:
            writer.write(b"GET /api/page HTTP/1.1\r\nHost: t\r\n\r\n")
            await writer.drain()
        await asyncio.sleep(0.05)  # 4 requests, 2 workers held for 300 ms each
        busy = values((await _exchange(probe_reader, probe_writer, "GET", "/metrics"))[2])
        assert busy["breakpoint_target_busy_workers{}"] == 2
        assert busy["breakpoint_target_queue_length{}"] == 2
        for reader, _ in connections:
            assert (await _read_response(reader))[0] == 200
        done = values((await _exchange(probe_reader, probe_writer, "GET", "/metrics"))[2])
        assert done["breakpoint_target_requests_total{code=200,path=/api/page}"] == 4
        assert done["breakpoint_target_busy_workers{}"] == 0
        stats = server.stats()
        assert "/metrics" not in stats["requests"] and stats["requests_total"] == 4
        assert stats["held_service_ms_count"] == 4
        status, _, _ = await _exchange(probe_reader, probe_writer, "POST", "/metrics")
        assert status == 405
        for _, writer in (*connections, (probe_reader, probe_writer)):
            writer.close()

    _with_server(TargetConfig(workers=2, service_ms=300.0, distribution="constant"), scenario)


def test_stall_makes_a_request_wait_about_the_stall() -> None:
    """A request starting service during a 300 ms stall waits for it; /health does not."""

    async def scenario(server: TargetServer) -> None:
        reader, writer = await _connect(server)
        status, _, _ = await _exchange(reader, writer, "POST", "/__admin/stall?ms=300")
        assert status == 200
        start = time.perf_counter()
        assert (await _exchange(reader, writer, "GET", "/health"))[0] == 200
        assert time.perf_counter() - start < 0.05
        assert (await _exchange(reader, writer, "GET", "/api/page"))[0] == 200
        assert 0.27 <= time.perf_counter() - start <= 0.5
        start = time.perf_counter()
        assert (await _exchange(reader, writer, "GET", "/api/page"))[0] == 200
        assert time.perf_counter() - start < 0.05  # the stall is over
        status, _, _ = await _exchange(reader, writer, "POST", "/__admin/stall?ms=soon")
        assert status == 400
        writer.close()

    _with_server(TargetConfig(workers=2, service_ms=1.0, distribution="constant"), scenario)


def test_contention_slows_each_service_by_the_requests_already_in_service() -> None:
    """Four requests at once on an idle target with contention 0.5: they start with 0, 1, 2 and 3
    others in service, so they take about 1, 1.5, 2 and 2.5 times the service time; alone, one
    takes 1 (docs/design.md#contention). The held time reported stays per unit of slowdown."""
    config = TargetConfig(workers=8, service_ms=40.0, distribution="constant", contention=0.5)
    assert config.capacity_rps == pytest.approx(8 / (0.040 * (1 + 0.5 * 7)))

    async def timed(server: TargetServer) -> float:
        reader, writer = await _connect(server)
        start = time.perf_counter()
        assert (await _exchange(reader, writer, "GET", "/api/page"))[0] == 200
        writer.close()
        return time.perf_counter() - start

    async def scenario(server: TargetServer) -> None:
        alone = await timed(server)
        together = sorted(await asyncio.gather(*(timed(server) for _ in range(4))))
        assert together[-1] >= 2.0 * alone, (alone, together)
        assert together[-1] >= 2.0 * together[0], together
        stats = server.stats()
        assert stats["held_service_ms_mean"] == pytest.approx(40.0, rel=0.2)

    _with_server(config, scenario)


async def _hammer(port: int, connections: int, duration_s: float, warmup_s: float) -> float:
    """Keep `connections` keep-alive clients busy on /api/page; completed req/s after warm-up."""
    start = time.perf_counter()
    measure_from = start + warmup_s
    stop_at = start + duration_s
    completed = 0

    async def client() -> None:
        nonlocal completed
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < stop_at:
            status, _, _ = await _exchange(reader, writer, "GET", "/api/page")
            assert status == 200
            if time.perf_counter() >= measure_from:
                completed += 1
        writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return completed / (time.perf_counter() - measure_from)


def test_saturated_throughput_matches_c_over_s() -> None:
    """Saturated by 64 clients, 8 workers of 20 ms serve about 400 req/s and hold 20 ms each."""
    with start_target_process(TargetConfig(workers=8, service_ms=20.0, seed=1)) as target:
        rps = asyncio.run(_hammer(target.port, connections=64, duration_s=4.0, warmup_s=0.5))
        stats = target.stats()
    assert rps == pytest.approx(400.0, rel=0.15)
    assert stats["held_service_ms_mean"] == pytest.approx(20.0, rel=0.05)
    # Held vs drawn isolates the timer's error from the sampling noise of ~1600 draws.
    assert stats["held_service_ms_mean"] == pytest.approx(stats["drawn_service_ms_mean"], rel=0.02)
    assert stats["max_queue_length"] >= 40  # the queue, not the clients, set the pace
    assert target.output[-1].startswith("held service time ")
    assert target.process.returncode == 0


def _fetch_asset(port: int, *, receive_buffer: int | None, chunk: int, pause_s: float) -> int:
    """Download the asset over a blocking socket, pausing between reads; returns bytes read."""
    with socket.socket() as sock:
        if receive_buffer is not None:
            # Set before connect so the advertised window is small from the handshake on.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"GET /static/asset.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        received = 0
        while data := sock.recv(chunk):
            received += len(data)
            if pause_s:
                time.sleep(pause_s)
    return received


def test_slow_reader_holds_the_servers_connection() -> None:
    """A client reading the asset slowly through a small window keeps drain() waiting longer."""
    with start_target_process(TargetConfig(service_ms=1.0)) as target:
        for _ in range(3):
            assert _fetch_asset(target.port, receive_buffer=None, chunk=65536, pause_s=0) > 204800
        fast = target.stats()["drain_ms"]["/static/asset.bin"]
        target.reset()
        # About 800 KB/s: the 200 KB asset takes about a quarter of a second to read.
        assert _fetch_asset(target.port, receive_buffer=4096, chunk=4096, pause_s=0.005) > 204800
        slow = target.stats()["drain_ms"]["/static/asset.bin"]
    assert (fast["count"], slow["count"]) == (3, 1)
    assert slow["mean"] > 50.0
    assert slow["mean"] > 10 * fast["max"]


def test_process_reports_capacity_and_fails_clearly_on_a_busy_port() -> None:
    """The child prints its capacity line; a second target on the same port fails with a reason."""
    with (
        start_target_process(TargetConfig(workers=4, service_ms=10.0, seed=3)) as target,
        pytest.raises(TargetError, match="cannot listen"),
    ):
        start_target_process(TargetConfig(port=target.port), timeout_s=10)
    assert target.output[0] == f"listening on http://127.0.0.1:{target.port}"
    assert target.output[1] == (
        "capacity 400.0 req/s (4 workers x 10.0 ms mean service, exponential, seed 3)"
    )

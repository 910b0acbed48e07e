"""The embedded demo target: an HTTP/1.1 server on 127.0.0.1 whose capacity is known in advance.

This is its process side. `python -m breakpoint.demo.target` (and `breakpoint target`) serves
until stopped; `start_target_process()` starts it as a child, so it shares no GIL with the load
generator, and waits for its first line, `listening on http://HOST:PORT`. The service itself is
server.py; why its capacity is a known truth is in docs/design.md#ground-truths.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from breakpoint.demo.server import TargetServer
from breakpoint.demo.service import DISTRIBUTIONS, TargetConfig
from breakpoint.errors import BreakpointError, TargetError


def _raise_open_files_limit() -> None:
    # Thousands of concurrent connections need thousands of descriptors; the soft limit is often
    # 1024 while the hard limit allows more.
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = 65536 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))


def _summary(stats: dict[str, Any]) -> str:
    held = stats["held_service_ms_mean"]
    totals = (
        f"{stats['requests_total']} responses, {stats['rejected_503']} rejected with 503 "
        f"(configured service {stats['service_ms']} ms)"
    )
    if held is None:
        return f"held service time: none measured; {totals}"
    return (
        f"held service time {held:.3f} ms mean per unit cost over "
        f"{stats['held_service_ms_count']} services; {totals}"
    )


def run_target(config: TargetConfig, out: Callable[[str], object] = print) -> int:
    """Serve until SIGINT/SIGTERM (the `breakpoint target` command); returns the exit code 0.

    Prints `listening on http://HOST:PORT` first (scripts wait for it), then the capacity line,
    and on stop a summary of the service time actually held.
    """
    _raise_open_files_limit()
    return asyncio.run(_run_until_signalled(config, out))


async def _run_until_signalled(config: TargetConfig, out: Callable[[str], object]) -> int:
    def emit(line: str) -> None:
        out(line)
        sys.stdout.flush()  # a parent process is waiting on a pipe for this line

    server = TargetServer(config)
    await server.start()
    emit(f"listening on {server.url}")
    emit(config.describe())
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stopped.set)
    try:
        await stopped.wait()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        await server.stop()
    emit(_summary(server.stats()))
    return 0


# Loopback only: never route the target's own admin traffic through a configured proxy.
_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class TargetProcess:
    """A demo target running in a child process (so it shares no GIL with the load generator)."""

    def __init__(self, process: subprocess.Popen[str], port: int, lines: queue.Queue[str | None]):
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.output: list[str] = []
        self._lines = lines

    def _request(self, method: str, path: str, timeout_s: float = 5.0) -> dict[str, Any]:
        request = urllib.request.Request(
            self.url + path, method=method, data=b"" if method == "POST" else None
        )
        with _NO_PROXY_OPENER.open(request, timeout=timeout_s) as response:
            result: dict[str, Any] = json.loads(response.read())
        return result

    def stats(self) -> dict[str, Any]:
        """The target's /__stats."""
        return self._request("GET", "/__stats")

    def stall(self, ms: float) -> None:
        """Stall every worker for the next ms (see TargetServer.stall)."""
        self._request("POST", f"/__admin/stall?ms={ms}")

    def reset(self) -> None:
        """Clear the target's counters."""
        self._request("POST", "/__admin/reset")

    def stop(self, timeout_s: float = 5.0) -> int:
        """SIGTERM, wait, kill if needed; returns the exit code and keeps the output lines."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.output.extend(_collect_rest(self._lines, timeout_s))
        return self.process.returncode

    def __enter__(self) -> TargetProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _collect_rest(lines: queue.Queue[str | None], timeout_s: float) -> list[str]:
    """The exited child's remaining output lines."""
    rest: list[str] = []
    # A grandchild holding stdout open must not hang us: give up after timeout_s.
    with contextlib.suppress(queue.Empty):
        while (line := lines.get(timeout=timeout_s)) is not None:
            rest.append(line)
    return rest


def _pump_lines(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    stream.close()  # only this thread reads the pipe, so only it may close it
    lines.put(None)  # end of output


def _wait_for_listening(lines: queue.Queue[str | None], timeout_s: float) -> tuple[int, list[str]]:
    """Read the child's lines until `listening on`; returns the port and the lines seen."""
    deadline = time.monotonic() + timeout_s
    seen: list[str] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TargetError(f"the demo target printed no 'listening on' line in {timeout_s} s")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            raise TargetError("the demo target exited before listening")
        seen.append(line)
        if line.startswith("listening on "):
            try:
                return int(line.rsplit(":", 1)[1]), seen
            except ValueError as exc:
                raise TargetError(f"unexpected line from the demo target: {line}") from exc


def start_target_process(
    config: TargetConfig | None = None, timeout_s: float = 10.0
) -> TargetProcess:
    """Start `python -m breakpoint.demo.target` and wait for its `listening on` line."""
    config = config if config is not None else TargetConfig()
    argv = [
        sys.executable, "-m", "breakpoint.demo.target",
        "--workers", str(config.workers),
        "--service-ms", repr(config.service_ms),
        "--port", str(config.port),
        "--seed", str(config.seed),
        "--host", config.host,
        "--distribution", config.distribution,
    ]  # fmt: skip
    if config.max_queue is not None:
        argv += ["--max-queue", str(config.max_queue)]
    if config.sync_workers:
        argv.append("--sync-workers")
    if config.contention:
        argv += ["--contention", repr(config.contention)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # Let the child import this very package even when it is not installed.
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    lines: queue.Queue[str | None] = queue.Queue()
    # The child's stderr goes to a file: read only to explain a failed start, and it can never
    # fill a pipe and block the child.
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as stderr:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
        threading.Thread(target=_pump_lines, args=(process.stdout, lines), daemon=True).start()
        try:
            port, seen = _wait_for_listening(lines, timeout_s)
        except TargetError as exc:
            if process.poll() is None:
                process.kill()
            process.wait()
            stderr.seek(0)
            detail = stderr.read().strip().splitlines()[-1:]
            raise TargetError(f"{exc}{': ' + detail[0] if detail else ''}") from exc
    # Closing our copy of the stderr file is fine: the child keeps its own descriptor.
    target = TargetProcess(process, port, lines)
    target.output.extend(seen)
    return target


def main(argv: list[str] | None = None) -> int:
    """`python -m breakpoint.demo.target`: the target without the click CLI (child processes)."""
    defaults = TargetConfig()
    parser = argparse.ArgumentParser(
        prog="python -m breakpoint.demo.target",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--service-ms", type=float, default=defaults.service_ms)
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--max-queue", type=int, default=defaults.max_queue)
    parser.add_argument("--distribution", choices=DISTRIBUTIONS, default=defaults.distribution)
    parser.add_argument("--sync-workers", action="store_true")
    parser.add_argument("--contention", type=float, default=defaults.contention)
    args = parser.parse_args(argv)
    try:
        config = TargetConfig(
            workers=args.workers,
            service_ms=args.service_ms,
            seed=args.seed,
            port=args.port,
            host=args.host,
            max_queue=args.max_queue,
            distribution=args.distribution,
            sync_workers=args.sync_workers,
            contention=args.contention,
        )
        return run_target(config)
    except BreakpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.exit_status)


if __name__ == "__main__":
    raise SystemExit(main())

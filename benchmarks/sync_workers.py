"""Does a slow 3G reader hold a worker of the embedded target in its synchronous-worker mode?

Starts the embedded target (1 worker, 20 ms mean service) twice, asynchronous (default) and with
`--sync-workers`, on 127.0.0.1. A slow reader fetches the 200 KB asset through a socket with the
emulated clients' small receive buffer (SO_RCVBUF 4096, as load/emulate_parts.py asks) and reads
it at android-lowend-3g's 400 kbit/s; 50 ms after it started, a fast client asks for /api/page.
Prints, per mode: how long the slow download took, how long the target held the worker past the
service time (its drain time, from /__stats), and how long the fast client waited.

    .venv/bin/python benchmarks/sync_workers.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time

from breakpoint.demo.target import TargetConfig, start_target_process

RCVBUF = 4096
DOWN_KBPS = 400.0  # android-lowend-3g


def slow_get(port: int, path: str, out: dict[str, float]) -> None:
    """GET `path`, reading at DOWN_KBPS through a small receive buffer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    sock.connect(("127.0.0.1", port))
    t0 = time.perf_counter()
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    got = 0
    per_s = DOWN_KBPS * 1000 / 8
    while True:
        chunk = sock.recv(1460)
        if not chunk:
            break
        got += len(chunk)
        # Pace: never ahead of the link's rate.
        ahead = got / per_s - (time.perf_counter() - t0)
        if ahead > 0:
            time.sleep(ahead)
    sock.close()
    out["slow_s"] = time.perf_counter() - t0
    out["bytes"] = got


def fast_get(port: int, path: str) -> float:
    sock = socket.create_connection(("127.0.0.1", port))
    t0 = time.perf_counter()
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    while sock.recv(65536):
        pass
    sock.close()
    return time.perf_counter() - t0


def measure(sync: bool, repeats: int) -> dict[str, float]:
    config = TargetConfig(workers=1, service_ms=20.0, port=0, sync_workers=sync)
    slow, held, fast = [], [], []
    with start_target_process(config) as target:
        for _ in range(repeats):
            target.reset()
            out: dict[str, float] = {}
            reader = threading.Thread(target=slow_get, args=(target.port, "/static/asset.bin", out))
            reader.start()
            time.sleep(0.05)
            fast.append(fast_get(target.port, "/api/page"))
            reader.join()
            stats = target.stats()
            slow.append(out["slow_s"])
            held.append(stats["drain_ms"]["/static/asset.bin"]["max"] / 1000.0)
    return {
        "slow_s": statistics.median(slow),
        "held_s": statistics.median(held),
        "fast_s": statistics.median(fast),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("mode   3G download of 200 KB   worker held past service   a fast request waited")
    for sync in (False, True):
        r = measure(sync, args.repeats)
        print(
            f"{'sync' if sync else 'async':<6} {r['slow_s']:>10.2f} s {r['held_s']:>22.2f} s "
            f"{r['fast_s'] * 1000:>20.0f} ms"
        )


if __name__ == "__main__":
    main()
